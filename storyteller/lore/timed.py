"""Timed effects (sticky, cooldown) stored with the story between activations.

Effects are keyed by ``"<book>.<uid>"``. SillyTavern matches them by a hash of the whole entry,
so any edit (a typo fixed in the content) silently ends a running sticky or cooldown; keying by
uid keeps them across edits. Counts are in messages: an effect set when the chat had ``n``
messages lasts until it has ``n + duration``. Delay needs no state (it compares the chat length
with the entry's ``delay``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["TimedEffect", "TimedEffectsState", "entry_key"]


def entry_key(book: str, uid: int) -> str:
    """The key of an entry in :class:`TimedEffectsState` and in traces."""
    return f"{book}.{uid}"


class TimedEffect(BaseModel):
    """One running effect.

    Attributes:
        start: Chat length when it started.
        end: Chat length at which it ends.
        protected: Survives a chat that did not advance (a cooldown started by an ending sticky).
    """

    start: int
    end: int
    protected: bool = False


class TimedEffectsState(BaseModel):
    """All running sticky and cooldown effects of one story.

    Attributes:
        sticky: Running sticky effects by entry key.
        cooldown: Running cooldowns by entry key.
    """

    sticky: dict[str, TimedEffect] = Field(default_factory=dict)
    cooldown: dict[str, TimedEffect] = Field(default_factory=dict)
