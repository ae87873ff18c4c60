"""Group chats on the command line: ``play``'s group options and ``storyteller group save|list|show|delete``.

``storyteller play --card A --card B [--card C]`` starts a group story of those cards;
``--group NAME`` starts one from a saved group (``storyteller group save NAME --card A --card B``).
``--order`` and ``--group-cards`` choose who answers and which cards the prompt holds;
``--join-prefix``/``--join-suffix`` wrap each member's joined card fields, and
``--allow-self-responses`` lets a member answer itself in natural order.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from storyteller.errors import StoryError
from storyteller.story.model import CARD_MODES, SPEAKER_ORDERS, GroupSettings
from storyteller.textsafe import clean, safe_json

__all__ = ["add_group_options", "group_from_args", "register", "start_group_for_app"]


_PLAY_OPTIONS = {"order": "--order", "cards": "--group-cards", "name": "--group-name",
                 "join_prefix": "--join-prefix", "join_suffix": "--join-suffix",
                 "allow_self_responses": "--allow-self-responses"}
"""The group's settings that ``play`` options set, and the options' names (for errors)."""


def _add_join_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--join-prefix", default=None, metavar="TEXT",
                        help="put before each member's card fields in the join modes ({{char}}: the member, "
                             "<FIELDNAME>: the field's name)")
    parser.add_argument("--join-suffix", default=None, metavar="TEXT",
                        help="put after each member's card fields in the join modes")
    parser.add_argument("--allow-self-responses", action="store_true", default=None,
                        help="in natural order, a member may answer its own message")


def add_group_options(parser: argparse.ArgumentParser) -> None:
    """``--group``, ``--group-name``, ``--order``, ``--group-cards``, ``--join-prefix``,
    ``--join-suffix``, ``--allow-self-responses`` (``--card`` repeats for a group)."""
    parser.add_argument("--group", default=None, metavar="NAME",
                        help="start a group story from a saved group (`storyteller group list`)")
    parser.add_argument("--group-name", default=None, metavar="NAME",
                        help="the new group's name (default: Group: A, B, C)")
    parser.add_argument("--order", choices=SPEAKER_ORDERS, default=None,
                        help="who answers in a group: natural (named members, then by talkativeness; the "
                             "default), list (one each turn, in turn), manual (/as NAME), everyone")
    parser.add_argument("--group-cards", choices=CARD_MODES, default=None,
                        help="which cards a group prompt holds: join (all members', the default), swap (only "
                             "the speaker's), join_muted (muted members' too)")
    _add_join_options(parser)


def group_from_args(args: argparse.Namespace, paths: Any, cards: list[str]) -> GroupSettings | None:
    """The group the options ask for (``None``: not a group).

    Raises:
        StoryError: A group option without a group, or an unknown saved group.
    """
    given = {"order": args.order, "cards": args.group_cards, "name": args.group_name,
             "join_prefix": getattr(args, "join_prefix", None), "join_suffix": getattr(args, "join_suffix", None),
             "allow_self_responses": getattr(args, "allow_self_responses", None)}
    changes = {k: v for k, v in given.items() if v is not None and (v or k.startswith("join_"))}
    if args.group:
        from storyteller.groups import GroupLibrary

        group = GroupLibrary(paths).load(args.group)
        if cards:
            raise StoryError("--group plays a saved group's own cards; leave out --card, or use --card "
                             "twice or more without --group for a new group.")
        return GroupSettings.model_validate({**group.model_dump(), **changes})
    if len(cards) > 1:
        return GroupSettings(**changes)
    if changes:
        options = ", ".join(_PLAY_OPTIONS[k] for k in changes)
        raise StoryError(f"{options} needs a group: give --card twice or more, or --group NAME.")
    return None


def new_story_name(group: GroupSettings) -> str:
    """A fresh story name for a group: its name and the time."""
    return f"{group.name or 'group'} {time.strftime('%Y-%m-%d %H%M%S')}"[:80].replace("/", "-")


def start_group_for_app(args: argparse.Namespace, paths: Any, cards: list[str],
                        group: GroupSettings) -> str:
    """Create the group story the app then opens (unless ``--story`` names one that exists);
    returns the story's name."""
    from storyteller.session.opening import start_group_story
    from storyteller.story.store import StoryStore

    store = StoryStore(paths.stories_dir)
    name = args.story or new_story_name(group)
    if not store.exists(name):
        start_group_story(store, name, cards, group, paths=paths, worlds=args.world, mode=args.mode).close()
    return name


def register(subparsers: Any) -> None:
    """Add ``storyteller group`` (save, list, show, delete)."""
    group = subparsers.add_parser("group", help="save and list group chats' groups (play one with play --group NAME)")
    commands = group.add_subparsers(dest="group_command", metavar="COMMAND", required=True)
    p = commands.add_parser("save", help="save a group of cards under a name")
    p.add_argument("name", metavar="NAME", help="the group's name")
    p.add_argument("--card", action="append", default=[], required=True, metavar="CARD",
                   help="a member's card: path or library name (twice or more)")
    p.add_argument("--order", choices=SPEAKER_ORDERS, default="natural", help="who answers (default natural)")
    p.add_argument("--group-cards", choices=CARD_MODES, default="join", help="which cards the prompt holds")
    p.add_argument("--scenario", default="", help="a scenario that replaces the members' own")
    _add_join_options(p)
    p.set_defaults(func=_cmd_save)
    p = commands.add_parser("list", help="list the saved groups")
    p.set_defaults(func=_cmd_list)
    p = commands.add_parser("show", help="print a saved group as JSON")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=_cmd_show)
    p = commands.add_parser("delete", help="delete a saved group (stories started from it keep their copy)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=_cmd_delete)


def _cmd_save(args: argparse.Namespace) -> int:
    from storyteller.cards import load_card
    from storyteller.content import content_ref, find_card
    from storyteller.groups import GroupLibrary
    from storyteller.paths import get_paths
    from storyteller.session.group import new_group

    if len(args.card) < 2:
        raise StoryError("a group needs at least two cards: give --card twice or more.")
    paths = get_paths().ensure()
    files = [find_card(ref, paths) for ref in args.card]
    group = new_group([load_card(f)[0] for f in files], [content_ref(f, paths) for f in files], name=args.name,
                      order=args.order, mode=args.group_cards, scenario=args.scenario,
                      join_prefix=args.join_prefix or "", join_suffix=args.join_suffix or "",
                      allow_self_responses=bool(args.allow_self_responses))
    path = GroupLibrary(paths).save(group)
    print(clean(f"saved the group {group.name!r} ({', '.join(m.name for m in group.members)}) to {path}"))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from storyteller.groups import GroupLibrary
    from storyteller.paths import get_paths

    library = GroupLibrary(get_paths())
    names = library.names()
    if not names:
        print("no saved groups; save one with `storyteller group save NAME --card A --card B`.")
    for name in names:
        group = library.load(name)
        print(clean(f"{name}: {', '.join(m.name for m in group.members)} ({group.order} order, {group.cards})"))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from storyteller.groups import GroupLibrary
    from storyteller.paths import get_paths

    print(safe_json(GroupLibrary(get_paths()).load(args.name).model_dump(mode="json"), indent=2))
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    from storyteller.groups import GroupLibrary
    from storyteller.paths import get_paths

    name, path = GroupLibrary(get_paths()).delete(args.name)
    print(clean(f"deleted the saved group {name!r} ({path}); stories started from it keep their own copy"))
    return 0
