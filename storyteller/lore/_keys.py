"""Key matching: plain keys (case, Unicode-aware whole words) and bounded ``/regex/flags`` keys.

Regex keys come from untrusted lorebooks, so they are bounded three ways: the pattern length
(``MAX_KEY_CHARS``), the text they run on (``MAX_REGEX_HAYSTACK`` characters, newest first), and a
time limit per search. The time limit uses the ``regex`` package's ``timeout`` (installed with
tiktoken); without it the standard ``re`` runs with the two size bounds only.

Whole-word matching differs from SillyTavern on purpose. SillyTavern wraps a single-word key in
``(?:^|\\W)key(?:$|\\W)`` with JavaScript's ASCII-only ``\\W``, so ``é`` counts as a boundary
("caf" matches "café") while every CJK character does too. Here a boundary is any character that
is not a letter, digit or underscore in any script; and at the edge of a key written in a script
without spaces between words (CJK, kana, Hangul, Thai, Lao, Khmer, Myanmar) no boundary is
required on that side, so "東京" still matches inside "私は東京に行く". Multi-word keys use plain
substring search, as in SillyTavern.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

try:  # the regex package supports a per-call timeout; tiktoken depends on it
    import regex as _rx
except ImportError:  # pragma: no cover - exercised only without tiktoken's dependency
    _rx = None

__all__ = [
    "MAX_KEY_CHARS",
    "MAX_REGEX_HAYSTACK",
    "KeyMatcher",
    "check_key",
    "compile_regex_key",
    "find_whole_word",
    "is_regex_key",
]

MAX_KEY_CHARS = 1000
MAX_REGEX_HAYSTACK = 200_000
REGEX_BUDGET_S = 2.0
"""Seconds all regex keys of one activation may take together."""

_SPENT = object()  # the regex budget is used up: the key does not match
_REGEX_SHAPE = re.compile(r"^/([\s\S]+?)/([gimsuy]*)$")
_UNESCAPED_SLASH = re.compile(r"(^|[^\\])/")

# Scripts written without spaces between words (Thai, Lao, Myanmar, Hangul Jamo, Khmer, kana,
# Bopomofo, CJK, Hangul syllables, half-width katakana, CJK extensions).
_NOSPACE_RANGES = (
    (0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1100, 0x11FF), (0x1780, 0x17FF), (0x3040, 0x30FF),
    (0x3100, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA960, 0xA97F), (0xAC00, 0xD7FF),
    (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x3FFFF),
)  # fmt: skip


def _nospace(char: str) -> bool:
    code = ord(char)
    return code >= 0x0E00 and any(low <= code <= high for low, high in _NOSPACE_RANGES)


def _wordish(char: str) -> bool:
    """A letter, digit or underscore of a script that separates words with spaces."""
    return (char.isalnum() or char == "_") and not _nospace(char)


def _split_regex(key: str) -> tuple[str, str] | None:
    match = _REGEX_SHAPE.match(key)
    if not match:
        return None
    pattern, flags = match.group(1), match.group(2)
    # SillyTavern treats a pattern with an unescaped "/" as plain text, and so do we.
    if _UNESCAPED_SLASH.search(pattern):
        return None
    return pattern, flags


def is_regex_key(key: str) -> bool:
    """True when ``key`` has SillyTavern's ``/pattern/flags`` shape."""
    return _split_regex(key.strip()) is not None


@lru_cache(maxsize=4096)
def compile_regex_key(key: str) -> Any:
    """Compile a ``/pattern/flags`` key.

    JavaScript flags map to Python: ``i`` ignore case, ``m`` multiline, ``s`` dot-all; ``g``,
    ``y`` and ``u`` change nothing for a yes/no search (Python patterns are Unicode already).

    Returns:
        The compiled pattern, or None when ``key`` is not regex-shaped.

    Raises:
        ValueError: Regex-shaped but does not compile (the message says why).
    """
    parts = _split_regex(key.strip())
    if parts is None:
        return None
    pattern, letters = parts
    engine = _rx if _rx is not None else re
    flags = 0
    if "i" in letters:
        flags |= engine.IGNORECASE
    if "m" in letters:
        flags |= engine.MULTILINE
    if "s" in letters:
        flags |= engine.DOTALL
    try:
        return engine.compile(pattern, flags)
    except Exception as exc:  # both engines raise their own error types
        raise ValueError(str(exc)) from None


