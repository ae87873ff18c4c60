"""Lenient normalisation of raw card dicts, recording every change in an ImportReport.

The rules for reading a loosely typed value are :mod:`storyteller.coerce`'s, shared with world
info and chats; this module applies them to the card's shape.

Input from the wild has ``""`` where numbers belong, strings where lists belong and ``null``
everywhere. These helpers turn a raw ``data`` dict into one that validates against
:class:`~.model.Card` without surprises, and say what they did. What already fits the model is
kept byte for byte and type for type: CRLF line endings stay (the prompt builder normalises
them), and ``extensions`` is kept verbatim, SillyTavern's string ``"0.5"`` talkativeness
included (the card's typed accessors read such values leniently).
"""

from __future__ import annotations

from typing import Any

from storyteller.cards.model import ImportReport
from storyteller.coerce import Unreadable, to_bool, to_int, to_text

__all__ = ["Normaliser"]

TEXT_FIELDS = (
    "name", "description", "personality", "scenario", "first_mes", "mes_example",
    "creator_notes", "system_prompt", "post_history_instructions", "creator", "character_version",
)
# Comma-separated strings are split for these; a greeting given as a string is one greeting.
SPLIT_LIST_FIELDS = ("tags",)
WHOLE_LIST_FIELDS = ("alternate_greetings", "group_only_greetings")
V3_REQUIRED = ("group_only_greetings",)
BOOK_POSITIONS = ("before_char", "after_char")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class Normaliser:
    """Coerces raw values field by field and writes what it changed into a report.

    Args:
        report: Receives repaired/defaulted/dropped messages.
        strict_v3: The input claims V3, so V3-required fields that are missing are reported.
    """

    def __init__(self, report: ImportReport, *, strict_v3: bool = False) -> None:
        self.report = report
        self.strict_v3 = strict_v3
        self._missing: list[str] = []

    # -- scalar coercions ---------------------------------------------------------------
    def text(self, value: Any, where: str) -> str:
        """A string; numbers/bools become text, lists of strings are joined by newlines."""
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            self.report.repaired.append(f"{where}: list of lines joined into one text")
            return "\n".join(value)
        try:
            out = to_text(value)
        except Unreadable:
            self.report.dropped.append(f"{where}: expected text, got {_kind(value)}")
            return ""
        self.report.repaired.append(f"{where}: {'boolean' if isinstance(value, bool) else 'number'} turned into text")
        return out

    def text_list(self, value: Any, where: str, *, split_commas: bool) -> list[str]:
        """A list of strings; a lone string becomes one item (or is split on commas)."""
        if value is None:
            return []
        if isinstance(value, str):
            if not value.strip():
                self.report.repaired.append(f"{where}: empty text where a list belongs; made []")
                return []
            items = [p.strip() for p in value.split(",")] if split_commas else [value]
            self.report.repaired.append(f"{where}: text where a list belongs; made a list")
            return [self.text(i, where) for i in items if i]
        if isinstance(value, dict):
            self.report.repaired.append(f"{where}: object where a list belongs; took its values")
            value = list(value.values())
        if not isinstance(value, list):
            value = [value]
            self.report.repaired.append(f"{where}: single value where a list belongs; made a list")
        out = []
        for i, item in enumerate(value):
            if item is None or isinstance(item, dict | list):
                self.report.dropped.append(f"{where}[{i}]: expected text, got {_kind(item)}")
                continue
            out.append(self.text(item, f"{where}[{i}]"))
        return out

    def integer(self, value: Any, where: str, default: int | None) -> int | None:
        """An int; ``""``/null give the default, numeric strings and floats are converted."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if value is None:
            return default
        if isinstance(value, str) and not value.strip():
            if default is not None:
                self.report.defaulted.append(f"{where}: empty; set to {default}")
            return default
        try:
            number = to_int(value, truncate=True, allow_bool=True)
        except Unreadable:
            self.report.dropped.append(f"{where}: {value!r:.40} is not a finite number; used {default}")
            return default
        self.report.repaired.append(f"{where}: {value!r:.40} turned into the number {number}")
        return number

    def boolean(self, value: Any, where: str, default: bool | None) -> bool | None:
        """A bool; ``"false"``/``"0"``/``"no"`` and friends are understood."""
        if isinstance(value, bool):
            return value
        if value is None:
            return default
        try:
            result = to_bool(value)
        except Unreadable:
            self.report.dropped.append(f"{where}: {value!r:.40} is not a boolean; used {default}")
            return default
        self.report.repaired.append(f"{where}: {value!r:.20} turned into {result}")
        return result

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        """A dict; anything else becomes ``{}``."""
        if isinstance(value, dict):
            return value
        if value is not None:
            self.report.dropped.append(f"{where}: expected an object, got {_kind(value)}")
        return {}

    # -- card data ------------------------------------------------------------------------
    def card_data(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Normalise a V2/V3 ``data`` dict (or an upgraded V1 dict) for ``Card``."""
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in _KNOWN_CARD_KEYS:
                out[key] = value  # unknown keys are kept verbatim
        for key in TEXT_FIELDS:
            if key not in raw:
                self._missing.append(key)
            out[key] = self.text(raw.get(key), key)
        for key in (*SPLIT_LIST_FIELDS, *WHOLE_LIST_FIELDS):
            if key not in raw and (key != "group_only_greetings" or self.strict_v3):
                self._missing.append(key)
            out[key] = self.text_list(raw.get(key), key, split_commas=key in SPLIT_LIST_FIELDS)
        if "extensions" not in raw:
            self._missing.append("extensions")
        out["extensions"] = self.extensions(raw.get("extensions"))
        if raw.get("character_book") is not None:
            book = self.book(raw["character_book"])
            if book is not None:
                out["character_book"] = book
        if raw.get("assets") is not None:
            out["assets"] = self.assets(raw["assets"])
        if raw.get("nickname") is not None:
            out["nickname"] = self.text(raw["nickname"], "nickname")
        if raw.get("creator_notes_multilingual") is not None:
            notes = self.mapping(raw["creator_notes_multilingual"], "creator_notes_multilingual")
            out["creator_notes_multilingual"] = {
                str(k): self.text(v, f"creator_notes_multilingual.{k}") for k, v in notes.items()
            }
        if raw.get("source") is not None:
            out["source"] = self.text_list(raw["source"], "source", split_commas=False)
        for key in ("creation_date", "modification_date"):
            if raw.get(key) is not None:
                out[key] = self.timestamp(raw[key], key)
        return out

    def timestamp(self, value: Any, where: str) -> int | None:
        """Unix seconds; millisecond values are scaled down."""
        seconds = self.integer(value, where, None)
        if seconds is not None and abs(seconds) > 10**11:
            self.report.repaired.append(f"{where}: milliseconds turned into seconds")
            seconds //= 1000
        return seconds

    def extensions(self, value: Any) -> dict[str, Any]:
        """Every key verbatim: values are the card author's, typed or not (see the Card accessors)."""
        return dict(self.mapping(value, "extensions"))

    def assets(self, value: Any) -> list[dict[str, Any]]:
        """V3 assets; entries that are not objects are dropped."""
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                self.report.dropped.append(f"assets[{i}]: expected an object, got {_kind(item)}")
                continue
            asset = dict(item)
            for key, default in (("type", "icon"), ("uri", "ccdefault:"), ("name", "main"), ("ext", "png")):
                if key not in asset or asset[key] is None:
                    self.report.defaulted.append(f"assets[{i}].{key}: missing; set to {default!r}")
                    asset[key] = default
                else:
                    asset[key] = self.text(asset[key], f"assets[{i}].{key}")
            out.append(asset)
        return out

    # -- character_book -------------------------------------------------------------------
    def book(self, value: Any) -> dict[str, Any] | None:
        """Normalise ``character_book``; ``None`` when it is unusable."""
        if not isinstance(value, dict):
            self.report.dropped.append(f"character_book: expected an object, got {_kind(value)}")
            return None
        out = {k: v for k, v in value.items() if k not in _KNOWN_BOOK_KEYS}
        for key in ("name", "description"):
            if value.get(key) is not None:
                out[key] = self.text(value[key], f"character_book.{key}")
        for key in ("scan_depth", "token_budget"):
            if value.get(key) is not None:
                number = self.integer(value[key], f"character_book.{key}", None)
                if number is not None:
                    out[key] = number
        if value.get("recursive_scanning") is not None:
            out["recursive_scanning"] = self.boolean(
                value["recursive_scanning"], "character_book.recursive_scanning", None
            )
        out["extensions"] = dict(self.mapping(value.get("extensions"), "character_book.extensions"))
        entries = value.get("entries")
        if isinstance(entries, dict):
            self.report.repaired.append("character_book.entries: object keyed by id turned into a list")
            entries = list(entries.values())
        elif entries is None:
            entries = []
        elif not isinstance(entries, list):
            self.report.dropped.append(f"character_book.entries: expected a list, got {_kind(entries)}")
            entries = []
        out["entries"] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                self.report.dropped.append(f"character_book.entries[{i}]: not an object")
                continue
            out["entries"].append(self.entry(entry, f"character_book.entries[{i}]"))
        return out

    def entry(self, raw: dict[str, Any], where: str) -> dict[str, Any]:
        """Normalise one book entry, keeping unknown keys and its extensions verbatim."""
        out = {k: v for k, v in raw.items() if k not in _KNOWN_ENTRY_KEYS}
        missing = [k for k in ("keys", "content", "extensions", "enabled", "insertion_order") if k not in raw]
        if self.strict_v3 and "use_regex" not in raw:
            missing.append("use_regex")
        if missing:
            self.report.defaulted.append(f"{where}: missing {', '.join(missing)}; defaults used")
        out["keys"] = self.text_list(raw.get("keys"), f"{where}.keys", split_commas=True)
        out["content"] = self.text(raw.get("content"), f"{where}.content")
        out["extensions"] = dict(self.mapping(raw.get("extensions"), f"{where}.extensions"))
        out["enabled"] = self.boolean(raw.get("enabled"), f"{where}.enabled", True)
        out["insertion_order"] = self.integer(raw.get("insertion_order"), f"{where}.insertion_order", 100)
        out["use_regex"] = self.boolean(raw.get("use_regex"), f"{where}.use_regex", False)
        for key in ("case_sensitive", "selective", "constant"):
            if raw.get(key) is not None:
                out[key] = self.boolean(raw[key], f"{where}.{key}", None)
        for key in ("name", "comment"):
            if raw.get(key) is not None:
                out[key] = self.text(raw[key], f"{where}.{key}")
        if raw.get("priority") is not None:
            out["priority"] = self.integer(raw["priority"], f"{where}.priority", None)
        if raw.get("id") is not None:
            ident = raw["id"]
            if isinstance(ident, bool) or not isinstance(ident, int | str):
                out["id"] = self.integer(ident, f"{where}.id", None)
            else:
                out["id"] = ident
        if raw.get("secondary_keys") is not None:
            out["secondary_keys"] = self.text_list(
                raw["secondary_keys"], f"{where}.secondary_keys", split_commas=True
            )
        if raw.get("position") is not None:
            out["position"] = self.position(raw["position"], f"{where}.position")
        return {k: v for k, v in out.items() if v is not None or k not in _KNOWN_ENTRY_KEYS}

    def position(self, value: Any, where: str) -> str | None:
        """``before_char``/``after_char``; SillyTavern's numbers map 0 to before, else after."""
        if value in BOOK_POSITIONS:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            result = "before_char" if value == 0 else "after_char"
            self.report.repaired.append(f"{where}: number {value} turned into {result!r}")
            return result
        if isinstance(value, str) and value.strip().lower() in BOOK_POSITIONS:
            self.report.repaired.append(f"{where}: {value!r:.20} normalised")
            return value.strip().lower()
        self.report.dropped.append(f"{where}: {value!r:.40} is not before_char/after_char")
        return None

    def finish(self, *, announce_missing: bool = True) -> None:
        """Write the aggregated message about missing fields into the report."""
        if self._missing and announce_missing:
            self.report.defaulted.append(f"missing fields set to defaults: {', '.join(self._missing)}")
        self._missing = []


_KNOWN_CARD_KEYS = frozenset(
    {*TEXT_FIELDS, *SPLIT_LIST_FIELDS, *WHOLE_LIST_FIELDS, "extensions", "character_book", "assets",
     "nickname", "creator_notes_multilingual", "source", "creation_date", "modification_date"}
)
_KNOWN_BOOK_KEYS = frozenset(
    {"name", "description", "scan_depth", "token_budget", "recursive_scanning", "extensions", "entries"}
)
_KNOWN_ENTRY_KEYS = frozenset(
    {"keys", "content", "extensions", "enabled", "insertion_order", "use_regex", "case_sensitive", "name",
     "priority", "id", "comment", "selective", "secondary_keys", "constant", "position"}
)
