"""The ``storyteller`` command: argument parsing and dispatch, no logic of its own."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from storyteller import __version__
from storyteller.errors import StorytellerError, describe_os_error
from storyteller.textsafe import clean, safe_json

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storyteller",
        description="Terminal roleplay and interactive stories on local language models.",
    )
    parser.add_argument("--version", action="version", version=f"storyteller {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from storyteller.model_cli import register as register_models

    register_models(sub)

    gen = sub.add_parser("generate", help="continue a prompt and stream the text to stdout")
    gen.add_argument("prompt", metavar="PROMPT", help="the prompt text, or - to read it from stdin")
    _add_engine_options(gen)
    gen.add_argument("--max-tokens", type=int, default=None, help="most tokens to generate")
    gen.add_argument("--temperature", type=float, default=None, help="sampling temperature")
    gen.add_argument("--seed", type=int, default=None, help="random seed for repeatable output")
    gen.add_argument("--stop", action="append", default=[], metavar="S", help="stop string (repeatable)")
    gen.add_argument("--json", action="store_true",
                     help="print one JSON object with the text and statistics instead of streaming")
    gen.set_defaults(func=_cmd_generate)

    from storyteller.cards.cli import register as register_cards
    from storyteller.tui.kiosk.cli import register as register_kiosk
    from storyteller.lore.cli import register as register_lore
    from storyteller.prompt_cmd import register as register_prompt
    from storyteller.story.cli import register as register_story

    register_cards(sub)
    register_lore(sub)
    register_prompt(sub)
    register_story(sub)
    register_kiosk(sub)
    from storyteller.group_cli import register as register_group

    register_group(sub)
    _register_play(sub)

    doctor = sub.add_parser("doctor", help="check the engine: load the model in a child process, generate a "
                            "few tokens, report the llama.cpp build, CPU/GPU and speed")
    _add_engine_options(doctor)
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(func=_cmd_doctor)

    demo = sub.add_parser("demo", help="stream a short story from the model: a quick check that the engine works")
    _add_engine_options(demo)
    demo.set_defaults(func=_cmd_demo)
    return parser


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    from storyteller.engines.registry import ENGINE_NAMES

    parser.add_argument("--engine", choices=ENGINE_NAMES, default=None,
                        help="which engine generates (default: engine.kind from the settings)")
    parser.add_argument("--url", default=None, help="server URL for --engine kobold|openai")
    parser.add_argument("--api-key-env", default=None, metavar="VAR",
                        help="environment variable holding the server's API key")
    parser.add_argument("--model", default=None,
                        help="GGUF path or a name from `storyteller models` (ollama:NAME:TAG, lmstudio:NAME, hf:ORG/NAME)")
    parser.add_argument("--gpu-layers", type=_gpu_layers, default=None, metavar="N",
                        help="layers on the GPU: auto (all that fit; the default), -1 = all, or a number")
    parser.add_argument("--context", type=int, default=None, metavar="N", help="context size in tokens")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads")


def _gpu_layers(value: str) -> int | str:
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of layers: use auto, -1 (all) or 0, 1, 2, ...")


def _cmd_doctor(args: argparse.Namespace) -> int:
    from storyteller.doctor import format_report, run_doctor

    settings, paths = _settings_from(args)
    report = run_doctor(settings, paths)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if report.get("ok") else 1


_ENGINE_FREE = {"models", "card", "lore", "doctor", "story", "group"}
"""Commands that never load llama.cpp in this process (the doctor loads it in a child)."""


def _preload_engine(argv: Sequence[str]) -> None:
    """Import llama_cpp before anything imports numpy: numpy first crashes CUDA builds."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in _ENGINE_FREE or any(a in ("--version", "-h", "--help") for a in argv[:1]):
        return
    from storyteller.engines.native import preload

    preload()


_OPTION_NAMES = {
    "engine.kind": "--engine", "engine.model": "--model", "engine.n_gpu_layers": "--gpu-layers",
    "engine.n_ctx": "--context", "remote.context_length": "--context", "engine.n_threads": "--threads",
    "remote.url": "--url", "remote.api_key_env": "--api-key-env", "sampling.max_tokens": "--max-tokens",
    "sampling.temperature": "--temperature", "sampling.seed": "--seed", "sampling.stop": "--stop",
}
"""How errors name the settings that command-line options set."""


