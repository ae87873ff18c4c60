"""One turn as data: what was resolved for a story (:class:`SessionParts`) and :func:`build_turn`.

:func:`build_turn` is the only place a prompt for play is assembled: the story path becomes
history messages, world info is activated on it, and the prompt builder fits everything into
the context. It changes nothing: the session, ``storyteller prompt`` and the kiosk's recap all
call it and get the same prompt for the same story.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from storyteller.cards import Card
from storyteller.config import Settings
from storyteller.engines.base import BackendInfo, GenerationRequest
from storyteller.lore import (
    ActivationResult,
    Lorebook,
    ScanSources,
    TimedEffectsState,
    WorldInfoSettings,
    activate,
    seeded_rng,
)
from storyteller.paths import Paths
from storyteller.presets import resolve_sampling
from storyteller.session.resources import dedupe_books
from storyteller.prompt import (
    AuthorsNote,
    CharacterInfo,
    HistoryMessage,
    Persona,
    Prompt,
    PromptBuilder,
    Recall,
    StopFilter,
    WorldInfoInsert,
    expand_names,
)
from storyteller.sampling import Sampling
from storyteller.session.group import choose_speakers, group_character, group_stops, last_speaker, nudge_helps
from storyteller.story.model import AUTHOR_NARRATOR, GroupSettings, Mode, StorySettings
from storyteller.story.tree import Message as StoryMessage

__all__ = ["SessionParts", "build_turn", "character_info", "history_of", "lore_inserts", "plain_messages"]

_POSITIONS = ("before_char", "after_char", "an_top", "an_bottom", "at_depth", "em_top", "em_bottom", "outlet")
_ROLES = ("system", "user", "assistant")


def history_of(messages: Sequence[StoryMessage], *, mode: str, user: str, speaker: str,
               members: Collection[str] = ()) -> list[HistoryMessage]:
    """The story path as the builder's history messages.

    In a group (``members``: the members' names) a reply is named after its node's author, also
    when that author has since left the group.
    """
    history = []
    for message in messages:
        head = message.head
        if head.is_player:
            name = head.visitor_name if head.visitor_name is not None else user
            kind = "aside" if head.extra.get("aside") else head.kind if mode == Mode.ADVENTURE else "chat"
            history.append(HistoryMessage("user", message.text, name=name or user, kind=kind))
        elif head.kind == "system":
            history.append(HistoryMessage("system", message.text))
        else:
            # A member taken out of the group keeps their name on what they said.
            name = head.author if members and head.author.strip() not in ('', AUTHOR_NARRATOR) else speaker
            history.append(HistoryMessage("assistant", message.text, name=name))
    return history


def plain_messages(history: Sequence[HistoryMessage]) -> list[str]:
    """Messages as world info scans them: ``Name: text``."""
    return [f"{m.name}: {m.text}" if m.name else m.text for m in history]


def lore_inserts(result: ActivationResult) -> list[WorldInfoInsert]:
    """Activated entries as the builder's inserts."""
    inserts = []
    for entry in result.activated:
        position = _POSITIONS[int(entry.position)] if 0 <= int(entry.position) < len(_POSITIONS) else "before_char"
        inserts.append(WorldInfoInsert(
            content=entry.content, position=position, depth=entry.depth, role=_ROLES[int(entry.role)],
            order=entry.order, source=entry.key, outlet=entry.outlet_name, constant=entry.reason == "constant",
        ))
    return inserts


def character_info(card: Card | None) -> CharacterInfo:
    """The card fields the prompt uses."""
    if card is None:
        return CharacterInfo()
    return CharacterInfo(
        name=card.name, nickname=card.nickname or "", description=card.description, personality=card.personality,
        scenario=card.scenario, first_mes=card.first_mes, mes_example=card.mes_example,
        system_prompt=card.system_prompt, post_history_instructions=card.post_history_instructions,
        alternate_greetings=tuple(card.alternate_greetings),
    )


@dataclass(frozen=True, slots=True)
class SessionParts:
    """Everything resolved for one story (frozen: a change makes new parts through the Session).

    Attributes:
        settings: The settings the session was opened with.
        paths: Storyteller's folders.
        info: The engine's description.
        card: The story's character card, if any.
        books: The story's worlds, then the card's embedded book.
        builder: The prompt builder (template, target, token counter).
        count_sync: Counts tokens synchronously, for world-info budgets.
        wi_settings: World-info settings.
        adventure_bans: Logit bias that keeps the narrator from writing the action marker ``>``.
        warnings: Things the user should know about the parts (a template file that did not load).
        members: In a group story, each member's card by member name, in list order (``None``
            for a card that could not be found); empty for a single card.
        member_books: In a group story, each member's embedded book by member name (``books``
            then holds only the story's worlds).
    """

    settings: Settings
    paths: Paths
    info: BackendInfo
    card: Card | None
    books: tuple[Lorebook, ...]
    builder: PromptBuilder
    count_sync: Callable[[str], int]
    wi_settings: WorldInfoSettings = field(default_factory=WorldInfoSettings)
    adventure_bans: Mapping[int, float] = field(default_factory=lambda: MappingProxyType({}))
    warnings: tuple[str, ...] = ()
    members: Mapping[str, Card | None] = field(default_factory=lambda: MappingProxyType({}))
    member_books: Mapping[str, Lorebook] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.books, tuple):
            object.__setattr__(self, "books", tuple(self.books))
        if not isinstance(self.adventure_bans, MappingProxyType):
            object.__setattr__(self, "adventure_bans", MappingProxyType(dict(self.adventure_bans)))
        for name in ("members", "member_books"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    def replace(self, **changes: Any) -> SessionParts:
        """A copy with some parts changed."""
        return dataclasses.replace(self, **changes)

    @property
    def character(self) -> CharacterInfo:
        """The card as the builder sees it."""
        return character_info(self.card)

    @property
    def speaker(self) -> str:
        """Who speaks the replies."""
        if self.card is not None and self.card.name:
            return self.card.nickname or self.card.name
        return "Narrator"

    def sampling(self, story_settings: StorySettings) -> Sampling:
        """The global sampler settings, then the story's preset, then its overrides."""
        return resolve_sampling(self.settings.sampling, story_settings.sampler_preset,
                                story_settings.sampler_overrides, self.paths)

    def request_for(self, prompt: Prompt, story_settings: StorySettings | None = None) -> GenerationRequest:
        """The engine request for a prompt."""
        st = story_settings or StorySettings()
        sampling = self.sampling(st)
        update: dict[str, Any] = {"stop": list(prompt.stops)}
        if st.mode == Mode.ADVENTURE and self.adventure_bans:
            # Small models love to write the player's next "> You ..." line; the stop string
            # would cut it, often leaving nothing. Not letting them write ">" at all is kinder.
            update["logit_bias"] = {**self.adventure_bans, **sampling.logit_bias}
        sampling = sampling.model_copy(update=update)
        if prompt.messages is not None:
            return GenerationRequest(messages=prompt.messages, sampling=sampling)
        return GenerationRequest(prompt=prompt.text or "", sampling=sampling)

    def stop_filter(self, prompt: Prompt) -> StopFilter:
        """A filter holding back text that could begin one of the prompt's stops."""
        return StopFilter(prompt.stops, context=(prompt.text or "")[-64:])

    def clean_reply(self, text: str, *, continuing: bool) -> str:
        """Tidy a finished reply: no trailing space; no leading space unless it continues text."""
        text = text.rstrip()
        return text if continuing else text.lstrip()

    # Kept for callers of the old mutable parts; the same as :func:`build_turn`.
    async def build_prompt(self, story: Any, messages: Sequence[StoryMessage], *, continuing: bool
                           ) -> tuple[Prompt, ActivationResult | None]:
        """See :func:`build_turn`."""
        return await build_turn(self, story.name, story.settings, messages, continuing=continuing)


def group_of(parts: SessionParts, st: StorySettings) -> GroupSettings | None:
    """The story's group when the parts were resolved for one, else ``None``."""
    return st.group if st.group is not None and st.group.members and parts.members else None


def next_speaker(parts: SessionParts, story_name: str, st: StorySettings,
                 messages: Sequence[StoryMessage]) -> str | None:
    """Who a group's next reply is from when nobody was asked for: the first member the speaker
    order picks, else the member who spoke last, else the first unmuted member; ``None`` outside
    a group."""
    group = group_of(parts, st)
    if group is None:
        return None
    path = [node for message in messages for node in message.nodes]
    chosen = choose_speakers(group, parts.members, path, story_name=story_name)
    if chosen:
        return chosen[0]
    spoke = last_speaker(group, path)
    if spoke is not None:
        return spoke
    return next((m.name for m in group.members if not m.muted), group.members[0].name)


async def build_turn(parts: SessionParts, story_name: str, st: StorySettings, messages: Sequence[StoryMessage], *,
                     continuing: bool, recall: Recall | None = None,
                     speaker: str | None = None) -> tuple[Prompt, ActivationResult | None]:
    """World info, then the prompt, for a reply after ``messages``. Changes nothing.

    Args:
        parts: What was resolved for the story.
        story_name: The story's name (seeds world info's random choices and the prompt's id).
        st: The story's settings.
        messages: The story path the reply follows.
        continuing: The reply continues the last message.
        recall: Pinned facts and summaries (:func:`storyteller.memory.hook.recall_of`).
        speaker: In a group story, the member who replies (default: :func:`next_speaker`).

    Returns:
        The prompt, and the world-info activation that fed it (``None`` without worlds).
    """
    persona = Persona(name=st.persona.name or "User", description=st.persona.description)
    group = group_of(parts, st)
    character, card, books, name, stops = parts.character, parts.card, list(parts.books), parts.speaker, ()
    if group is not None:
        member = group.member(speaker or "") or group.member(next_speaker(parts, story_name, st, messages) or "")
        assert member is not None
        name, card = member.name, parts.members.get(member.name)
        character = group_character(group, parts.members, name, user=persona.name,
                                    nudge=nudge_helps(parts.builder.options.target, st.mode))
        stops = tuple(group_stops(group, name))
        books = dedupe_books(books + [book for who, book in parts.member_books.items()
                                      if who == name or not getattr(group.member(who), "lore_only_when_speaking", False)])
    history = history_of(messages, mode=st.mode, user=persona.name, speaker=name,
                         members=[m.name for m in group.members] if group is not None else ())
    sampling = parts.sampling(st)
    # Joined cards: entries that match the character's description, personality or scenario
    # read the joined fields the prompt holds, so the lore in the head is the same whoever speaks.
    scanned = character if group is not None and group.cards != "swap" else card
    lore = None
    inserts: list[WorldInfoInsert] = []
    if books:
        lore = activate(
            books, plain_messages(history), settings=parts.wi_settings,
            max_context=parts.info.context_length - sampling.max_tokens, count_tokens=parts.count_sync,
            rng=seeded_rng(story_name, len(history)),
            sources=ScanSources.with_author_note(
                st.authors_note.text, persona_description=persona.description,
                character_description=scanned.description if scanned else "",
                character_personality=scanned.personality if scanned else "",
                scenario=scanned.scenario if scanned else ""),
            timed=TimedEffectsState.model_validate(st.timed_effects or {}),
            chat_length=len(history),
            character=card.name if card else None,
            substitute=lambda text: expand_names(text, character.display_name or name, persona.name),
        )
        inserts = lore_inserts(lore)
    note = st.authors_note
    options = dataclasses.replace(parts.builder.options, mode=st.mode, reply_tokens=sampling.max_tokens,
                                  continue_last=continuing, story_id=story_name,
                                  extra_stops=(*stops, *sampling.stop), speaker=name if group is not None else "",
                                  members=tuple(m.name for m in group.members) if group is not None else ())
    prompt = await parts.builder.build(
        history, character=character, persona=persona, memory=st.memory, world_info=inserts,
        authors_note=AuthorsNote(text=note.text, depth=note.depth, interval=note.interval, role=note.role),
        variables=st.variables, options=options, recall=recall,
    )
    if parts.warnings:
        prompt.warnings = [*prompt.warnings, *parts.warnings]
    return prompt, lore
