"""Moderation: word and pattern lists applied to visitor input and to model output.

Text is normalised before matching (Unicode NFKC, case folded, zero-width characters removed) so
that ``Ｂａｄ`` or ``b\u200bad`` match ``bad``. Matches are reported as spans of the original text,
which lets the kiosk cut a reply right before the first match. UI-free.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from storyteller.errors import ConfigError
from storyteller.kiosk.settings import ModerationSettings

__all__ = ["Flag", "Moderator"]

_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}


@dataclass(frozen=True, slots=True)
class Flag:
    """A match: ``start``/``end`` index the original text; ``term`` is the list entry that matched."""

    start: int
    end: int
    term: str


def _normalise(text: str) -> tuple[str, list[int]]:
    """Normalised text and, for each of its characters, the index of the original character."""
    out: list[str] = []
    index: list[int] = []
    for i, char in enumerate(text):
        if char in _INVISIBLE:
            continue
        for folded in unicodedata.normalize("NFKC", char).casefold():
            out.append(folded)
            index.append(i)
    return "".join(out), index


def _read_word_file(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"moderation.word_file {str(path)!r} cannot be read ({exc}).") from exc
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


class Moderator:
    """Checks text against the configured lists.

    Args:
        settings: The moderation settings; when ``enabled`` is false nothing ever matches.

    Raises:
        ConfigError: The word file cannot be read.
    """

    def __init__(self, settings: ModerationSettings) -> None:
        self.settings = settings
        self._rules: list[tuple[re.Pattern[str], str]] = []
        if not settings.enabled:
            return
        words = list(settings.words)
        if settings.word_file is not None:
            words += _read_word_file(settings.word_file)
        for word in words:
            folded, _ = _normalise(word.strip())
            if folded:
                # Whole words only: "ass" must not flag "class" or "passage".
                body = r"\s+".join(re.escape(part) for part in folded.split())
                self._rules.append((re.compile(rf"(?<!\w){body}(?!\w)"), word))
        for pattern in settings.patterns:
            self._rules.append((re.compile(pattern, re.IGNORECASE), pattern))

    @property
    def active(self) -> bool:
        """True when moderation is on and has at least one rule."""
        return bool(self._rules)

    def first(self, text: str) -> Flag | None:
        """The earliest match in ``text``, or ``None``."""
        if not self._rules or not text:
            return None
        folded, index = _normalise(text)
        best: Flag | None = None
        for rule, term in self._rules:
            match = rule.search(folded)
            if match is None:
                continue
            start = index[match.start()] if match.start() < len(index) else len(text)
            end = index[match.end() - 1] + 1 if match.end() > 0 and index else start
            if best is None or start < best.start:
                best = Flag(start, end, term)
        return best

    def refuses(self, text: str) -> str | None:
        """The kind message to show when visitor input matches; ``None`` when it is fine."""
        return self.settings.input_message if self.first(text) is not None else None

    def cut(self, text: str) -> str:
        """``text`` cut before its first match, at the last sentence or word end, with the mark.

        Returns the text unchanged when nothing matches.
        """
        flag = self.first(text)
        if flag is None:
            return text
        head = text[: flag.start]
        sentence_end = max(head.rfind(". "), head.rfind("! "), head.rfind("? "), head.rfind("\n"))
        if sentence_end >= 0 and sentence_end >= len(head) // 2:
            head = head[: sentence_end + 1]
        head = head.rstrip()
        mark = self.settings.cut_mark
        return f"{head} {mark}".strip() if head else mark
