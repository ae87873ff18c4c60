"""Kobold Lite save files (JSON), both directions.

Lite keeps a story as chunks: ``prompt`` (the first) and ``actions`` (the rest), with earlier
retries under ``actions_metadata[i]["Alternative Text"]``. Each chunk becomes a node and each
alternative a sibling. Lite formats chunks by mode (``"\\nYou: hi"`` in chat mode,
``"{{[INPUT]}}...{{[OUTPUT]}}"`` in instruct mode, ``"\\n\\n> look"`` in adventure mode); the
node keeps the text without that formatting and the formatting itself in
``extra["kobold"]``, so export rebuilds the chunks exactly. Memory and the author's note map to
story settings; world info and every other key are kept as raw data for export.
KoboldAI United's v2 saves (``file_version``) are read too.

Export writes everything Lite's loader (``kai_json_load``) reads for the mode: the chunks,
``memory``, ``authorsnote`` with ``anotetemplate`` and ``anotestr`` (how far from the end Lite
inserts it), ``worldinfo`` with ``wiinsertlocation``/``wisearchdepth``, and in
``savedsettings`` the ``opmode``, ``chatname`` (the persona) and ``chatopponent`` (the
character). The character's card and the story's worlds come in a :class:`LiteContext` that the
caller resolves (this package never loads cards or lorebooks): the card goes into memory the way
Lite's own card import writes it, the worlds into ``worldinfo``. One key is ours,
``"storyteller"``: the card text added to memory, the author's note's exact depth and who wrote
each chunk (author and kind), so that import gives back the story as it was; Lite ignores it.

Group stories are Lite's multi-character chats: ``chatopponent`` holds the members' names joined by
``||$||`` (and our key the group's settings); a Lite save with several names there imports as a
group whose members' cards are named after the characters (the caller looks them up).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from storyteller.coerce import as_int, as_text
from storyteller.errors import FormatError
from storyteller.story._imported import ImportedStory
from storyteller.story.model import (
    AUTHOR_NARRATOR,
    AUTHOR_USER,
    KINDS,
    GroupMember,
    GroupSettings,
    Node,
    StorySettings,
)
from storyteller.story.tree import StoryTree

__all__ = ["LiteContext", "anote_depth", "anote_strength", "export_kobold", "import_kobold"]

_MODES = {1: "story", 2: "adventure", 3: "chat", 4: "instruct"}
_OPMODES = {v: k for k, v in _MODES.items()}
_CHAT_LINE = re.compile(r"^(\n*)([^\n:]{1,80}):( ?)(.*)$", re.S)
_ADVENTURE = re.compile(r"^(\n*> )(.*?)(\n*)$", re.S)
_INSTRUCT = re.compile(r"^(\s*\{\{\[INPUT\]\}\}\s*)(.*?)(\s*\{\{\[OUTPUT\]\}\}\s*)$", re.S)
_SPLIT_KEYS = ("prompt", "actions", "actions_metadata", "memory", "authorsnote", "authornote", "storyteller")
OUR_KEY = "storyteller"
"""The one key export adds that Lite does not know (Lite drops it when it saves)."""
DEFAULT_ANOTE_TEMPLATE = "[Author's note: <|>]"
# Lite's "A/N strength": characters from the end of the context (Immediate, Strong, Medium, Weak),
# against our depth in messages. Medium (320) is both programs' default.
_STRENGTHS = ((0, 0), (2, 160), (4, 320), (6, 480))


def anote_strength(depth: int) -> int:
    """Lite's ``anotestr`` (characters from the end) for an author's note ``depth`` messages back."""
    return min(_STRENGTHS, key=lambda pair: (abs(pair[0] - depth), -pair[0]))[1]


def anote_depth(strength: int) -> int:
    """The depth in messages nearest to Lite's ``anotestr``."""
    return min(_STRENGTHS, key=lambda pair: abs(pair[1] - strength))[0]