def _settings_from(args: argparse.Namespace, sampling: dict | None = None, stops: Sequence[str] = ()):
    """Settings from the file and environment with the command line's options applied.

    Options go through the same validation as the file and the environment (a ``--threads 0``
    is refused exactly like ``engine.n_threads = 0`` in ``config.toml``).
    """
    from storyteller.config import apply_overrides, load_settings
    from storyteller.paths import get_paths

    paths = get_paths()
    settings = load_settings(paths)
    engine: dict = {}
    remote: dict = {}
    if args.engine:
        engine["kind"] = args.engine
    if args.model:
        engine["model"] = args.model
    if args.gpu_layers is not None:
        engine["n_gpu_layers"] = args.gpu_layers
    if args.context is not None:
        engine["n_ctx"] = args.context
        remote["context_length"] = args.context
    if args.threads is not None:
        engine["n_threads"] = args.threads
    if args.url:
        remote["url"] = args.url
    if args.api_key_env:
        remote["api_key_env"] = args.api_key_env
    sampling = dict(sampling or {})
    if stops:
        sampling["stop"] = [*settings.sampling.stop, *stops]
    settings = apply_overrides(settings, {"engine": engine, "remote": remote, "sampling": sampling},
                               _OPTION_NAMES)
    return settings, paths


def _register_play(sub) -> None:
    from storyteller.session import Mode

    play = sub.add_parser("play", help="play or write a story in the terminal app (the default command; "
                          "--plain: line by line on stdin/stdout)")
    play.add_argument("--card", action="append", default=None,
                      help="character card: path or library name (default: the adventure narrator); "
                           "twice or more for a group chat")
    play.add_argument("--world", action="append", default=None, metavar="W", help="world info (repeatable)")
    play.add_argument("--story", default=None, metavar="NAME", help="open this story, or start it under this name")
    play.add_argument("--mode", choices=[m.value for m in Mode], default=None)
    play.add_argument("--greeting", type=int, default=0, metavar="N", help="which greeting opens a new story (0 = first)")
    play.add_argument("--plain", action="store_true", help="line-based play on stdin/stdout")
    play.add_argument("imports", nargs="*", metavar="FILE",
                      help="cards, lorebooks or chats to import into the library first (the app)")
    from storyteller.group_cli import add_group_options

    add_group_options(play)
    _add_engine_options(play)
    play.set_defaults(func=_cmd_play)


def _chat_from_imports(args: argparse.Namespace) -> None:
    """``storyteller play CARD.png WORLD.json``: a new chat with the card just given, and its worlds."""
    from pathlib import Path

    if not args.imports or args.card or args.story:
        return
    from storyteller.cards import load_card
    from storyteller.session.importing import guess_kind

    files = [Path(p) for p in args.imports if Path(p).is_file()]
    cards = [p for p in files if guess_kind(p) == "card"]
    if len(cards) != 1:
        return
    try:
        card, _report = load_card(cards[0])
    except StorytellerError:
        return  # the app's import shows what is wrong with it
    args.card = str(cards[0].resolve())
    worlds = [str(p.resolve()) for p in files if guess_kind(p) == "world"]
    args.world = (args.world or []) + worlds or None
    args.mode = args.mode or "chat"
    import time

    args.story = f"{card.name or cards[0].stem} {time.strftime('%Y-%m-%d %H%M%S')}"[:80].replace("/", "-")


def _warn_ambiguous_card(ref: str | None, paths) -> None:
    if not ref:
        return
    from storyteller.content import card_candidates

    found = card_candidates(ref, paths)
    if len(found) > 1:
        names = ", ".join(p.name for p in found[:6])
        print(f"storyteller: warning: {len(found)} cards match {clean(ref)!r} ({clean(names)}); using "
              f"{clean(found[0].name)}. Give the file name (for example --card {clean(repr(found[1].stem))}) "
              "to choose another.", file=sys.stderr)


