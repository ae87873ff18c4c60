"""SillyTavern (and TavernAI) chat JSONL, both directions.

A chat file is one JSON object per line: a header (``user_name``, ``character_name``,
``create_date``, ``chat_metadata``) and then messages (``name``, ``is_user``, ``is_system``,
``send_date``, ``mes``, ``extra``, ``swipes``, ``swipe_id``, ``swipe_info``). Group chats have
no header. Each message becomes a node and each swipe a sibling; the chosen swipe continues the
path. Everything we do not use is kept in the node's ``extra["st"]`` and the settings'
``imported["sillytavern"]`` and written back on export, so a chat survives a round trip.
"""

from __future__ import annotations

import json
from typing import Any

from storyteller.coerce import as_bool, as_int, as_text
from storyteller.errors import FormatError
from storyteller.story._imported import ImportedStory, display_date, parse_date
from storyteller.story.model import AUTHOR_NARRATOR, AUTHOR_USER, Node, StorySettings
from storyteller.story.tree import StoryTree

__all__ = ["export_sillytavern", "import_sillytavern"]

_ROLES = {0: "system", 1: "user", 2: "assistant", "0": "system", "1": "user", "2": "assistant"}
_ROLE_NUMBERS = {"system": 0, "user": 1, "assistant": 2}
_SWIPE_KEYS = ("mes", "swipes", "swipe_id", "swipe_info")


def _decode(data: bytes | str) -> list[str]:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FormatError(
                f"the chat file is not UTF-8 text (bad byte at {exc.start}); a SillyTavern chat is a .jsonl "
                "text file exported from the chat menu"
            ) from None
    return [line for line in data.replace("\r\n", "\n").split("\n") if line.strip()]


def import_sillytavern(data: bytes | str, *, title: str = "imported") -> ImportedStory:
    """Read a SillyTavern / TavernAI chat JSONL file.

    Args:
        data: The file's bytes or text.
        title: A name to suggest for the story (usually the file name).

    Raises:
        FormatError: The file holds no chat messages.
    """
    result = ImportedStory(title=title)
    report = result.report
    report.source_format = "sillytavern-jsonl"
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(_decode(data), start=1):
        try:
            value = json.loads(line)
        except ValueError:
            report.dropped.append(f"line {number}: not JSON")
            continue
        if not isinstance(value, dict):
            report.dropped.append(f"line {number}: not a JSON object")
            continue
        rows.append((number, value))
    if not rows:
        raise FormatError("the file has no JSON lines; expected a SillyTavern chat (.jsonl) with one message per line")

    header: dict[str, Any] | None = None
    if "mes" not in rows[0][1] and any(k in rows[0][1] for k in ("user_name", "character_name", "chat_metadata")):
        header = rows.pop(0)[1]
    else:
        report.defaulted.append("no header line: read as a group chat (names come from the messages)")

    meta_raw = header.get("chat_metadata") if header else None
    meta = dict(meta_raw) if isinstance(meta_raw, dict) else {}
    settings = _settings_from_header(header, meta, report)
    fallback_time = parse_date(header.get("create_date")) if header else None

    parent: str | None = None
    count = 0
    for number, msg in rows:
        if isinstance(msg.get("mes"), dict) and "message" in msg["mes"]:
            msg = {**msg, "mes": msg["mes"]["message"]}  # Chub's nested form
            report.repaired.append(f"line {number}: nested 'mes' object flattened")
        if "mes" not in msg:
            report.dropped.append(f"line {number}: no 'mes' field, not a message")
            continue
        chosen, fallback_time = _message_nodes(result, msg, number, count, parent, fallback_time)
        parent = chosen
        count += 1
    if count == 0:
        raise FormatError("the chat has a header but no messages; nothing to import")
    result.current = parent
    if header is None:
        users = [n for n in result.nodes if n.author == AUTHOR_USER]
        if users:
            settings.persona.name = as_text(users[0].extra["st"]["message"].get("name")) or "User"
    result.settings = settings
    return result