@dataclass(frozen=True, slots=True)
class LiteContext:
    """What a Kobold Lite save carries beyond the story, resolved by the caller.

    Attributes:
        opponent: The character's name, Lite's ``chatopponent``.
        card_memory: The card as Lite's own card import writes it into memory.
        world_info: Lite world-info entries (``key``, ``keysecondary``, ``keyanti``, ``content``...).
    """

    opponent: str = ""
    card_memory: str = ""
    world_info: tuple[dict[str, Any], ...] = ()


def import_kobold(data: bytes | str, *, title: str = "imported") -> ImportedStory:
    """Read a Kobold Lite (or KoboldAI United v2) save file.

    Raises:
        FormatError: It is not JSON, or not a Kobold save.
    """
    try:
        save = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"the Kobold save is not valid JSON ({exc}); save it again from Kobold Lite's Save menu") from None
    if not isinstance(save, dict):
        raise FormatError("a Kobold save is a JSON object; this file holds something else")
    if any(k in save for k in ("ga", "cm", "cwi")) and "prompt" not in save:
        raise FormatError("this is a Kobold Lite share link payload; open it in Lite and use Save to get a .json file")
    if "prompt" not in save and "actions" not in save:
        raise FormatError("no 'prompt' or 'actions' found: not a Kobold Lite save file")
    result = ImportedStory(title=title)
    report = result.report
    report.source_format = "koboldai-v2-json" if "file_version" in save else "kobold-lite-json"

    chunks, alternatives = _chunks(save, report)
    saved = save.get("savedsettings") if isinstance(save.get("savedsettings"), dict) else {}
    mode = _MODES.get(as_int(saved.get("opmode")) or 0)
    if mode is None:
        mode = "story"
        report.defaulted.append("no opmode in savedsettings: read as story mode")
    settings = StorySettings(mode=mode)
    chatname = as_text(saved.get("chatname")) or "User"
    opponents = [n.strip() for n in as_text(saved.get("chatopponent")).split("||$||") if n.strip()]
    opponent = opponents[0] if opponents else "KoboldAI"
    settings.persona.name = chatname
    ours = save.get(OUR_KEY) if isinstance(save.get(OUR_KEY), dict) else {}
    if mode == "chat" and len(opponents) > 1:
        settings.group = _lite_group(opponents, ours.get("group"), report)
        settings.cards = [m.card for m in settings.group.members]
    settings.memory = _own_memory(as_text(save.get("memory")), as_text(ours.get("card_memory")))
    settings.authors_note.text = as_text(save.get("authorsnote", save.get("authornote", "")))
    depth = as_int(ours.get("authors_note_depth"))
    strength = as_int(save.get("anotestr"))
    if depth is not None and depth >= 0:
        settings.authors_note.depth = depth
    elif strength is not None and strength >= 0:
        settings.authors_note.depth = anote_depth(strength)
    settings.imported = {"kobold": {"save": {k: v for k, v in save.items() if k not in _SPLIT_KEYS}}}
    if save.get("worldinfo") or save.get("worldinfo_v2"):
        report.defaulted.append("world info kept as raw Kobold data in the story settings (not yet used in prompts)")
    result.settings = settings

    # Who wrote each chunk, as our export recorded it; Lite's own saves only have the formatting.
    roles = ours.get("nodes") if isinstance(ours.get("nodes"), list) and len(ours["nodes"]) == len(chunks) else None
    parent: str | None = None
    for index, chunk in enumerate(chunks):
        options = [chunk] + [a for a in alternatives.get(index, []) if a != chunk]
        ids = []
        for text in options:
            author, kind, body, fmt = _interpret(text, mode, chatname, opponent, first=index == 0)
            role = roles[index] if roles is not None else None
            if isinstance(role, list) and len(role) == 2 and all(isinstance(r, str) for r in role) and role[1] in KINDS:
                author, kind = role
            node = Node.make(body, author=author, kind=kind, parent=parent, extra={"kobold": fmt})
            result.nodes.append(node)
            ids.append(node.id)
        parent = ids[0]
    result.current = parent
    if not chunks:
        report.defaulted.append("the save has no story text yet")
    return result


