"""The group-chat commands of ``storyteller play --plain``: who speaks, members, the group's settings.

``/as``, ``/mute``, ``/unmute``, ``/order`` and ``/members`` as before; ``/add CARD``,
``/remove NAME``, ``/talk NAME VALUE`` and ``/group [SETTING VALUE]`` edit the group the way
SillyTavern's group editor does. Every change goes through the session (saved with the story);
a bad input gets one bracketed line saying what is wrong and what to do, and changes nothing.
Everything written here reaches the terminal through the line mode's cleaning writer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import ValidationError

from storyteller.session.group import talkativeness, unescape_line
from storyteller.story.model import CARD_MODES, SPEAKER_ORDERS
from storyteller.textsafe import clean

if TYPE_CHECKING:
    from storyteller.session import Session

__all__ = ["GROUP_COMMANDS", "GROUP_HELP", "group_command"]

GROUP_COMMANDS = frozenset({"as", "mute", "unmute", "order", "members", "add", "remove", "talk", "group"})
"""The line-mode commands :func:`group_command` answers."""

GROUP_HELP = """Group chat:
  /as NAME      that member replies now (muted members too)
  /mute NAME    never pick that member to speak; /unmute NAME
  /order ORDER  who answers: natural, list, manual (only /as), everyone
  /members      the members: muted or not, talkativeness, their own prefix/suffix
  /add CARD     a new member: a card's path or library name; /remove NAME takes one out
  /talk NAME N  how talkative a member is, 0 to 1 (natural order); /talk NAME card: the card's
  /group        the group's settings; change one with /group name TEXT, /group scenario [TEXT],
                /group cards join|swap|join_muted, /group prefix [TEXT], /group suffix [TEXT],
                /group self on|off (\\n in a prefix or suffix is a new line)"""

NOT_A_GROUP = "[this story is not a group chat; start one with: storyteller play --card A --card B]"
GROUP_SETTINGS = ("name", "scenario", "cards", "prefix", "suffix", "self", "order")

Reply = Callable[[Awaitable[Any]], Awaitable[None]]


def _quoted(text: str, limit: int = 300) -> str:
    """A prompt text as one line: quoted, new lines shown as ``\\n``, cut when long."""
    return clean(repr(text), limit)


async def group_command(session: Session, command: str, arg: str, out: TextIO, reply: Reply) -> None:
    """Answer one group command (``command`` without its slash, ``arg`` stripped); ``reply`` runs
    a generation the way the line mode runs every reply."""
    group = session.group
    if group is None:
        out.write(NOT_A_GROUP + "\n")
        return
    try:
        line = await _dispatch(session, command, arg, reply)
    except ValidationError as exc:  # a value the group's settings refuse; nothing was changed
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        line = f"[{where or 'that value'}: {first.get('msg', 'not allowed')}; nothing was changed]"
    if line:
        out.write(line + "\n")


async def _dispatch(session: Session, command: str, arg: str, reply: Reply) -> str:
    members = ", ".join(session.members)
    if command in ("as", "mute", "unmute", "remove") and not arg:
        return f"[use /{command} NAME; the members are {members}]"
    if command == "as":
        await reply(session.reply_as(arg))
        return ""
    if command in ("mute", "unmute"):
        session.set_muted(arg, command == "mute")
        name = session.group.member(arg).name  # type: ignore[union-attr]
        return f"[{name} is {'muted: never picked to speak (/as still works)' if command == 'mute' else 'unmuted'}]"
    if command == "order":
        return _set_order(session, arg)
    if command == "add":
        if not arg:
            return "[use /add CARD: a card's path or library name (storyteller card list shows the library)]"
        return f"[{session.add_member(arg)} joins the group]"
    if command == "remove":
        return f"[{session.remove_member(arg)} leaves the group; what they said stays in the story]"
    if command == "talk":
        return _talk(session, arg)
    if command == "group":
        return _group_setting(session, arg)
    return members_listing(session)


def _set_order(session: Session, arg: str) -> str:
    order = arg.strip().lower()
    if order not in SPEAKER_ORDERS:
        return f"[the order is {session.group.order}; use /order {'|'.join(SPEAKER_ORDERS)}]"  # type: ignore[union-attr]
    session.update_group(order=order)
    return f"[order: {order}]"


def _split_member(session: Session, arg: str) -> tuple[str | None, str]:
    """``NAME REST`` -> the member NAME names (longest match, ignoring case) and REST; a name
    with spaces needs no quotes. ``(None, REST)`` when no member's name starts ``arg``."""
    folded = arg.casefold()
    for name in sorted(session.members, key=len, reverse=True):
        key = name.casefold()
        if folded == key or folded.startswith(key + " "):
            return name, arg[len(name):].strip()
    return None, arg.rpartition(" ")[2]


