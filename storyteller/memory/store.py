"""A story's memory on disk (``memory.json`` in the story's folder), and its view of a path.

The file is small and rewritten whole, atomically: a crash leaves the old one or the new one.
It is written only by the process that holds the story's writer lock; a story opened read-only
reads it and never writes it. A damaged file is set aside (renamed ``memory.json.damaged-N``)
and memory starts empty, so nothing prevents playing, and nothing is overwritten unseen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyteller.config import MemorySettings
from storyteller.fileio import atomic_write
from storyteller.memory.details import split_details, with_details
from storyteller.memory.model import Located, MemoryState, Summary, cover, message_key
from storyteller.prompt import Recall

__all__ = ["FILE", "PathView", "StoryMemory", "recall_for"]

FILE = "memory.json"


@dataclass(frozen=True, slots=True)
class PathView:
    """The messages of a path as memory sees them.

    Attributes:
        keys: Each message's key (see :func:`~storyteller.memory.model.message_key`).
        heads: Each message's head node id.
        texts: Each message's full text (continuations included).
        authors: Each message's author.
    """

    keys: tuple[str, ...]
    heads: tuple[str, ...]
    texts: tuple[str, ...]
    authors: tuple[str, ...]

    @classmethod
    def of(cls, messages: Sequence[Any]) -> PathView:
        """From :class:`storyteller.story.Message` objects (the path, continuations folded in)."""
        keys, heads, texts, authors = [], [], [], []
        for message in messages:
            head = message.head
            text = message.text
            keys.append(message_key(head.author, head.kind, text))
            heads.append(head.id)
            texts.append(text)
            authors.append(head.author)
        return cls(tuple(keys), tuple(heads), tuple(texts), tuple(authors))


class StoryMemory:
    """The memory of one open story.

    Args:
        folder: The story's folder.
        read_only: Never write (the story is open read-only).
    """

    def __init__(self, folder: Path, *, read_only: bool = False) -> None:
        self.path = Path(folder) / FILE
        self.read_only = read_only
        self.warnings: list[str] = []
        self.state = MemoryState()
        self._load()

    @classmethod
    def of(cls, story: Any) -> StoryMemory:
        """The memory of an open :class:`~storyteller.story.Story`."""
        return cls(story.folder, read_only=story.read_only)

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            if not self.path.is_file() or self.path.is_symlink():
                raise ValueError("not a regular file")
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            self.warnings.append(f"{self.path.name} could not be read ({exc}); memory starts empty")
            self._set_aside()
            return
        self.state, skipped = MemoryState.from_dict(data)
        self.warnings += [f"{self.path.name}: skipped {what}" for what in skipped]

    def _set_aside(self) -> None:
        if self.read_only or not self.path.is_file() or self.path.is_symlink():
            return
        number = 1
        while (aside := self.path.with_name(f"{FILE}.damaged-{number}")).exists():
            number += 1
        try:
            os.replace(self.path, aside)
            self.warnings.append(f"the damaged file was kept as {aside.name}")
        except OSError:
            pass

    def save(self) -> bool:
        """Write the memory file; returns ``False`` (and writes nothing) when read-only."""
        if self.read_only:
            return False
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            raise OSError(f"{self.path} is not a regular file; memory was not saved over it")
        text = json.dumps(self.state.to_dict(), ensure_ascii=False, indent=1)
        atomic_write(self.path, text.encode("utf-8"))
        return True


def budgets(settings: MemorySettings, room: int) -> tuple[int, int]:
    """(summary budget, pinned budget) in tokens for a prompt room of ``room`` tokens."""
    return int(settings.summary_share * room), int(settings.pinned_share * room)


def recall_for(state: MemoryState, messages: Sequence[Any], nodes: Mapping[str, Any], settings: MemorySettings,
               room: int, count_tokens: Callable[[str], int] | None = None) -> tuple[Recall, PathView, list[Located]]:
    """What memory puts into the prompt for a reply after ``messages``.

    Args:
        state: The story's memory.
        messages: The path the reply follows.
        nodes: Every node of the story, by id.
        settings: Memory settings.
        room: Tokens of context minus the reply.
        count_tokens: Counts tokens; with it, summaries past their budget send only their
            details line, oldest first, before the builder leaves any out.

    Returns:
        The builder's :class:`~storyteller.prompt.Recall`, the path view and the summaries that
        match the path.
    """
    view = PathView.of(messages)
    located = state.locate(view.keys)
    summary_budget, pinned_budget = budgets(settings, room)

    def summaries(trimmed: int) -> list[tuple[str, str]]:
        return fit_summaries(cover(located, trimmed), summary_budget, count_tokens)

    pins = state.active_pins(view.heads, nodes, dict(zip(view.heads, view.texts, strict=True)))
    recall = Recall(pinned=tuple((f"pin:{pin.id}", text) for pin, text in pins),
                    summaries=summaries if located else None, summary_budget=summary_budget,
                    pinned_budget=pinned_budget, position=settings.position)
    return recall, view, located


def fit_summaries(chosen: Sequence[Located], budget: int,
                  count_tokens: Callable[[str], int] | None) -> list[tuple[str, str]]:
    """The ``(source, text)`` of the summaries chosen for a prompt, within ``budget`` if it can be.

    A detail an older summary already lists is not listed again. Past the budget, model-written
    summaries send only their details line, oldest first (a weak model's retelling is worth
    less than the names and objects it was written from); then the oldest details lines lose
    their newest details until the rest fits (a long story's first merged summary can list more
    than the whole budget holds). The player's summaries are sent as written.
    """
    seen: list[str] = []
    out: list[tuple[str, str, Summary]] = []
    for item in chosen:
        summary = item.summary
        body, listed = split_details(summary.text)
        text = summary.text if summary.manual else with_details(body, listed, limit=len(listed), already=seen)
        seen += listed
        out.append((f"summary:{summary.id}", text, summary))
    if count_tokens is not None:
        total = sum(count_tokens(text) + 6 for _, text, _ in out)
        for number, (source, text, summary) in enumerate(out):
            if total <= budget:
                break
            body, listed = split_details(text)
            if summary.manual or not listed or not body.strip():
                continue
            short = with_details("", listed, limit=len(listed)).strip()
            total -= count_tokens(text) - count_tokens(short)
            out[number] = (source, short, summary)
        for number, (source, text, summary) in enumerate(out):
            if total <= budget:
                break
            body, listed = split_details(text)
            if summary.manual or body.strip() or not listed:
                continue
            # Still over: the oldest details line loses its last-listed (newest) details, rather
            # than the builder leaving the whole summary out.
            keep, others = len(listed), total - count_tokens(text)
            while keep and others + count_tokens(with_details("", listed[:keep]).strip()) > budget:
                keep -= max(1, keep // 8)
            short = with_details("", listed[:keep], limit=keep).strip()
            total = others + count_tokens(short)
            out[number] = (source, short, summary)
    return [(source, text) for source, text, _ in out if text]


def covered(located: Sequence[Located]) -> set[int]:
    """Message positions some matching summary covers."""
    out: set[int] = set()
    for item in located:
        out.update(range(item.start, item.end))
    return out


def spans_to_write(located: Sequence[Located], count: int, horizon: int, trimmed: int,
                   settings: MemorySettings) -> list[tuple[int, int]]:
    """Runs of messages before ``horizon`` that no summary covers, cut into spans.

    A span shorter than ``settings.span_messages`` is written only when it has already left the
    window (``end <= trimmed``); otherwise it waits for more messages.
    """
    limit = min(horizon, count - settings.keep_recent)
    done = covered(located)
    spans: list[tuple[int, int]] = []
    start = None
    for index in range(max(limit, 0) + 1):
        inside = index < limit and index not in done
        if inside and start is None:
            start = index
        if start is not None and (not inside or index - start == settings.span_messages):
            spans.append((start, index))
            start = index if inside else None
    return [(a, b) for a, b in spans if b - a == settings.span_messages or b <= trimmed]


def merge_pair(located: Sequence[Located], horizon: int, budget: int,
               count_tokens: Callable[[str], int]) -> tuple[Located, Located] | None:
    """Two neighbouring model-written summaries to merge when those in use pass 80% of the budget.

    The pair covering the fewest messages is merged first (then the oldest), so summaries merge
    like a binary counter: each fact is rewritten only a few times however long the story grows.
    """
    chosen = cover(located, horizon)
    if sum(count_tokens(item.summary.text) + 4 for item in chosen) <= 0.8 * budget:
        return None
    pairs = [(a, b) for a, b in zip(chosen, chosen[1:], strict=False)
             if a.end == b.start and not a.summary.manual and not b.summary.manual]
    if not pairs:
        return None
    return min(pairs, key=lambda pair: (pair[1].end - pair[0].start, pair[0].start))
