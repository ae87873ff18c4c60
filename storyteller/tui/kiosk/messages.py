"""Messages the kiosk's workers post to the UI: small dataclasses named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from storyteller.kiosk.controller import TurnResult

__all__ = ["RecapWritten", "ReplyStarted", "ReplyStreamed", "TurnFinished"]


@dataclass
class ReplyStarted(Message):
    """The model started a reply (``action``: reply, regenerate or continue)."""

    action: str


@dataclass
class ReplyStreamed(Message):
    """More reply text arrived; ``text`` is the whole reply so far."""

    text: str


@dataclass
class TurnFinished(Message):
    """A visitor's submission (or a retry, or a resumed turn) ended."""

    result: TurnResult
    resumed: bool = False


@dataclass
class RecapWritten(Message):
    """A recap was written (``text`` empty when it was cancelled or failed)."""

    text: str
