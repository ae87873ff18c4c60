"""``storyteller kiosk``: the command's arguments. Nothing here imports Textual until it runs."""

from __future__ import annotations

import argparse
import getpass
import sys

from storyteller.engines.registry import ENGINE_NAMES

__all__ = ["hash_pin_command", "register"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The kiosk's options (shared by ``storyteller kiosk`` and ``python -m storyteller.kiosk``)."""
    parser.add_argument("--story", metavar="NAME", help="the shared story: opened, or started under this name")
    parser.add_argument("--card", action="append", default=None,
                        help="character card for a new story (default: the adventure narrator); twice or more "
                             "for a group chat, where a visitor addresses a character by name")
    parser.add_argument("--world", action="append", default=None, metavar="W", help="world info for a new story (repeatable)")
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="kiosk settings file (default: kiosk.toml in the config folder)")
    parser.add_argument("--engine", choices=ENGINE_NAMES, default=None,
                        help="which engine generates (default: engine.kind from the settings)")
    parser.add_argument("--model", default=None, help="GGUF path or name in the models folder")
    from storyteller.group_cli import add_group_options

    add_group_options(parser)
    parser.add_argument("--hash-pin", action="store_true",
                        help="ask for an operator PIN and print the pin_hash line for kiosk.toml, then exit")


def register(subparsers) -> None:
    """Add ``storyteller kiosk`` to the main command's sub-parsers."""
    parser = subparsers.add_parser("kiosk", help="run one shared story full screen for visitors (locked down)")
    add_arguments(parser)
    parser.set_defaults(func=run_command)


def hash_pin_command() -> int:
    """Read a PIN (twice on a terminal, once from a pipe) and print the settings line."""
    from storyteller.errors import ConfigError
    from storyteller.kiosk.settings import hash_pin

    if sys.stdin.isatty():
        pin = getpass.getpass("Operator PIN: ")
        if getpass.getpass("Again: ") != pin:
            raise ConfigError("the two PINs differ; nothing was printed.")
    else:
        pin = sys.stdin.readline().rstrip("\r\n")
    print(f'pin_hash = "{hash_pin(pin)}"')
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Run the kiosk from parsed arguments."""
    from storyteller.config import apply_overrides, load_settings
    from storyteller.errors import ConfigError
    from storyteller.tui.kiosk.run import run_kiosk
    from storyteller.paths import get_paths

    if args.hash_pin:
        return hash_pin_command()
    if not args.story:
        raise ConfigError("say which story the kiosk plays: storyteller kiosk --story NAME")
    paths = get_paths()
    settings = load_settings(paths)
    engine = {key: value for key, value in (("kind", args.engine), ("model", args.model)) if value}
    settings = apply_overrides(settings, {"engine": engine}, {"engine.kind": "--engine", "engine.model": "--model"})
    from storyteller.group_cli import group_from_args

    cards = list(args.card or [])
    group = group_from_args(args, paths, cards)
    return run_kiosk(settings, paths, story=args.story, card=cards[0] if len(cards) == 1 else None, worlds=args.world,
                     config_file=args.config, cards=cards if len(cards) > 1 else None, group=group)
