"""Run benchmarks: ``python -m bench`` (all, in order) or ``python -m bench NAME [options]``.

Every benchmark writes ``bench/results/NAME.json`` and its section of ``docs/benchmarks.md``.
Options common to all: ``--json`` (print one compact JSON object), ``--engine`` and ``--url``
(for the benchmarks that can run on a remote engine: ``cache``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from types import ModuleType

from storyteller.engines.registry import ENGINE_NAMES

BENCHES = {
    "engine": "bench.engine_bench",
    "prompt": "bench.prompt_bench",
    "cache": "bench.cache_bench",
    "resume": "bench.resume_bench",  # after cache: it reopens the cache benchmark's story
    "cache_quality": "bench.cache_quality_bench",
    "startup": "bench.startup_bench",
    "tui": "bench.tui_bench",
    "kiosk": "bench.kiosk_bench",
    "narrator": "bench.narrator_bench",
    "repetition": "bench.repetition_bench",
    "recall": "bench.recall_bench",
    "group": "bench.group_bench",
    "build": "bench.build_bench",  # needs a native wheel built beforehand (see its docstring)
}


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(BENCHES[name])
    except ModuleNotFoundError as exc:
        if exc.name and BENCHES[name].startswith(exc.name):
            return None  # that benchmark is not in this checkout
        raise


def parser_for(name: str, module: ModuleType, prog: str = "python -m bench") -> argparse.ArgumentParser:
    """The options of one benchmark: the common ones plus its own."""
    parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=(module.__doc__ or "").split("\n")[0])
    add_common(parser)
    if hasattr(module, "add_arguments"):
        module.add_arguments(parser)
    return parser


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--json``, ``--engine``, ``--url``."""
    parser.add_argument("--json", action="store_true", help="print one compact JSON object")
    parser.add_argument("--engine", choices=ENGINE_NAMES, default="embedded",
                        help="engine to benchmark (cache benchmark; default embedded)")
    parser.add_argument("--url", help="server URL for --engine kobold / openai")


def run_one(name: str, module: ModuleType, args: argparse.Namespace) -> int:
    """Run one benchmark with parsed options; prints its result."""
    if hasattr(module, "run_from_args"):
        return int(module.run_from_args(args) or 0)
    if args.engine != "embedded":
        print(f"the {name} benchmark runs on the embedded engine only", file=sys.stderr)
        return 2
    result = module.run()
    print(json.dumps(result, indent=None if args.json else 2), flush=True)
    return 0


def main(argv: list[str]) -> int:
    from storyteller.engines.native import preload

    preload()  # llama_cpp before numpy: numpy first crashes CUDA builds
    names = [a for a in argv if not a.startswith("-")][:1] if argv and not argv[0].startswith("-") else []
    if names and (len(argv) > 1 and argv[1].startswith("-")):
        name = names[0]
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        module = _load(name)
        if module is None:
            print(f"{name}: not available in this checkout", file=sys.stderr)
            return 2
        return run_one(name, module, parser_for(name, module).parse_args(argv[1:]))
    names = argv or [n for n in BENCHES if n != "build"]  # build needs a native wheel made first
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        module = _load(name)
        if module is None:
            print(f"{name}: not available in this checkout", file=sys.stderr)
            continue
        print(f"== {name}", flush=True)
        status = max(status, run_one(name, module, parser_for(name, module).parse_args([])))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
