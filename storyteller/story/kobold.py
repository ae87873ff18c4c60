"""Kobold Lite save files (JSON), both directions.

Lite keeps a story as chunks: ``prompt`` (the first) and ``actions`` (the rest), with earlier
retries under ``actions_metadata[i]["Alternative Text"]``. Each chunk becomes a node and each
alternative a sibling. Lite formats chunks by mode (``"\\nYou: hi"`` in chat mode,
``"{{[INPUT]}}...{{[OUTPUT]}}"`` in instruct mode, ``"\\n\\n> look"`` in adventure mode); the
node keeps the text without that formatting and the formatting itself in
``extra["kobold"]``, so export rebuilds the chunks exactly. Memory and the author's note map to
story settings; world info and every other key are kept as raw data for export.
KoboldAI United's v2 saves (``file_version``) are read too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from storyteller.coerce import as_int, as_text
from storyteller.errors import FormatError
from storyteller.story._imported import ImportedStory
from storyteller.story.model import AUTHOR_NARRATOR, AUTHOR_USER, Node, StorySettings
from storyteller.story.tree import StoryTree

__all__ = ["export_kobold", "import_kobold"]

_MODES = {1: "story", 2: "adventure", 3: "chat", 4: "instruct"}
_OPMODES = {v: k for k, v in _MODES.items()}
_CHAT_LINE = re.compile(r"^(\n*)([^\n:]{1,80}):( ?)(.*)$", re.S)
_ADVENTURE = re.compile(r"^(\n*> )(.*?)(\n*)$", re.S)
_INSTRUCT = re.compile(r"^(\s*\{\{\[INPUT\]\}\}\s*)(.*?)(\s*\{\{\[OUTPUT\]\}\}\s*)$", re.S)
_SPLIT_KEYS = ("prompt", "actions", "actions_metadata", "memory", "authorsnote", "authornote")


def import_kobold(data: bytes | str, *, title: str = "imported") -> ImportedStory:
    """Read a Kobold Lite (or KoboldAI United v2) save file.

    Raises:
        FormatError: It is not JSON, or not a Kobold save.
    """
    try:
        save = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"the Kobold save is not valid JSON ({exc}); save it again from Kobold Lite's Save menu") from None
    if not isinstance(save, dict):
        raise FormatError("a Kobold save is a JSON object; this file holds something else")
    if any(k in save for k in ("ga", "cm", "cwi")) and "prompt" not in save:
        raise FormatError("this is a Kobold Lite share link payload; open it in Lite and use Save to get a .json file")
    if "prompt" not in save and "actions" not in save:
        raise FormatError("no 'prompt' or 'actions' found: not a Kobold Lite save file")
    result = ImportedStory(title=title)
    report = result.report
    report.source_format = "koboldai-v2-json" if "file_version" in save else "kobold-lite-json"

    chunks, alternatives = _chunks(save, report)
    saved = save.get("savedsettings") if isinstance(save.get("savedsettings"), dict) else {}
    mode = _MODES.get(as_int(saved.get("opmode")) or 0)
    if mode is None:
        mode = "story"
        report.defaulted.append("no opmode in savedsettings: read as story mode")
    settings = StorySettings(mode=mode)
    chatname = as_text(saved.get("chatname")) or "User"
    opponent = as_text(saved.get("chatopponent")).split("||$||")[0] or "KoboldAI"
    settings.persona.name = chatname
    settings.memory = as_text(save.get("memory"))
    settings.authors_note.text = as_text(save.get("authorsnote", save.get("authornote", "")))
    settings.imported = {"kobold": {"save": {k: v for k, v in save.items() if k not in _SPLIT_KEYS}}}
    if save.get("worldinfo") or save.get("worldinfo_v2"):
        report.defaulted.append("world info kept as raw Kobold data in the story settings (not yet used in prompts)")
    result.settings = settings

    parent: str | None = None
    for index, chunk in enumerate(chunks):
        options = [chunk] + [a for a in alternatives.get(index, []) if a != chunk]
        ids = []
        for text in options:
            author, kind, body, fmt = _interpret(text, mode, chatname, opponent, first=index == 0)
            node = Node.make(body, author=author, kind=kind, parent=parent, extra={"kobold": fmt})
            result.nodes.append(node)
            ids.append(node.id)
        parent = ids[0]
    result.current = parent
    if not chunks:
        report.defaulted.append("the save has no story text yet")
    return result


def _chunks(save: dict[str, Any], report) -> tuple[list[str], dict[int, list[str]]]:
    chunks: list[str] = []
    prompt = save.get("prompt")
    if prompt not in (None, ""):
        chunks.append(as_text(prompt))
    alternatives: dict[int, list[str]] = {}
    actions = save.get("actions")
    if isinstance(actions, dict) and isinstance(actions.get("actions"), dict):  # KoboldAI United v2
        items = sorted(actions["actions"].items(), key=lambda kv: as_int(kv[0]) or 0)
        for _, action in items:
            if not isinstance(action, dict):
                continue
            chunks.append(as_text(action.get("Selected Text")))
            opts = [as_text(o.get("text")) for o in action.get("Options") or () if isinstance(o, dict)]
            if opts:
                alternatives[len(chunks) - 1] = opts
        return chunks, alternatives
    if actions is not None and not isinstance(actions, list):
        raise FormatError("'actions' must be a list of story chunks; this save is damaged")
    offset = len(chunks)
    for i, action in enumerate(actions or []):
        if not isinstance(action, str):
            report.repaired.append(f"actions[{i}] {action!r} read as text")
        chunks.append(as_text(action))
    meta = save.get("actions_metadata")
    if isinstance(meta, dict):
        for key, value in meta.items():
            i = as_int(key)
            if i is None or not isinstance(value, dict) or not 0 <= i + offset < len(chunks):
                report.dropped.append(f"actions_metadata[{key!r}]: no such action")
                continue
            alts = [as_text(a) for a in value.get("Alternative Text") or () if a not in (None, "")]
            if alts:
                alternatives[i + offset] = alts
    return chunks, alternatives


def _interpret(chunk: str, mode: str, chatname: str, opponent: str, *, first: bool) -> tuple[str, str, str, dict]:
    """Who wrote a chunk, what kind it is, its bare text, and the formatting around it."""
    if mode == "chat" and (m := _CHAT_LINE.match(chunk)):
        lead, name, space, body = m.groups()
        fmt = {"prefix": f"{lead}{name}:{space}", "suffix": ""}
        if name.strip() == chatname:
            return AUTHOR_USER, "say", body, fmt
        return name.strip() or opponent, "greeting" if first else "generation", body, fmt
    if mode == "instruct" and (m := _INSTRUCT.match(chunk)):
        return AUTHOR_USER, "say", m.group(2), {"prefix": m.group(1), "suffix": m.group(3)}
    if mode == "adventure" and (m := _ADVENTURE.match(chunk)):
        return AUTHOR_USER, "do", m.group(2), {"prefix": m.group(1), "suffix": m.group(3)}
    if first:
        return AUTHOR_USER, "story", chunk, {}
    author = opponent if mode in ("chat", "instruct") else AUTHOR_NARRATOR
    return author, "story" if mode == "story" else "generation", chunk, {}


def _chunk_of(node: Node, tree: StoryTree) -> str:
    fmt = node.extra.get("kobold")
    if isinstance(fmt, dict):
        return f"{fmt.get('prefix', '')}{node.text}{fmt.get('suffix', '')}"
    mode = tree.settings.mode
    if mode == "chat" and node.kind != "story":
        name = tree.settings.persona.name if node.is_user else node.author
        return f"\n{name}: {node.text}"
    if mode == "adventure" and node.kind == "do":
        return f"\n\n> {node.text}\n\n"
    if mode == "instruct" and node.is_user:
        return f"{{{{[INPUT]}}}}{node.text}{{{{[OUTPUT]}}}}"
    return node.text


def export_kobold(tree: StoryTree) -> str:
    """The current path as a Kobold Lite save (alternatives as retries, hidden nodes left out)."""
    settings = tree.settings
    keep = settings.imported.get("kobold") if isinstance(settings.imported.get("kobold"), dict) else {}
    save: dict[str, Any] = dict(keep.get("save") or {})
    path = tree.current_path()
    chunks = [_chunk_of(n, tree) for n in path]
    save.pop("file_version", None)
    if isinstance(save.get("actions"), dict):
        save.pop("actions")
    save["gamestarted"] = bool(chunks)
    save["prompt"] = chunks[0] if chunks else ""
    save["actions"] = chunks[1:]
    meta: dict[str, Any] = {}
    for i, node in enumerate(path[1:]):
        alts = [_chunk_of(n, tree) for n in tree.siblings(node.id) if n.id != node.id and n.id not in tree.hidden]
        if alts:
            meta[str(i)] = {"Selected Text": chunks[i + 1], "Alternative Text": alts}
    save["actions_metadata"] = meta
    save["memory"] = settings.memory
    save["authorsnote"] = settings.authors_note.text
    save.setdefault("anotetemplate", "[Author's note: <|>]")
    save.setdefault("worldinfo", [])
    saved = dict(save.get("savedsettings") or {})
    saved["opmode"] = _OPMODES.get(settings.mode, saved.get("opmode", 1))
    saved["chatname"] = settings.persona.name
    save["savedsettings"] = saved
    return json.dumps(save, ensure_ascii=False, indent=1)