def _lite_group(names: list[str], kept: Any, report) -> GroupSettings:
    """Lite's multi-character chat (``chatopponent`` holding ``A||$||B``) as a group.

    Our own export's group settings come back whole; a save from Lite gives names only, so each
    member's card is named after the character (the caller looks the cards up) and the order is
    natural (Lite lets a named character answer, else a random one).
    """
    if isinstance(kept, dict):
        try:
            group = GroupSettings.model_validate(kept)
        except ValueError:
            report.dropped.append("the group settings our export stored are damaged; the group is rebuilt from the names")
        else:
            if [m.name for m in group.members] == names:
                return group
    unique = list(dict.fromkeys(names))
    report.defaulted.append(f"multi-character chat: a group of {', '.join(unique)} (natural order; cards by name)")
    return GroupSettings(name="Group: " + ", ".join(unique), members=[GroupMember(card=n, name=n) for n in unique])


def _own_memory(memory: str, card_memory: str) -> str:
    """The story's memory: what our export put in front of it (the card) taken off again."""
    if card_memory and memory.startswith(card_memory):
        return memory[len(card_memory):].removeprefix("\n")
    return memory


def _chunks(save: dict[str, Any], report) -> tuple[list[str], dict[int, list[str]]]:
    chunks: list[str] = []
    prompt = save.get("prompt")
    if prompt not in (None, ""):
        chunks.append(as_text(prompt))
    alternatives: dict[int, list[str]] = {}
    actions = save.get("actions")
    if isinstance(actions, dict) and isinstance(actions.get("actions"), dict):  # KoboldAI United v2
        items = sorted(actions["actions"].items(), key=lambda kv: as_int(kv[0]) or 0)
        for _, action in items:
            if not isinstance(action, dict):
                continue
            chunks.append(as_text(action.get("Selected Text")))
            opts = [as_text(o.get("text")) for o in action.get("Options") or () if isinstance(o, dict)]
            if opts:
                alternatives[len(chunks) - 1] = opts
        return chunks, alternatives
    if actions is not None and not isinstance(actions, list):
        raise FormatError("'actions' must be a list of story chunks; this save is damaged")
    offset = len(chunks)
    for i, action in enumerate(actions or []):
        if not isinstance(action, str):
            report.repaired.append(f"actions[{i}] {action!r} read as text")
        chunks.append(as_text(action))
    meta = save.get("actions_metadata")
    if isinstance(meta, dict):
        for key, value in meta.items():
            i = as_int(key)
            if i is None or not isinstance(value, dict) or not 0 <= i + offset < len(chunks):
                report.dropped.append(f"actions_metadata[{key!r}]: no such action")
                continue
            alts = [as_text(a) for a in value.get("Alternative Text") or () if a not in (None, "")]
            if alts:
                alternatives[i + offset] = alts
    return chunks, alternatives


def _interpret(chunk: str, mode: str, chatname: str, opponent: str, *, first: bool) -> tuple[str, str, str, dict]:
    """Who wrote a chunk, what kind it is, its bare text, and the formatting around it."""
    if mode == "chat" and (m := _CHAT_LINE.match(chunk)):
        lead, name, space, body = m.groups()
        fmt = {"prefix": f"{lead}{name}:{space}", "suffix": ""}
        if name.strip() == chatname:
            return AUTHOR_USER, "say", body, fmt
        return name.strip() or opponent, "greeting" if first else "generation", body, fmt
    if mode == "instruct" and (m := _INSTRUCT.match(chunk)):
        return AUTHOR_USER, "say", m.group(2), {"prefix": m.group(1), "suffix": m.group(3)}
    if mode == "adventure" and (m := _ADVENTURE.match(chunk)):
        return AUTHOR_USER, "do", m.group(2), {"prefix": m.group(1), "suffix": m.group(3)}
    if first:
        return AUTHOR_USER, "story", chunk, {}
    author = opponent if mode in ("chat", "instruct") else AUTHOR_NARRATOR
    return author, "story" if mode == "story" else "generation", chunk, {}


