"""``python -m storyteller.tui [--story NAME] [--card CARD] [--world W] [--mode M] [FILE...]``: the app alone.

The ``storyteller`` command is the usual way in; this entry exists for tests and for running
the app from a checkout. Settings come from ``config.toml`` and ``STORYTELLER_*`` variables.
"""

from __future__ import annotations

import argparse
import sys

from storyteller.errors import StorytellerError


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the app; returns the exit code."""
    from storyteller.engines.native import preload

    preload()  # llama_cpp before numpy: numpy first crashes CUDA builds
    parser = argparse.ArgumentParser(prog="python -m storyteller.tui")
    parser.add_argument("--story", default=None)
    parser.add_argument("--card", default=None)
    parser.add_argument("--world", action="append", default=None)
    parser.add_argument("--mode", choices=["chat", "story", "adventure", "instruct"], default=None)
    parser.add_argument("--greeting", type=int, default=0)
    parser.add_argument("imports", nargs="*", metavar="FILE",
                        help="cards, lorebooks or chats to import into the library first")
    args = parser.parse_args(argv)
    from storyteller.config import load_settings
    from storyteller.paths import get_paths
    from storyteller.tui.app import run_app

    try:
        paths = get_paths()
        settings = load_settings(paths)
        return run_app(settings, paths, story=args.story, card=args.card, worlds=args.world, mode=args.mode,
                       greeting=args.greeting, imports=args.imports)
    except StorytellerError as exc:
        print(f"storyteller: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
