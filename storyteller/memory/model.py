"""What a story remembers past its context window: scene summaries and pinned facts.

A :class:`Summary` covers a run of consecutive messages, named by *message keys*: a hash of
each message's author, kind and text (never its node id). So a summary stays valid wherever
the same messages appear (an edit far above copies the later turns with new ids but the same
text), and stops applying the moment one of its messages changes: an edit or a swipe changes a
key, undo or a branch leaves the messages off the current path. Nothing is deleted then; the
summary just no longer matches, and a fresh one is written lazily for the new text. Undo the
change and the old summary applies again.

A :class:`Pin` is a fact the player wants kept: a pinned message (its text is read from the
path, so an edited message keeps its pin) or a written fact. Both are anchored to a node and
apply only on paths through it, so a branch has its own memory.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "Located",
    "MemoryState",
    "Pin",
    "Summary",
    "cover",
    "message_key",
    "node_origins",
]

SOURCES = ("model", "player", "sillytavern", "kobold")


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(4)


def message_key(author: str, kind: str, text: str) -> str:
    """The key of one message: what it says and who said it, not where it sits."""
    digest = hashlib.sha256(f"{author}\x1f{kind}\x1f{text}".encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True, slots=True)
class Summary:
    """A short account of a run of messages.

    Attributes:
        id: Unique within the story's memory.
        keys: The message keys it covers, oldest first.
        nodes: The head node ids of those messages when it was written (for display and export).
        text: The summary.
        manual: Written or corrected by the player: never replaced by a regenerated one and never
            merged away.
        source: ``model``, ``player``, ``sillytavern`` or ``kobold``.
        parts: For a merged summary, the ids of the summaries it was written from.
        created: Seconds since the epoch.
    """

    id: str
    keys: tuple[str, ...]
    nodes: tuple[str, ...]
    text: str
    manual: bool = False
    source: str = "model"
    parts: tuple[str, ...] = ()
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        data: dict[str, Any] = {"id": self.id, "keys": list(self.keys), "nodes": list(self.nodes), "text": self.text,
                                "manual": self.manual, "source": self.source, "created": self.created}
        if self.parts:
            data["parts"] = list(self.parts)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """Rebuild from :meth:`to_dict` data.

        Raises:
            ValueError: A field is missing or of the wrong type.
        """
        keys, nodes, text = data.get("keys"), data.get("nodes") or [], data.get("text")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ValueError("a summary needs a non-empty list of message keys")
        if not isinstance(text, str) or not isinstance(nodes, list):
            raise ValueError("a summary needs its text")
        return cls(id=str(data.get("id") or _new_id("s")), keys=tuple(keys), nodes=tuple(str(n) for n in nodes),
                   text=text, manual=bool(data.get("manual", False)), source=str(data.get("source") or "model"),
                   parts=tuple(str(p) for p in data.get("parts") or ()), created=float(data.get("created") or 0.0))


@dataclass(frozen=True, slots=True)
class Pin:
    """A pinned fact.

    Attributes:
        id: Unique within the story's memory.
        text: The fact as written; empty for a pinned message (its text comes from the path).
        node: The pinned message's head node, or ``None`` for a written fact.
        anchor: The node the fact belongs after (it applies on paths through it); ``None``: the
            whole story.
        created: Seconds since the epoch.
    """

    id: str
    text: str = ""
    node: str | None = None
    anchor: str | None = None
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {"id": self.id, "text": self.text, "node": self.node, "anchor": self.anchor, "created": self.created}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pin:
        """Rebuild from :meth:`to_dict` data.

        Raises:
            ValueError: Neither a text nor a node.
        """
        text, node, anchor = data.get("text") or "", data.get("node"), data.get("anchor")
        if not isinstance(text, str) or not (node is None or isinstance(node, str)) \
                or not (anchor is None or isinstance(anchor, str)):
            raise ValueError("a pin has a field of the wrong type")
        if not text.strip() and node is None:
            raise ValueError("a pin needs a text or a message")
        return cls(id=str(data.get("id") or _new_id("p")), text=text, node=node, anchor=anchor,
                   created=float(data.get("created") or 0.0))


@dataclass(frozen=True, slots=True)
class Located:
    """A summary found on the current path: it covers messages ``start`` to ``end - 1``."""

    start: int
    end: int
    summary: Summary


def node_origins(nodes: Mapping[str, Any], node_id: str) -> list[str]:
    """A node's id and the ids it was edited from, newest first (edits copy, they never mutate)."""
    out: list[str] = []
    seen: set[str] = set()
    current: str | None = node_id
    while current is not None and current not in seen and current in nodes:
        seen.add(current)
        out.append(current)
        current = getattr(nodes[current], "edited_from", None)
    return out


