"""``storyteller prompt``: print the prompt a turn would send, without generating.

Until the card, lore and story modules are wired in, this reads a plain JSON card (V1, V2 or V3),
a SillyTavern world file (constant entries plus a simple key match on the last messages) and a
SillyTavern chat JSONL file by itself, minimally.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from storyteller.errors import FormatError, StoryError
from storyteller.prompt.builder import PromptBuilder, PromptOptions
from storyteller.prompt.model import AuthorsNote, CharacterInfo, HistoryMessage, Persona, Prompt, WorldInfoInsert
from storyteller.prompt.templates import load_library
from storyteller.prompt.tokens import TokenCounter, tiktoken_counter

__all__ = ["register"]

MAX_INPUT_BYTES = 64 * 1024 * 1024
_WI_POSITIONS = ("before_char", "after_char", "an_top", "an_bottom", "at_depth", "em_top", "em_bottom", "outlet")
_ROLES = ("system", "user", "assistant")


def register(subparsers: Any) -> None:
    """Add the ``prompt`` sub-command to an argparse sub-parser set."""
    p = subparsers.add_parser("prompt", help="show the prompt for the next turn without generating")
    p.add_argument("--card", type=Path, help="character card (JSON: V1, V2 or V3)")
    p.add_argument("--world", type=Path, action="append", default=[], help="SillyTavern world file (repeatable)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--chat", type=Path, help="SillyTavern chat file (.jsonl)")
    source.add_argument("--story", help="a saved story by name")
    p.add_argument("--mode", choices=["chat", "story", "adventure", "instruct"], default="chat")
    p.add_argument("--template", default="auto", help="instruct template name, 'none', or 'auto'")
    p.add_argument("--context-template", default="default", help="context (story string) template")
    p.add_argument("--context", type=int, default=4096, help="context size in tokens")
    p.add_argument("--reply", type=int, default=200, help="tokens reserved for the reply")
    p.add_argument("--model", type=Path, help="GGUF file: count with its tokenizer and read its chat template")
    p.add_argument("--json", action="store_true", help="print the whole Prompt as JSON")
    p.set_defaults(func=run)


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise FormatError(f"{path}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB")
        return json.loads(path.read_text("utf-8-sig"))
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{path} is not valid JSON: {exc}") from exc


def read_card(path: Path) -> CharacterInfo:
    """A JSON card's prompt fields (``data`` of V2/V3, or the flat V1 object)."""
    if path.suffix.lower() != ".json":
        raise FormatError(f"{path}: only JSON cards can be read here for now; export the card as JSON")
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise FormatError(f"{path}: a card must be a JSON object")
    data = raw.get("data") if isinstance(raw.get("data"), dict) else raw

    def text(key: str) -> str:
        value = data.get(key)
        return value.replace("\r\n", "\n") if isinstance(value, str) else ""

    if not text("name"):
        raise FormatError(f"{path}: the card has no name; is it a character card?")
    greetings = data.get("alternate_greetings")
    return CharacterInfo(
        name=text("name"), nickname=text("nickname"), description=text("description"),
        personality=text("personality"), scenario=text("scenario"), first_mes=text("first_mes"),
        mes_example=text("mes_example"), system_prompt=text("system_prompt"),
        post_history_instructions=text("post_history_instructions"),
        alternate_greetings=tuple(g for g in greetings if isinstance(g, str)) if isinstance(greetings, list) else (),
    )


def read_chat(path: Path) -> tuple[list[HistoryMessage], dict[str, Any]]:
    """Messages and the header's ``chat_metadata`` of a SillyTavern JSONL chat."""
    try:
        lines = path.read_text("utf-8-sig").splitlines()
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    history: list[HistoryMessage] = []
    metadata: dict[str, Any] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise FormatError(f"{path}, line {number}: not JSON ({exc})") from exc
        if not isinstance(item, dict):
            continue
        if "mes" not in item:
            if isinstance(item.get("chat_metadata"), dict):
                metadata = item["chat_metadata"]
            continue
        if item.get("is_system"):
            continue  # hidden from the prompt in SillyTavern
        role = "user" if item.get("is_user") else "assistant"
        history.append(HistoryMessage(role, str(item.get("mes", "")).replace("\r\n", "\n"), name=str(item.get("name") or "")))
    return history, metadata


