"""SillyTavern world JSON and character-card books (V2 ``character_book``, ``lorebook_v3``).

A card book converts to a world as SillyTavern's ``convertCharacterBook`` does, with two
deliberate differences: an entry without ``enabled`` stays enabled (SillyTavern computes
``!undefined`` and disables it), and a top-level ``case_sensitive`` is honoured when the
extensions carry none. The card book is kept whole as ``original_data``; exporting writes every
unchanged entry back verbatim, so card -> world -> card is lossless.
"""

from __future__ import annotations

import copy
from typing import Any

from storyteller.errors import FormatError, LimitExceededError
from storyteller.lore._normalize import EntryNormalizer
from storyteller.lore.model import ImportReport, Lorebook, Position, WorldEntry

__all__ = [
    "MAX_ENTRIES",
    "from_character_book",
    "read_sillytavern",
    "to_character_book",
    "to_lorebook_v3",
    "write_sillytavern",
]

MAX_ENTRIES = 20_000

# card extension key -> SillyTavern world field (``originalWIDataKeyMap`` plus newer fields)
_EXT_TO_WORLD = {
    "position": "position",
    "exclude_recursion": "excludeRecursion",
    "prevent_recursion": "preventRecursion",
    "delay_until_recursion": "delayUntilRecursion",
    "display_index": "displayIndex",
    "probability": "probability",
    "useProbability": "useProbability",
    "depth": "depth",
    "selectiveLogic": "selectiveLogic",
    "group": "group",
    "group_override": "groupOverride",
    "group_weight": "groupWeight",
    "scan_depth": "scanDepth",
    "case_sensitive": "caseSensitive",
    "match_whole_words": "matchWholeWords",
    "use_group_scoring": "useGroupScoring",
    "automation_id": "automationId",
    "role": "role",
    "vectorized": "vectorized",
    "sticky": "sticky",
    "cooldown": "cooldown",
    "delay": "delay",
    "match_persona_description": "matchPersonaDescription",
    "match_character_description": "matchCharacterDescription",
    "match_character_personality": "matchCharacterPersonality",
    "match_character_depth_prompt": "matchCharacterDepthPrompt",
    "match_scenario": "matchScenario",
    "match_creator_notes": "matchCreatorNotes",
    "triggers": "triggers",
    "ignore_budget": "ignoreBudget",
    "outlet_name": "outletName",
}
_CARD_TOP = {
    "id", "keys", "secondary_keys", "comment", "content", "constant", "selective",
    "insertion_order", "enabled", "position", "extensions", "case_sensitive", "use_regex",
    "priority", "name",
}  # fmt: skip


def read_sillytavern(data: dict[str, Any], name: str, report: ImportReport) -> Lorebook:
    """Read a SillyTavern world file (``entries`` is an object keyed by uid).

    Args:
        data: The parsed JSON object.
        name: The book name (usually the file name without extension).
        report: Receives repairs and warnings.

    Raises:
        FormatError: ``entries`` is missing or not an object/array, or an entry is unusable.
        LimitExceededError: More than ``MAX_ENTRIES`` entries.
    """
    report.source_format = report.source_format or "sillytavern"
    raw_entries = data.get("entries")
    if isinstance(raw_entries, list):
        report.repaired.append("entries was an array; read it as an object keyed by uid")
        raw_entries = {str(i): e for i, e in enumerate(raw_entries)}
    if not isinstance(raw_entries, dict):
        raise FormatError(f"world {name!r}: 'entries' must be an object keyed by uid; this is not a world file")
    if len(raw_entries) > MAX_ENTRIES:
        raise LimitExceededError(f"world {name!r} has {len(raw_entries)} entries (limit {MAX_ENTRIES})")
    normalizer = EntryNormalizer(report, name)
    used: set[int] = set()
    pending: list[tuple[str, Any, int | None]] = []
    for file_key, raw in raw_entries.items():
        uid = _uid_of(raw.get("uid") if isinstance(raw, dict) else None, file_key)
        if uid is not None and uid not in used:
            used.add(uid)
        else:
            uid = None
        pending.append((file_key, raw, uid))
    entries = []
    for file_key, raw, uid in pending:
        if uid is None:
            uid = max(used, default=-1) + 1
            used.add(uid)
            report.repaired.append(f'entry "{file_key}": missing or duplicate uid, given uid {uid}')
        entries.append(normalizer.entry(raw, uid, f'entry "{file_key}"'))
    normalizer.finish(len(entries))
    extra = {k: v for k, v in data.items() if k not in ("entries", "originalData")}
    # SillyTavern names a world by its file; a "name"/"description" in the file (ours) wins.
    if isinstance(extra.get("name"), str) and extra["name"].strip():
        name = extra.pop("name").strip()
    description = extra.pop("description") if isinstance(extra.get("description"), str) else ""
    original = data.get("originalData")
    if original is not None and not isinstance(original, dict):
        report.dropped.append("originalData was not an object")
        original = None
    return Lorebook(name=name, description=description, entries=entries, original_data=original, extra=extra)


