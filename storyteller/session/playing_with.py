"""What a :class:`~storyteller.session.Session` plays with: its card, worlds, sampler and template.

A mixin, so the session's core stays about one reply. :class:`~storyteller.session.turn.SessionParts`
is frozen: every change here makes new parts (and saves the choice with the story, unless it
is read-only), and the next turn uses them. Nothing here talks to the engine.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyteller.cards import Card
from storyteller.content import content_ref, find_world
from storyteller.errors import StorytellerError
from storyteller.prompt import PromptBuilder
from storyteller.sampling import Sampling
from storyteller.session.player import world_file
from storyteller.session.resources import load_books, pick_template

if TYPE_CHECKING:
    from storyteller.session.turn import SessionParts
    from storyteller.story.store import Story

__all__ = ["PlayingWith"]


class PlayingWith:
    """The session's methods that change what the story is played with (see the module)."""

    story: Story
    parts: SessionParts

    def reload_lore(self) -> None:
        """Read the story's worlds (and its card's embedded book) again; the next turn uses them.

        Raises:
            StorytellerError: A world cannot be read (the session keeps its old world info).
        """
        books = load_books(self.story.settings.worlds, None if self.parts.members else self.parts.card, self.parts.paths)
        self.parts = self.parts.replace(books=tuple(books))

    def use_card(self, card: Card, *, path: str | Path | None = None) -> None:
        """Play with ``card`` from now on; with ``path``, the story names that file as its card.

        Raises:
            StorytellerError: The story's settings cannot be saved, or its worlds cannot be read.
        """
        if path is not None and not self.story.read_only:
            cards = list(self.story.settings.cards)
            ref = content_ref(path, self.parts.paths)
            if cards[:1] != [ref]:
                self.story.set_settings(cards=[ref, *cards[1:]])
        self.parts = self.parts.replace(card=card)
        self.reload_lore()

    def attach_world(self, ref: str, *, replacing: str | None = None) -> None:
        """Name the world ``ref`` in the story (in place of ``replacing``), then read the worlds again.

        Raises:
            StorytellerError: The story's settings cannot be saved, or a world cannot be read.
        """
        try:  # a library or bundled world is named, not located, so the story survives a move
            ref = content_ref(find_world(ref, self.parts.paths), self.parts.paths)
        except StorytellerError:
            pass  # reload_lore below says what is wrong with it
        refs = list(self.story.settings.worlds)
        if replacing is not None and replacing in refs:
            refs[refs.index(replacing)] = ref
        elif ref not in refs:
            refs.append(ref)
        if refs != list(self.story.settings.worlds) and not self.story.read_only:
            self.story.set_settings(worlds=refs)
        self.reload_lore()

    def detach_world(self, ref: str) -> bool:
        """Stop using the world ``ref`` (as the story names it, or any name of the same file);
        returns whether the story named it. The card's own book stays.

        Raises:
            StorytellerError: The story's settings cannot be saved, or a world cannot be read.
        """
        refs = list(self.story.settings.worlds)
        target = world_file(ref, self.parts.paths)
        kept = [r for r in refs if r != ref and (target is None or world_file(r, self.parts.paths) != target)]
        if kept == refs:
            return False
        if not self.story.read_only:
            self.story.set_settings(worlds=kept)
        self.reload_lore()
        return True

    def apply_sampling(self, *, preset: str | None | object = ..., overrides: dict[str, Any] | None = None,
                       base: Sampling | None = None) -> Sampling:
        """Use a sampler preset (``None``: the global settings) and/or overrides for this story from
        the next turn on; returns the sampler settings the next turn will use.

        ``base`` replaces the global sampler settings the story's preset and overrides apply to
        (the settings screen saved new ones); no engine reload is needed for any of them.
        """
        if base is not None:
            settings = self.parts.settings.model_copy(update={"sampling": base})
            self.parts = self.parts.replace(settings=settings)
        changes: dict[str, Any] = {}
        if preset is not ...:
            changes["sampler_preset"] = preset
        if overrides is not None:
            changes["sampler_overrides"] = overrides
        if changes:
            self.story.set_settings(**changes)
        return self.parts.sampling(self.story.settings)

    def use_template(self, name: str | None) -> str:
        """Build prompts with the instruct template ``name`` from the next turn on, saved with the
        story: ``"auto"`` (or ``None``) the one matching the model's own, ``"none"`` plain text,
        else a bundled or user template by name. Returns the name of the template now used.

        Raises:
            FormatError: No template has that name (nothing changes).
            StorytellerError: The story's settings cannot be saved.
        """
        stored = None if name is None or name.strip().lower() in ("", "auto") else name.strip()
        template, _warnings = pick_template(self.story.settings.model_copy(update={"template": stored}),
                                            self.parts.info, self.parts.paths)
        if stored != self.story.settings.template and not self.story.read_only:
            self.story.set_settings(template=stored)
        builder = PromptBuilder(self.parts.builder.counter, replace(self.parts.builder.options, template=template))
        self.parts = self.parts.replace(builder=builder)
        return template.name

    def sampling(self) -> Sampling:
        """The sampler settings the next turn will use."""
        return self.parts.sampling(self.story.settings)
