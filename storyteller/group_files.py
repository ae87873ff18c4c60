"""SillyTavern group chats as files: finding the members' cards, importing, exporting a folder.

:mod:`storyteller.story.st_group` converts the data; this module does what needs the library.
A group definition lists its members by avatar file name (``Seraphina.png``); each is found, in
this order, among the cards given on the command line (by file name, or by the card's name), in
the library under that file name, next to the group file (SillyTavern's own folder layout,
``<user>/groups/<id>.json`` beside ``<user>/characters/<avatar>``), and in the library by name.
A card found outside the library is imported into it, so the story keeps a library name. The chat
is ``<user>/group chats/<chat_id>.jsonl`` (or given).

Export writes the layout SillyTavern's data folder has: ``groups/<id>.json``,
``group chats/<chat_id>.jsonl`` and each member's card as ``characters/<avatar>`` (a PNG card,
as SillyTavern keeps them), so copying the folder's contents into ``data/<user>/`` gives
SillyTavern the group, its chat and its characters.
"""

from __future__ import annotations

import json
from pathlib import Path

from storyteller.cards import card_to_png, import_card, load_card
from storyteller.content import BUNDLED_CHARACTERS, card_candidates, find_card
from storyteller.errors import FormatError, StorytellerError
from storyteller.fileio import atomic_write, read_limited
from storyteller.paths import Paths
from storyteller.story import StoryStore
from storyteller.story._imported import ImportedStory
from storyteller.story.convert import MAX_IMPORT_BYTES, _safe_title
from storyteller.story.model import ImportReport
from storyteller.story.st_group import (
    MemberRef,
    avatar_for,
    export_st_group,
    import_st_group,
    is_st_group,
    parse_st_group,
    safe_file_name,
)
from storyteller.story.store import Story

__all__ = ["export_group_folder", "find_group_chat", "import_group_chat", "import_group_files", "is_group_file",
           "link_group_cards", "resolve_members"]


def is_group_file(path: Path) -> bool:
    """True when ``path`` is a SillyTavern group definition (a ``.json`` with ``members``...)."""
    if path.suffix.lower() != ".json":
        return False
    try:
        return is_st_group(json.loads(read_limited(path, MAX_IMPORT_BYTES, "group")))
    except (StorytellerError, OSError, ValueError):
        return False


def _card_name(path: Path) -> str:
    card = load_card(path)[0]
    return (card.name or path.stem).strip()


def _given(cards: list[str], paths: Paths) -> list[Path]:
    found = []
    for ref in cards:
        found.append(find_card(ref, paths))  # raises a clear error for a card that is not there
    return found


def _in_library(path: Path, paths: Paths) -> bool:
    return path.parent in (paths.characters_dir, BUNDLED_CHARACTERS)


def _library_copy(path: Path, paths: Paths) -> Path | None:
    """The library's card with the same bytes as ``path`` (imported before), if any."""
    data = path.read_bytes()
    folder = paths.characters_dir
    if not folder.is_dir():
        return None
    for candidate in sorted(folder.iterdir()):
        if candidate.is_file() and candidate.stat().st_size == len(data) and candidate.read_bytes() == data:
            return candidate
    return None


