"""Messages the kiosk's workers post to the UI: small dataclasses named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from storyteller.kiosk.controller import TurnResult

__all__ = [
    "InvitationAccepted",
    "RecapWritten",
    "ReplyStarted",
    "ReplyStreamed",
    "RetryPressed",
    "TurnFinished",
    "VisitEnded",
    "VisitorSubmitted",
]


@dataclass
class ReplyStarted(Message):
    """The model started a reply (``action``: reply, regenerate or continue; ``speaker``: the group
    member who replies, "" outside a group)."""

    action: str
    speaker: str = ""


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


# -- what the screens tell the app (they never call it) ----------------------------------------------


@dataclass
class InvitationAccepted(Message):
    """Someone pressed a key (or clicked) on the attract screen."""


@dataclass
class VisitorSubmitted(Message):
    """A visitor sent their text (already checked by the controller's input rules)."""

    text: str
    kind: str
    visitor: str


@dataclass
class RetryPressed(Message):
    """The visitor asked for another reply in place of the last one."""


@dataclass
class VisitEnded(Message):
    """A visitor's turn is over; ``added`` is False when they left before adding anything."""

    added: bool
