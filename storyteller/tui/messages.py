"""Messages the app's workers and widgets post: small dataclasses, named in the past tense.

Workers never touch the DOM; they post one of these and the screen that owns the widgets
reacts. The play loop's own events (:mod:`storyteller.session`) ride inside
:class:`SessionEventReceived` so a test can record the whole conversation with
``run_test(message_hook=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

__all__ = [
    "BranchNamed",
    "CardEditChosen",
    "CardRead",
    "CardSaved",
    "EngineFailed",
    "ImportFinished",
    "LibraryLoaded",
    "NewStoryOffered",
    "PresetsRequested",
    "EngineLoaded",
    "EngineReloadRequested",
    "PresetImported",
    "SessionEventReceived",
    "SessionFailed",
    "SessionOpened",
    "SettingsSaved",
    "StartupImportsFinished",
    "StoryChosen",
    "StreamFlushed",
    "WorldSaved",
    "WorldEditChosen",
    "WorldsRead",
]


@dataclass
class EngineLoaded(Message):
    """The engine is ready.

    Attributes:
        backend: The opened backend.
        seconds: How long opening it took.
    """

    backend: Any
    seconds: float


@dataclass
class EngineFailed(Message):
    """The engine could not be opened; ``message`` says what to do."""

    message: str


@dataclass
class EngineReloadRequested(Message):
    """The story and the engine were closed so the engine can be opened with new settings."""


@dataclass
class SessionOpened(Message):
    """A story is open and ready to play.

    Attributes:
        session: The :class:`~storyteller.session.Session`.
    """

    session: Any


@dataclass
class SessionFailed(Message):
    """A story could not be opened; ``message`` says why."""

    message: str


@dataclass
class SessionEventReceived(Message):
    """One event of the play loop (anything but streamed text, which is batched)."""

    event: Any


@dataclass
class StreamFlushed(Message):
    """Streamed text reached the transcript (posted at most about every 30 ms).

    Attributes:
        text: The reply so far.
        flushes: How many flushes this reply has had (for tests and the benchmark).
    """

    text: str
    flushes: int


@dataclass
class LibraryLoaded(Message):
    """The library's lists were read (in a thread).

    Attributes:
        cards: ``(name, path, error)`` per card file.
        worlds: ``(name, path)`` per world file.
        stories: ``(name, modified)`` per story, newest first.
    """

    cards: list
    worlds: list
    stories: list


@dataclass
class CardEditChosen(Message):
    """A card was picked for the character screen (the app reads it in a thread, then opens it)."""

    path: Any


@dataclass
class WorldEditChosen(Message):
    """Worlds (names or paths) were picked for the world-info editor (the app reads them in a thread)."""

    refs: list


@dataclass
class CardRead(Message, bubble=False):
    """A card picked for editing was read (in the app's thread worker).

    Attributes:
        path: The card's file.
        card: The card, or ``None`` when it cannot be read.
        error: Why it cannot be read (``None`` when it was).
    """

    path: Any
    card: Any
    error: str | None


@dataclass
class NewStoryOffered(Message, bubble=False):
    """A card picked in the library was read for the new-story dialog (in a thread).

    Attributes:
        offer: A :class:`~storyteller.session.library.NewStoryOffer`, or ``None`` when the card
            cannot be read.
        title: The dialog's or the error report's title.
        error: Why the card cannot be used (``None`` when it can).
    """

    offer: Any
    title: str
    error: str | None


@dataclass
class PresetsRequested(Message):
    """A screen asked for the sampler presets screen (the app opens it, with the open story)."""


@dataclass
class WorldsRead(Message, bubble=False):
    """Worlds picked for editing were read (in the app's thread worker).

    Attributes:
        books: ``(file, book)`` per world that was read.
        errors: A line per world that could not be read.
    """

    books: list
    errors: list


@dataclass
class ImportFinished(Message):
    """An import by path succeeded (``result``) or failed (``error``)."""

    result: Any | None
    error: str | None


@dataclass
class PresetImported(Message):
    """A sampler preset file was imported (``name`` set) or could not be (``error`` set)."""

    name: str | None
    lines: list[str]
    error: str | None


@dataclass
class StartupImportsFinished(Message):
    """The files named on the command line were imported; one report per file."""

    reports: list[tuple[str, list[str]]]


# -- what screens tell the app (they never call it) ----------------------------------------------


@dataclass
class StoryChosen(Message):
    """The player chose a story to open, or a card (and greeting) to start ``name`` with.

    Attributes:
        name: The story's name.
        card: The card for a new story (a path), if one was chosen.
        greeting: Which greeting opens a new story.
    """

    name: str
    card: str | None = None
    greeting: int = 0
    worlds: list[str] | None = None
    """The worlds ticked for a new story (``None``: the card's linked world)."""
    group: Any | None = None
    """A new group chat (:class:`~storyteller.tui.screens.group.GroupChoice`): its cards, name,
    scenario, order and card mode."""


@dataclass
class BranchNamed(Message):
    """The player named a new story to branch the open one into at its current passage."""

    name: str


@dataclass
class CardSaved(Message):
    """A card was saved from ``source`` to ``target`` (a bundled card's copy, or itself).

    Attributes:
        source: Where it was read from.
        target: Where it was written.
        card: The card as saved.
    """

    source: Any
    target: Any
    card: Any


@dataclass
class WorldSaved(Message):
    """A world was saved from ``source`` to ``target`` (a bundled world's copy, or itself)."""

    source: Any
    target: Any


@dataclass
class SettingsSaved(Message):
    """New settings were written to ``config.toml``; ``reload`` asks for the engine to be reopened."""

    settings: Any
    reload: bool = False