def _settings_from_header(header: dict[str, Any] | None, meta: dict[str, Any], report) -> StorySettings:
    settings = StorySettings()
    keep: dict[str, Any] = {"group": header is None}
    if header is not None:
        keep["header"] = {k: v for k, v in header.items() if k != "chat_metadata"}
        if isinstance(meta_raw := header.get("chat_metadata"), dict):
            keep["chat_metadata"] = dict(meta_raw)
        user = as_text(header.get("user_name"))
        if user:
            settings.persona.name = user
        else:
            report.defaulted.append("no user_name in the header: the player is called 'User'")
        if "chat_metadata" not in header:
            report.defaulted.append("no chat_metadata in the header: no author's note or chat variables")
    note = settings.authors_note
    if "note_prompt" in meta:
        note.text = as_text(meta["note_prompt"])
    for key, attr in (("note_depth", "depth"), ("note_interval", "interval")):
        if key in meta:
            value = as_int(meta[key])
            if value is None or value < 0:
                report.dropped.append(f"chat_metadata.{key} {meta[key]!r} is not a number")
            else:
                if not isinstance(meta[key], int):
                    report.repaired.append(f"chat_metadata.{key} {meta[key]!r} read as {value}")
                setattr(note, attr, value)
    if "note_role" in meta:
        role = _ROLES.get(meta["note_role"])
        if role is None and meta["note_role"] in _ROLE_NUMBERS:
            role = meta["note_role"]
        if role:
            note.role = role
        else:
            report.dropped.append(f"chat_metadata.note_role {meta['note_role']!r} is unknown")
    if isinstance(meta.get("variables"), dict):
        settings.variables = dict(meta["variables"])
    if isinstance(meta.get("timedWorldInfo"), dict):
        settings.timed_effects = dict(meta["timedWorldInfo"])
    if isinstance(meta.get("world_info"), str) and meta["world_info"]:
        settings.worlds = [meta["world_info"]]
    settings.imported = {"sillytavern": keep}
    return settings


def _message_nodes(
    result: ImportedStory, msg: dict[str, Any], number: int, index: int, parent: str | None,
    fallback_time: float | None,
) -> tuple[str, float | None]:
    """Add one message's swipes as sibling nodes; return the chosen one's id and its time."""
    report = result.report
    mes = as_text(msg.get("mes"))
    if not isinstance(msg.get("mes"), str):
        report.repaired.append(f"line {number}: 'mes' {msg.get('mes')!r} read as text")
    raw_swipes = msg.get("swipes")
    swipes = [as_text(s) for s in raw_swipes] if isinstance(raw_swipes, list) and raw_swipes else [mes]
    swipe_id = as_int(msg.get("swipe_id"))
    if "swipe_id" in msg and not isinstance(msg["swipe_id"], int):
        report.repaired.append(f"line {number}: swipe_id {msg['swipe_id']!r} read as {swipe_id}")
    if swipe_id is None or not 0 <= swipe_id < len(swipes) or swipes[swipe_id] != mes:
        # 'mes' is what the user saw; if the swipes disagree, keep both rather than pick one.
        if mes in swipes:
            swipe_id = swipes.index(mes)
        else:
            swipes.append(mes)
            swipe_id = len(swipes) - 1
        if isinstance(raw_swipes, list):
            report.repaired.append(f"line {number}: swipe_id did not point at the shown text; now {swipe_id}")
    is_user, fixed_u = as_bool(msg.get("is_user"))
    is_system, fixed_s = as_bool(msg.get("is_system"))
    if fixed_u or fixed_s:
        report.repaired.append(f"line {number}: is_user/is_system written as text, read as booleans")
    name = as_text(msg.get("name"))
    author = AUTHOR_USER if is_user else (name or "character")
    if not name:
        report.defaulted.append(f"line {number}: no name; called {author!r}")
    kind = "system" if is_system else "say" if is_user else "greeting" if index == 0 else "generation"
    when = parse_date(msg.get("send_date"))
    if when is None:
        if "send_date" in msg:
            report.repaired.append(f"line {number}: send_date {msg.get('send_date')!r} not understood")
        when = fallback_time
    infos = msg.get("swipe_info") if isinstance(msg.get("swipe_info"), list) else []
    message = {k: v for k, v in msg.items() if k not in _SWIPE_KEYS}
    ids = []
    for i, text in enumerate(swipes):
        info = infos[i] if i < len(infos) and isinstance(infos[i], dict) else None
        st: dict[str, Any] = {"message": message, "had_swipes": isinstance(raw_swipes, list)}
        if info is not None:
            st["swipe_info"] = info
        created = parse_date(info.get("send_date")) if info and i != swipe_id else None
        node = Node.make(text, author=author, kind=kind, parent=parent, extra={"st": st},
                         created=created or when)
        result.nodes.append(node)
        ids.append(node.id)
    return ids[swipe_id], when


