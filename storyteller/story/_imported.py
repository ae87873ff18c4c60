"""The neutral result of a chat import, and the dates SillyTavern and TavernAI write.

Values of the wrong type are read with :mod:`storyteller.coerce`, like every importer's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storyteller.story.model import ImportReport, Node, StorySettings

__all__ = ["ImportedStory", "display_date", "parse_date"]


@dataclass
class ImportedStory:
    """What an importer produced, before it is written as a story.

    Attributes:
        nodes: The nodes, parents before children.
        current: The node the story should end at.
        settings: The story settings.
        report: What was repaired, defaulted or dropped.
        title: A suggested story name.
    """

    nodes: list[Node] = field(default_factory=list)
    current: str | None = None
    settings: StorySettings = field(default_factory=StorySettings)
    report: ImportReport = field(default_factory=ImportReport)
    title: str = "imported"


_HUMANIZED = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*@\s*(\d{1,2})h\s*(\d{1,2})m\s*(\d{1,2})s(?:\s*(\d{1,3})ms)?\s*$"
)
_LONG_FORMATS = ("%B %d, %Y %I:%M%p", "%B %d, %Y %I:%M %p", "%b %d, %Y %I:%M%p", "%B %d, %Y")


def parse_date(value: Any) -> float | None:
    """Read a SillyTavern / TavernAI date as seconds since the epoch.

    Accepts epoch numbers (milliseconds when large, else seconds), also as strings; the
    humanized ``"2023-5-14 @21h 12m 50s 500ms"``; the display form ``"June 19, 2023 2:20pm"``;
    and ISO 8601. Dates without a zone are the local time of the machine that wrote them, which
    is taken to be this one. Returns ``None`` when nothing fits.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            return _parse_date_text(text)
    if isinstance(value, (int, float)):
        number = float(value)
        if number != number or number <= 0:
            return None
        return number / 1000.0 if number > 1e11 else number
    return None


def _parse_date_text(text: str) -> float | None:
    m = _HUMANIZED.match(text)
    if m:
        year, month, day, hour, minute, second, ms = (int(g) if g else 0 for g in m.groups())
        try:
            return datetime(year, month, day, hour, minute, second, ms * 1000).timestamp()
        except ValueError:
            return None
    for fmt in _LONG_FORMATS:
        try:
            return datetime.strptime(text, fmt).timestamp()
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def display_date(seconds: float) -> str:
    """SillyTavern's current ``send_date`` form, e.g. ``"June 19, 2023 2:20pm"`` (local time)."""
    moment = datetime.fromtimestamp(seconds)
    hour = moment.hour % 12 or 12
    return f"{moment:%B} {moment.day}, {moment.year} {hour}:{moment:%M}{'am' if moment.hour < 12 else 'pm'}"
