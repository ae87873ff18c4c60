"""``storyteller bench NAME``: run one benchmark from the source checkout's ``bench/`` folder.

The benchmarks are not part of the installed package: they live beside it in the repository
(an editable install, as ``make`` sets up), and this command puts the repository root on
``sys.path`` to import them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from storyteller.errors import ConfigError

__all__ = ["register"]

NAMES = ("engine", "prompt", "cache", "resume", "startup", "tui", "kiosk")


def _repo_root() -> Path:
    root = Path(__file__).resolve().parents[1]
    if not (root / "bench" / "__main__.py").is_file():
        raise ConfigError(
            f"the benchmarks are not here ({root / 'bench'} is missing): they ship with the source, so "
            "run this from a git checkout installed with `make` (pip install -e .)."
        )
    return root


def _run(args: argparse.Namespace) -> int:
    root = str(_repo_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    import bench.__main__ as runner

    module = runner._load(args.name)
    if module is None:
        raise ConfigError(f"the {args.name} benchmark is not in this checkout (bench/{args.name}_bench.py).")
    parser = runner.parser_for(args.name, module, prog="storyteller bench")
    extra = list(args.options)
    if args.json:
        extra.append("--json")
    if args.engine:  # only when given, so that one among the benchmark's options is not overridden
        extra += ["--engine", args.engine]
    if args.url:
        extra += ["--url", args.url]
    return runner.run_one(args.name, module, parser.parse_args(extra))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``storyteller bench NAME [--json] [--engine E --url U] [benchmark options]``."""
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark and publish its results (docs/benchmarks.md)",
        description="Run one benchmark from the checkout's bench/ folder; results go to bench/results/ "
        "and docs/benchmarks.md. Options after the name that this command does not know are passed "
        "to the benchmark (e.g. `storyteller bench cache --turns 30 --no-naive`).",
    )
    parser.add_argument("name", choices=NAMES, help="which benchmark")
    parser.add_argument("--json", action="store_true", help="print one compact JSON object")
    parser.add_argument("--engine", choices=("embedded", "kobold", "openai", "fake"), default=None,
                        help="engine to benchmark (default embedded; the cache benchmark runs on any)")
    parser.add_argument("--url", help="server URL for --engine kobold / openai")
    parser.add_argument("options", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=_run)
