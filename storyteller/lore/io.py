"""Reading and writing lorebook files: format detection, size limits, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from storyteller.errors import FormatError, LimitExceededError
from storyteller.fileio import atomic_write, check_json_budget, read_limited
from storyteller.lore._foreign import read_kobold_lite, read_novelai
from storyteller.lore._formats import (
    from_character_book,
    read_sillytavern,
    to_character_book,
    to_lorebook_v3,
    write_sillytavern,
)
from storyteller.lore.model import ImportReport, Lorebook
from storyteller.textsafe import SURROGATE_NOTE, repair_surrogates

__all__ = [
    "EXPORT_FORMATS",
    "MAX_FILE_BYTES",
    "dump_lorebook",
    "load_lorebook",
    "parse_lorebook",
    "save_lorebook",
    "write_json_atomic",
]

MAX_FILE_BYTES = 32 * 1024 * 1024
EXPORT_FORMATS = ("sillytavern", "lorebook_v3", "character_book")


def parse_lorebook(data: Any, name: str = "") -> tuple[Lorebook, ImportReport]:
    """Detect the format of parsed JSON and read it.

    Recognised: SillyTavern world (``entries`` object), ``lorebook_v3``, a character card
    (its ``data.character_book``), a bare ``character_book``, NovelAI (``lorebookVersion``),
    Kobold Lite (a save with ``worldinfo``, or an array of ``key``/``content`` objects).

    Args:
        data: The parsed JSON value.
        name: The book name when the file carries none (usually the file stem).

    Raises:
        FormatError: Not a lorebook in any known format, or an unusable entry.
        LimitExceededError: Beyond a safety limit.
    """
    report = ImportReport()
    if isinstance(data, list):
        if all(isinstance(x, dict) and ("key" in x or "content" in x) for x in data):
            return read_kobold_lite(data, name, report), report
        raise FormatError(f"{name or 'lorebook'}: a JSON array that is not Kobold Lite world info")
    if not isinstance(data, dict):
        raise FormatError(f"{name or 'lorebook'}: expected a JSON object, got {type(data).__name__}")
    if "lorebookVersion" in data:
        return read_novelai(data, name, report), report
    if data.get("spec") == "lorebook_v3":
        report.source_format = "lorebook_v3"
        return from_character_book(data.get("data"), report, name), report
    if isinstance(data.get("spec"), str) and data["spec"].startswith("chara_card"):
        book = (data.get("data") or {}).get("character_book") if isinstance(data.get("data"), dict) else None
        if not isinstance(book, dict):
            raise FormatError(f"{name or 'card'}: this character card has no embedded lorebook")
        report.source_format = "character_book"
        return from_character_book(book, report, name), report
    if isinstance(data.get("entries"), dict):
        return read_sillytavern(data, name, report), report
    if isinstance(data.get("entries"), list):
        first = next((e for e in data["entries"] if isinstance(e, dict)), {})
        if "keys" in first or "insertion_order" in first:
            return from_character_book(data, report, name), report
        return read_sillytavern(data, name, report), report
    if isinstance(data.get("worldinfo"), list):
        return read_kobold_lite(data, name, report), report
    raise FormatError(
        f"{name or 'lorebook'}: not a lorebook (no 'entries', 'lorebookVersion' or 'worldinfo'); "
        "expected SillyTavern world JSON, lorebook_v3, NovelAI .lorebook or Kobold Lite world info"
    )


def load_lorebook(path: str | Path) -> tuple[Lorebook, ImportReport]:
    """Read a lorebook file of any supported format.

    Raises:
        FormatError: Unreadable, invalid JSON, or not a lorebook.
        LimitExceededError: Larger than ``MAX_FILE_BYTES``.
    """
    path = Path(path)
    raw = read_limited(path, MAX_FILE_BYTES, "lorebook")
    check_json_budget(raw, path.name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise LimitExceededError(f"{path.name}: JSON nested too deeply") from None
    try:
        data, repaired = repair_surrogates(data)
    except RecursionError:
        raise LimitExceededError(f"{path.name}: JSON nested too deeply") from None
    book, report = parse_lorebook(data, _stem(path))
    if repaired:
        report.repaired.append(f"{SURROGATE_NOTE} in {repaired} text field(s) with U+FFFD")
    return book, report


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".lorebook", ".json"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def dump_lorebook(book: Lorebook, fmt: str = "sillytavern") -> dict[str, Any]:
    """Return the JSON object of ``book`` in an export format.

    Args:
        book: The book.
        fmt: ``sillytavern`` (world JSON), ``lorebook_v3`` or ``character_book``.

    Raises:
        FormatError: Unknown format.
    """
    if fmt == "sillytavern":
        return write_sillytavern(book)
    if fmt == "lorebook_v3":
        return to_lorebook_v3(book)
    if fmt == "character_book":
        return to_character_book(book)
    raise FormatError(f"unknown lorebook format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")


def save_lorebook(book: Lorebook, path: str | Path, fmt: str = "sillytavern") -> Path:
    """Write ``book`` to ``path`` atomically, in SillyTavern's indented JSON style."""
    return write_json_atomic(Path(path), dump_lorebook(book, fmt))


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON in SillyTavern's indented style, atomically."""
    return atomic_write(path, (json.dumps(data, ensure_ascii=False, indent=4) + "\n").encode("utf-8"))