def read_world(path: Path, history: list[HistoryMessage], scan_depth: int = 2) -> list[WorldInfoInsert]:
    """Constant entries plus entries whose key appears in the last messages (a stand-in)."""
    raw = _read_json(path)
    entries = raw.get("entries") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise FormatError(f"{path}: not a SillyTavern world file (no 'entries' object)")
    scan = "\n".join(m.text for m in history[-scan_depth:]).lower()
    out: list[WorldInfoInsert] = []
    for uid, entry in entries.items():
        if not isinstance(entry, dict) or entry.get("disable") or not isinstance(entry.get("content"), str):
            continue
        keys = [k for k in entry.get("key") or [] if isinstance(k, str) and k.strip()]
        constant = bool(entry.get("constant"))
        if not constant and not any(k.strip().lower() in scan for k in keys):
            continue
        position = entry.get("position", 0)
        role = entry.get("role", 0)
        out.append(
            WorldInfoInsert(
                content=entry["content"],
                position=_WI_POSITIONS[position] if isinstance(position, int) and 0 <= position < 8 else "before_char",  # type: ignore[arg-type]
                depth=int(entry.get("depth", 4) or 0),
                role=_ROLES[role] if isinstance(role, int) and 0 <= role < 3 else "system",  # type: ignore[arg-type]
                order=int(entry.get("order", 100) or 0),
                source=f"{path.stem}/{uid}",
                constant=constant,
            )
        )
    return out


def _note(metadata: dict[str, Any]) -> AuthorsNote | None:
    text = metadata.get("note_prompt")
    if not isinstance(text, str) or not text:
        return None
    positions = {0: "after_story_string", 1: "in_chat", 2: "before_story_string"}
    return AuthorsNote(
        text=text,
        depth=int(metadata.get("note_depth", 4)),
        interval=int(metadata.get("note_interval", 1)),
        role=_ROLES[int(metadata.get("note_role", 0)) % 3],  # type: ignore[arg-type]
        position=positions.get(int(metadata.get("note_position", 1)), "in_chat"),  # type: ignore[arg-type]
    )


def _counter(model: Path | None) -> tuple[TokenCounter, str | None]:
    if model is None:
        return tiktoken_counter(), None
    try:
        from llama_cpp import Llama
    except ImportError:
        return tiktoken_counter(), None
    if not model.is_file():
        raise FormatError(f"{model}: no such model file")
    llm = Llama(model_path=str(model), vocab_only=True, verbose=False)

    async def count(text: str) -> int:
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    return TokenCounter(count, name=f"llama.cpp:{model.name}", exact=True), llm.metadata.get("tokenizer.chat_template")


def run(args: argparse.Namespace) -> int:
    """Build the prompt from the arguments and print it."""
    if args.story:
        raise StoryError("opening a saved story by name is not wired in yet; pass --chat FILE instead")
    character = read_card(args.card) if args.card else CharacterInfo()
    history, metadata = read_chat(args.chat) if args.chat else ([], {})
    if not history and character.first_mes:
        history = [HistoryMessage("assistant", character.first_mes)]
    world = [w for path in args.world for w in read_world(path, history)]
    counter, chat_template = _counter(args.model)
    library = load_library()
    template, warnings = library.resolve(args.template, chat_template)
    if args.mode in ("chat", "story", "adventure") and args.template == "auto" and not chat_template:
        template, warnings = library.get_instruct("none"), []
    if not counter.exact:
        warnings.append(
            f"token counts are estimates: tiktoken {counter.name} plus {counter.estimate_margin:.0%} "
            "(give --model to count with the model's own tokenizer)"
        )
    options = PromptOptions(
        mode=args.mode, context_length=args.context, reply_tokens=args.reply, template=template,
        context_template=library.get_context(args.context_template),
    )
    variables = metadata.get("variables") if isinstance(metadata.get("variables"), dict) else {}
    prompt = asyncio.run(
        PromptBuilder(counter, options).build(
            history, character=character, persona=Persona(), world_info=world,
            authors_note=_note(metadata), variables={str(k): str(v) for k, v in variables.items()},
        )
    )
    prompt.warnings = warnings + library.warnings
    print(json.dumps(prompt.to_dict(), indent=2, ensure_ascii=False) if args.json else _describe(prompt))
    return 0


def _describe(prompt: Prompt) -> str:
    b = prompt.budget
    lines = [
        f"template: {prompt.template}   counter: {b.counter}{' (estimate)' if b.estimate else ''}",
        f"budget: {b.used} used of {b.available} available (context {b.context}, {b.reserved} "
        f"reserved for the reply); stable prefix {prompt.stable_prefix_tokens} tokens",
        "",
        f"{'kind':<14} {'tokens':>6}  source",
    ]
    lines += [f"{s.kind:<14} {s.tokens:>6}  {s.source}" for s in prompt.segments]
    lines += ["", f"stops: {json.dumps(prompt.stops)}"]
    lines += [f"dropped: {d}" for d in prompt.dropped]
    lines += [f"warning: {w}" for w in prompt.warnings]
    body = prompt.text if prompt.text is not None else "\n".join(
        f"[{m.role}{' ' + m.name if m.name else ''}] {m.content}" for m in prompt.messages or []
    )
    return "\n".join([*lines, "", "-" * 60, body, "-" * 60])