def write_sillytavern(book: Lorebook) -> dict[str, Any]:
    """Return the SillyTavern world JSON object for ``book`` (every field written)."""
    out: dict[str, Any] = dict(book.extra)
    if book.name:
        out["name"] = book.name
    if book.description:
        out["description"] = book.description
    out["entries"] = {str(e.uid): _dump_world_entry(e) for e in book.entries}
    if book.original_data is not None:
        out["originalData"] = book.original_data
    return out


def _dump_world_entry(entry: WorldEntry) -> dict[str, Any]:
    data = entry.model_dump(by_alias=True, mode="json")
    if entry.character_filter is None:
        data.pop("characterFilter", None)
    return data


def _uid_of(value: Any, fallback: str) -> int | None:
    for candidate in (value, fallback):
        if isinstance(candidate, bool):
            continue
        if isinstance(candidate, int):
            return candidate
        if isinstance(candidate, str) and candidate.strip().lstrip("-").isdigit():
            return int(candidate)
        if isinstance(candidate, float) and candidate.is_integer():
            return int(candidate)
    return None


def _card_entry_to_raw(entry: dict[str, Any], index: int, report: ImportReport, where: str) -> dict[str, Any]:
    ext = entry.get("extensions")
    if not isinstance(ext, dict):
        if ext is not None:
            report.dropped.append(f"{where}: extensions was not an object")
        ext = {}
    raw: dict[str, Any] = {
        "key": entry.get("keys", []),
        "keysecondary": entry.get("secondary_keys") or [],
        "comment": entry.get("comment") or "",
        "content": entry.get("content", ""),
        "constant": bool(entry.get("constant") or False),
        "selective": bool(entry.get("selective") or False),
        "order": entry.get("insertion_order", 100),
        "disable": not entry.get("enabled", True),
        "addMemo": bool(entry.get("comment")),
        "displayIndex": index,
    }
    if "enabled" not in entry:
        report.defaulted.append(f"{where}: no 'enabled'; kept enabled (SillyTavern would disable it)")
    if ext.get("position") is not None:
        raw["position"] = ext["position"]
    else:
        raw["position"] = 0 if entry.get("position") == "before_char" else 1
    if ext.get("case_sensitive") is None and isinstance(entry.get("case_sensitive"), bool):
        raw["caseSensitive"] = entry["case_sensitive"]
    for ext_key, world_key in _EXT_TO_WORLD.items():
        if ext_key == "position":
            continue
        value = ext.get(ext_key)
        if value is not None:
            raw[world_key] = value
    # The card's extension object travels with the entry (SillyTavern keeps it as ``extensions``).
    raw["extensions"] = copy.deepcopy(ext)
    return raw


def from_character_book(book: Any, report: ImportReport | None = None, name: str = "") -> Lorebook:
    """Convert a card's ``character_book`` dict (V2 spec shape) into a :class:`Lorebook`.

    Args:
        book: The ``character_book`` object (``card.character_book.model_dump()``) or the
            ``data`` of a ``lorebook_v3`` file.
        report: Receives repairs; a fresh one is used when omitted.
        name: Fallback name when the book has none.

    Raises:
        FormatError: Not an object with an ``entries`` array.
        LimitExceededError: Too many entries.
    """
    report = report if report is not None else ImportReport()
    report.source_format = report.source_format or "character_book"
    if not isinstance(book, dict) or not isinstance(book.get("entries"), list):
        raise FormatError("character book: expected an object with an 'entries' array")
    items = book["entries"]
    if len(items) > MAX_ENTRIES:
        raise LimitExceededError(f"character book has {len(items)} entries (limit {MAX_ENTRIES})")
    book_name = book.get("name") if isinstance(book.get("name"), str) else ""
    normalizer = EntryNormalizer(report, book_name or name, quiet_absent=True)
    entries: list[WorldEntry] = []
    used: set[int] = set()
    for index, item in enumerate(items):
        where = f"character book entry {index}"
        if not isinstance(item, dict):
            raise FormatError(f"{where} is not an object; fix or remove it")
        uid = _card_uid(item, index, used)
        if uid != item.get("id"):
            report.repaired.append(f"{where}: id {item.get('id')!r} used as uid {uid}")
        used.add(uid)
        raw = _card_entry_to_raw(item, index, report, where)
        entries.append(normalizer.entry(raw, uid, where))
        for key in item:
            if key not in _CARD_TOP:
                report.warnings.append(f"{where}: unknown field {key!r} kept for export")
    normalizer.finish(len(entries))
    return Lorebook(
        name=book_name or name,
        description=book.get("description") if isinstance(book.get("description"), str) else "",
        entries=entries,
        scan_depth=_opt_int(book.get("scan_depth")),
        token_budget=_opt_int(book.get("token_budget")),
        recursive_scanning=book.get("recursive_scanning") if isinstance(book.get("recursive_scanning"), bool) else None,
        extensions=dict(book.get("extensions") or {}) if isinstance(book.get("extensions"), dict) else {},
        original_data=copy.deepcopy(book),
    )