def resolve_members(definition: dict, near: list[Path], paths: Paths, cards: list[str] = ()) -> tuple[
        list[MemberRef], list[str]]:
    """Each member's card, as :class:`MemberRef` in the definition's order, and report lines.

    Args:
        definition: The parsed group definition.
        near: Folders the group's files came from (SillyTavern's ``characters`` folder is looked
            for beside and above them).
        paths: The data folders.
        cards: Cards given by the player (paths or library names).

    Raises:
        FormatError: A member's card is nowhere; the message names the avatar and what to do.
    """
    given = _given(list(cards), paths)
    folders: list[Path] = []
    for folder in near:
        for candidate in (folder, folder / "characters", folder.parent / "characters"):
            if candidate not in folders:
                folders.append(candidate)
    lines: list[str] = []
    refs: list[MemberRef] = []
    used: set[str] = set()
    for avatar in definition["members"]:
        stem = Path(avatar).stem
        path = next((p for p in given if p.name.lower() == avatar.lower() or p.stem.lower() == stem.lower()), None)
        if path is None:
            path = next((p for p in given if _card_name(p).lower() == stem.lower()), None)
        if path is None and (paths.characters_dir / avatar).is_file():
            path = paths.characters_dir / avatar
        if path is None:
            path = next((f / avatar for f in folders if (f / avatar).is_file()), None)
        if path is None:
            found = card_candidates(stem, paths)
            path = found[0] if found else None
        if path is None:
            where = ", ".join(str(f) for f in folders) or "next to the group file"
            raise FormatError(
                f"the group's member card {avatar!r} was not found (looked in {where} and the library "
                f"{paths.characters_dir}); import it with `storyteller card import FILE`, put it next to the "
                f"group file, or give it with --card FILE")
        if not _in_library(path, paths):
            same = _library_copy(path, paths)
            if same is not None:
                lines.append(f"member {avatar}: card {same.name} (the library's copy of {path})")
                path = same
            else:
                entry = import_card(path, directory=paths.characters_dir)
                lines.append(f"member {avatar}: card {path} imported into the library as {entry.path.name}")
                path = entry.path
        else:
            lines.append(f"member {avatar}: card {path.name}")
        name = _card_name(path)
        base, n = name, 2
        while name.casefold() in used:
            name, n = f"{base} {n}", n + 1
        used.add(name.casefold())
        refs.append(MemberRef(avatar=avatar, card=path.name, name=name))
    return refs, lines


def link_group_cards(story: Story, paths: Paths, cards: list[str] = ()) -> list[str]:
    """Give an imported group's members (a Kobold Lite multi-character chat names them only) their
    cards: the given ones, else the library's card of that name. Returns report lines; a member
    with no card keeps its name as its card and is reported with what to do."""
    group = story.settings.group
    if group is None:
        return []
    given = _given(list(cards), paths)
    members, lines = [], []
    for member in group.members:
        wanted = member.name.casefold()
        path = next((p for p in given if wanted in (p.stem.casefold(), _card_name(p).casefold())), None)
        if path is None and safe_file_name(member.card) and safe_file_name(member.name):
            # only names: a name from an imported save never reaches a file by its path
            try:
                path = find_card(member.card, paths)
            except FormatError:
                found = card_candidates(member.name, paths)
                path = found[0] if found else None
        if path is None:
            lines.append(f"no card for {member.name!r}: import it (storyteller card import FILE), then import this "
                         f"file again with --card FILE for each member")
            members.append(member)
            continue
        if not _in_library(path, paths):
            path = _library_copy(path, paths) or import_card(path, directory=paths.characters_dir).path
        lines.append(f"member {member.name}: card {path.name}")
        members.append(member.model_copy(update={"card": path.name}))
    if [m.card for m in members] != [m.card for m in group.members]:
        story.set_settings(group=group.model_copy(update={"members": members}), cards=[m.card for m in members])
    return lines


def import_group_chat(store: StoryStore, path: Path, paths: Paths, *, cards: list[str] = (),
                      name: str | None = None, notes: list[str] | None = None,
                      ) -> tuple[Story, ImportReport, list[str]] | None:
    """A SillyTavern group chat exported on its own (a ``.jsonl`` with no header line and two or
    more characters) as a group story, its members' cards found as for a group definition
    (by ``original_avatar``, else by name); natural order, joined cards.

    Returns:
        ``None`` when the file is not such a chat, or a member's card cannot be found (the caller
        then imports it as a plain chat; why goes into ``notes``).
    """
    from storyteller.story.sillytavern import import_sillytavern

    path = Path(path)
    if path.suffix.lower() != ".jsonl":
        return None
    data = read_limited(path, MAX_IMPORT_BYTES, "chat")
    try:
        plain = import_sillytavern(data, title=path.stem)
    except FormatError:
        return None
    if not (plain.settings.imported.get("sillytavern") or {}).get("group"):
        return None
    avatars: list[str] = []
    for node in plain.nodes:
        if node.is_user or node.kind == "system":
            continue
        message = (node.extra.get("st") or {}).get("message") or {}
        avatar = message.get("original_avatar")
        avatar = avatar if safe_file_name(avatar) else f"{node.author}.png"
        if safe_file_name(avatar) and avatar not in avatars:
            avatars.append(avatar)
    if len(avatars) < 2:
        return None
    definition = {"name": "Group: " + ", ".join(Path(a).stem for a in avatars), "members": avatars,
                  "generation_mode": 1}
    if safe_file_name(path.stem):
        definition["chat_id"] = path.stem
    try:
        members, lines = resolve_members(definition, [path.parent], paths, list(cards))
    except FormatError as exc:
        if notes is not None:
            notes.append(f"a group chat of {len(avatars)} characters, read as a plain chat: {exc}")
        return None
    imported = import_st_group(definition, data, members, title=path.stem)
    lines.append(f"a group chat of {', '.join(m.name for m in members)} (no group file: natural order, joined "
                 "cards; import SillyTavern's groups/<id>.json instead to keep its settings)")
    return _create_story(store, imported, path, name), imported.report, lines


