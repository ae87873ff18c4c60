"""The data of a story: immutable nodes, generation records, settings, import reports.

Nodes are frozen dataclasses (cheap to build when a long journal is replayed); settings are a
pydantic model (validated when they change, and when they come from an imported file).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from storyteller.importing import ImportReport

__all__ = [
    "AUTHOR_NARRATOR",
    "AUTHOR_USER",
    "KINDS",
    "KIOSK_PREFIX",
    "PLAYER_KINDS",
    "AuthorsNote",
    "Generation",
    "GroupMember",
    "GroupSettings",
    "ImportReport",
    "Mode",
    "Node",
    "NodeKind",
    "Persona",
    "StorySettings",
    "kinds_for_mode",
    "new_id",
]

NodeKind = Literal["say", "do", "story", "continue", "greeting", "system", "generation"]
KINDS: tuple[str, ...] = ("say", "do", "story", "continue", "greeting", "system", "generation")
PLAYER_KINDS: tuple[str, ...] = ("say", "do", "story")
"""The kinds of the player's own inputs (a kiosk visitor's too)."""


class Mode(StrEnum):
    """How a story is played: the prompt's shape and the inputs the player has."""

    CHAT = "chat"
    STORY = "story"
    ADVENTURE = "adventure"
    INSTRUCT = "instruct"


def kinds_for_mode(mode: str) -> tuple[str, ...]:
    """The input kinds a player can choose in a story mode (the first is the default)."""
    if mode == Mode.ADVENTURE:
        return ("do", "say", "story")
    if mode == Mode.STORY:
        return ("story",)
    return ("say",)


AUTHOR_USER = "user"
"""The author of the player's own inputs (the persona's name lives in the settings)."""
AUTHOR_NARRATOR = "narrator"
"""The author of narration that belongs to no character."""
KIOSK_PREFIX = "kiosk:"
"""Authors written as ``kiosk:<visitor>`` are kiosk visitors."""


def new_id() -> str:
    """A fresh node id: 12 hex digits, random, so that ids never collide after a crash."""
    return secrets.token_hex(6)