@dataclass(slots=True)
class MemoryState:
    """The summaries and pins of one story (every branch of its tree)."""

    summaries: list[Summary] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)

    # -- summaries ---------------------------------------------------------------------------

    def locate(self, keys: Sequence[str]) -> list[Located]:
        """Every summary that matches a run of the path's message keys, in path order."""
        positions: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            positions.setdefault(key, []).append(index)
        found = []
        for summary in self.summaries:
            width = len(summary.keys)
            for start in positions.get(summary.keys[0], ()):
                if tuple(keys[start:start + width]) == summary.keys:
                    found.append(Located(start, start + width, summary))
                    break
        found.sort(key=lambda x: (x.start, -x.end))
        return found

    def add_summary(self, keys: Sequence[str], nodes: Sequence[str], text: str, *, manual: bool = False,
                    source: str = "model", parts: Sequence[str] = ()) -> Summary:
        """Keep a new summary; a regenerated one never replaces a manual one of the same messages."""
        keys = tuple(keys)
        for old in self.summaries:
            if old.keys == keys and old.manual and not manual:
                return old  # the player's correction wins
        self.summaries = [s for s in self.summaries if s.keys != keys]
        summary = Summary(_new_id("s"), keys, tuple(nodes), text.strip(), manual=manual, source=source,
                          parts=tuple(parts), created=time.time())
        self.summaries.append(summary)
        return summary

    def edit_summary(self, summary_id: str, text: str) -> Summary:
        """The player's correction: kept as written, and merged summaries made from it are dropped.

        Raises:
            KeyError: No such summary.
        """
        old = self.summary(summary_id)
        new = replace(old, text=text.strip(), manual=True, source="player" if old.source == "model" else old.source)
        self.summaries = [new if s.id == summary_id else s for s in self.summaries
                          if not (not s.manual and summary_id in s.parts)]
        return new

    def remove_summary(self, summary_id: str) -> Summary:
        """Forget a summary (it is rewritten if its messages leave the context again)."""
        old = self.summary(summary_id)
        self.summaries = [s for s in self.summaries if s.id != summary_id]
        return old

    def summary(self, summary_id: str) -> Summary:
        """The summary with this id.

        Raises:
            KeyError: No such summary.
        """
        for summary in self.summaries:
            if summary.id == summary_id:
                return summary
        raise KeyError(summary_id)

    # -- pins --------------------------------------------------------------------------------

    def pin_fact(self, text: str, *, anchor: str | None) -> Pin:
        """Pin a written fact, applying on paths through ``anchor``."""
        pin = Pin(_new_id("p"), text=text.strip(), anchor=anchor, created=time.time())
        self.pins.append(pin)
        return pin

    def pin_message(self, node_id: str) -> Pin:
        """Pin a message (its head node); pinning it twice keeps one pin."""
        for pin in self.pins:
            if pin.node == node_id:
                return pin
        pin = Pin(_new_id("p"), node=node_id, anchor=node_id, created=time.time())
        self.pins.append(pin)
        return pin

    def unpin(self, pin_id: str) -> Pin:
        """Remove a pin.

        Raises:
            KeyError: No such pin.
        """
        for pin in self.pins:
            if pin.id == pin_id:
                self.pins.remove(pin)
                return pin
        raise KeyError(pin_id)

    def active_pins(self, path_ids: Iterable[str], nodes: Mapping[str, Any],
                    texts: Mapping[str, str]) -> list[tuple[Pin, str]]:
        """The pins that apply on a path, with the text each puts in the prompt.

        Args:
            path_ids: The head node ids of the path's messages.
            nodes: Every node of the story, by id (to follow edits back to their origin).
            texts: The full text of each message, by head id.
        """
        origin_of: dict[str, str] = {}
        for node_id in path_ids:
            for origin in node_origins(nodes, node_id):
                origin_of.setdefault(origin, node_id)
        out = []
        for pin in self.pins:
            if pin.anchor is not None and pin.anchor not in origin_of:
                continue
            if pin.node is not None:
                shown = origin_of.get(pin.node)
                if shown is None:
                    continue
                out.append((pin, texts.get(shown, "")))
            else:
                out.append((pin, pin.text))
        return [(pin, text) for pin, text in out if text.strip()]

    # -- storage -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (what ``memory.json`` holds)."""
        return {"version": 1, "summaries": [s.to_dict() for s in self.summaries],
                "pins": [p.to_dict() for p in self.pins]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> tuple[MemoryState, list[str]]:
        """Rebuild from :meth:`to_dict` data; returns the state and what was skipped, in words."""
        state, skipped = cls(), []
        for kind, items, make in (("summary", data.get("summaries"), Summary.from_dict),
                                  ("pin", data.get("pins"), Pin.from_dict)):
            for number, item in enumerate(items if isinstance(items, list) else []):
                try:
                    value = make(item if isinstance(item, dict) else {})
                except ValueError as exc:
                    skipped.append(f"{kind} {number + 1}: {exc}")
                    continue
                (state.summaries if kind == "summary" else state.pins).append(value)  # type: ignore[arg-type]
        return state, skipped


def cover(located: Sequence[Located], trimmed: int) -> list[Located]:
    """The summaries that stand for the first ``trimmed`` messages, oldest first.

    Walks from the first message: at each one, the summary starting there that reaches
    furthest (a merged one before its parts; a manual one on a tie). A model-written summary
    must end inside the trimmed part (the rest is still in the window); a manual one may reach
    past it. A message no summary starts at is a gap: the walk moves on.
    """
    starts: dict[int, list[Located]] = {}
    for item in located:
        if item.summary.manual or item.end <= trimmed:
            starts.setdefault(item.start, []).append(item)
    out: list[Located] = []
    index = 0
    while index < trimmed:
        options = starts.get(index)
        if not options:
            index += 1
            continue
        best = max(options, key=lambda x: (x.end, x.summary.manual, x.summary.created))
        out.append(best)
        index = best.end
    return out
