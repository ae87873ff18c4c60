"""``storyteller card ...``: import, list, inspect and convert character cards.

Wire it in the main parser with ``storyteller.cards.cli.register(subparsers)``. Each
sub-command sets ``func(args) -> int``; errors are raised as ``StorytellerError`` subclasses.
Card text printed for people passes through :func:`storyteller.textsafe.clean`, which removes control characters
(a card could otherwise send terminal escape sequences).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from storyteller.cards.library import import_card, list_cards
from storyteller.cards.model import Card, ImportReport
from storyteller.cards.reader import load_card
from storyteller.cards.writer import card_to_v3, save_card
from storyteller.errors import FormatError
from storyteller.textsafe import clean, safe_json

__all__ = ["register"]

_plain = clean  # every line of card text printed for people goes through storyteller.textsafe


def register(subparsers: Any) -> None:
    """Add the ``card`` command and its sub-commands to an argparse sub-parser set."""
    card = subparsers.add_parser("card", help="import, list, inspect and convert character cards")
    commands = card.add_subparsers(dest="card_command", metavar="COMMAND", required=True)

    p = commands.add_parser("import", help="copy a card (PNG, JSON, CHARX, YAML) into the library")
    p.add_argument("path", metavar="PATH", help="the card file")
    p.set_defaults(func=_cmd_import)

    p = commands.add_parser("list", help="list the cards in the library")
    p.set_defaults(func=_cmd_list)

    p = commands.add_parser("inspect", help="show a card, normalised")
    p.add_argument("path", metavar="CARD", help="the card file, or a card's name in the library")
    p.add_argument("--json", action="store_true", help="print the normalised card as V3 JSON")
    p.add_argument("--report", action="store_true", help="include the import report")
    p.set_defaults(func=_cmd_inspect)

    p = commands.add_parser("convert", help="write a card in another format (by DST's extension)")
    p.add_argument("src", metavar="SRC", help="the card to read: a file, or a card's name in the library")
    p.add_argument("dst", metavar="DST", help="where to write: .png, .json or .charx")
    p.add_argument("--spec", choices=("v2", "v3"), default="v3", help="JSON flavour (default v3)")
    p.set_defaults(func=_cmd_convert)


def _print_report(report: ImportReport, out: TextIO) -> None:
    for line in report.lines():
        print(f"  {_plain(line, 300)}", file=out)


def _cmd_import(args: argparse.Namespace) -> int:
    entry = import_card(Path(args.path))
    assert entry.card is not None and entry.report is not None
    print(f"Imported {_plain(entry.card.name)!r} as {entry.path}")
    if entry.report.needs_name:
        print(f"  The card had no name; it is called {_plain(entry.card.name)!r} after the file name.")
    _print_report(entry.report, sys.stdout)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    entries = list_cards()
    if not entries:
        print("No cards yet. Add one with: storyteller card import PATH")
        return 0
    for entry in entries:
        if entry.card is None:
            print(f"{entry.path.name}: unreadable ({_plain(entry.error or '', 200)})")
            continue
        card = entry.card
        book = len(card.character_book.entries) if card.character_book else 0
        print(f"{_plain(card.name, 60)}  [{entry.path.name}]  greetings: {len(card.greetings)}  lore: {book}")
    return 0


def _summary(card: Card, report: ImportReport) -> list[str]:
    book = card.character_book
    lines = [
        f"Name:        {_plain(card.name)}",
        f"Format:      {report.source_format}",
        f"Creator:     {_plain(card.creator) or '-'}",
        f"Version:     {_plain(card.character_version) or '-'}",
        f"Tags:        {_plain(', '.join(card.tags)) or '-'}",
        f"Greetings:   {len(card.greetings)} ({len(card.alternate_greetings)} alternate,"
        f" {len(card.group_only_greetings)} group-only)",
        f"Lorebook:    {f'{len(book.entries)} entries' if book else 'none'}",
        f"World:       {_plain(card.world or '-')}",
        f"Description: {_plain(card.description, 300) or '-'}",
    ]
    if card.files:
        lines.append(f"Files:       {len(card.files)} embedded")
    return lines


def _card_file(ref: str) -> Path:
    """A card file from a path or a library / bundled card name (``card inspect Seraphina``)."""
    if Path(ref).expanduser().is_file():
        return Path(ref).expanduser()
    from storyteller.content import find_card
    from storyteller.paths import get_paths

    return find_card(ref, get_paths())


def _cmd_inspect(args: argparse.Namespace) -> int:
    card, report = load_card(_card_file(args.path))
    if args.json:
        obj: dict[str, Any] = card_to_v3(card)
        if args.report:
            obj["report"] = report.model_dump(mode="json")
        print(safe_json(obj, indent=2))
        return 0
    for line in _summary(card, report):
        print(line)
    if report.needs_name:
        print(f"Note:        the card has no name; showing it as {_plain(card.name)!r} after the file name")
    if args.report:
        print("Report:" if not report.clean else "Report:      nothing to repair")
        _print_report(report, sys.stdout)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    dst = Path(args.dst)
    if dst.suffix.lower() not in (".png", ".json", ".charx"):
        raise FormatError(f"cannot tell the output format from {dst.name!r}; end it in .png, .json or .charx")
    card, report = load_card(_card_file(args.src))
    save_card(card, dst, args.spec)
    print(f"Wrote {_plain(card.name)!r} to {dst}")
    if dst.suffix.lower() == ".json" and (card.files or card.image):
        print("  note: JSON carries no images or embedded files; use .png or .charx to keep them")
    _print_report(report, sys.stdout)
    return 0
