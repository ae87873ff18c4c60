"""``python -m storyteller.kiosk``: the kiosk without the main command (used by the systemd unit)."""

from __future__ import annotations

import argparse
import sys

from storyteller.errors import StorytellerError
from storyteller.tui.kiosk.cli import add_arguments, run_command


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run; errors print as ``storyteller kiosk: message`` with exit code 1."""
    from storyteller.engines.native import preload

    preload()  # llama_cpp before numpy: numpy first crashes CUDA builds
    parser = argparse.ArgumentParser(prog="python -m storyteller.kiosk",
                                     description="Run one shared story full screen for visitors.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_command(args)
    except StorytellerError as exc:
        print(f"storyteller kiosk: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