def _create_story(store: StoryStore, imported: ImportedStory, path: Path, name: str | None) -> Story:
    """A new story holding an imported group chat (closed again if its turns cannot be written)."""
    story = store.create(name or store.unique_name(_safe_title(imported.title)), imported.settings,
                         origin={"imported_from": path.name, "format": imported.report.source_format})
    try:
        story.add_nodes(imported.nodes, select=imported.current)
    except BaseException:
        story.close()
        raise
    return story


def find_group_chat(definition_path: Path, definition: dict) -> Path | None:
    """The group's current chat (``chat_id``) beside the definition, in SillyTavern's layout."""
    chat_id = str(definition.get("chat_id") or definition.get("id") or "")
    if not chat_id:
        return None
    folder = definition_path.parent
    for candidate in (folder / f"{chat_id}.jsonl", folder / "group chats" / f"{chat_id}.jsonl",
                      folder.parent / "group chats" / f"{chat_id}.jsonl"):
        if candidate.is_file():
            return candidate
    return None


def import_group_files(store: StoryStore, path: Path, paths: Paths, *, chat: Path | None = None,
                       cards: list[str] = (), name: str | None = None) -> tuple[Story, ImportReport, list[str]]:
    """Import a SillyTavern group (definition, chat, member cards) as a new story, open for writing.

    Returns:
        The story, the import report, and lines saying where each member's card and the chat
        came from.

    Raises:
        FormatError: The definition or chat cannot be read, or a member's card is missing (nothing
            is written then, except cards imported into the library).
    """
    path = Path(path)
    definition = parse_st_group(read_limited(path, MAX_IMPORT_BYTES, "group"))
    if chat is None:
        chat = find_group_chat(path, definition)
    elif not Path(chat).is_file():
        raise FormatError(f"there is no chat file at {chat}; give the group chat's .jsonl with --chat")
    near = [path.parent] + ([Path(chat).parent] if chat is not None else [])
    members, lines = resolve_members(definition, near, paths, list(cards))
    data = read_limited(Path(chat), MAX_IMPORT_BYTES, "chat") if chat is not None else None
    title = str(definition.get("name") or path.stem)
    imported = import_st_group(definition, data, members, title=title)
    lines.append(f"chat: {chat}" if chat is not None else
                 f"no chat {definition.get('chat_id')!r} found beside the group file; give it with --chat FILE")
    return _create_story(store, imported, path, name), imported.report, lines


def export_group_folder(story: Story, folder: Path, paths: Paths) -> list[Path]:
    """Write a group story as SillyTavern's files under ``folder``; returns the files written.

    Each member's card goes along (SillyTavern drops a member whose character it does not have).

    Raises:
        FormatError: The story is not a group, ``folder`` is a file, or a member's card is missing.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FormatError(f"{folder} is a file; give a folder to write the group's files into")
    definition, chat = export_st_group(story.tree)
    written = [
        atomic_write(folder / "groups" / f"{definition['id']}.json",
                     json.dumps(definition, ensure_ascii=False, indent=4).encode("utf-8")),
        atomic_write(folder / "group chats" / f"{definition['chat_id']}.jsonl", chat.encode("utf-8")),
    ]
    group = story.settings.group
    for member in group.members:
        try:
            source = find_card(member.card, paths)
        except FormatError as exc:
            raise FormatError(f"member {member.name!r}: {exc}") from None
        data = source.read_bytes()
        if source.suffix.lower() != ".png" or not data.startswith(b"\x89PNG"):
            data = card_to_png(load_card(source)[0])
        written.append(atomic_write(folder / "characters" / avatar_for(member, group), data))
    return written
