"""Reading loosely typed values from other programs' files: one set of rules for every importer.

Cards, lorebooks and chats from the wild write ``"0.5"`` for numbers, ``"false"`` or ``1`` for
booleans, a comma-joined string where a list belongs and ``null`` for anything. The card
normaliser (:mod:`storyteller.cards._normalize`), the world-info entry normaliser
(:mod:`storyteller.lore._normalize`) and the chat readers (:mod:`storyteller.story.sillytavern`,
:mod:`storyteller.story.kobold`) all read such values through these functions, so a value means
the same thing wherever it is found. Each function either returns a value of the wanted type or
raises :class:`Unreadable`; callers decide on the default and on what to report.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "FALSE_WORDS",
    "TRUE_WORDS",
    "Unreadable",
    "as_bool",
    "as_int",
    "as_text",
    "same",
    "to_bool",
    "to_float",
    "to_int",
    "to_text",
    "to_text_list",
]

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0", ""})


class Unreadable(ValueError):
    """The value cannot be read as the wanted type."""


def to_bool(value: Any, *, any_number: bool = True) -> bool:
    """A boolean from a bool, a number or a word (``"false"``, ``"0"``, ``"yes"``...).

    Args:
        value: The raw value.
        any_number: Read every finite number (non-zero is true); when False only 0 and 1.

    Raises:
        Unreadable: Anything else (``None`` included).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value) or (not any_number and value not in (0, 1)):
            raise Unreadable(value)
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in TRUE_WORDS:
            return True
        if low in FALSE_WORDS:
            return False
    raise Unreadable(value)


def to_float(value: Any) -> float | int:
    """A finite number from a number or a numeric string; whole strings give an ``int``.

    Raises:
        Unreadable: Booleans, ``NaN``/infinities, ``None`` and anything else.
    """
    if isinstance(value, bool):
        raise Unreadable(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unreadable(value)
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise Unreadable(value) from None
        if not math.isfinite(number):
            raise Unreadable(value)
        return int(number) if number.is_integer() else number
    raise Unreadable(value)


def to_int(value: Any, *, truncate: bool = False, allow_bool: bool = False) -> int:
    """An integer from a number or a numeric string.

    Args:
        value: The raw value.
        truncate: Cut fractions off (``"2.7"`` gives 2); when False only whole numbers are read.
        allow_bool: Read ``True``/``False`` as 1/0.

    Raises:
        Unreadable: Not a finite number (or a fraction when ``truncate`` is False).
    """
    if isinstance(value, bool):
        if allow_bool:
            return int(value)
        raise Unreadable(value)
    if isinstance(value, int):
        return value
    number = to_float(value)
    if isinstance(number, int):
        return number
    if not truncate:
        raise Unreadable(value)
    return int(number)


def to_text(value: Any) -> str:
    """Text from a string, a number or a boolean (``"true"``/``"false"``).

    Raises:
        Unreadable: ``None``, lists, objects.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise Unreadable(value)


def to_text_list(value: Any, *, split_commas: bool) -> list[str]:
    """A list of strings from a list (``None`` items skipped, numbers as text) or one string.

    Args:
        value: The raw value.
        split_commas: A lone string is a comma-separated list (keys, tags); else one item.

    Raises:
        Unreadable: Not a list or a string, or a list holding objects, lists or booleans.
    """
    if isinstance(value, str):
        if not split_commas:
            return [value] if value.strip() else []
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise Unreadable(value)
    out = []
    for item in value:
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise Unreadable(item)
        out.append(item if isinstance(item, str) else str(item))
    return out


def same(fixed: Any, value: Any) -> bool:
    """True when reading changed neither the type nor the value."""
    return type(fixed) is type(value) and fixed == value


# -- forgiving forms for readers that fall back to a default without saying why ---------------

def as_bool(value: Any, default: bool = False) -> tuple[bool, bool]:
    """A boolean, or ``default``; returns ``(value, repaired)`` (``None`` is not a repair)."""
    if value is None:
        return default, False
    try:
        result = to_bool(value)
    except Unreadable:
        return default, True
    return result, not isinstance(value, bool)


def as_int(value: Any) -> int | None:
    """An integer (fractions in strings cut off, booleans as 0/1), or ``None``."""
    if isinstance(value, float) and not value.is_integer():
        return None
    try:
        return to_int(value, truncate=isinstance(value, str), allow_bool=True)
    except Unreadable:
        return None


def as_text(value: Any) -> str:
    """Text; ``None`` gives ``""`` and anything else its ``str()``."""
    if value is None:
        return ""
    try:
        return to_text(value)
    except Unreadable:
        return str(value)