def _talk(session: Session, arg: str) -> str:
    members = ", ".join(session.members)
    usage = "use /talk NAME VALUE, VALUE from 0 (never picked by chance) to 1 (always), or card for the card's own"
    if not arg:
        return f"[{usage}; the members are {members}]"
    name, value = _split_member(session, arg)
    if name is None:
        asked = arg.rpartition(" ")[0] or arg
        return f"[no member called {asked!r}; the members are {members}; {usage}]"
    if not value:
        return f"[{usage}: /talk {name} 0.8]"
    if value.lower() in ("card", "default", "reset"):
        member = session.set_member(name, talkativeness=None)
        talk = talkativeness(member, session.parts.members.get(name))
        return f"[{name}'s talkativeness is the card's again: {talk:.2f}]"
    try:
        number = float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
    except ValueError:
        number = float("nan")
    if not 0.0 <= number <= 1.0:  # also refuses nan
        return f"[talkativeness is a number from 0 to 1, not {value!r}; {usage}]"
    session.set_member(name, talkativeness=number)
    return f"[{name}'s talkativeness: {number:.2f}]"


def _group_setting(session: Session, arg: str) -> str:
    setting, _, value = arg.partition(" ")
    setting, value = setting.lower(), value.strip()
    if not setting:
        return group_listing(session)
    if setting == "order":
        return _set_order(session, value)
    if setting == "name":
        if not value:
            return "[use /group name TEXT; the group keeps its name]"
        return f"[the group is now called {session.update_group(name=value).name!r}]"
    if setting == "scenario":
        session.update_group(scenario=value)
        return ("[group scenario set: it replaces every member's own]" if value
                else "[group scenario cleared: each member's own scenario is used]")
    if setting == "cards":
        mode = value.lower()
        if mode not in CARD_MODES:
            return (f"[the cards mode is {session.group.cards}; use /group cards "  # type: ignore[union-attr]
                    f"{'|'.join(CARD_MODES)}]")
        session.update_group(cards=mode)
        return f"[cards: {mode}]"
    if setting in ("prefix", "suffix"):
        text = unescape_line(value)
        session.update_group(**{f"join_{setting}": text})
        return f"[join {setting}: {_quoted(text)}]" if text else f"[join {setting} cleared]"
    if setting in ("self", "self-responses", "self_responses"):
        flag = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}.get(value.lower())
        if flag is None:
            return "[use /group self on|off: whether a member may answer its own message in natural order]"
        session.update_group(allow_self_responses=flag)
        return f"[self responses: {'on' if flag else 'off'}]"
    return f"[no group setting {setting!r}; use /group {'|'.join(GROUP_SETTINGS)} VALUE, or /group alone to see them]"


def group_listing(session: Session) -> str:
    """``/group``: the group's settings and its members."""
    group = session.group
    assert group is not None
    members = ", ".join(f"{m.name}{' (muted)' if m.muted else ''}" for m in group.members)
    return "\n".join([
        f"[group {group.name!r}]",
        f"  order: {group.order}",
        f"  cards: {group.cards}",
        f"  scenario: {_quoted(group.scenario) if group.scenario else '(none: each member their own)'}",
        f"  join prefix: {_quoted(group.join_prefix) if group.join_prefix else '(none)'}",
        f"  join suffix: {_quoted(group.join_suffix) if group.join_suffix else '(none)'}",
        f"  self responses: {'on' if group.allow_self_responses else 'off'}",
        f"  members: {members}",
    ])


def members_listing(session: Session) -> str:
    """``/members``: each member, muted or not, talkativeness, own prefix/suffix, lore setting."""
    group = session.group
    assert group is not None
    lines = [f"[{group.name}: {group.order} order, {group.cards} cards]"]
    for number, member in enumerate(group.members, 1):
        card = session.parts.members.get(member.name)
        talk = talkativeness(member, card)
        line = f"  {number}. {member.name}{' (muted)' if member.muted else ''}, talkativeness {talk:.2f}"
        if member.talkativeness is not None:
            line += " (set in the group)"
        if member.join_prefix is not None:
            line += f", own prefix {_quoted(member.join_prefix, 120)}"
        if member.join_suffix is not None:
            line += f", own suffix {_quoted(member.join_suffix, 120)}"
        if member.lore_only_when_speaking:
            line += ", lorebook only when speaking"
        lines.append(line)
    return "\n".join(lines)
