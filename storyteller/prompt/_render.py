"""Turn the inputs into prompt pieces, mode by mode (no budgeting here).

Every piece is rendered on its own, never depending on its neighbours, so its token count can
be cached and reused on the next turn: a history message renders to the same text wherever it
ends up in the window.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from storyteller.prompt.macros import MacroContext, expand_macros, expand_names
from storyteller.prompt.model import (
    AuthorsNote,
    CharacterInfo,
    HistoryMessage,
    Mode,
    Persona,
    WorldInfoInsert,
)
from storyteller.prompt.templates import ContextTemplate, InstructTemplate

__all__ = ["DEFAULT_SYSTEM_PROMPTS", "Inputs", "Piece", "format_action", "parse_examples"]

DEFAULT_SYSTEM_PROMPTS: dict[str, str] = {
    "chat": (
        "Write {{char}}'s next reply in this fictional roleplay with {{user}}. "
        "Stay in character, and never write {{user}}'s lines or actions."
    ),
    "story": (
        "You are co-writing this story with {{user}}. Continue it from where it stops, in the same "
        "voice and tense. Write only the story's prose: no titles, labels, notes or commentary."
    ),
    "adventure": (
        "This is a text adventure and you are its narrator. {{user}} is the player: lines "
        "starting with > are the player's actions. Describe what happens next, in the second "
        "person, and never decide or write the player's actions."
    ),
    "instruct": "You are a helpful assistant.",
}
AUTHORS_NOTE_STORY_FORMAT = "[Author's note: {text}]"
"""Kobold Lite's default note template, used in story and adventure modes."""

_IF_BLOCK = re.compile(r"\{\{#if\s+(\w+)\s*\}\}(.*?)\{\{/if\}\}", re.S | re.I)
_FIELD = re.compile(r"\{\{(\w+)\}\}")
_START = re.compile(r"<START>", re.I)
_FIELD_KINDS = {
    "system": "system",
    "description": "description",
    "personality": "personality",
    "scenario": "scenario",
    "persona": "persona",
    "wibefore": "world_info",
    "lorebefore": "world_info",
    "wiafter": "world_info",
    "loreafter": "world_info",
    "memory": "memory",
}
_TRIM_LEAD = re.compile(r"^\s*\{\{trim\}\}", re.I)


@dataclass(slots=True)
class Piece:
    """A candidate segment, with what the budgeter and the message builder need.

    Attributes:
        group: ``fixed`` (always sent), ``wi`` (world info, within its budget), ``example``,
            ``history`` or ``depth`` (placed by depth among the history).
        role: Role for chat-completion messages.
        content: Text for the message; ``None`` for template wrappers that messages leave out.
        msg: Pieces with the same message id form one chat message.
        index: History index, example block number, or world-info rank.
        depth: Messages from the end, for ``depth`` pieces.
        volatile: Changes from turn to turn (world info, author's note): ends the stable prefix.
    """

    kind: str
    source: str
    text: str
    group: str = "fixed"
    role: str = "system"
    content: str | None = None
    msg: int = -1
    index: int = 0
    depth: int = 0
    name: str | None = None
    volatile: bool = False
    tokens: int = 0


@dataclass(slots=True)
class Inputs:
    """Everything one rendering needs; macro-expanded card fields are filled in by the builder."""

    mode: Mode
    target: str
    template: InstructTemplate
    context: ContextTemplate
    character: CharacterInfo
    persona: Persona
    memory: str
    history: Sequence[HistoryMessage]
    world_info: Sequence[WorldInfoInsert]
    authors_note: AuthorsNote | None
    macros: MacroContext
    system_prompt: str
    post_history: str
    continue_last: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    speaker: str = ""
    members: Sequence[str] = ()

    @property
    def char(self) -> str:
        return self.character.display_name or "Assistant"

    @property
    def replier(self) -> str:
        """The name the reply header gives: the group member who speaks, else ``{{char}}``."""
        return self.speaker or self.char

    @property
    def user(self) -> str:
        return self.persona.name or "User"

    @property
    def wrapped(self) -> bool:
        """Whether an instruct template wraps the turns (always for chat completion)."""
        return not self.template.is_plain

    @property
    def names_in_content(self) -> bool:
        return self.mode == "chat" and self.target == "text"

    def expand(self, text: str) -> str:
        return expand_macros(text, self.macros) if text else ""


