"""Small builders for lore tests."""

from __future__ import annotations

import random
from typing import Any

from storyteller.lore import Lorebook, WorldEntry, WorldInfoSettings, activate


def entry(uid: int, keys: list[str] | None = None, content: str | None = None, **fields: Any) -> WorldEntry:
    """An entry with readable defaults: content defaults to ``"content <uid>"``."""
    return WorldEntry(uid=uid, keys=keys or [], content=content if content is not None else f"content {uid}", **fields)


def book(*entries: WorldEntry, name: str = "T") -> Lorebook:
    return Lorebook(name=name, entries=list(entries))


def run(entries: list[WorldEntry] | Lorebook, messages: list[str], **kwargs: Any):
    """Activate one book with big budget and a fixed seed unless told otherwise."""
    books = [entries] if isinstance(entries, Lorebook) else [book(*entries)]
    settings = kwargs.pop("settings", None) or WorldInfoSettings(**kwargs.pop("s", {}))
    kwargs.setdefault("max_context", 100_000)
    kwargs.setdefault("rng", random.Random(1))
    return activate(books, messages, settings=settings, **kwargs)


def fired(result) -> set[int]:
    return {t.uid for t in result.trace if t.status == "activated"}


def reason(result, uid: int) -> str:
    return next(t.reason for t in result.trace if t.uid == uid)


def trace(result, uid: int):
    return next(t for t in result.trace if t.uid == uid)
