"""SillyTavern 1.12.6's reading of cards, worlds and chats, in Python, plus a runner for the JS twin.

``st_parse.js`` beside this file is the same logic in JavaScript, written after SillyTavern's
``src/character-card-parser.js``, ``src/endpoints/characters.js`` (``readFromV2``,
``importFromJson``, ``importFromCharX``), ``src/endpoints/chats.js`` and
``public/scripts/world-info.js`` (``convertNovelLorebook``). Where node is installed the tests
run both and require the same answers, so this Python twin is checked against JavaScript's own
JSON, base64 and UTF-8 handling.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Any

ST_PARSE_JS = Path(__file__).with_name("st_parse.js")
_FIELDS = {"name": "name", "description": "description", "personality": "personality", "scenario": "scenario",
           "first_mes": "first_mes", "mes_example": "mes_example", "talkativeness": "extensions.talkativeness",
           "fav": "extensions.fav", "tags": "tags"}


def _png_text(data: bytes, keyword: str | None) -> str:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("Invalid .png file header")
    texts, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        name, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        if name == b"IEND":
            break
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        if zlib.crc32(name + body) != crc:
            raise ValueError(f"CRC values for {name!r} do not match")
        if name == b"tEXt":
            key, _, text = body.partition(b"\0")
            texts.append((key.decode("latin-1"), text.decode("latin-1")))
        at += 12 + length
    for wanted in [keyword] if keyword else ["ccv3", "chara"]:
        for key, text in texts:
            if key.lower() == wanted:
                return base64.b64decode(text).decode("utf-8", errors="replace")
    raise ValueError("No PNG metadata.")


def read_from_v2(char: dict[str, Any]) -> dict[str, Any]:
    """SillyTavern's ``readFromV2``: top-level fields rebuilt from ``data`` (``chat`` fixed)."""
    if "data" not in char:
        return char
    for field, path in _FIELDS.items():
        value: Any = char["data"]
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                break
        if value is None and not _has(char["data"], path):
            if field == "talkativeness":
                char[field] = 0.5
            elif field == "fav":
                char[field] = False
            continue
        char[field] = value
    if char.get("chat") is None:
        char["chat"] = "<now>"
    return char


def _has(data: dict[str, Any], path: str) -> bool:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def read_card(path: Path, how: str | None = None) -> dict[str, Any]:
    """``{"parsed": the card JSON, "char": after readFromV2}``; ``how="chara"`` reads that chunk."""
    data = Path(path).read_bytes()
    if data.startswith(b"\x89PNG"):
        text = _png_text(data, how)
    elif data.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            text = archive.read("card.json").decode("utf-8")
    else:
        text = data.decode("utf-8")
    parsed = json.loads(text)
    return {"parsed": parsed, "char": read_from_v2(copy.deepcopy(parsed))}


def read_chat(path: Path) -> list[Any]:
    """``chats.js``: split on ``\\n``, parse each line, drop what fails (and falsy values)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if value:
            out.append(value)
    return out


def convert_novel_lorebook(novel: dict[str, Any]) -> dict[str, Any]:
    """``world-info.js`` ``convertNovelLorebook`` (the fields it sets over its entry template)."""
    entries = {}
    for index, entry in enumerate(novel["entries"]):
        name = entry.get("displayName")
        entries[str(index)] = {
            "uid": index, "key": entry.get("keys"), "keysecondary": [], "comment": name or "",
            "content": entry.get("text"), "constant": False, "selective": False, "vectorized": False,
            "selectiveLogic": 0, "order": (entry.get("contextConfig") or {}).get("budgetPriority", 0),
            "position": 0, "disable": not entry.get("enabled"), "addMemo": name is not None and name.strip() != "",
            "excludeRecursion": False, "delayUntilRecursion": False, "displayIndex": index, "probability": 100,
            "useProbability": True, "group": "", "groupOverride": False, "groupWeight": 100, "scanDepth": None,
            "caseSensitive": None, "matchWholeWords": None, "useGroupScoring": None, "automationId": "", "role": 0,
            "sticky": None, "cooldown": None, "delay": None,
        }
    return {"entries": entries}


def node() -> str | None:
    """The node binary, or ``None``."""
    return shutil.which("node") or shutil.which("nodejs")


def run_node(kind: str, files: list[str]) -> list[Any]:
    """Run ``st_parse.js`` on files (``path`` or ``path::chara``); its parsed results."""
    binary = node()
    assert binary is not None
    done = subprocess.run([binary, str(ST_PARSE_JS), kind, *files], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def kind_of(value: Any) -> str:
    """The JSON type, as JavaScript sees it (an int and a float are both numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def compare(before: Any, after: Any, path: str = "") -> tuple[list[str], list[str]]:
    """Every field of ``before`` must be in ``after`` with the same value and JSON type.

    Returns:
        ``(differences, added)``: what changed or went missing, and the paths only ``after`` has.
    """
    if kind_of(before) != kind_of(after):
        return [f"{path or '.'}: {kind_of(before)} {before!r:.60} became {kind_of(after)} {after!r:.60}"], []
    if isinstance(before, dict):
        diffs: list[str] = []
        added = [f"{path}.{k}" for k in after if k not in before]
        for key, value in before.items():
            if key not in after:
                diffs.append(f"{path}.{key}: missing")
                continue
            d, a = compare(value, after[key], f"{path}.{key}")
            diffs += d
            added += a
        return diffs, added
    if isinstance(before, list):
        if len(before) != len(after):
            return [f"{path}: {len(before)} items became {len(after)}"], []
        diffs, added = [], []
        for i, (x, y) in enumerate(zip(before, after, strict=True)):
            d, a = compare(x, y, f"{path}[]")
            diffs += [s.replace("[]", f"[{i}]", 1) for s in d]
            added += a
        return diffs, added
    return ([] if before == after else [f"{path}: {before!r:.60} became {after!r:.60}"]), []
