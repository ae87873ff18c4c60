"""SillyTavern group chats, both directions: the group definition JSON and its chat JSONL.

SillyTavern keeps a group in two files: ``groups/<id>.json`` (``id``, ``name``, ``members`` as
the characters' avatar file names, ``disabled_members``, ``activation_strategy``,
``generation_mode``, ``allow_self_responses``, ``generation_mode_join_prefix``/``_suffix``,
``chat_metadata``, ``chat_id``, ``chats``, ``fav``, ``auto_mode_delay``, ``hideMutedSprites``...)
and ``group chats/<chat_id>.jsonl``, one message per line with no header (SillyTavern 1.12; newer
versions may write a header line, which is read too). Each member message carries its author's
``name`` and ``original_avatar``.

The mapping to :class:`~storyteller.story.model.GroupSettings`:

- ``activation_strategy``: 0 natural -> ``natural``, 1 list -> ``everyone`` (SillyTavern's list
  order lets every member answer in turn), 2 manual -> ``manual``, 3 pooled -> ``list`` (one
  member per turn, the ones who spoke least recently first).
- ``generation_mode``: 0 swap -> ``swap``, 1 append -> ``join``, 2 append with disabled members ->
  ``join_muted``.
- ``disabled_members`` -> muted members; ``chat_metadata.scenario`` (the group's scenario
  override) -> ``scenario``; the rest of ``chat_metadata`` as in a single chat (author's note,
  variables, chat lore).

Every other field of the definition is kept in ``GroupSettings.imported["sillytavern"]`` and each
message's unknown fields in the node's ``extra["st"]`` (as :mod:`storyteller.story.sillytavern`
does), so that export writes them back. This package never loads cards: the caller finds each
member's card and passes it as a :class:`MemberRef`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from storyteller.errors import FormatError
from storyteller.story._imported import ImportedStory
from storyteller.story.model import AUTHOR_USER, GroupMember, GroupSettings, Node, StorySettings
from storyteller.story.sillytavern import _ROLE_NUMBERS, _message_dict, _settings_from_header, import_sillytavern
from storyteller.story.tree import StoryTree

__all__ = [
    "MemberRef",
    "avatar_for",
    "export_st_group",
    "import_st_group",
    "is_st_group",
    "parse_st_group",
    "safe_file_name",
]

_ORDERS = {0: "natural", 1: "everyone", 2: "manual", 3: "list"}
_ORDER_NUMBERS = {"natural": 0, "everyone": 1, "manual": 2, "list": 3}
_MODES = {0: "swap", 1: "join", 2: "join_muted"}
_MODE_NUMBERS = {v: k for k, v in _MODES.items()}
_GROUP_HEADERLESS = "no header line: read as a group chat (names come from the messages)"


@dataclass(frozen=True, slots=True)
class MemberRef:
    """One member of an imported group, as the caller found it.

    Attributes:
        avatar: The avatar file name the group definition lists (``Seraphina.png``).
        card: The card reference the story keeps (a library file name or a path).
        name: The character's name (from its card).
    """

    avatar: str
    card: str
    name: str


def is_st_group(data: Any) -> bool:
    """True when a parsed JSON value looks like a SillyTavern group definition."""
    return (isinstance(data, dict) and isinstance(data.get("members"), list)
            and any(k in data for k in ("chat_id", "activation_strategy", "generation_mode", "disabled_members")))


def parse_st_group(data: bytes | str) -> dict[str, Any]:
    """Read a group definition file.

    Raises:
        FormatError: It is not JSON, or not a SillyTavern group definition.
    """
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"the group file is not valid JSON ({exc}); it should be SillyTavern's "
                          "groups/<id>.json") from None
    if not is_st_group(value):
        raise FormatError("not a SillyTavern group definition: expected a JSON object with 'members' and "
                          "'chat_id' (SillyTavern's data/<user>/groups/<id>.json)")
    bad = [m for m in value["members"] if not safe_file_name(m)]
    if bad:
        raise FormatError(f"the group's members must be avatar file names (no folders); found {bad[0]!r}")
    if not value["members"]:
        raise FormatError("the group has no members; add characters to it in SillyTavern first")
    for key in ("id", "chat_id"):
        if key in value and value[key] is not None and not safe_file_name(str(value[key])):
            raise FormatError(f"the group's {key} {value[key]!r} is not a plain file name; SillyTavern writes "
                              "numbers or dates there")
    return value


def safe_file_name(value: Any) -> bool:
    """True for a plain file name: text with no folder part, not hidden, no control characters.

    Avatar names, ids and chat ids of an imported group become file names on import and export;
    anything else (``../x``, ``/etc/x``) is refused so a file never lands outside its folder.
    """
    return (isinstance(value, str) and bool(value.strip()) and not value.startswith(".")
            and not any(c in value for c in "/\\:\0") and value.isprintable())


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def import_st_group(definition: dict[str, Any], chat: bytes | str | None, members: list[MemberRef], *,
                    title: str = "group") -> ImportedStory:
    """A group definition (from :func:`parse_st_group`) and its chat as a story.

    Args:
        definition: The parsed definition.
        chat: The group chat JSONL, or ``None`` to start the story empty.
        members: The members in the definition's order, each with its card.
        title: A name to suggest for the story (default: the group's name).

    Raises:
        FormatError: ``members`` does not match the definition, or the chat cannot be read.
    """
    avatars = [str(a) for a in definition["members"]]
    if [m.avatar for m in members] != avatars:
        raise FormatError("the members found do not match the group's member list")
    if chat is not None:
        result = import_sillytavern(chat, title=title)
    else:
        result = ImportedStory(title=title)
        result.report.defaulted.append("no group chat file: the story starts empty (the members greet you "
                                       "when you play it)")
    report = result.report
    report.source_format = "sillytavern-group"
    report.defaulted[:] = [line for line in report.defaulted if line != _GROUP_HEADERLESS]

    meta = definition.get("chat_metadata") if isinstance(definition.get("chat_metadata"), dict) else {}
    chat_settings = result.settings
    keep_chat = chat_settings.imported.get("sillytavern") or {}
    if chat is not None and "header" in keep_chat:
        settings = chat_settings  # a newer SillyTavern wrote the metadata into the chat's header
    else:
        settings = _settings_from_header(None, meta, report)
        settings.persona = chat_settings.persona
    settings.mode = "chat"
    settings.cards = [m.card for m in members]
    settings.group = _group_settings(definition, members, meta, report)
    result.settings = settings

    names = {m.avatar: m.name for m in members}
    result.nodes = _member_nodes(result.nodes, names)
    if title == "group" and settings.group.name:
        result.title = settings.group.name
    return result


def _group_settings(definition: dict[str, Any], members: list[MemberRef], meta: dict[str, Any],
                    report) -> GroupSettings:
    disabled = definition.get("disabled_members") if isinstance(definition.get("disabled_members"), list) else []
    strategy = _number(definition.get("activation_strategy", 0))
    order = _ORDERS.get(strategy if strategy is not None else 0)
    if order is None:
        report.defaulted.append(f"activation_strategy {definition.get('activation_strategy')!r} is unknown: "
                                "natural order")
        order = "natural"
    mode_number = _number(definition.get("generation_mode", 0))
    mode = _MODES.get(mode_number if mode_number is not None else 0)
    if mode is None:
        report.defaulted.append(f"generation_mode {definition.get('generation_mode')!r} is unknown: swap cards")
        mode = "swap"
    group = GroupSettings(
        name=str(definition.get("name") or ""),
        members=[GroupMember(card=m.card, name=m.name, muted=m.avatar in disabled) for m in members],
        order=order, cards=mode,
        scenario=meta.get("scenario") if isinstance(meta.get("scenario"), str) else "",
        join_prefix=str(definition.get("generation_mode_join_prefix") or ""),
        join_suffix=str(definition.get("generation_mode_join_suffix") or ""),
        allow_self_responses=bool(definition.get("allow_self_responses", False)),
    )
    # The whole definition, in its own key order; export writes the mapped fields over it.
    group.imported = {"sillytavern": {"definition": dict(definition), "avatars": {m.card: m.avatar for m in members}}}
    return group


def _member_nodes(nodes: list[Node], names: dict[str, str]) -> list[Node]:
    """Authors by ``original_avatar`` (the member's name now), and the leading run of member
    messages as greetings (SillyTavern opens a group chat with every member's first message)."""
    out: list[Node] = []
    kinds: dict[str, str] = {}
    for node in nodes:
        st = node.extra.get("st") if isinstance(node.extra.get("st"), dict) else {}
        message = st.get("message") if isinstance(st.get("message"), dict) else {}
        author, kind = node.author, node.kind
        avatar = message.get("original_avatar")
        if author != AUTHOR_USER and isinstance(avatar, str) and avatar in names:
            author = names[avatar]
        if kind in ("greeting", "generation"):
            leading = node.parent is None or kinds.get(node.parent) == "greeting"
            kind = "greeting" if leading else "generation"
        kinds[node.id] = kind
        out.append(node if (author, kind) == (node.author, node.kind) else replace(node, author=author, kind=kind))
    return out


# -- export ------------------------------------------------------------------------------------


def avatar_for(member: GroupMember, group: GroupSettings) -> str:
    """The avatar file name SillyTavern knows a member by: the imported one, else the card's file
    name as a ``.png`` (SillyTavern keeps every character as a PNG)."""
    keep = group.imported.get("sillytavern") if isinstance(group.imported.get("sillytavern"), dict) else {}
    avatars = keep.get("avatars") if isinstance(keep.get("avatars"), dict) else {}
    if isinstance(avatars.get(member.card), str):
        return avatars[member.card]
    name = PurePath(member.card.replace("\\", "/")).name or f"{member.name}.png"
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem}.png"


def _metadata(settings: StorySettings, kept: dict[str, Any]) -> dict[str, Any]:
    meta = dict(kept)
    note = settings.authors_note
    if note.text or "note_prompt" in meta:
        meta.update(note_prompt=note.text, note_interval=note.interval, note_depth=note.depth,
                    note_role=_ROLE_NUMBERS.get(note.role, 0))
    if settings.variables or "variables" in meta:
        meta["variables"] = settings.variables
    if settings.timed_effects or "timedWorldInfo" in meta:
        meta["timedWorldInfo"] = settings.timed_effects
    if settings.worlds:
        meta["world_info"] = settings.worlds[0]
    group = settings.group
    if group is not None and (group.scenario or "scenario" in meta):
        meta["scenario"] = group.scenario
    return meta


def export_st_group(tree: StoryTree, *, now: float | None = None) -> tuple[dict[str, Any], str]:
    """A group story as SillyTavern's group definition and group chat JSONL.

    Returns:
        The definition (write it as ``groups/<id>.json``) and the chat text (write it as
        ``group chats/<chat_id>.jsonl``).

    Raises:
        FormatError: The story is not a group story.
    """
    settings = tree.settings
    group = settings.group
    if group is None:
        raise FormatError("this story is not a group chat; export it as a SillyTavern chat (--format st)")
    keep = group.imported.get("sillytavern") if isinstance(group.imported.get("sillytavern"), dict) else {}
    definition: dict[str, Any] = dict(keep.get("definition") or {})
    stamp = str(int((now if now is not None else time.time()) * 1000))
    group_id = str(definition.get("id") or stamp)
    chat_id = str(definition.get("chat_id") or group_id)
    chats = [str(c) for c in definition.get("chats") or [] if isinstance(c, (str, int))]
    avatars = [avatar_for(m, group) for m in group.members]
    unsafe = [name for name in (*avatars, group_id, chat_id) if not safe_file_name(name)]
    if unsafe:
        raise FormatError(f"{unsafe[0]!r} is not a plain file name; it cannot name a SillyTavern file")
    kept_strategy = _number(definition.get("activation_strategy"))
    strategy = kept_strategy if _ORDERS.get(kept_strategy) == group.order else _ORDER_NUMBERS[group.order]
    kept_mode = _number(definition.get("generation_mode"))
    mode = kept_mode if _MODES.get(kept_mode) == group.cards else _MODE_NUMBERS[group.cards]
    st_keep = settings.imported.get("sillytavern") if isinstance(settings.imported.get("sillytavern"), dict) else {}
    definition.update({
        "id": group_id, "name": group.name or "Group: " + ", ".join(m.name for m in group.members),
        "members": avatars, "avatar_url": definition.get("avatar_url", ""),
        "allow_self_responses": group.allow_self_responses, "activation_strategy": strategy,
        "generation_mode": mode,
        "disabled_members": [a for a, m in zip(avatars, group.members, strict=True) if m.muted],
        "chat_metadata": _metadata(settings, definition.get("chat_metadata")
                                   if isinstance(definition.get("chat_metadata"), dict) else {}),
        "fav": definition.get("fav", False), "chat_id": chat_id,
        "chats": chats if chat_id in chats else [*chats, chat_id],
        "auto_mode_delay": definition.get("auto_mode_delay", 5),
        "generation_mode_join_prefix": group.join_prefix, "generation_mode_join_suffix": group.join_suffix,
    })
    by_name = {m.name: a for m, a in zip(group.members, avatars, strict=True)}
    lines: list[str] = []
    if isinstance(st_keep.get("header"), dict):  # a header the imported chat had (newer SillyTavern)
        header = dict(st_keep["header"])
        header["user_name"] = settings.persona.name
        header["chat_metadata"] = _metadata(settings, st_keep.get("chat_metadata") or {})
        lines.append(json.dumps(header, ensure_ascii=False))
    for message in tree.messages():
        head = message.head
        out = _message_dict(tree, head, message.text, settings)
        if not isinstance(head.extra.get("st"), dict):  # made here: the fields SillyTavern writes itself
            out.setdefault("is_system", head.kind == "system")
            out.setdefault("extra", {})
        avatar = by_name.get(head.author)
        if avatar is not None and not head.is_user:
            if out.get("original_avatar") != avatar:
                out["original_avatar"] = avatar
                out["force_avatar"] = f"/thumbnail?type=avatar&file={quote(avatar)}"
            out.setdefault("force_avatar", f"/thumbnail?type=avatar&file={quote(avatar)}")
        lines.append(json.dumps(out, ensure_ascii=False))
    return definition, "\n".join(lines)