def parse_examples(text: str) -> list[str]:
    """Split ``<START>``-separated example dialogue into trimmed, non-empty blocks."""
    text = text.replace("\r\n", "\n").strip()
    if not text or text.lower() == "<start>":
        return []
    return [block.strip() for block in _START.split(text) if block.strip()]


def format_action(kind: str, text: str) -> str:
    """An adventure input as Kobold Lite stores it: ``"\\n\\n> You open the door.\\n\\n"``.

    ``do`` adds "You" when missing (and turns a leading "I" into "You"); ``say`` becomes
    ``You say "..."``; anything else is returned unchanged.
    """
    body = " ".join(text.strip().split("\n"))
    if kind == "say":
        if not body.startswith(("\"", "“")):
            body = f'"{body}"'
        body = f"You say {body}"
    elif kind == "do":
        lowered = body.lower()
        if lowered.startswith("you ") or lowered == "you":
            body = "You" + body[3:]
        elif lowered.startswith("i "):
            body = "You" + body[1:]
        elif body:
            first = body[0].lower() if not body[1:2].isupper() else body[0]
            body = f"You {first}{body[1:]}"
        if body and body[-1] not in ".!?\"'…”":
            body += "."
    else:
        return text
    return f"\n\n> {body}\n\n"


def _wi_piece(entry: WorldInfoInsert, text: str, role: str = "system") -> Piece:
    return Piece(
        "world_info",
        entry.source or "world",
        text,
        group="fixed" if entry.constant else "wi",
        role=role,
        content=text,
        volatile=not entry.constant,
    )


def _fill(body: str, fields: dict[str, str], inp: Inputs) -> str:
    def field_value(match: re.Match[str]) -> str:
        key = match.group(1).lower()
        return fields[key] if key in fields else match.group(0)

    return inp.expand(_FIELD.sub(field_value, body))


def story_string(inp: Inputs, wi_before: list[WorldInfoInsert], wi_after: list[WorldInfoInsert]) -> list[Piece]:
    """The context template rendered into pieces, one per field (and per world-info entry)."""
    fields = dict(inp.fields)
    fields["wibefore"] = fields["lorebefore"] = "\n".join(inp.expand(w.content) for w in wi_before)
    fields["wiafter"] = fields["loreafter"] = "\n".join(inp.expand(w.content) for w in wi_after)
    pieces: list[Piece] = []

    def literal(text: str) -> None:
        if _TRIM_LEAD.match(text) and pieces:
            pieces[-1].text = pieces[-1].text.rstrip("\n")
            pieces[-1].content = pieces[-1].text
            text = _TRIM_LEAD.sub("", text).lstrip("\n")
        if not text:
            return
        names = [m.group(1).lower() for m in _FIELD.finditer(text)]
        kind = next((_FIELD_KINDS[n] for n in names if n in _FIELD_KINDS), "template")
        rendered = _fill(text, fields, inp)
        if rendered:
            pieces.append(Piece(kind, "context", rendered, content=rendered))

    pos = 0
    for match in _IF_BLOCK.finditer(inp.context.story_string):
        literal(inp.context.story_string[pos : match.start()])
        pos = match.end()
        key, body = match.group(1).lower(), match.group(2)
        if not fields.get(key):
            continue
        entries = wi_before if key in ("wibefore", "lorebefore") else wi_after if key in ("wiafter", "loreafter") else None
        if entries is not None and body.strip().lower() == "{{" + key + "}}" and body.endswith("\n"):
            for entry in entries:  # one piece per entry, so each can be counted and dropped alone
                text = inp.expand(entry.content) + "\n"
                pieces.append(_wi_piece(entry, text))
            continue
        text = _fill(body, fields, inp)
        if text:
            kind = _FIELD_KINDS.get(key, "template")
            pieces.append(Piece(kind, "card" if kind in ("description", "personality", "scenario") else kind, text, content=text, volatile=kind == "world_info"))
    literal(inp.context.story_string[pos:])
    return pieces