def check_key(key: str) -> str | None:
    """Return why a regex-shaped key does not compile, or None when it is usable."""
    try:
        compile_regex_key(key)
    except ValueError as exc:
        return f"does not compile ({exc})"
    return None


def find_whole_word(text: str, needle: str) -> int:
    """Offset of ``needle`` in ``text`` as a whole word (see the module docstring), or -1."""
    need_left = not _nospace(needle[0])
    need_right = not _nospace(needle[-1])
    size = len(needle)
    start = text.find(needle)
    while start >= 0:
        end = start + size
        left_ok = not need_left or start == 0 or not _wordish(text[start - 1])
        right_ok = not need_right or end == len(text) or not _wordish(text[end])
        if left_ok and right_ok:
            return start
        start = text.find(needle, start + 1)
    return -1


@dataclass(slots=True)
class KeyMatcher:
    """Matches keys against scan texts for one activation, caching every result.

    Many entries share keys and every pass rescans the same texts, so each (text, key, options)
    is decided once.

    Attributes:
        regex_timeout_s: Time limit of one regex search.
        regex_budget_s: Time limit of all regex searches of one activation together: a book
            of hundreds of slow patterns, each under its own limit, must not stall a turn.
            Once spent, the remaining regex keys do not match (and are reported).
        timed_out: Regex keys cut off by a time limit (reported in the trace).
        regex_seconds: Total time spent in regex keys.
    """

    regex_timeout_s: float = 0.05
    regex_budget_s: float = REGEX_BUDGET_S
    timed_out: set[str] = field(default_factory=set)
    regex_seconds: float = 0.0
    _lower: dict[str, str] = field(default_factory=dict)
    _cache: dict[tuple[str, str, bool, bool], int] = field(default_factory=dict)
    _compiled: dict[str, Any] = field(default_factory=dict)

    def find(self, text: str, key: str, *, case_sensitive: bool, whole_words: bool) -> int:
        """Return the offset of ``key`` in ``text``, or -1.

        Args:
            text: The scan text.
            key: A plain or ``/regex/flags`` key (already macro-substituted and stripped).
            case_sensitive: Plain keys only; regex keys carry their own flags.
            whole_words: Plain single-word keys only.
        """
        if not key:
            return -1
        cache_key = (text, key, case_sensitive, whole_words)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        pattern = self._pattern(key)
        if pattern is _SPENT:
            position = -1
        elif pattern is not None:
            position = self._regex(pattern, text, key)
        else:
            position = self._plain(text, key, case_sensitive, whole_words)
        self._cache[cache_key] = position
        return position

    def _pattern(self, key: str) -> Any:
        """The compiled regex of a key (None for a plain key); compiling counts against the budget.

        Compiled patterns are kept for the whole activation: ``compile_regex_key``'s own cache
        holds 4,096, and a book with more regex keys would otherwise recompile every pass.
        """
        if key in self._compiled:
            return self._compiled[key]
        if not is_regex_key(key):
            self._compiled[key] = None
            return None
        if self.regex_seconds >= self.regex_budget_s:
            self.timed_out.add(key)
            return _SPENT
        started = time.perf_counter()
        try:
            pattern = compile_regex_key(key)
        except ValueError:
            pattern = None  # a bad pattern in a hand-built book: SillyTavern matches it as text
        finally:
            self.regex_seconds += time.perf_counter() - started
        self._compiled[key] = pattern
        return pattern

    def _plain(self, text: str, key: str, case_sensitive: bool, whole_words: bool) -> int:
        if not case_sensitive:
            lowered = self._lower.get(text)
            if lowered is None:
                lowered = self._lower[text] = text.lower()
            text, key = lowered, key.lower()
        if whole_words and len(key.split()) <= 1:
            return find_whole_word(text, key)
        return text.find(key)

    def _regex(self, pattern: Any, text: str, key: str) -> int:
        if key in self.timed_out:
            return -1
        left = self.regex_budget_s - self.regex_seconds
        if left <= 0:
            self.timed_out.add(key)
            return -1
        text = text[:MAX_REGEX_HAYSTACK]
        started = time.perf_counter()
        try:
            if _rx is not None:
                found = pattern.search(text, timeout=min(self.regex_timeout_s, left))
            else:  # pragma: no cover
                found = pattern.search(text)
        except TimeoutError:
            self.timed_out.add(key)
            found = None
        finally:
            self.regex_seconds += time.perf_counter() - started
        return found.start() if found else -1