def _cmd_play(args: argparse.Namespace) -> int:
    from storyteller.group_cli import group_from_args, start_group_for_app

    settings, paths = _settings_from(args)
    paths.ensure()
    cards = list(args.card or [])
    args.card = cards[0] if len(cards) == 1 else None
    group = group_from_args(args, paths, cards)
    if group is not None and not args.plain:
        args.story = start_group_for_app(args, paths, cards if len(cards) > 1 else [], group)
        cards, group = [], None
    args.cards, args.group_settings = (cards if len(cards) > 1 else []), group
    _chat_from_imports(args)
    _warn_ambiguous_card(args.card, paths)
    if not args.plain:
        from storyteller.tui import run_app

        return run_app(settings, paths, story=args.story, card=args.card, worlds=args.world, mode=args.mode,
                       greeting=args.greeting, imports=args.imports)
    return asyncio.run(_play_plain(args, settings, paths))


def _last_story(paths) -> str | None:
    """The most recently played story, as the app reopens it (none when a card or mode asks for a new one)."""
    from storyteller.story.store import StoryStore

    stories = StoryStore(paths.stories_dir).list()
    return stories[0].name if stories else None


async def _play_plain(args: argparse.Namespace, settings, paths) -> int:
    import time

    from storyteller.engines.factory import open_backend
    from storyteller.plain import run_plain
    from storyteller.session import open_session

    backend = await open_backend(settings, paths)
    try:
        for warning in backend.info().warnings:
            print(f"storyteller: warning: {clean(warning)}", file=sys.stderr)
        group = getattr(args, "group_settings", None)
        if group is not None:
            from storyteller.group_cli import new_story_name

            name = args.story or new_story_name(group)
        else:
            name = args.story or (_last_story(paths) if args.card is None else None) or time.strftime("story-%Y%m%d-%H%M%S")
        session = await open_session(name, settings=settings, paths=paths, backend=backend, card=args.card,
                                     worlds=args.world, mode=args.mode, greeting=args.greeting,
                                     cards=getattr(args, "cards", None), group=group)
        try:
            return await run_plain(session)
        finally:
            await session.close()
    finally:
        await backend.aclose()


def _read_prompt(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


async def _generate(settings, paths, prompt, sampling, *, stream_out: bool) -> dict:
    """Stream one generation; ``prompt`` is text, or a list of messages for chat completion."""
    from storyteller.engines.base import GenerationRequest, collect
    from storyteller.engines.factory import open_backend

    backend = await open_backend(settings, paths)
    try:
        for warning in backend.info().warnings:
            print(f"storyteller: warning: {clean(warning)}", file=sys.stderr)
        if isinstance(prompt, str):
            request = GenerationRequest(prompt=prompt, sampling=sampling)
        else:
            request = GenerationRequest(messages=prompt, sampling=sampling)
        def show(text: str) -> None:
            sys.stdout.write(clean(text))
            sys.stdout.flush()

        result = await collect(backend, request, on_text=show if stream_out else None)
        if stream_out:
            sys.stdout.write("\n")
        stats = result.stats
        return {
            "text": result.text,
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "tokens_reused": stats.tokens_reused,
            "seconds_to_first_token": stats.seconds_to_first_token,
            "tokens_per_second": stats.tokens_per_second,
            "finish_reason": result.finish_reason,
        }
    finally:
        await backend.aclose()


def _cmd_generate(args: argparse.Namespace) -> int:
    update: dict = {name: getattr(args, name) for name in ("max_tokens", "temperature", "seed")
                    if getattr(args, name) is not None}
    settings, paths = _settings_from(args, update, stops=args.stop)
    from storyteller.model_sources import apply_model_defaults

    apply_model_defaults(settings, paths, keep=update)  # an Ollama model's params, before the copy below
    result = asyncio.run(_generate(settings, paths, _read_prompt(args.prompt), settings.sampling,
                                   stream_out=not args.json))
    if args.json:
        print(safe_json(result))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    settings, paths = _settings_from(args, {"max_tokens": 120})
    from storyteller.engines.base import Message

    prompt = [
        Message("system", "You are a storyteller. Write vivid, short stories."),
        Message("user", "Tell me a three-sentence story about a lighthouse keeper who finds a message in a bottle."),
    ]
    asyncio.run(_generate(settings, paths, prompt, settings.sampling, stream_out=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    _preload_engine(list(argv) if argv is not None else sys.argv[1:])
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # plain `storyteller`: the terminal app
        args = parser.parse_args(["play", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.func(args)
    except StorytellerError as exc:
        print(f"storyteller: {clean(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full or read-only disk, a file where a folder belongs: one line, no traceback
        print(f"storyteller: {clean(describe_os_error(exc, f'running storyteller {args.command}'))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstoryteller: stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
