"""NovelAI ``.lorebook`` (read only) and Kobold Lite world info (read, and written for Lite saves).

NovelAI follows SillyTavern's ``convertNovelLorebook`` (keys, text, displayName -> comment,
``contextConfig.budgetPriority`` -> order, enabled), plus ``forceActivation`` -> constant, which
SillyTavern drops. Kobold Lite entries match by substring, case-insensitively, so imported
entries pin ``matchWholeWords`` off to keep that behaviour; ``keyanti`` becomes NOT_ANY secondary
keys, or an ``@@exclude_keys`` decorator when the entry also has secondary keys.
:func:`to_kobold_lite` writes entries back the way Lite's own card import does (comma-joined
keys); what Lite cannot express is approximated and said in the returned notes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from storyteller.errors import FormatError, LimitExceededError
from storyteller.lore._formats import MAX_ENTRIES
from storyteller.lore._normalize import EntryNormalizer
from storyteller.lore.model import ImportReport, Lorebook, SelectiveLogic

__all__ = ["read_kobold_lite", "read_novelai", "to_kobold_lite"]

_NAI_USED = {"text", "displayName", "keys", "enabled", "contextConfig", "forceActivation"}


def read_novelai(data: dict[str, Any], name: str, report: ImportReport) -> Lorebook:
    """Read a NovelAI lorebook (an object with ``lorebookVersion``).

    Raises:
        FormatError: ``entries`` is not an array.
        LimitExceededError: Too many entries.
    """
    report.source_format = "novelai"
    items = data.get("entries")
    if not isinstance(items, list):
        raise FormatError(f"NovelAI lorebook {name!r}: 'entries' must be an array")
    if len(items) > MAX_ENTRIES:
        raise LimitExceededError(f"NovelAI lorebook {name!r} has {len(items)} entries (limit {MAX_ENTRIES})")
    normalizer = EntryNormalizer(report, name, quiet_absent=True)
    dropped: Counter[str] = Counter()
    entries = []
    for index, item in enumerate(items):
        where = f"NovelAI entry {index}"
        if not isinstance(item, dict):
            raise FormatError(f"{where} is not an object; fix or remove it")
        config = item.get("contextConfig") if isinstance(item.get("contextConfig"), dict) else {}
        display = item.get("displayName")
        raw = {
            "key": item.get("keys") or [],
            "keysecondary": [],
            "comment": display if isinstance(display, str) else "",
            "content": item.get("text", ""),
            "constant": bool(item.get("forceActivation")),
            "selective": False,
            "order": config.get("budgetPriority", 0),
            "position": 0,
            "disable": item.get("enabled") is False,
            "addMemo": bool(isinstance(display, str) and display.strip()),
            "displayIndex": index,
            "delayUntilRecursion": False,  # as SillyTavern's convertNovelLorebook writes it
        }
        if item.get("forceActivation"):
            report.repaired.append(f"{where}: forceActivation read as constant")
        for key in item:
            if key not in _NAI_USED and key not in ("id", "lastUpdatedAt"):
                dropped[key] += 1
        for key in config:
            if key != "budgetPriority":
                dropped[f"contextConfig.{key}"] += 1
        entries.append(normalizer.entry(raw, index, where))
    normalizer.finish(len(entries))
    for key, count in sorted(dropped.items()):
        report.dropped.append(f"NovelAI field {key} ({count} entries): no equivalent")
    for key in data:
        if key not in ("entries", "lorebookVersion"):
            report.dropped.append(f"NovelAI top-level {key!r}: no equivalent")
    return Lorebook(name=name, entries=entries)


def read_kobold_lite(data: Any, name: str, report: ImportReport) -> Lorebook:
    """Read Kobold Lite world info: a save file with ``worldinfo`` or a bare array of entries.

    Raises:
        FormatError: Not Kobold Lite world info.
        LimitExceededError: Too many entries.
    """
    report.source_format = "kobold_lite"
    location = 0
    if isinstance(data, dict):
        items = data.get("worldinfo")
        location = data.get("wiinsertlocation", 0) if isinstance(data.get("wiinsertlocation"), int) else 0
    else:
        items = data
    if not isinstance(items, list):
        raise FormatError(f"Kobold Lite world info {name!r}: expected a 'worldinfo' array")
    if len(items) > MAX_ENTRIES:
        raise LimitExceededError(f"Kobold Lite world info {name!r} has {len(items)} entries (limit {MAX_ENTRIES})")
    # Lite inserts after memory (0) or before the author's note (1).
    position = 2 if location == 1 else 0
    normalizer = EntryNormalizer(report, name, quiet_absent=True)
    entries = []
    for index, item in enumerate(items):
        where = f"Kobold Lite entry {index}"
        if not isinstance(item, dict):
            raise FormatError(f"{where} is not an object; fix or remove it")
        keys = _split(item.get("key"))
        secondary = _split(item.get("keysecondary"))
        anti = _split(item.get("keyanti"))
        selective = bool(item.get("selective")) and bool(secondary or anti)
        content = item.get("content", "")
        logic = 0
        if selective and anti and not secondary:
            secondary, logic = anti, 2
        elif selective and anti:
            content = f"@@exclude_keys {','.join(anti)}\n{content}"
            report.repaired.append(f"{where}: keyanti kept as an @@exclude_keys decorator")
        probability = item.get("probability", 100)
        raw = {
            "key": keys,
            "keysecondary": secondary if selective else [],
            "comment": item.get("comment") or "",
            "content": content,
            "constant": bool(item.get("constant")),
            "selective": selective,
            "selectiveLogic": logic,
            "order": 100,
            "position": position,
            "probability": probability,
            "useProbability": probability != 100,
            "matchWholeWords": False,
            "displayIndex": index,
        }
        for key in ("folder", "wigroup"):
            if item.get(key):
                report.dropped.append(f"{where}: {key} {item[key]!r} (Lite-only grouping)")
        entries.append(normalizer.entry(raw, index, where))
    normalizer.finish(len(entries))
    return Lorebook(name=name, entries=entries)


def _split(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return []


def to_kobold_lite(book: Lorebook) -> tuple[list[dict[str, Any]], list[str]]:
    """The book's entries as Kobold Lite world info, and notes on what Lite cannot express.

    Disabled entries are left out (Lite has no switch for them). Lite matches every key as
    text, anywhere, without case; its secondary keys mean AND ANY and its ``keyanti`` NOT ANY,
    so AND ALL and NOT ALL are approximated by those.
    """
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    for entry in book.entries:
        if entry.disable:
            notes.append(f"{book.name}: disabled entry {entry.title!r} left out")
            continue
        content, anti = entry.content, []
        if content.startswith("@@exclude_keys "):  # how read_kobold_lite kept keyanti beside keysecondary
            head, _, rest = content.partition("\n")
            anti, content = _split(head.removeprefix("@@exclude_keys ")), rest
        secondary = list(entry.secondary_keys) if entry.selective else []
        logic = entry.selective_logic
        if secondary and logic in (SelectiveLogic.NOT_ANY, SelectiveLogic.NOT_ALL):
            anti, secondary = [*anti, *secondary], []
        if logic in (SelectiveLogic.NOT_ALL, SelectiveLogic.AND_ALL) and entry.secondary_keys and entry.selective:
            notes.append(f"{book.name}: entry {entry.title!r} uses {logic.name}; Lite reads it as "
                         f"{'NOT ANY' if logic == SelectiveLogic.NOT_ALL else 'AND ANY'}")
        probability = entry.probability if entry.use_probability and entry.probability < 100 else 100
        out.append({
            "key": ",".join(entry.keys),
            "keysecondary": ",".join(secondary),
            "keyanti": ",".join(anti),
            "content": content,
            "comment": entry.comment,
            "folder": None,
            "selective": bool(secondary or anti),
            "constant": entry.constant,
            "probability": probability,
        })
    return out, notes
