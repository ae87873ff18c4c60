"""Import a card, a lorebook or a chat by path, deciding which it is from its content.

The library's import service: plain functions (no Textual), so the app and the library screen
run them in thread workers, and the command line (`storyteller play FILE...`) uses them too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from storyteller.errors import FormatError, StorytellerError
from storyteller.paths import Paths

__all__ = ["ImportResult", "guess_kind", "import_path", "import_paths", "new_world_path", "result_lines"]

_CARD_SUFFIXES = (".png", ".charx", ".yaml", ".yml", ".webp")


@dataclass
class ImportResult:
    """What an import made.

    Attributes:
        kind: ``card``, ``world`` or ``story``.
        name: The card, world or story name.
        target: Where it was saved (a file, or a story folder).
        source_format: The format that was read.
        lines: The import report, one change per line.
    """

    kind: str
    name: str
    target: Path
    source_format: str = ""
    lines: list[str] = field(default_factory=list)


def guess_kind(path: Path) -> str:
    """``card``, ``world`` or ``story`` from the file's suffix and, for JSON, its keys."""
    suffix = path.suffix.lower()
    if suffix in _CARD_SUFFIXES:
        return "card"
    if suffix == ".jsonl":
        return "story"
    if suffix in (".json", ".lorebook"):
        try:
            with path.open("rb") as handle:
                head = handle.read(8 * 1024 * 1024)
            data = json.loads(head)
        except (OSError, ValueError):
            return "card"  # let the card reader explain what is wrong
        if isinstance(data, dict):
            from storyteller.story.st_group import is_st_group

            if is_st_group(data):  # a SillyTavern group: imported with its chat and members as a story
                return "story"
            if "entries" in data or suffix == ".lorebook":
                return "world"
            if "actions" in data or ("prompt" in data and "memory" in data):
                return "story"
    return "card"


def new_world_path(paths: Paths, name: str) -> Path:
    """A file in the worlds folder for a new world, never an existing one."""
    from storyteller.cards import safe_file_stem

    stem = safe_file_stem(name or "world")
    folder = paths.worlds_dir
    target, n = folder / f"{stem}.json", 1
    while target.exists():
        n += 1
        target = folder / f"{stem} ({n}).json"
    return target


def import_path(raw: str, paths: Paths) -> ImportResult:
    """Import the file at ``raw`` into the library (cards, worlds) or as a new story.

    Raises:
        FormatError: No such file, or it is none of the known formats (nothing is written).
    """
    path = Path(raw.strip()).expanduser()
    if not path.is_file():
        raise FormatError(f"there is no file at {path}; check the path (Tab completes it)")
    kind = guess_kind(path)
    if kind == "world":
        from storyteller.lore import load_lorebook, save_lorebook

        book, report = load_lorebook(path)
        target = new_world_path(paths, book.name or path.stem)
        save_lorebook(book, target)
        return ImportResult("world", book.name or target.stem, target, report.source_format, report.lines())
    if kind == "story":
        from storyteller.story import StoryStore, import_story

        from storyteller.content import link_chat_card
        from storyteller.group_files import import_group_chat, import_group_files, is_group_file, link_group_cards

        group = (import_group_files(StoryStore(paths.stories_dir), path, paths) if is_group_file(path)
                 else import_group_chat(StoryStore(paths.stories_dir), path, paths))
        if group is not None:
            story, report, lines = group
            story.close()
            return ImportResult("story", story.name, story.folder, report.source_format, lines + report.lines())
        story, report = import_story(StoryStore(paths.stories_dir), path)
        try:
            from storyteller.memory import StoryMemory
            from storyteller.memory.compat import import_memory

            linked = link_group_cards(story, paths) if story.settings.group is not None else None
            lines = report.lines() + (linked if linked is not None else link_chat_card(story, paths, path.name))
            lines += import_memory(story, StoryMemory.of(story))  # a SillyTavern / Kobold Lite summary
            return ImportResult("story", story.name, story.folder, report.source_format, lines)
        finally:
            story.close()
    from storyteller.cards import import_card

    try:
        entry = import_card(path, directory=paths.characters_dir)
    except StorytellerError:
        raise
    card, report = entry.card, entry.report
    lines = report.lines() if report is not None else []
    if report is not None and report.needs_name:
        lines.append("the card had no name; it was named after its file (rename it in the character screen)")
    return ImportResult("card", card.name if card else entry.path.stem, entry.path,
                        report.source_format if report else "", lines)


def result_lines(result: ImportResult) -> list[str]:
    """The report of one import, as the app shows it."""
    lines = [f"{result.kind} {result.name!r} saved as {result.target}",
             f"read as: {result.source_format or 'unknown'}", ""]
    return lines + (result.lines or ["nothing had to be repaired"])


def import_paths(raws: list[str], paths: Paths) -> list[tuple[str, list[str]]]:
    """Import each file (as :func:`import_path`); one ``(title, lines)`` report per file, failures too."""
    reports = []
    for raw in raws:
        try:
            result = import_path(raw, paths)
        except StorytellerError as exc:
            reports.append((f"{raw}: not imported", [str(exc)]))
        except OSError as exc:
            reports.append((f"{raw}: not imported", [f"cannot read or write a file: {exc}"]))
        else:
            reports.append((f"Imported {result.kind}: {result.name}", result_lines(result)))
    return reports