def _card_uid(item: dict[str, Any], index: int, used: set[int]) -> int:
    uid = _uid_of(item.get("id"), str(index))
    if uid is None or uid in used:
        uid = index if index not in used else max(used, default=-1) + 1
    return uid


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _fresh_card_entry(entry: WorldEntry, base: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    ext = copy.deepcopy(base.get("extensions") or {})
    ext.update(copy.deepcopy(entry.extensions))
    world = entry.model_dump(by_alias=True, mode="json")
    for ext_key, world_key in _EXT_TO_WORLD.items():
        ext[ext_key] = world[world_key]
    out.update(
        {
            "id": entry.uid,
            "keys": list(entry.keys),
            "secondary_keys": list(entry.secondary_keys),
            "comment": entry.comment,
            "content": entry.content,
            "constant": entry.constant,
            "selective": entry.selective,
            "insertion_order": entry.order,
            "enabled": not entry.disable,
            "position": "before_char" if entry.position == Position.BEFORE_CHAR else "after_char",
            "use_regex": True,
            "extensions": ext,
        }
    )
    return out


def to_character_book(book: Lorebook) -> dict[str, Any]:
    """Return the card ``character_book`` dict for ``book``.

    Entries unchanged since import are written exactly as they were read; changed or new ones
    get every field (SillyTavern's ``convertWorldInfoToCharacterBook`` layout).
    """
    original = book.original_data if isinstance(book.original_data, dict) else {}
    originals: dict[int, tuple[int, dict[str, Any]]] = {}
    used: set[int] = set()
    for index, item in enumerate(original.get("entries") or []):
        if isinstance(item, dict):
            uid = _card_uid(item, index, used)
            used.add(uid)
            originals[uid] = (index, item)
    entries = []
    for entry in book.entries:
        index, source = originals.get(entry.uid, (0, None))
        if source is not None and _unchanged(source, index, entry):
            entries.append(copy.deepcopy(source))
        else:
            entries.append(_fresh_card_entry(entry, source or {}))
    out = {k: copy.deepcopy(v) for k, v in original.items() if k != "entries"}
    for key, value, normalise in (
        ("name", book.name, lambda v: v if isinstance(v, str) else ""),
        ("description", book.description, lambda v: v if isinstance(v, str) else ""),
        ("scan_depth", book.scan_depth, _opt_int),
        ("token_budget", book.token_budget, _opt_int),
        ("recursive_scanning", book.recursive_scanning, lambda v: v if isinstance(v, bool) else None),
    ):
        if key in original and normalise(original[key]) == value:
            continue  # unchanged: keep the original spelling (null, "", ...)
        if value not in (None, "") or key in original or key == "name":
            out[key] = value
    same_ext = original.get("extensions") == book.extensions or ("extensions" not in original and not book.extensions)
    if not original or not same_ext:
        out["extensions"] = copy.deepcopy(book.extensions)
    out["entries"] = entries
    return out


def _unchanged(source: dict[str, Any], index: int, entry: WorldEntry) -> bool:
    scratch = ImportReport()
    raw = _card_entry_to_raw(source, index, scratch, "")
    try:
        again = EntryNormalizer(scratch).entry(raw, entry.uid, "")
    except (FormatError, ValueError):
        return False
    return again.model_dump() == entry.model_dump()


def to_lorebook_v3(book: Lorebook) -> dict[str, Any]:
    """Return a standalone ``lorebook_v3`` file object (``{spec, data}``)."""
    data = to_character_book(book)
    for entry in data["entries"]:
        entry.setdefault("use_regex", True)
    return {"spec": "lorebook_v3", "data": data}
