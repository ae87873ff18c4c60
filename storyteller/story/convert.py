"""Importing files as stories and exporting stories as files, whatever the format.

Formats: ``st`` (SillyTavern chat JSONL), ``kobold`` (Kobold Lite save JSON), ``md`` and
``txt`` (export only). Imports never touch an existing story: a new one is created under a
free name.
"""

from __future__ import annotations

import json
from pathlib import Path

from storyteller.errors import FormatError
from storyteller.fileio import check_json_budget, read_limited
from storyteller.story._imported import ImportedStory
from storyteller.story._files import atomic_write
from storyteller.story.kobold import LiteContext, export_kobold, import_kobold
from storyteller.story.model import ImportReport
from storyteller.story.sillytavern import export_sillytavern, import_sillytavern
from storyteller.story.st_group import export_st_group
from storyteller.story.store import Story, StoryStore
from storyteller.story.text import export_markdown, export_text
from storyteller.textsafe import SURROGATE_NOTE, repair_json_escapes

__all__ = ["EXPORT_FORMATS", "MAX_IMPORT_BYTES", "detect_format", "export_story", "import_story", "read_story_file"]

EXPORT_FORMATS = ("st", "kobold", "md", "txt")
MAX_IMPORT_BYTES = 256 * 1024 * 1024
_SUFFIXES = {".jsonl": "st", ".json": "kobold", ".md": "md", ".markdown": "md", ".txt": "txt"}


def detect_format(path: Path, data: bytes) -> str:
    """``st`` or ``kobold``, from the content first and the file name second.

    Raises:
        FormatError: Neither fits.
    """
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"{":
        first_line = data.split(b"\n", 1)[0]
        try:
            first = json.loads(first_line)
        except ValueError:
            first = None
        if isinstance(first, dict) and (("mes" in first) or "user_name" in first or "character_name" in first):
            return "st"
        try:
            whole = json.loads(data)
        except ValueError:
            whole = None
        if isinstance(whole, dict) and ("prompt" in whole or "actions" in whole or "ga" in whole):
            return "kobold"
    if path.suffix.lower() == ".jsonl":
        return "st"
    raise FormatError(
        f"{path.name} is neither a SillyTavern chat (.jsonl, one JSON message per line) nor a Kobold "
        "Lite save (.json with 'prompt' and 'actions')"
    )


def read_story_file(path: Path, fmt: str | None = None) -> ImportedStory:
    """Parse a chat or save file without writing anything.

    Raises:
        FormatError: The file cannot be read as that format.
    """
    path = Path(path)
    data = read_limited(path, MAX_IMPORT_BYTES, "story")
    check_json_budget(data, path.name)
    data, repaired = repair_json_escapes(data)
    fmt = fmt or detect_format(path, data)
    title = path.stem
    if fmt == "st":
        imported = import_sillytavern(data, title=title)
    elif fmt == "kobold":
        imported = import_kobold(data, title=title)
    else:
        raise FormatError(f"cannot import format {fmt!r}; use st or kobold")
    if repaired:
        imported.report.repaired.append(f"{SURROGATE_NOTE}: {repaired} replaced with U+FFFD")
    return imported


def import_story(store: StoryStore, path: Path, *, name: str | None = None, fmt: str | None = None) -> tuple[Story, ImportReport]:
    """Import a file as a new story (open for writing); returns it and the import report.

    Args:
        store: Where to create the story.
        path: The file.
        name: The story name; by default the file name, made unique.
        fmt: ``st`` or ``kobold``; by default detected.
    """
    imported = read_story_file(path, fmt)
    story = store.create(name if name else store.unique_name(_safe_title(imported.title)), imported.settings,
                         origin={"imported_from": str(Path(path).name), "format": imported.report.source_format})
    try:
        story.add_nodes(imported.nodes, select=imported.current)
    except BaseException:
        story.close()
        raise
    return story, imported.report


def _safe_title(title: str) -> str:
    cleaned = "".join(c if c.isprintable() and c not in '/\\:*?"<>|' else "_" for c in title).strip().lstrip(".")
    return cleaned[:100] or "imported"


def export_story(story: Story, path: Path | None = None, fmt: str | None = None, *,
                 lite: LiteContext | None = None) -> str:
    """Render a story's current path in a format, and write it to ``path`` atomically if given.

    Args:
        story: The story (read-only is fine).
        path: Where to write; ``None`` only returns the text.
        fmt: ``st``, ``kobold``, ``md`` or ``txt``; by default from the file name.
        lite: For ``kobold``: the character and world info to carry (see
            :func:`storyteller.lite_export.lite_context`).
    """
    if fmt is None:
        fmt = _SUFFIXES.get(Path(path).suffix.lower()) if path is not None else None
        if fmt is None:
            raise FormatError("say which format to export: st, kobold, md or txt (or use a .jsonl/.json/.md/.txt name)")
    if fmt == "st":  # a group's chat is written as SillyTavern writes group chats (no header line)
        text = export_st_group(story.tree)[1] if story.settings.group is not None else export_sillytavern(story.tree)
    elif fmt == "kobold":
        text = export_kobold(story.tree, lite)
    elif fmt == "md":
        text = export_markdown(story.tree, title=story.name)
    elif fmt == "txt":
        text = export_text(story.tree)
    else:
        raise FormatError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    if path is not None:
        atomic_write(Path(path), text.encode("utf-8"))
    return text