def _chunk_of(node: Node, tree: StoryTree) -> str:
    fmt = node.extra.get("kobold")
    if isinstance(fmt, dict):
        return f"{fmt.get('prefix', '')}{node.text}{fmt.get('suffix', '')}"
    mode = tree.settings.mode
    if mode == "chat" and node.kind != "story":
        name = tree.settings.persona.name if node.is_user else node.author
        return f"\n{name}: {node.text}"
    if mode == "adventure" and node.kind == "do":
        return f"\n\n> {node.text}\n\n"
    if mode == "instruct" and node.is_user:
        return f"{{{{[INPUT]}}}}{node.text}{{{{[OUTPUT]}}}}"
    return node.text


def export_kobold(tree: StoryTree, context: LiteContext | None = None) -> str:
    """The current path as a Kobold Lite save (alternatives as retries, hidden nodes left out).

    Args:
        tree: The story.
        context: The character and world info to carry; without it, only what the story kept
            from an imported save.
    """
    context = context or LiteContext()
    settings = tree.settings
    keep = settings.imported.get("kobold") if isinstance(settings.imported.get("kobold"), dict) else {}
    save: dict[str, Any] = dict(keep.get("save") or {})
    path = tree.current_path()
    chunks = [_chunk_of(n, tree) for n in path]
    save.pop("file_version", None)
    if isinstance(save.get("actions"), dict):
        save.pop("actions")
    save["gamestarted"] = bool(chunks)
    save["prompt"] = chunks[0] if chunks else ""
    save["actions"] = chunks[1:]
    meta: dict[str, Any] = {}
    for i, node in enumerate(path[1:]):  # one entry per action, as Lite's generate_savefile writes
        alts = [_chunk_of(n, tree) for n in tree.siblings(node.id) if n.id != node.id and n.id not in tree.hidden]
        meta[str(i)] = {"Selected Text": chunks[i + 1], "Alternative Text": alts}
    save["actions_metadata"] = meta
    card_memory = context.card_memory
    save["memory"] = "\n".join(p for p in (card_memory, settings.memory) if p) if card_memory else settings.memory
    note = settings.authors_note
    save["authorsnote"] = note.text
    save.setdefault("anotetemplate", DEFAULT_ANOTE_TEMPLATE)
    kept_strength = as_int(save.get("anotestr"))
    if kept_strength is None or anote_depth(kept_strength) != anote_depth(anote_strength(note.depth)):
        save["anotestr"] = anote_strength(note.depth)
    kept_wi = save.get("worldinfo") if isinstance(save.get("worldinfo"), list) else []
    save["worldinfo"] = [*kept_wi, *(dict(e) for e in context.world_info if e not in kept_wi)]
    save.setdefault("wiinsertlocation", 0)
    save.setdefault("wisearchdepth", 0)
    saved = dict(save.get("savedsettings") or {})
    saved["opmode"] = _OPMODES.get(settings.mode, saved.get("opmode", 1))
    saved["chatname"] = settings.persona.name
    group_names = "||$||".join(m.name for m in settings.group.members if m.name) if settings.group else ""
    opponent = context.opponent or group_names or _opponent(path) or as_text(saved.get("chatopponent"))
    if opponent:
        saved["chatopponent"] = opponent
    save["savedsettings"] = saved
    save[OUR_KEY] = {"card_memory": card_memory, "authors_note_depth": note.depth,
                     "nodes": [[n.author, n.kind] for n in path]}
    if settings.group is not None:
        save[OUR_KEY]["group"] = settings.group.model_dump(mode="json")
    return json.dumps(save, ensure_ascii=False, indent=1)


def _opponent(path: list[Node]) -> str:
    """The character who speaks most on the path (Lite's ``chatopponent``), or ``""``."""
    counts: dict[str, int] = {}
    for node in path:
        if not node.is_user and node.author not in (AUTHOR_NARRATOR, ""):
            counts[node.author] = counts.get(node.author, 0) + 1
    return max(counts, key=lambda name: counts[name]) if counts else ""
