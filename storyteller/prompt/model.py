"""The data the prompt builder takes in and hands back.

Inputs are small frozen dataclasses of plain text, independent of the card and lore models, so
the builder can be tested alone; adapters from ``storyteller.cards`` / ``storyteller.lore`` fill
them. The output is a :class:`Prompt`: the text (or chat messages) the model sees, split into
:class:`Segment` pieces whose token counts explain where the context went.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from storyteller.engines.base import Message
from storyteller.errors import StorytellerError

__all__ = [
    "AuthorsNote",
    "Budget",
    "CharacterInfo",
    "HistoryMessage",
    "Mode",
    "Persona",
    "Prompt",
    "PromptTooLongError",
    "Recall",
    "Segment",
    "WorldInfoInsert",
    "WorldInfoPosition",
]

Mode = Literal["chat", "story", "adventure", "instruct"]
Role = Literal["system", "user", "assistant"]
WorldInfoPosition = Literal[
    "before_char", "after_char", "an_top", "an_bottom", "at_depth", "em_top", "em_bottom", "outlet"
]
MessageKind = Literal["chat", "do", "say", "story", "continue", "aside"]


class PromptTooLongError(StorytellerError):
    """The parts that must always be sent do not fit the context window.

    Attributes:
        part: The segment kind to shorten (e.g. ``description``).
        excess: How many tokens too many.
    """

    def __init__(self, message: str, *, part: str, excess: int) -> None:
        super().__init__(message)
        self.part = part
        self.excess = excess


@dataclass(frozen=True, slots=True)
class CharacterInfo:
    """The card fields the prompt uses (creator notes never reach the model).

    Attributes:
        name: The character's name.
        nickname: Replaces the name in ``{{char}}`` when set (V3 cards).
        description: Who the character is.
        personality: A short personality summary.
        scenario: The situation the story starts in.
        first_mes: The greeting.
        mes_example: Example dialogue in ``<START>`` blocks.
        system_prompt: Replaces the default system prompt; ``{{original}}`` inserts the default.
        post_history_instructions: Sent after the history; ``{{original}}`` inserts the default.
        alternate_greetings: Other greetings a story may open with.
    """

    name: str = ""
    nickname: str = ""
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        """The name ``{{char}}`` stands for: the nickname when set."""
        return self.nickname or self.name


@dataclass(frozen=True, slots=True)
class Persona:
    """The user's side of the story.

    Attributes:
        name: What ``{{user}}`` becomes.
        description: Sent in the story string as ``{{persona}}``.
    """

    name: str = "User"
    description: str = ""


@dataclass(frozen=True, slots=True)
class WorldInfoInsert:
    """One activated world-info entry, placed by SillyTavern's positions.

    Attributes:
        content: The text to insert (macros are expanded by the builder).
        position: Where it goes; ``at_depth`` uses ``depth`` and ``role``.
        depth: Messages from the end for ``at_depth`` (0 = after the last message).
        role: Role of an ``at_depth`` insert.
        order: Higher is placed later (closer to the chat) and kept first when over budget.
        source: Where it came from, for the explanation (e.g. ``Eldoria/3``).
        outlet: Outlet name, for ``position == "outlet"`` (pulled in with ``{{outlet::Name}}``).
        constant: Always active: counted with the fixed parts, never dropped for the budget,
            and part of the stable prefix.
    """

    content: str
    position: WorldInfoPosition = "before_char"
    depth: int = 4
    role: Role = "system"
    order: int = 100
    source: str = ""
    outlet: str = ""
    constant: bool = False


@dataclass(frozen=True, slots=True)
class AuthorsNote:
    """The author's note: a steering text placed near the end of the context.

    Attributes:
        text: The note; empty means no note.
        depth: Messages from the end (0 = after the last message).
        interval: Insert every N user messages (0 = never, 1 = always).
        role: Role when rendered as a turn.
        position: ``in_chat`` (at ``depth``), ``after_story_string`` or ``before_story_string``.
    """

    text: str = ""
    depth: int = 4
    interval: int = 1
    role: Role = "system"
    position: Literal["in_chat", "after_story_string", "before_story_string"] = "in_chat"


@dataclass(frozen=True, slots=True)
class Recall:
    """Long-term memory for one build: pinned facts and the summaries of trimmed history.

    Attributes:
        pinned: ``(source, text)`` facts, always sent (counted with the fixed parts).
        summaries: Given how many of the oldest history messages were trimmed, the
            ``(source, text)`` summaries that stand for them, oldest first.
        summary_budget: Most tokens the summaries may use (the oldest go first past it).
        pinned_budget: Tokens the pinned facts are meant to stay within (a warning past it).
        position: ``before_history`` (after the story string, where it only changes when
            history is trimmed) or ``top`` (before everything, as SillyTavern's "before prompt").
    """

    pinned: tuple[tuple[str, str], ...] = ()
    summaries: Callable[[int], Sequence[tuple[str, str]]] | None = None
    summary_budget: int = 0
    pinned_budget: int = 0
    position: Literal["before_history", "top"] = "before_history"


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """One message of the story so far, oldest first in a history list.

    Attributes:
        role: ``user`` (the player), ``assistant`` (the model / narrator) or ``system``.
        text: The text, already macro-expanded when it was submitted (only names are
            substituted again here, so counts stay cacheable).
        name: Speaker name; defaults to the persona or character name by role.
        kind: ``chat``; in adventure mode ``do`` / ``say`` / ``story``; ``continue``; ``aside``: a
            request to the model outside the story (a recap, a summary), sent as a user turn of
            its own even in story and adventure modes.
    """

    role: Role
    text: str
    name: str = ""
    kind: MessageKind = "chat"


@dataclass(frozen=True, slots=True)
class Segment:
    """One contiguous piece of the prompt.

    Attributes:
        kind: What it is: ``system``, ``description``, ``personality``, ``scenario``,
            ``persona``, ``memory``, ``world_info``, ``examples``, ``chat_start``, ``history``,
            ``authors_note``, ``depth_insert``, ``post_history``, ``preamble``, ``template``,
            ``reply_header``.
        source: Where it came from (``card``, ``world:Eldoria/3``, ``history:41``, ...).
        text: The exact text (its rendered form for chat completion).
        tokens: Tokens it costs, counted alone.
    """

    kind: str
    source: str
    text: str
    tokens: int


@dataclass(frozen=True, slots=True)
class Budget:
    """How the context window was spent.

    Attributes:
        context: Tokens of context (prompt plus reply).
        reserved: Tokens kept free for the reply.
        used: Tokens the prompt costs (segment sum plus BOS).
        margin: Safety tokens kept free on top (boundary effects, estimates).
        estimate: True when the counts come from a tokenizer other than the model's.
        counter: Name of the token counter.
    """

    context: int
    reserved: int
    used: int
    margin: int = 0
    estimate: bool = False
    counter: str = ""

    @property
    def available(self) -> int:
        """Tokens the prompt may use."""
        return self.context - self.reserved - self.margin


@dataclass(slots=True)
class Prompt:
    """What the model sees for one turn.

    Attributes:
        segments: The pieces in order; for text completion their texts join to ``text``.
        text: The prompt for text completion, else ``None``.
        messages: The messages for chat completion, else ``None``.
        stops: Stop strings to send to the backend and to the :class:`StopFilter`.
        budget: Token figures.
        stable_prefix_tokens: Tokens at the start that do not depend on this turn's world
            info or author's note, so an engine can keep them cached.
        dropped: What did not fit, in words (examples, old messages, world info).
        template: Name of the instruct template used (``none`` for plain text).
        warnings: Things the user should know (e.g. a template fallback).
    """

    segments: list[Segment]
    text: str | None
    messages: list[Message] | None
    stops: list[str]
    budget: Budget
    stable_prefix_tokens: int
    dropped: list[str] = field(default_factory=list)
    template: str = "none"
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the whole prompt."""
        data = asdict(self)
        data["budget"]["available"] = self.budget.available
        return data