# -- export ------------------------------------------------------------------------------------


def _display_name(node: Node, settings: StorySettings) -> str:
    st = node.extra.get("st") if isinstance(node.extra.get("st"), dict) else {}
    raw_name = as_text(st.get("message", {}).get("name")) if st else ""
    if node.author == AUTHOR_USER:
        return raw_name or settings.persona.name
    if node.visitor_name is not None:
        return node.visitor_name or settings.persona.name
    if node.author == AUTHOR_NARRATOR:
        return raw_name or "Narrator"
    return node.author


def _chain_text(tree: StoryTree, node: Node) -> str:
    parts = [node.text]
    nxt = tree.chosen_child(node.id)
    while nxt is not None and tree.nodes[nxt].kind == "continue":
        parts.append(tree.nodes[nxt].text)
        nxt = tree.chosen_child(nxt)
    return "".join(parts)


def _message_dict(tree: StoryTree, head: Node, text: str, settings: StorySettings) -> dict[str, Any]:
    st = head.extra.get("st") if isinstance(head.extra.get("st"), dict) else {}
    out: dict[str, Any] = dict(st.get("message") or {})
    out["name"] = _display_name(head, settings)
    out["is_user"] = head.is_user
    if head.kind == "system" or "is_system" in out:
        out["is_system"] = head.kind == "system"
    raw_date = out.get("send_date")
    parsed = parse_date(raw_date)
    out["send_date"] = raw_date if parsed is not None and abs(parsed - head.created) < 1 else display_date(head.created)
    out["mes"] = text
    if head.generation is not None and not isinstance(out.get("extra"), dict):
        out["extra"] = {"api": head.generation.engine, "model": head.generation.model}
    swipes = [n for n in tree.siblings(head.id) if n.id not in tree.hidden and n.is_user == head.is_user]
    if len(swipes) > 1 or st.get("had_swipes"):
        out["swipes"] = [_chain_text(tree, n) for n in swipes]
        out["swipe_id"] = [n.id for n in swipes].index(head.id)
        infos = [n.extra.get("st", {}).get("swipe_info") for n in swipes]
        if any(isinstance(i, dict) for i in infos):
            out["swipe_info"] = [
                i if isinstance(i, dict) else {"send_date": display_date(n.created), "extra": {}}
                for i, n in zip(infos, swipes, strict=True)
            ]
    return out


def export_sillytavern(tree: StoryTree, *, character_name: str = "") -> str:
    """The current path as SillyTavern chat JSONL (swipes included, hidden nodes left out).

    Args:
        tree: The story.
        character_name: The header's ``character_name`` when the story has none from an import.
    """
    settings = tree.settings
    keep = settings.imported.get("sillytavern") if isinstance(settings.imported.get("sillytavern"), dict) else {}
    lines = []
    messages = tree.messages()
    if not keep.get("group"):
        header = dict(keep.get("header") or {})
        header["user_name"] = settings.persona.name
        if not header.get("character_name"):
            header["character_name"] = character_name or next(
                (m.head.author for m in messages if not m.head.is_user and m.head.kind != "system"), "")
        header.setdefault("create_date", display_date(messages[0].head.created) if messages else "")
        if "chat_metadata" in keep or _has_chat_settings(settings):
            meta = dict(keep.get("chat_metadata") or {})
            note = settings.authors_note
            meta.update(note_prompt=note.text, note_interval=note.interval, note_depth=note.depth,
                        note_role=_ROLE_NUMBERS.get(note.role, 0))
            if settings.variables or "variables" in meta:
                meta["variables"] = settings.variables
            if settings.timed_effects or "timedWorldInfo" in meta:
                meta["timedWorldInfo"] = settings.timed_effects
            if settings.worlds:
                meta["world_info"] = settings.worlds[0]
            header["chat_metadata"] = meta
        lines.append(json.dumps(header, ensure_ascii=False))
    for message in messages:
        lines.append(json.dumps(_message_dict(tree, message.head, message.text, settings), ensure_ascii=False))
    return "\n".join(lines)


def _has_chat_settings(settings: StorySettings) -> bool:
    return bool(settings.authors_note.text or settings.variables or settings.timed_effects or settings.worlds)
