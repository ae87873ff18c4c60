"""``storyteller play --plain``: a line-based play loop for pipes, scripts, SSH and screen readers.

Each input line is a turn; lines starting with ``/`` are commands. Replies stream to stdout as
plain text (no colours, no cursor movement). Piping a file of inputs plays them in order and
exits at the end of input.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from storyteller.errors import StorytellerError
from storyteller.plain_group import GROUP_COMMANDS, GROUP_HELP, group_command
from storyteller.prompt.reply_filter import trim_incomplete
from storyteller.session import (
    GenerationFailed,
    GenerationFinished,
    GenerationStarted,
    PromptProcessed,
    Session,
    SessionEvent,
    TextReceived,
)
from storyteller.story.model import PLAYER_KINDS, Node
from storyteller.textsafe import clean

__all__ = ["HELP", "run_plain"]

HELP = """Commands:
  /do TEXT      an action (adventure: "> You TEXT")
  /say TEXT     speech
  /story TEXT   narration written by you
  /continue     let the model continue its last reply
  /retry        another reply in place of the last one (the old one is kept as a swipe)
  /swipe N      show another reply: /swipe 1 next, /swipe -1 previous
  /undo, /redo  step back or forward
  /edit TEXT    replace the text of the last message
  /show         print the story so far
  /save         write a snapshot now (every turn is saved anyway)
  /memory       what the story remembers past the context: pins (P1...) and summaries (S1...);
                /memory edit S2 TEXT corrects one, /memory forget S2 drops one
  /pin [TEXT]   pin the last message, or a fact you write: always in the prompt; /unpin P1
  /help         this list
  /quit         leave (end of input also leaves)
Plain lines are {default} inputs."""

NOT_UTF8 = object()
"""What :func:`_read_line` returns for a line that is not UTF-8."""


class _SafeOut:
    """Everything printed passes through :func:`storyteller.textsafe.clean`: model output, card
    greetings and error messages are untrusted, and a control sequence must never reach the terminal."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(clean(text))

    def flush(self) -> None:
        self._out.flush()


def _read_line(stdin: TextIO) -> str | object:
    """One input line; :data:`NOT_UTF8` when its bytes are not UTF-8 (read bytes, decode ourselves)."""
    raw_stream = getattr(stdin, "buffer", None)
    if raw_stream is None:
        return stdin.readline()
    raw = raw_stream.readline()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8


class _Printer:
    """Streams replies a whole sentence at a time, so what is printed is what the story keeps
    (a trimmed unfinished sentence never appears); the rest comes with the finished reply."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.streaming = False
        self.printed = ""
        self.label = ""
        """``Name: `` before a group member's reply, written with its first words."""

    def _write(self, text: str) -> None:
        if self.label:
            text = text.lstrip()  # "Name: " already ends in a space
        if text:
            self.out.write(self.label + text)
            self.label = ""
            self.out.flush()
            self.streaming = True

    def _finish(self, node: Node | None) -> None:
        done = self.printed.lstrip()
        if node is not None and node.text.startswith(done):
            self._write(node.text[len(done):])
        self.printed = ""

    def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, GenerationStarted):
            self.printed = ""
            self.end()  # a group turn: each member's reply on its own line
            self.label = f"{event.speaker}: " if event.speaker and event.action != "continue" else ""
        elif isinstance(event, TextReceived):
            kept, _cut = trim_incomplete(event.text)
            if len(kept) > len(self.printed) and kept.startswith(self.printed):
                self._write(kept[len(self.printed):])
                self.printed = kept
        elif isinstance(event, GenerationFinished):
            self._finish(event.node)
        elif isinstance(event, PromptProcessed) and event.total > 400 and event.done == event.total - 1:
            pass  # reading a long prompt; the first words follow
        elif isinstance(event, GenerationFailed):
            self._finish(event.node)
            self.end()
            self.out.write(f"[error: {event.message}]\n")
            self.out.flush()

    def end(self) -> None:
        if self.streaming:
            self.out.write("\n")
            self.out.flush()
            self.streaming = False


def _render_path(session: Session) -> str:
    from storyteller.prompt import format_action

    mode = session.story.settings.mode
    lines = []
    for message in session.story.messages():
        head = message.head
        if head.is_player and head.is_user:
            if mode == "adventure" and head.kind in ("do", "say"):
                lines.append(format_action(head.kind, message.text).strip())
            else:
                lines.append(f"> {message.text}")
        elif session.group is not None and session.speaker_of(head) is not None:
            lines.append(f"{head.author}: {message.text}")
        else:
            lines.append(message.text)
    return "\n\n".join(lines)


async def run_plain(session: Session, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Play on ``stdin``/``out`` until ``/quit`` or end of input; returns the exit code."""
    stdin = stdin or sys.stdin
    out = _SafeOut(out or sys.stdout)  # type: ignore[assignment]
    printer = _Printer(out)
    session.subscribe(printer)
    mode = session.story.settings.mode
    default_kind = {"adventure": "do", "story": "story"}.get(mode, "say")
    group = session.group
    if group is not None:
        out.write(f"[story {session.story.name!r}, {mode} mode, group {group.name!r}: {', '.join(session.members)}; "
                  f"{group.order} order; /help for commands]\n")
    else:
        out.write(f"[story {session.story.name!r}, {mode} mode, with {session.character_name}; /help for commands]\n")
    if session.story.read_only:
        out.write("[read-only: another storyteller process is writing this story]\n")
    text = _render_path(session)
    if text:
        out.write(text + "\n")
    out.flush()
    while True:
        line = await asyncio.to_thread(_read_line, stdin)
        if line is NOT_UTF8:
            out.write("[that line is not UTF-8 text and was ignored; set your terminal or file to UTF-8]\n")
            out.flush()
            continue
        assert isinstance(line, str)
        if not line:
            break
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if not stdin.isatty():  # a piped script: show what was played, as a transcript
            out.write(f"\n>>> {line}\n")
        try:
            if not await _handle(session, line, default_kind, printer, out):
                break
        except StorytellerError as exc:
            printer.end()
            out.write(f"[{exc}]\n")
        printer.end()
        out.flush()
    return 0


async def _handle(session: Session, line: str, default_kind: str, printer: _Printer, out: TextIO) -> bool:
    if not line.startswith("/"):
        await _reply(session.submit(line, default_kind), session, out)
        _nobody_answered(session, out)
        return True
    command, _, arg = line[1:].partition(" ")
    command = command.lower()
    if command in PLAYER_KINDS:
        await _reply(session.submit(arg, command), session, out)
        _nobody_answered(session, out)
    elif command == "continue":
        await _reply(session.continue_(), session, out)
    elif command in ("retry", "regenerate"):
        await _reply(session.regenerate(), session, out)
    elif command == "swipe":
        step = int(arg) if arg.strip().lstrip("-").isdigit() else 1
        index, count = session.swipe_position()
        if step > 0 and index + step >= count and session.last_reply() is not None:
            out.write("[no more replies: writing a new one...]\n")
            out.flush()
        node = await session.swipe(step)
        if node is not None and not printer.streaming:
            index, count = session.swipe_position()
            label = f"{node.author}: " if session.speaker_of(node) is not None else ""
            out.write(f"[{index + 1}/{count}] {label}{node.text}\n")
    elif command == "undo":
        if session.undo() is None and len(session.story.messages()) == 1:
            out.write("[nothing to undo: the greeting opens the story; /swipe shows the other greetings]\n")
        else:
            out.write(_last(session))
    elif command == "redo":
        session.redo()
        out.write(_last(session))
    elif command == "edit":
        messages = session.story.messages()
        if not messages or not arg.strip():
            out.write("[nothing to edit; use /edit NEW TEXT]\n")
        else:
            session.edit(messages[-1].nodes[-1].id, arg)
            out.write("[edited]\n")
    elif command == "show":
        out.write(_render_path(session) + "\n")
    elif command == "save":
        session.story.snapshot()
        out.write("[saved]\n")
    elif command in ("memory", "pin", "unpin"):
        out.write(_memory_command(session, command, arg) + "\n")
    elif command in ("quit", "exit", "q"):
        return False
    elif command == "help":
        out.write(HELP.format(default=default_kind) + "\n")
        if session.group is not None:
            out.write(GROUP_HELP + "\n")
    elif command in GROUP_COMMANDS:
        await group_command(session, command, arg.strip(), out, lambda coro: _reply(coro, session, out))
    else:
        out.write(f"[unknown command /{command}; /help lists them]\n")
    return True


async def _reply(coro, session: Session, out: TextIO) -> None:
    """Run one generation; ctrl+c meanwhile stops the reply (what arrived is kept), not the program."""
    import signal

    loop = asyncio.get_running_loop()
    stopped = False

    def on_interrupt() -> None:
        nonlocal stopped
        stopped = True
        session.stop()

    try:
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        installed = False
    try:
        node = await coro
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
    if stopped:
        out.write("\n[stopped]\n")
    if node is None:
        return
    out.flush()


def _nobody_answered(session: Session, out: TextIO) -> None:
    """In a group, say why no member answered the player's line, and what to do."""
    group = session.group
    path = session.path()
    if group is None or not path or not path[-1].is_player:
        return
    if group.order == "manual":
        out.write("[manual order: pick who answers with /as NAME]\n")
    elif all(m.muted for m in group.members):
        out.write("[every member is muted: /unmute NAME, or /as NAME for one reply]\n")


def _last(session: Session) -> str:
    messages = session.story.messages()
    return f"[now at: {messages[-1].text[:200]}]\n" if messages else "[the story is empty]\n"


def _memory_command(session: Session, command: str, arg: str) -> str:
    """``/memory``, ``/memory edit S2 TEXT``, ``/memory forget S2``, ``/pin [TEXT]``, ``/unpin P1``."""
    from storyteller.memory import commands

    memory = getattr(session, "memory", None)
    if memory is None:
        return "[memory is not available in this session]"
    story = session.story
    if command == "pin":
        return commands.pin(story, memory, arg)
    if command == "unpin":
        return commands.unpin(story, memory, arg)
    action, _, rest = arg.strip().partition(" ")
    if action.lower() == "edit":
        label, _, text = rest.strip().partition(" ")
        return commands.correct(story, memory, label, text)
    if action.lower() in ("forget", "delete", "remove"):
        return commands.forget(story, memory, rest)
    if action:
        return "[use /memory, /memory edit S2 TEXT or /memory forget S2]"
    prompt = getattr(session, "last_prompt", None)
    shown = {s.source for s in prompt.segments} if prompt is not None else None
    return commands.listing(story, memory, in_prompt=shown)