def _frozen(mapping: dict[str, Any] | None) -> MappingProxyType:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Generation:
    """How a piece of text was generated.

    Attributes:
        engine: The engine kind (``embedded``, ``kobold``, ``openai``, ``fake``...).
        model: The model's name or file.
        sampler: The sampler settings used, as plain data.
        prompt_tokens: Tokens in the prompt.
        tokens_reused: Prompt tokens the engine took from its cache.
        timings: Seconds and speeds (``seconds_total``, ``tokens_per_second``...).
        finish_reason: ``stop``, ``length``, ``cancelled`` or ``error``.
        interrupted: True when the text stopped early (stop pressed, engine failure).
        trimmed: Text cut from the end because it was an unfinished sentence ("trim incomplete
            sentences"); Continue puts it back and goes on from there.
    """

    engine: str = ""
    model: str = ""
    sampler: MappingProxyType = field(default_factory=lambda: _frozen(None))
    prompt_tokens: int | None = None
    tokens_reused: int | None = None
    timings: MappingProxyType = field(default_factory=lambda: _frozen(None))
    finish_reason: str = ""
    interrupted: bool = False
    trimmed: str = ""

    def __post_init__(self) -> None:
        # Accept plain dicts from callers, but never keep a mutable reference to them.
        for name in ("sampler", "timings"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, _frozen(value))

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return {
            "engine": self.engine,
            "model": self.model,
            "sampler": dict(self.sampler),
            "prompt_tokens": self.prompt_tokens,
            "tokens_reused": self.tokens_reused,
            "timings": dict(self.timings),
            "finish_reason": self.finish_reason,
            "interrupted": self.interrupted,
            **({"trimmed": self.trimmed} if self.trimmed else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Generation:
        """Rebuild a record written by :meth:`to_dict` (unknown keys are ignored)."""
        return cls(
            engine=str(data.get("engine") or ""),
            model=str(data.get("model") or ""),
            sampler=dict(data.get("sampler") or {}),
            prompt_tokens=data.get("prompt_tokens"),
            tokens_reused=data.get("tokens_reused"),
            timings=dict(data.get("timings") or {}),
            finish_reason=str(data.get("finish_reason") or ""),
            interrupted=bool(data.get("interrupted", False)),
            trimmed=str(data.get("trimmed") or ""),
        )


@dataclass(frozen=True, slots=True)
class Node:
    """One immutable turn of a story.

    Attributes:
        id: Unique within the story.
        parent: The id of the node this one follows, or ``None`` for a first message.
        text: The text. A ``continue`` node holds only the text it added to its parent.
        author: ``user``, ``narrator``, a character's name, or ``kiosk:<visitor>``.
        kind: ``say`` / ``do`` / ``story`` (player inputs), ``generation`` (a reply),
            ``continue`` (more text for the parent), ``greeting``, ``system``.
        created: Seconds since the epoch (UTC).
        generation: How the text was generated, for generated text.
        edited_from: The node this one is an edited copy of.
        extra: Data kept from imports (SillyTavern ``extra``, swipe info...), never interpreted.
    """

    id: str
    parent: str | None
    text: str
    author: str
    kind: NodeKind
    created: float
    generation: Generation | None = None
    edited_from: str | None = None
    extra: MappingProxyType = field(default_factory=lambda: _frozen(None))

    def __post_init__(self) -> None:
        if not isinstance(self.extra, MappingProxyType):
            object.__setattr__(self, "extra", _frozen(self.extra))

    @classmethod
    def make(
        cls,
        text: str,
        *,
        author: str,
        kind: str,
        parent: str | None,
        generation: Generation | None = None,
        edited_from: str | None = None,
        extra: dict[str, Any] | None = None,
        created: float | None = None,
    ) -> Node:
        """A new node with a fresh id and the current time."""
        if kind not in KINDS:
            raise ValueError(f"unknown node kind {kind!r}; use one of {', '.join(KINDS)}")
        return cls(
            id=new_id(), parent=parent, text=text, author=author, kind=kind,
            created=time.time() if created is None else created, generation=generation,
            edited_from=edited_from, extra=extra or {},
        )

    @property
    def is_user(self) -> bool:
        """True for the player's own inputs (including kiosk visitors)."""
        return self.author == AUTHOR_USER or self.author.startswith(KIOSK_PREFIX)

    @property
    def is_player(self) -> bool:
        """True for a player's input (``say``, ``do``, ``story``), whoever wrote it."""
        return self.kind in PLAYER_KINDS

    @property
    def visitor_name(self) -> str | None:
        """The kiosk visitor's name for ``kiosk:<name>`` authors ("" when they gave none), else ``None``."""
        if not self.author.startswith(KIOSK_PREFIX):
            return None
        return self.author[len(KIOSK_PREFIX):].strip()

    def to_dict(self) -> dict[str, Any]:
        """The node as JSON-ready data (what the journal stores)."""
        data: dict[str, Any] = {
            "id": self.id, "parent": self.parent, "text": self.text, "author": self.author,
            "kind": self.kind, "created": self.created,
        }
        if self.generation is not None:
            data["generation"] = self.generation.to_dict()
        if self.edited_from is not None:
            data["edited_from"] = self.edited_from
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        """Rebuild a node written by :meth:`to_dict`.

        Raises:
            ValueError: A required field is missing or of the wrong type.
        """
        try:
            node_id, text, author, kind = data["id"], data["text"], data["author"], data["kind"]
            created = float(data["created"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"node record is incomplete: {exc}") from None
        parent = data.get("parent")
        if not all(isinstance(v, str) for v in (node_id, text, author, kind)) or not (
            parent is None or isinstance(parent, str)
        ):
            raise ValueError("node record has a field of the wrong type")
        gen = data.get("generation")
        return cls(
            id=node_id, parent=parent, text=text, author=author, kind=kind, created=created,
            generation=Generation.from_dict(gen) if isinstance(gen, dict) else None,
            edited_from=data.get("edited_from"), extra=data.get("extra") or {},
        )


class AuthorsNote(BaseModel):
    """The author's note: a short instruction placed near the end of the prompt."""

    model_config = ConfigDict(extra="allow")

    text: str = ""
    """The note itself; empty means no note."""
    depth: int = Field(default=4, ge=0)
    """How many messages from the end it is inserted."""
    interval: int = Field(default=1, ge=0)
    """Insert it every N user turns (0 = never, 1 = always)."""
    role: Literal["system", "user", "assistant"] = "system"
    """Which role the note speaks with in chat prompts."""


class Persona(BaseModel):
    """Who the player is."""

    model_config = ConfigDict(extra="allow")

    name: str = "User"
    """The player's name, used for ``{{user}}``."""
    description: str = ""
    """A description of the player, for the prompt."""


SPEAKER_ORDERS: tuple[str, ...] = ("natural", "list", "manual", "everyone")
"""Who answers a player's turn in a group: ``natural`` (a member named in the last message, else by
talkativeness), ``list`` (one member per turn, in list order), ``manual`` (the player picks), and
``everyone`` (every unmuted member, in list order: SillyTavern's "list order")."""
CARD_MODES: tuple[str, ...] = ("join", "swap", "join_muted")
"""Which cards a group turn's prompt holds: ``join`` (every unmuted member's, each wrapped in its
prefix/suffix), ``swap`` (only the speaker's), ``join_muted`` (every member's, muted ones too)."""


class GroupMember(BaseModel):
    """One character of a group."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    card: str
    """The card, as a library file name or a path (the same refs as :attr:`StorySettings.cards`)."""
    name: str = ""
    """The member's name as the card gave it when the group was made (for messages and lists)."""
    muted: bool = False
    """A muted member is never picked to speak (the player can still make them speak with ``/as``)."""
    talkativeness: float | None = Field(default=None, ge=0.0, le=1.0)
    """Overrides the card's talkativeness (0..1) for natural order."""
    join_prefix: str | None = None
    """Overrides the group's join prefix for this member (``None`` uses the group's)."""
    join_suffix: str | None = None
    """Overrides the group's join suffix for this member (``None`` uses the group's)."""
    lore_only_when_speaking: bool = False
    """The member's embedded lorebook takes part only in turns this member speaks."""


class GroupSettings(BaseModel):
    """A group chat: several characters in one story.

    The members' cards are referred to by file name or path, as single-card stories refer to
    theirs; this package never loads them. Replies in a group are nodes whose ``author`` is the
    member's name.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = ""
    """The group's name (SillyTavern's default is ``Group: A, B, C``)."""
    members: list[GroupMember] = Field(default_factory=list)
    """The characters, in list order."""
    order: Literal["natural", "list", "manual", "everyone"] = "natural"
    """Who answers a player's turn; see :data:`SPEAKER_ORDERS`."""
    cards: Literal["join", "swap", "join_muted"] = "join"
    """Which cards the prompt holds; see :data:`CARD_MODES`. ``join`` keeps the prompt's head
    the same whoever speaks, so a group turn costs only its new tokens."""
    scenario: str = ""
    """Replaces every member's scenario when set."""
    join_prefix: str = ""
    """Put before each member's card fields in ``join`` modes; ``{{char}}`` is that member and
    ``<FIELDNAME>`` the field's name (as in SillyTavern)."""
    join_suffix: str = ""
    """Put after each member's card fields in ``join`` modes."""
    allow_self_responses: bool = False
    """In natural order, a member may answer itself."""
    seed: int | None = None
    """Seeds the speaker choice; ``None`` derives it from the story's name and length, so the same
    story picks the same speakers on every machine."""
    imported: dict[str, Any] = Field(default_factory=dict)
    """Fields of an imported SillyTavern group that storyteller does not use, kept for export."""

    def member(self, name: str) -> GroupMember | None:
        """The member with this name (case-insensitive), if any."""
        wanted = name.strip().casefold()
        return next((m for m in self.members if m.name.casefold() == wanted), None)


class StorySettings(BaseModel):
    """Everything that lives with a story besides its turns.

    Cards and worlds are referred to by file name or id; this package never loads them.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    cards: list[str] = Field(default_factory=list)
    """Character card file names (more than one for group chats)."""
    worlds: list[str] = Field(default_factory=list)
    """World info (lorebook) names."""
    mode: str = "chat"
    """``chat``, ``story``, ``adventure`` or ``instruct``."""
    template: str | None = None
    """The prompt template name; ``None`` picks one from the model."""
    authors_note: AuthorsNote = Field(default_factory=AuthorsNote)
    """The author's note."""
    memory: str = ""
    """Text kept at the top of every prompt."""
    persona: Persona = Field(default_factory=Persona)
    """The player's persona."""
    sampler_preset: str | None = None
    """The sampler preset name."""
    sampler_overrides: dict[str, Any] = Field(default_factory=dict)
    """Sampler values that override the preset."""
    engine: str | None = None
    """The engine kind this story plays on; ``None`` uses the global setting."""
    variables: dict[str, Any] = Field(default_factory=dict)
    """Variables set by macros (``{{setvar}}``)."""
    timed_effects: dict[str, Any] = Field(default_factory=dict)
    """World-info timed-effect state (sticky, cooldown, delay); opaque to this package."""
    imported: dict[str, Any] = Field(default_factory=dict)
    """Raw data kept from an imported file that nothing uses yet (Kobold world info...)."""
    group: GroupSettings | None = None
    """The group, for group chats (its members' cards are :attr:`cards` too, in the same order)."""


