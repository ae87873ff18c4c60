"""Lenient conversion of raw entry dicts into :class:`WorldEntry`, recording every repair.

Files in the wild carry strings for numbers (``"0.5"``), comma-joined key strings, ``null`` for
fields that have defaults, and fields that did not exist when they were written. Each is mapped
to the model and noted in the :class:`ImportReport`; nothing raises except input that is not an
entry at all.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from storyteller.coerce import Unreadable, same, to_bool, to_float, to_int, to_text, to_text_list
from storyteller.errors import FormatError, LimitExceededError
from storyteller.lore._keys import MAX_KEY_CHARS, check_key
from storyteller.lore.model import ImportReport, Position, Role, SelectiveLogic, WorldEntry

__all__ = ["EntryNormalizer"]

MAX_KEYS_PER_ENTRY = 500

# alias -> (kind, default); the order is SillyTavern's template order.
_FIELDS: dict[str, tuple[str, Any]] = {
    "key": ("strlist", []),
    "keysecondary": ("strlist", []),
    "comment": ("str", ""),
    "content": ("str", ""),
    "constant": ("bool", False),
    "vectorized": ("bool", False),
    "selective": ("bool", True),
    "selectiveLogic": ("logic", 0),
    "addMemo": ("bool", False),
    "order": ("int", 100),
    "position": ("position", 0),
    "disable": ("bool", False),
    "excludeRecursion": ("bool", False),
    "preventRecursion": ("bool", False),
    "delayUntilRecursion": ("delay_rec", 0),
    "probability": ("float", 100),
    "useProbability": ("bool", True),
    "depth": ("int", 4),
    "role": ("role", 0),
    "group": ("str", ""),
    "groupOverride": ("bool", False),
    "groupWeight": ("float", 100),
    "useGroupScoring": ("optbool", None),
    "scanDepth": ("optint", None),
    "caseSensitive": ("optbool", None),
    "matchWholeWords": ("optbool", None),
    "automationId": ("str", ""),
    "sticky": ("optint", None),
    "cooldown": ("optint", None),
    "delay": ("optint", None),
    "displayIndex": ("optint", None),
    "characterFilter": ("filter", None),
    "triggers": ("strlist", []),
    "matchPersonaDescription": ("bool", False),
    "matchCharacterDescription": ("bool", False),
    "matchCharacterPersonality": ("bool", False),
    "matchCharacterDepthPrompt": ("bool", False),
    "matchScenario": ("bool", False),
    "matchCreatorNotes": ("bool", False),
    "ignoreBudget": ("bool", False),
    "outletName": ("str", ""),
    "extensions": ("dict", {}),
}

_POSITION_NAMES = {"before_char": 0, "after_char": 1}
_ROLE_NAMES = {"system": 0, "user": 1, "assistant": 2}


class EntryNormalizer:
    """Turns raw SillyTavern-shaped entry dicts into entries, filling one report.

    Args:
        report: Receives repairs, drops and warnings.
        book: The book's name, for messages.
        quiet_absent: Do not report absent fields (converters leave them out on purpose).
    """

    def __init__(self, report: ImportReport, book: str = "", *, quiet_absent: bool = False) -> None:
        self.report = report
        self.book = book
        self.quiet_absent = quiet_absent
        self._absent: Counter[str] = Counter()

    def entry(self, raw: Any, uid: int, where: str) -> WorldEntry:
        """Normalise one entry dict.

        Args:
            raw: The entry as read from JSON.
            uid: The uid to give it (the caller resolved duplicates).
            where: How to name it in messages, e.g. ``entry "3"``.

        Raises:
            FormatError: ``raw`` is not an object, or a regex key does not compile.
            LimitExceededError: Too many keys, or a key is too long.
        """
        if not isinstance(raw, dict):
            raise FormatError(f"{where} is a {type(raw).__name__}, not an object; fix or remove it")
        data: dict[str, Any] = {"uid": uid}
        for alias, (kind, default) in _FIELDS.items():
            if alias not in raw:
                if not self.quiet_absent:
                    self._absent[alias] += 1
                data[alias] = _fresh(default)
                continue
            value = raw[alias]
            if value is None and not kind.startswith("opt") and kind != "filter":
                self.report.defaulted.append(f"{where}: {alias} was null, using {default!r}")
                data[alias] = _fresh(default)
                continue
            try:
                fixed = _coerce(kind, value)
            except Unreadable:
                self.report.repaired.append(
                    f"{where}: {alias}={_short(value)} is not a valid {kind}; using {default!r}"
                )
                data[alias] = _fresh(default)
                continue
            if not same(fixed, value):
                self.report.repaired.append(f"{where}: {alias}={_short(value)} read as {fixed!r}")
            data[alias] = fixed
        for name, value in raw.items():
            if name not in _FIELDS and name != "uid":
                data[name] = value
        self._check_keys(data, where)
        entry = WorldEntry.model_validate(data)
        if not entry.keys and not entry.constant and not entry.disable and not entry.content.startswith("@@"):
            self.report.warnings.append(
                f"{where} ({entry.title}) has no keys and is not constant: it never fires by itself"
            )
        if entry.scan_depth == 0:
            self.report.warnings.append(
                f"{where} ({entry.title}) has scanDepth 0: only extra sources and recursion are scanned"
            )
        return entry

    def finish(self, count: int) -> None:
        """Summarise absent fields into the report, one line per distinct count."""
        by_count: dict[int, list[str]] = {}
        for alias, n in self._absent.items():
            by_count.setdefault(n, []).append(alias)
        for n, aliases in sorted(by_count.items(), reverse=True):
            self.report.defaulted.append(
                f"absent in {n} of {count} entries, SillyTavern defaults used: {', '.join(aliases)}"
            )
        self._absent.clear()

    def _check_keys(self, data: dict[str, Any], where: str) -> None:
        for field in ("key", "keysecondary"):
            keys = data[field]
            if len(keys) > MAX_KEYS_PER_ENTRY:
                raise LimitExceededError(
                    f"{where}: {len(keys)} {field} entries (limit {MAX_KEYS_PER_ENTRY}); split the entry"
                )
            kept = []
            for key in keys:
                if len(key) > MAX_KEY_CHARS:
                    raise LimitExceededError(
                        f"{where}: a key is {len(key)} characters long (limit {MAX_KEY_CHARS}); shorten it"
                    )
                problem = check_key(key)
                if problem:
                    raise FormatError(
                        f"{where}: key {key!r} looks like a /regex/ but {problem}; "
                        "fix the pattern, or escape the slashes to match it as text"
                    )
                if key.strip():
                    kept.append(key)
                else:
                    self.report.dropped.append(f"{where}: empty {field} entry")
            data[field] = kept


def _fresh(default: Any) -> Any:
    return list(default) if isinstance(default, list) else dict(default) if isinstance(default, dict) else default


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _coerce(kind: str, value: Any) -> Any:  # noqa: C901 - one flat dispatch reads best here
    """Read ``value`` as a field of ``kind`` (see ``_FIELDS``); raises ``Unreadable``."""
    if kind in ("bool", "optbool"):
        return to_bool(value, any_number=False) if value is not None else None
    if kind in ("int", "optint"):
        return to_int(value) if value is not None else None
    if kind == "float":
        return to_float(value)
    if kind == "str":
        if isinstance(value, bool):
            raise Unreadable(value)
        return to_text(value)
    if kind == "strlist":
        return to_text_list(value, split_commas=True)
    if kind == "position":
        if isinstance(value, str) and value.strip().lower() in _POSITION_NAMES:
            return _POSITION_NAMES[value.strip().lower()]
        return _enum(value, Position)
    if kind == "logic":
        return _enum(value, SelectiveLogic)
    if kind == "role":
        if isinstance(value, str) and value.strip().lower() in _ROLE_NAMES:
            return _ROLE_NAMES[value.strip().lower()]
        return _enum(value, Role)
    if kind == "delay_rec":
        if isinstance(value, bool):  # SillyTavern writes false/true (level 1) or a level number
            return value
        number = to_int(value)
        if number < 0:
            raise Unreadable(value)
        return number
    if kind in ("filter", "dict"):
        if isinstance(value, dict) or (kind == "filter" and value is None):
            return value
        raise Unreadable(value)
    raise AssertionError(kind)


def _enum(value: Any, enum: type) -> int:
    number = to_int(value)
    if number not in {m.value for m in enum}:
        raise Unreadable(value)
    return number