def adventure_turns(inp: Inputs) -> bool:
    """Adventure on an instruct template: the player's inputs are user turns, narration assistant turns.

    The model then ends its turn where the player's begins, as it was trained to, instead of
    writing on into the player's next action inside one long turn of its own.
    """
    return inp.mode == "adventure" and inp.wrapped and inp.target == "text"


def _turn(inp: Inputs, role: str, content: str, kind: str, source: str, **extra: object) -> Piece:
    """A whole turn as one piece: wrapped by the template, or a plain line."""
    text = inp.template.turn(role, content) if inp.wrapped else content + "\n"
    return Piece(kind, source, text, role=role, content=content, **extra)  # type: ignore[arg-type]


def head(inp: Inputs, wi_before: list[WorldInfoInsert], wi_after: list[WorldInfoInsert]) -> list[Piece]:
    """The opening: the system turn (system prompt, card, persona, memory, world info)."""
    body = story_string(inp, wi_before, wi_after)
    memory = inp.expand(inp.memory)
    if memory:
        piece = Piece("memory", "memory", memory + "\n", content=memory + "\n")
        body = [piece, *body] if inp.mode in ("story", "adventure") else [*body, piece]
    out: list[Piece] = []
    note = _note_pieces(inp, ("before_story_string",))
    out += note
    if body and inp.wrapped:
        # Inside a turn the text ends at the suffix, not with a line break of its own.
        last = body[-1]
        last.text = last.text.removesuffix("\n")
        last.content = last.text
    if body:
        prefix, suffix = inp.template.wrappers("system")
        if inp.wrapped and prefix:
            out.append(Piece("template", inp.template.name, prefix))
        out += body
        if inp.wrapped and suffix:
            out.append(Piece("template", inp.template.name, suffix))
    for piece in out:
        if piece.msg < 0:
            piece.msg = 0
    out += _note_pieces(inp, ("after_story_string",))
    if inp.mode == "story" and inp.wrapped and inp.target == "text":
        # The story continues inside one open assistant turn.
        out.append(Piece("template", inp.template.name, inp.template.assistant_prefix, role="assistant"))
    return out


def examples(inp: Inputs, em_top: list[WorldInfoInsert], em_bottom: list[WorldInfoInsert]) -> list[Piece]:
    """Example dialogue blocks (chat mode; adventure on an instruct template), each droppable on its own."""
    if inp.mode != "chat" and not adventure_turns(inp):
        return []
    blocks: list[tuple[str, str, str]] = []
    for group, entries in (("top", em_top), ("bottom", em_bottom)):
        if group == "bottom":
            for block in parse_examples(inp.fields.get("mesexamplesraw", "")):
                blocks.append(("examples", "card", block))
        for entry in entries:
            for block in parse_examples(inp.expand(entry.content)):
                blocks.append(("world_info", entry.source or "world", block))
    out: list[Piece] = []
    for number, (kind, source, block) in enumerate(blocks):
        if not inp.wrapped:
            heading = (inp.context.example_separator or "<START>") + "\n"
            text = heading + block + "\n"
        elif adventure_turns(inp):
            text = "".join(inp.template.turn(role, content) for role, content in _adventure_example_turns(inp, block))
        elif inp.target == "text":
            text = "".join(inp.template.turn(role, content) for role, content in _example_turns(inp, block))
        else:
            text = inp.template.turn("system", block)
        out.append(Piece(kind, source, text, group="example", content=block, index=number, msg=1000 + number))
    return out


def _example_turns(inp: Inputs, block: str) -> list[tuple[str, str]]:
    turns: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if line.startswith(f"{inp.user}:"):
            turns.append(("user", line))
        elif line.startswith(f"{inp.char}:") or not turns or any(line.startswith(f"{m}:") for m in inp.members):
            turns.append(("assistant", line))
        else:
            role, text = turns[-1]
            turns[-1] = (role, text + "\n" + line)
    return turns


def _adventure_example_turns(inp: Inputs, block: str) -> list[tuple[str, str]]:
    """``User: I read the notice`` becomes the player's action ``> You read the notice.``; other
    lines are speech (``> You say "Hello"``)."""
    turns = []
    for role, line in _example_turns(inp, block):
        if role == "user":
            body = line.removeprefix(f"{inp.user}:").strip()
            acting = body.startswith(("I ", "*")) or body.lower().startswith("you ")
            kind = "do" if acting else "say"
            turns.append((role, format_action(kind, body.strip("*") if acting else body).strip()))
        else:
            turns.append((role, line.removeprefix(f"{inp.char}:").strip()))
    return turns


def chat_start(inp: Inputs) -> list[Piece]:
    """SillyTavern's line between examples and chat (plain-text chat only)."""
    if inp.mode == "chat" and not inp.wrapped and inp.context.chat_start:
        return [Piece("chat_start", "context", inp.context.chat_start + "\n")]
    return []


def history_piece(inp: Inputs, index: int, message: HistoryMessage, *, last: bool) -> Piece:
    """One history message, rendered the same wherever it lands in the window."""
    text = expand_names(message.text, inp.char, inp.user)
    role = message.role
    continuing = last and inp.continue_last and role == "assistant"
    source = f"history:{index}"
    extra: dict[str, object] = {"group": "history", "index": index, "msg": 100_000 + index}
    if message.kind == "aside" and inp.mode == "story" and inp.wrapped and inp.target == "text":
        # A request outside the story: close the open story turn, ask, and open the answer's turn.
        rendered = inp.template.assistant_suffix + inp.template.turn("user", text.strip()) + inp.template.assistant_prefix
        return Piece("history", source, rendered, role="user", content=text, **extra)  # type: ignore[arg-type]
    if inp.mode in ("story", "adventure"):
        if inp.mode == "adventure" and role == "user":
            text = format_action("do" if message.kind == "chat" else message.kind, text)
        if inp.target == "messages":
            content = text.strip("\n")
            return Piece("history", source, inp.template.turn(role, content), role=role, content=content, **extra)  # type: ignore[arg-type]
        if adventure_turns(inp):
            content = text.strip("\n")
            prefix, suffix = inp.template.wrappers(role)
            rendered = prefix + content + ("" if continuing else suffix)
            return Piece("history", source, rendered, role=role, content=content, **extra)  # type: ignore[arg-type]
        return Piece("history", source, text, role=role, content=text, **extra)  # type: ignore[arg-type]
    name = message.name or (inp.user if role == "user" else inp.char)
    if role != "system" and (inp.names_in_content or not inp.wrapped):
        content = f"{name}: {text}"
    else:
        content = text
    if not inp.wrapped:
        rendered = content if continuing else content + "\n"
    else:
        prefix, suffix = inp.template.wrappers(role)
        rendered = prefix + content + ("" if continuing else suffix)
    return Piece("history", source, rendered, role=role, content=content, name=name if role != "system" else None, **extra)  # type: ignore[arg-type]


def _note_text(inp: Inputs) -> str:
    note = inp.authors_note
    assert note is not None
    text = inp.expand(note.text)
    if inp.mode in ("story", "adventure") and not (inp.wrapped and inp.target == "text"):
        # Inside prose (no instruct template) the note needs Kobold Lite's brackets; on a
        # template it is a system turn of its own, out of the reply's way.
        text = AUTHORS_NOTE_STORY_FORMAT.format(text=text)
    top = [inp.expand(w.content) for w in inp.world_info if w.position == "an_top"]
    bottom = [inp.expand(w.content) for w in inp.world_info if w.position == "an_bottom"]
    return "\n".join([*top, text, *bottom])


