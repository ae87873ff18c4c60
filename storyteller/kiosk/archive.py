"""The kiosk's own state per story, attribution, the nightly archive and story reset. UI-free.

The kiosk keeps a small ``kiosk.json`` in the story folder (the recap and when it was written,
the day of the last archive); the story itself stays in the story journal. Nothing here ever
deletes a story: a reset renames the old folder with a date and starts a new one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from storyteller.errors import StoryError
from storyteller.fileio import atomic_write
from storyteller.story.convert import export_story
from storyteller.story.model import Node
from storyteller.story.store import Story

__all__ = [
    "KioskState",
    "archive_due",
    "archived_name",
    "attributed_markdown",
    "attribution",
    "member_speaker",
    "visitor_name",
    "visitor_turns",
    "write_archive",
]

STATE_FILE = "kiosk.json"
ANONYMOUS = "a visitor"


@dataclass(slots=True)
class KioskState:
    """What the kiosk remembers about a story besides the story itself.

    Attributes:
        recap: The latest model-written recap of the whole story ("" before the first).
        recap_turn: The visitor turn count when the recap was written.
        archived_on: The local date (YYYY-MM-DD) of the last nightly archive.
    """

    recap: str = ""
    recap_turn: int = 0
    archived_on: str = ""

    @classmethod
    def load(cls, folder: Path) -> KioskState:
        """Read the state; a missing or damaged file gives a fresh state (it is only a cache)."""
        try:
            data = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        return cls(recap=str(data.get("recap") or ""), recap_turn=int(data.get("recap_turn") or 0),
                   archived_on=str(data.get("archived_on") or ""))

    def save(self, folder: Path) -> None:
        """Write the state atomically."""
        atomic_write(folder / STATE_FILE, json.dumps(asdict(self), ensure_ascii=False, indent=1).encode("utf-8"))


def visitor_name(node: Node) -> str | None:
    """The visitor who wrote ``node`` ("a visitor" when anonymous), or ``None`` for other authors."""
    name = node.visitor_name
    return None if name is None else name or ANONYMOUS


def attribution(node: Node, speaker: str, *, with_date: bool = False) -> str:
    """Who wrote a passage and when, e.g. ``Ada, 14:02`` or ``Narrator, 14:03``."""
    name = visitor_name(node)
    if name is None:
        name = speaker if node.kind in ("generation", "greeting", "continue") else (node.author or speaker)
        if name == "user":
            name = "the operator"
    stamp = datetime.fromtimestamp(node.created).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")
    return f"{name}, {stamp}"


def visitor_turns(story: Story) -> int:
    """How many visitor inputs the current path holds."""
    return sum(1 for node in story.current_path() if node.is_player and node.visitor_name is not None)


def member_speaker(story: Story, node: Node, speaker: str) -> str:
    """Who wrote a reply: in a group story the member it is authored by, else ``speaker``."""
    group = story.settings.group
    member = group.member(node.author) if group is not None and node.author else None
    return member.name if member is not None else speaker


def attributed_markdown(story: Story, *, title: str, speaker: str) -> str:
    """The current path as Markdown, each passage followed by its author and time (in a group
    story, each reply's member)."""
    blocks = [f"# {title}"]
    for message in story.messages():
        head = message.head
        speaker_here = member_speaker(story, head, speaker)
        text = message.text.strip("\n")
        if head.is_player:
            text = "> " + text.replace("\n", "\n> ")
        blocks.append(f"{text}\n\n*— {attribution(head, speaker_here, with_date=True)}*")
    return "\n\n".join(blocks) + "\n"


def archive_due(now: datetime, state: KioskState, at: str) -> bool:
    """True when the day's archive (after local time ``at``, HH:MM) has not been written yet."""
    hours, minutes = (int(part) for part in at.split(":"))
    if (now.hour, now.minute) < (hours, minutes):
        return False
    return state.archived_on != now.date().isoformat()


def write_archive(story: Story, folder: Path, *, stamp: str, title: str, speaker: str) -> list[Path]:
    """Write the story as attributed Markdown and SillyTavern JSONL into ``folder``.

    Files are named ``<story>-<stamp>.md`` / ``.jsonl``; an existing file is replaced atomically.

    Raises:
        StoryError: The folder cannot be written.
    """
    base = f"{story.name}-{stamp}"
    md, jsonl = folder / f"{base}.md", folder / f"{base}.jsonl"
    try:
        atomic_write(md, attributed_markdown(story, title=title, speaker=speaker).encode("utf-8"))
        folder.mkdir(parents=True, exist_ok=True)
        export_story(story, jsonl, "st")
    except OSError as exc:
        raise StoryError(f"the archive could not be written to {folder}: {exc}") from exc
    return [md, jsonl]


def archived_name(root: Path, name: str, now: datetime) -> str:
    """A free folder name for an archived story: ``<name>-archived-YYYYMMDD-HHMMSS``."""
    base = f"{name}-archived-{now.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while (root / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate
