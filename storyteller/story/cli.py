"""``storyteller story ...``: list, show, import and export stories.

Wire it into the main parser with ``storyteller.story.cli.register(subparsers)``. Each
sub-command sets ``func(args) -> int``; errors are raised as ``StorytellerError`` subclasses.
Story text printed to the terminal passes through :func:`storyteller.textsafe.clean`, which removes control
characters (an imported chat could otherwise send terminal escape sequences).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from storyteller.errors import FormatError
from storyteller.fileio import atomic_write
from storyteller.story.convert import EXPORT_FORMATS, export_story, import_story
from storyteller.story.store import StoryStore
from storyteller.story.text import display_author
from storyteller.textsafe import clean

__all__ = ["register"]

_plain = clean  # story text printed to the terminal goes through storyteller.textsafe


def register(subparsers: Any) -> None:
    """Add the ``story`` command and its sub-commands to an argparse sub-parser set."""
    story = subparsers.add_parser("story", help="list, show, import and export stories")
    commands = story.add_subparsers(dest="story_command", metavar="COMMAND", required=True)

    p = commands.add_parser("list", help="list the saved stories")
    p.set_defaults(func=_cmd_list)

    p = commands.add_parser("show", help="print a story's current path")
    p.add_argument("name", metavar="NAME", help="the story's name")
    p.set_defaults(func=_cmd_show)

    p = commands.add_parser("export", help="write a story's current path to a file")
    p.add_argument("name", metavar="NAME", help="the story's name")
    p.add_argument("path", metavar="PATH", help="the file to write, or - for standard output")
    p.add_argument("--format", choices=(*EXPORT_FORMATS, "st-group"), default=None,
                   help="st (SillyTavern .jsonl), kobold (Kobold Lite .json), md or txt "
                        "(default: from PATH's extension); st-group writes a group story as "
                        "SillyTavern's files (groups/, group chats/, characters/) into the folder PATH")
    p.set_defaults(func=_cmd_export)

    p = commands.add_parser("import", help="import a SillyTavern chat or group, or a Kobold Lite save, as a new story")
    p.add_argument("path", metavar="PATH", help="the .jsonl chat, the .json save, or a SillyTavern group's "
                   "groups/<id>.json")
    p.add_argument("--name", default=None, help="the new story's name (default: from the file name)")
    p.add_argument("--card", action="append", default=None,
                   help="the chat's character card (default: the library card named like the chat's character); "
                        "for a group, a member's card (repeat it; default: found by avatar file name)")
    p.add_argument("--chat", default=None, help="for a group: its chat .jsonl (default: the group's current chat "
                   "in the 'group chats' folder beside 'groups')")
    p.set_defaults(func=_cmd_import)


def _cmd_list(args: Any) -> int:
    store = StoryStore()
    infos = store.list()
    if not infos:
        print(f"no stories yet in {store.root}")
        return 0
    for info in infos:
        with store.open(info.name, read_only=True) as story:
            turns = len(story.current_path())
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.modified))
        origin = f"  (branched from {info.branched_from.get('story')})" if info.branched_from else ""
        print(f"{_plain(info.name)}  {turns} turns  {when}{origin}")
    return 0


def _cmd_show(args: Any) -> int:
    with StoryStore().open(args.name, read_only=True) as story:
        s = story.settings
        print(f"story: {_plain(story.name)}")
        print(f"mode: {s.mode}  persona: {_plain(s.persona.name)}  cards: {', '.join(map(_plain, s.cards)) or '-'}"
              f"  worlds: {', '.join(map(_plain, s.worlds)) or '-'}")
        if s.group is not None:
            members = ", ".join(_plain(m.name) + (" (muted)" if m.muted else "") for m in s.group.members)
            print(f"group: {_plain(s.group.name)}  members: {members}  order: {s.group.order}  cards: {s.group.cards}")
        for warning in story.warnings:
            print(f"warning: {_plain(warning)}")
        for message in story.messages():
            head = message.head
            options = [n for n in story.siblings(head.id) if not story.is_hidden(n.id)]
            swipe = f" {options.index(head) + 1}/{len(options)}" if len(options) > 1 and head in options else ""
            print(f"\n[{head.id} {head.kind}{swipe}] {_plain(display_author(head, story.tree))}:")
            print(_plain(message.text))
    return 0


def _cmd_export(args: Any) -> int:
    to_stdout = args.path == "-"
    path = Path(args.path)
    with StoryStore().open(args.name, read_only=True) as story:
        if args.format == "st-group" or (args.format is None and story.settings.group is not None and path.is_dir()):
            return _export_group(story, path)
        fmt = args.format or ("st" if path.suffix.lower() not in (".jsonl", ".json", ".md", ".markdown", ".txt") else None)
        fmt = fmt or {".jsonl": "st", ".json": "kobold", ".md": "md", ".markdown": "md", ".txt": "txt"}[path.suffix.lower()]
        lite = None
        if fmt == "kobold":  # Lite needs the character and the world info, not only the chat
            from storyteller.lite_export import lite_context
            from storyteller.paths import get_paths

            lite, notes = lite_context(story.settings, get_paths())
            for note in notes:
                print(f"note: {_plain(note)}", file=sys.stderr)
        text = _with_memory(story, export_story(story, None, fmt, lite=lite), fmt)
        if not to_stdout:
            atomic_write(path, text.encode("utf-8"))
    if to_stdout:
        # Bytes, so that the file's own line endings pass through unchanged on every platform.
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()
    else:
        print(f"wrote {path}")
    return 0


def _export_group(story: Any, folder: Path) -> int:
    from storyteller.group_files import export_group_folder
    from storyteller.paths import get_paths

    if str(folder) == "-":
        raise FormatError("a group is several files: give a folder to write them into, not -")
    for written in export_group_folder(story, folder, get_paths()):
        print(f"wrote {written}")
    return 0


def _cmd_import(args: Any) -> int:
    from storyteller.group_files import import_group_chat, import_group_files, is_group_file
    from storyteller.paths import get_paths

    cards = args.card or []
    group, notes = None, []
    if is_group_file(Path(args.path)):
        group = import_group_files(StoryStore(), Path(args.path), get_paths(),
                                   chat=Path(args.chat) if args.chat else None, cards=cards, name=args.name)
    elif not args.chat:  # a group chat exported on its own, whose members' cards are at hand
        group = import_group_chat(StoryStore(), Path(args.path), get_paths(), cards=cards, name=args.name,
                                  notes=notes)
    if group is not None:
        story, report, lines = group
        try:
            print(f"imported {Path(args.path).name} ({report.source_format}): {len(story.nodes)} nodes")
            for line in lines + report.lines():
                print(_plain(line))
            name = story.name
        finally:
            story.close()
        sys.stdout.flush()
        print(name)
        return 0
    if args.chat:
        raise FormatError(f"--chat is for SillyTavern groups; {Path(args.path).name} is not a group definition")
    story, report = import_story(StoryStore(), Path(args.path), name=args.name)
    try:
        print(f"imported {Path(args.path).name} ({report.source_format}): {len(story.nodes)} nodes")
        from storyteller.content import link_chat_card
        from storyteller.group_files import link_group_cards

        if story.settings.group is not None:  # a Kobold Lite multi-character chat
            linked = link_group_cards(story, get_paths(), cards)
        else:
            linked = link_chat_card(story, get_paths(), Path(args.path).name, cards[0] if cards else None)
            if len(cards) > 1:
                linked.append(f"a single chat has one character: only the first --card ({cards[0]}) was used")
        for line in report.lines() + notes + linked:
            print(_plain(line))
        for line in _import_memory(story):
            print(_plain(line))
        name = story.name
    finally:
        story.close()
    sys.stdout.flush()
    print(name)
    return 0


def _with_memory(story: Any, text: str, fmt: str) -> str:
    """SillyTavern and Kobold Lite exports carry the story's summary (and Kobold its pins)."""
    if fmt not in ("st", "kobold"):
        return text
    from storyteller.memory import StoryMemory
    from storyteller.memory.compat import export_kobold_memory, export_sillytavern_memory

    memory = StoryMemory.of(story)
    return export_sillytavern_memory(story, memory, text) if fmt == "st" else export_kobold_memory(story, memory, text)


def _import_memory(story: Any) -> list[str]:
    """A SillyTavern or Kobold Lite summary in the imported file becomes one of the story's summaries."""
    from storyteller.memory import StoryMemory
    from storyteller.memory.compat import import_memory

    return import_memory(story, StoryMemory.of(story))