def _depth_piece(inp: Inputs, role: str, content: str, kind: str, source: str, group: str, depth: int, volatile: bool) -> Piece:
    if adventure_turns(inp):
        text = inp.template.turn(role, content)
    elif inp.mode == "story" and inp.wrapped and inp.target == "text":
        # Out of the prose: close the story's turn, say it as a system turn, reopen the story.
        template = inp.template
        text = template.assistant_suffix + template.turn(role, content) + template.assistant_prefix
    elif inp.mode in ("story", "adventure") and inp.target == "text":
        text = "\n" + content + "\n"
    else:
        text = inp.template.turn(role, content) if inp.wrapped else content + "\n"
    return Piece(kind, source, text, group=group, role=role, content=content, depth=depth, volatile=volatile)


def _note_pieces(inp: Inputs, positions: tuple[str, ...]) -> list[Piece]:
    note = inp.authors_note
    if note is None or not note.text or note.position not in positions:
        return []
    piece = _depth_piece(inp, note.role, _note_text(inp), "authors_note", "authors_note", "fixed", note.depth, True)
    if note.position != "in_chat":
        piece.msg = 50
    return [piece]


def depth_inserts(inp: Inputs) -> list[Piece]:
    """Pieces placed among the history by depth: the author's note and world info @D."""
    out = _note_pieces(inp, ("in_chat",))
    for entry in inp.world_info:
        if entry.position == "at_depth":
            out.append(
                _depth_piece(
                    inp, entry.role, inp.expand(entry.content), "world_info", entry.source or "world",
                    "fixed" if entry.constant else "wi", max(entry.depth, 0), not entry.constant,
                )
            )
    for number, piece in enumerate(out):
        piece.msg = 200_000 + number
        piece.group = "depth_" + piece.group
    return out


def tail(inp: Inputs) -> list[Piece]:
    """After the history: post-history instructions, then the reply header."""
    out: list[Piece] = []
    if inp.mode in ("chat", "instruct"):
        post = inp.post_history
        if post:
            out.append(_turn(inp, "system", post, "post_history", "post_history", msg=300_000))
        last = inp.history[-1] if inp.history else None
        if inp.continue_last and last is not None and last.role == "assistant":
            return out
        if not inp.wrapped:
            out.append(Piece("reply_header", "template", f"{inp.replier}:", role="assistant"))
        elif inp.mode == "chat" and inp.target == "text":
            out.append(Piece("reply_header", "template", inp.template.assistant_prefix + f"{inp.replier}:", role="assistant"))
        else:
            out.append(Piece("reply_header", "template", inp.template.assistant_prefix, role="assistant"))
    elif adventure_turns(inp):
        last = inp.history[-1] if inp.history else None
        if inp.continue_last and last is not None and last.role == "assistant":
            return out  # the last narration stays open and goes on
        if inp.post_history:
            out.append(_turn(inp, "system", inp.post_history, "post_history", "post_history", msg=300_000))
        out.append(Piece("reply_header", "template", inp.template.assistant_prefix, role="assistant"))
    elif inp.target == "messages":
        out.append(Piece("reply_header", "template", inp.template.assistant_prefix, role="assistant"))
    return out


def recall_piece(inp: Inputs, kind: str, source: str, content: str, number: int) -> Piece:
    """A pinned fact or a summary: ``[Pinned: ...]`` / ``[Summary: ...]``, a system turn when wrapped."""
    label = "Pinned" if kind == "pinned" else "Summary"
    line = f"[{label}: {content.strip()}]"
    if ((inp.mode in ("story", "adventure") and inp.target == "text") or not inp.wrapped) and not adventure_turns(inp):
        text = line + "\n"
    else:
        text = inp.template.turn("system", line)
    base = 60_000 if kind == "pinned" else 70_000
    return Piece(kind, source, text, role="system", content=line, msg=base + number)
