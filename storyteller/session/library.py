"""The library as the UI sees it: cards, worlds and stories to list, start, branch and find.

A small service over :mod:`storyteller.cards`, :mod:`storyteller.content` and
:mod:`storyteller.story`, so that screens talk to the session layer only. Listing reads files:
call it from a thread worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storyteller.cards import Card, list_cards, load_card
from storyteller.content import BUNDLED_CHARACTERS, BUNDLED_WORLDS, content_ref, find_card, find_world
from storyteller.errors import StoryError, StorytellerError
from storyteller.paths import Paths
from storyteller.prompt import load_library
from storyteller.story import StoryStore

if TYPE_CHECKING:
    from storyteller.session.core import Session

__all__ = ["Library", "LibraryEntry", "NewStoryOffer"]

LibraryEntry = tuple[str, Path, str | None, bool]
"""``(name, path, error, bundled)``: one card or world; ``error`` says why it cannot be used."""

_WORLD_SUFFIXES = (".json", ".lorebook")


@dataclass(frozen=True)
class NewStoryOffer:
    """What the new-story dialog offers for a card.

    Attributes:
        card: The card's file.
        card_name: Its name.
        greetings: The first message, then the alternate greetings.
        suggestion: A story name no story has yet.
        worlds: ``(name, path, reference)`` of the worlds that can be attached.
        chosen: The files (resolved paths) of the worlds ticked at first (the card's linked one).
    """

    card: Path
    card_name: str
    greetings: list[str]
    suggestion: str
    worlds: list[tuple[str, Path, str]]
    chosen: list[str]


class Library:
    """The user's and the bundled cards and worlds, and the saved stories.

    Args:
        paths: Storyteller's folders.
    """

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def cards(self) -> list[LibraryEntry]:
        """The user's cards, then the bundled ones (a bundled card is listed once)."""
        found: list[LibraryEntry] = []
        seen: set[str] = set()
        for folder, bundled in ((self.paths.characters_dir, False), (BUNDLED_CHARACTERS, True)):
            for entry in list_cards(folder):
                name = entry.card.name if entry.card else entry.path.stem
                if bundled and name in seen:
                    continue  # the bundled cards come as PNG and JSON: list one
                seen.add(name)
                found.append((name, entry.path, entry.error, bundled))
        return found

    def worlds(self) -> list[LibraryEntry]:
        """The user's worlds, then the bundled ones."""
        found: list[LibraryEntry] = []
        for folder, bundled in ((self.paths.worlds_dir, False), (BUNDLED_WORLDS, True)):
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.suffix.lower() in _WORLD_SUFFIXES and not path.name.startswith("."):
                        found.append((path.stem, path, None, bundled))
        return found

    def world_choices(self) -> list[tuple[str, Path, str]]:
        """``(name, path, reference)`` of every world a story can use (the reference is how a story names it)."""
        return [(name, path, self.ref_for(path)) for name, path, error, _bundled in self.worlds() if error is None]

    def world_files(self, refs: list[str] | tuple[str, ...]) -> list[str]:
        """The files (resolved paths, as text) that world references name; missing ones are left out."""
        files = []
        for ref in refs:
            try:
                files.append(str(self.find_world(ref).resolve()))
            except StorytellerError:
                continue
        return files

    def stories(self) -> list[tuple[str, float]]:
        """``(name, modified)`` of every saved story, the most recent first."""
        return [(info.name, info.modified) for info in StoryStore(self.paths.stories_dir).list()]

    def unique_story_name(self, base: str) -> str:
        """``base``, or ``base-2``, ``base-3``... whichever no story has yet."""
        return StoryStore(self.paths.stories_dir).unique_name(base or "story")

    def default_story_name(self, card: str | None) -> str:
        """What to open when no story is named: the most recent one (with no card asked for),
        else a new name for the card, or for an adventure."""
        if card is None:
            stories = self.stories()
            return stories[0][0] if stories else self.unique_story_name("adventure")
        return self.unique_story_name(Path(str(card)).stem.replace("_", " ") or "story")

    def load_card(self, path: str | Path) -> Card:
        """Read a card (its import report is not needed here).

        Raises:
            FormatError: The file is not a card storyteller can read.
        """
        return load_card(Path(path))[0]

    def new_story_offer(self, path: str | Path, name: str = "") -> NewStoryOffer:
        """Read the card at ``path`` and what a new story with it can start from (reads files).

        Raises:
            FormatError: The file is not a card storyteller can read.
        """
        card = self.load_card(path)
        linked = str(card.extensions.get("world") or "")
        return NewStoryOffer(Path(path), name or card.name, [card.first_mes, *card.alternate_greetings],
                             self.unique_story_name(name or card.name or "story"), self.world_choices(),
                             self.world_files([linked] if linked else []))

    def find_card(self, ref: str) -> Path:
        """A card by path or library name (raises FormatError when there is none)."""
        return find_card(ref, self.paths)

    def find_world(self, ref: str) -> Path:
        """A world by path or library name (raises FormatError when there is none)."""
        return find_world(ref, self.paths)

    def ref_for(self, path: str | Path) -> str:
        """How a story names a file: by library name when it is in the library, else by path."""
        return content_ref(Path(path), self.paths)

    def template_names(self) -> list[str]:
        """The instruct templates a story can choose (bundled and the user's own), sorted."""
        return sorted(load_library(self.paths.config_dir / "templates").instruct)

    def branch(self, session: Session, name: str) -> None:
        """Copy the open story up to its current passage into a new story ``name``.

        Raises:
            StoryError: The story has no passage yet, or ``name`` cannot be used.
        """
        story = session.story
        if story.current is None:
            raise StoryError("the story has no passage to branch from yet.")
        StoryStore(self.paths.stories_dir).branch(story, story.current.id, name).close()
