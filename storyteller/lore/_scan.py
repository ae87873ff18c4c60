"""The scan text of one activation, built as SillyTavern's ``WorldInfoBuffer`` builds it.

The text is ``"\\x01" + newest message + "\\n\\x01" + next newest ...``, then the opted-in
character/persona fields, the always-scanned injects and the recursion buffer, each joined with
``"\\n\\x01"``. Only the newest ``MAX_SCAN_DEPTH`` messages are ever looked at, so the cost of a
scan does not grow with the length of the story.

Deliberate difference: with a scan depth of 0 SillyTavern returns an empty text (nothing can
match, not even the author's note or recursion). Here depth 0 scans no chat messages but still
scans the other sources, as SillyTavern's documentation describes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from storyteller.lore.model import WorldEntry
from storyteller.lore.results import ScanSources

__all__ = ["MAX_SCAN_DEPTH", "ScanBuffer"]

MAX_SCAN_DEPTH = 1000
_MATCHER = "\x01"
_JOINER = "\n\x01"

_OPT_IN = (
    ("match_persona_description", "persona_description", "persona"),
    ("match_character_description", "character_description", "character description"),
    ("match_character_personality", "character_personality", "character personality"),
    ("match_character_depth_prompt", "character_depth_prompt", "character's note"),
    ("match_scenario", "scenario", "scenario"),
    ("match_creator_notes", "creator_notes", "creator notes"),
)


class ScanBuffer:
    """Builds and caches the scan texts of one activation.

    Args:
        messages: The chat, oldest first (only the newest ``MAX_SCAN_DEPTH`` are read).
        sources: Other scanned texts.
        chat_length: The chat's length, for message labels (defaults to ``len(messages)``).
    """

    def __init__(self, messages: Sequence[str], sources: ScanSources, chat_length: int | None = None) -> None:
        tail = list(messages[-MAX_SCAN_DEPTH:]) if messages else []
        self._newest_first = [m.strip() for m in reversed(tail)]
        self._length = len(messages) if chat_length is None else chat_length
        self._sources = sources
        self._recursion: list[tuple[str, str]] = []
        self._cache: dict[tuple, tuple[str, list[int], list[str]]] = {}

    @property
    def message_count(self) -> int:
        """Messages available for scanning."""
        return len(self._newest_first)

    def add_recursion(self, label: str, text: str) -> None:
        """Append activated content to the recursion buffer."""
        if text:
            self._recursion.append((label, text))
            self._cache.clear()

    @property
    def has_recursion(self) -> bool:
        """True when some content was added for recursion."""
        return bool(self._recursion)

    def text(self, entry: WorldEntry, depth: int, *, with_recursion: bool) -> str:
        """The text to scan for ``entry`` at ``depth`` messages."""
        return self._build(entry, depth, with_recursion)[0]

    def where(self, entry: WorldEntry, depth: int, position: int, *, with_recursion: bool) -> str:
        """Name the part of the scan text that contains ``position``."""
        _text, starts, labels = self._build(entry, depth, with_recursion)
        if position < 0 or not starts:
            return "?"
        return labels[max(bisect_right(starts, position) - 1, 0)]

    def _build(self, entry: WorldEntry, depth: int, with_recursion: bool) -> tuple[str, list[int], list[str]]:
        depth = max(0, min(depth, MAX_SCAN_DEPTH))
        flags = tuple(bool(getattr(entry, flag)) for flag, _src, _label in _OPT_IN)
        cache_key = (depth, flags, with_recursion)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        parts: list[tuple[str, str]] = []
        for index, message in enumerate(self._newest_first[:depth]):
            parts.append((f"message {self._length - 1 - index}", message))
        if not parts:
            parts.append(("", ""))  # keeps the leading \x01 of SillyTavern's layout
        for (_flag, source, label), wanted in zip(_OPT_IN, flags, strict=True):
            value = getattr(self._sources, source)
            if wanted and value:
                parts.append((label, value))
        parts.extend(self._sources.injects)
        if with_recursion:
            parts.extend(self._recursion)
        starts: list[int] = []
        labels: list[str] = []
        chunks: list[str] = []
        offset = 0
        for number, (label, value) in enumerate(parts):
            piece = (_MATCHER if number == 0 else _JOINER) + value
            starts.append(offset)
            labels.append(label)
            chunks.append(piece)
            offset += len(piece)
        built = ("".join(chunks), starts, labels)
        self._cache[cache_key] = built
        return built
