"""What a :class:`~storyteller.session.Session` tells its listeners: small past-tense dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storyteller.engines.base import GenerationStats
from storyteller.story.model import Node

__all__ = [
    "GenerationFailed",
    "GenerationFinished",
    "GenerationStarted",
    "PromptBuilt",
    "PromptProcessed",
    "SessionEvent",
    "StoryChanged",
    "TextReceived",
]


@dataclass(frozen=True, slots=True)
class GenerationStarted:
    """A reply started. ``action`` is ``reply``, ``regenerate`` or ``continue``; ``speaker`` is the
    group member who replies ("" outside a group)."""

    action: str
    parent: str | None
    speaker: str = ""


@dataclass(frozen=True, slots=True)
class PromptBuilt:
    """The prompt for this reply, with the world-info activation that fed it."""

    prompt: Any
    lore: Any | None


@dataclass(frozen=True, slots=True)
class PromptProcessed:
    """The engine evaluated ``done`` of ``total`` prompt tokens."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class TextReceived:
    """New reply text (already stop-filtered); ``text`` is the reply so far."""

    delta: str
    text: str


@dataclass(frozen=True, slots=True)
class GenerationFinished:
    """The reply is saved as ``node`` (``None``: stopped before its first word; nothing was saved)."""

    node: Node | None
    stats: GenerationStats
    finish_reason: str


@dataclass(frozen=True, slots=True)
class GenerationFailed:
    """The engine failed; any partial text was saved as an interrupted ``node``."""

    message: str
    node: Node | None


@dataclass(frozen=True, slots=True)
class StoryChanged:
    """The current path changed (undo, redo, swipe, edit, new input)."""

    reason: str


SessionEvent = GenerationStarted | PromptBuilt | PromptProcessed | TextReceived | GenerationFinished | GenerationFailed | StoryChanged
