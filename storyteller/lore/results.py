"""What an activation returns: the prompt pieces by position, and the trace of every decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from storyteller.lore.model import Position, Role
from storyteller.lore.timed import TimedEffectsState

__all__ = [
    "ACTIVATED_REASONS",
    "ActivatedEntry",
    "ActivationResult",
    "DepthInjection",
    "EntryTrace",
    "ScanSources",
    "WorldInfoPrompt",
]

# Why an entry fired.
ACTIVATED_REASONS = ("constant", "key", "sticky", "decorator", "forced")
# Why an entry did not: disabled, character_filter, trigger, delay, cooldown,
# delay_until_recursion, exclude_recursion, decorator, no_keys, no_match, excluded_key,
# secondary_failed, group_lost, probability, budget, empty_content, recursion_limit.


@dataclass(frozen=True, slots=True)
class ScanSources:
    """Texts scanned besides the chat.

    Attributes:
        injects: Always scanned (the author's note when it allows scanning, a character's
            note or persona inserted at depth, ...), as ``(label, text)`` pairs.
        persona_description: Scanned for entries with ``matchPersonaDescription``.
        character_description: For ``matchCharacterDescription``.
        character_personality: For ``matchCharacterPersonality``.
        character_depth_prompt: For ``matchCharacterDepthPrompt``.
        scenario: For ``matchScenario``.
        creator_notes: For ``matchCreatorNotes``.
    """

    injects: tuple[tuple[str, str], ...] = ()
    persona_description: str = ""
    character_description: str = ""
    character_personality: str = ""
    character_depth_prompt: str = ""
    scenario: str = ""
    creator_notes: str = ""

    @classmethod
    def with_author_note(cls, note: str, **kwargs: Any) -> ScanSources:
        """Sources where the author's note is scanned (SillyTavern's "allow WI scan")."""
        return cls(injects=(("author's note", note),) if note else (), **kwargs)


class EntryTrace(BaseModel):
    """The decision about one entry.

    Attributes:
        key: ``"<book>.<uid>"``.
        book: Book name.
        uid: Entry uid.
        title: Comment, else first key.
        status: ``activated`` or ``skipped``.
        reason: One word: see ``ACTIVATED_REASONS`` and the list beside it.
        detail: A sentence for people.
        matched_key: The primary key that matched.
        matched_in: Where it matched (``message 41``, ``author's note``, ``recursion: entry 3``).
        pass_no: Scan pass (1 = the chat; later ones recursion or deeper scans).
        tokens: Token cost of its content.
        roll: The probability roll (0-100) when one was made.
        position: Its insertion position.
        order: Its insertion order.
    """

    key: str
    book: str
    uid: int
    title: str
    status: str = "skipped"
    reason: str = "no_match"
    detail: str = ""
    matched_key: str | None = None
    matched_in: str | None = None
    pass_no: int | None = None
    tokens: int | None = None
    roll: float | None = None
    position: Position = Position.BEFORE_CHAR
    order: int = 100


class ActivatedEntry(BaseModel):
    """An entry that goes into the prompt.

    Attributes:
        key: ``"<book>.<uid>"``.
        book: Book name.
        uid: Entry uid.
        title: Comment, else first key.
        content: Content with decorators stripped and macros substituted.
        position: Where it goes.
        depth: Depth for ``AT_DEPTH``.
        role: Role for ``AT_DEPTH``.
        order: Insertion order.
        outlet_name: Outlet for ``OUTLET``.
        tokens: Token cost.
        reason: Why it fired.
        matched_key: The key that matched, if any.
    """

    key: str
    book: str
    uid: int
    title: str
    content: str
    position: Position
    depth: int
    role: Role
    order: int
    outlet_name: str = ""
    tokens: int = 0
    reason: str = "key"
    matched_key: str | None = None


class DepthInjection(BaseModel):
    """Entries inserted at one depth with one role, joined by newlines."""

    depth: int
    role: Role
    entries: list[str] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """The joined text."""
        return "\n".join(self.entries)


class WorldInfoPrompt(BaseModel):
    """Activated contents by position, each list in prompt order (higher ``order`` later).

    Attributes:
        before: Before the character definitions.
        after: After the character definitions.
        an_top: Top of the author's note.
        an_bottom: Bottom of the author's note.
        em_top: Before the example messages.
        em_bottom: After the example messages.
        depth: Injections into the chat at a depth.
        outlets: Entries pulled in by name with ``{{outlet::Name}}``.
    """

    before: list[str] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)
    an_top: list[str] = Field(default_factory=list)
    an_bottom: list[str] = Field(default_factory=list)
    em_top: list[str] = Field(default_factory=list)
    em_bottom: list[str] = Field(default_factory=list)
    depth: list[DepthInjection] = Field(default_factory=list)
    outlets: dict[str, list[str]] = Field(default_factory=dict)

    @property
    def before_text(self) -> str:
        """``{{wiBefore}}``."""
        return "\n".join(self.before)

    @property
    def after_text(self) -> str:
        """``{{wiAfter}}``."""
        return "\n".join(self.after)


@dataclass(slots=True)
class ActivationResult:
    """Everything one activation decided.

    Attributes:
        prompt: Contents by position for the prompt builder.
        activated: Inserted entries, in the order they were accepted.
        trace: One record per entry of every book, in scan order.
        timed: The timed-effect state to store with the story for the next turn.
        budget: The token budget.
        tokens_used: Tokens counted against it.
        overflowed: The budget ran out.
        passes: Scan passes run.
        regex_timeouts: Regex keys cut off by the time limit.
    """

    prompt: WorldInfoPrompt
    activated: list[ActivatedEntry]
    trace: list[EntryTrace]
    timed: TimedEffectsState
    budget: int
    tokens_used: int
    overflowed: bool
    passes: int
    regex_timeouts: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The trace as one JSON-ready object: ``{"activated": [...], "skipped": [...], ...}``."""
        activated = []
        skipped = []
        for item in self.trace:
            data = item.model_dump(mode="json", exclude_none=True)
            data["comment"] = data.pop("title")
            (activated if item.status == "activated" else skipped).append(data)
        return {
            "activated": activated,
            "skipped": skipped,
            "budget": self.budget,
            "tokens_used": self.tokens_used,
            "overflowed": self.overflowed,
            "passes": self.passes,
            "regex_timeouts": list(self.regex_timeouts),
        }
