"""The player's side of memory, as plain text: list, pin, unpin, correct and forget.

``play --plain`` (``/memory``, ``/pin``) and the app use these; every function takes the open
story and its :class:`~storyteller.memory.StoryMemory`, changes the memory, saves it, and
returns one line to show. Bad input raises :class:`~storyteller.errors.StoryError` with a
message that says what to type instead.
"""

from __future__ import annotations

from typing import Any

from storyteller.errors import StoryError
from storyteller.memory.model import Located, Pin
from storyteller.memory.store import PathView, StoryMemory

__all__ = ["MEMORY_HELP", "forget", "listing", "pin", "rows", "unpin", "correct"]

MEMORY_HELP = (
    "/memory                list pinned facts (P1...) and summaries (S1...) of this path\n"
    "/memory edit S2 TEXT   correct a summary (your text is kept; it is never regenerated)\n"
    "/memory forget S2      forget a summary (it is rewritten when needed) or a pin (P1)\n"
    "/pin                   pin the last message: it stays in every prompt\n"
    "/pin TEXT              pin a fact you write\n"
    "/unpin P1              remove a pin"
)


def rows(story: Any, memory: StoryMemory) -> tuple[list[tuple[Pin, str]], list[Located]]:
    """The pins active on the current path (with their text) and the summaries matching it."""
    messages = story.messages()
    view = PathView.of(messages)
    pins = memory.state.active_pins(view.heads, story.nodes, dict(zip(view.heads, view.texts, strict=True)))
    return pins, memory.state.locate(view.keys)


def listing(story: Any, memory: StoryMemory, *, in_prompt: set[str] | None = None) -> str:
    """The memory of the current path as numbered lines.

    Args:
        story: The open story.
        memory: Its memory.
        in_prompt: Sources (``summary:ID``) the last prompt carried, to mark them.
    """
    pins, located = rows(story, memory)
    lines = []
    for number, (pin, text) in enumerate(pins, start=1):
        what = "message" if pin.node is not None else "fact"
        lines.append(f"P{number} [pinned {what}] {_one_line(text)}")
    for number, item in enumerate(located, start=1):
        marks = []
        if item.summary.manual:
            marks.append("yours" if item.summary.source == "player" else f"from {item.summary.source}")
        if item.summary.parts:
            marks.append("merged")
        if in_prompt is not None and f"summary:{item.summary.id}" in in_prompt:
            marks.append("in the prompt")
        mark = f" ({', '.join(marks)})" if marks else ""
        lines.append(f"S{number} [messages {item.start + 1}-{item.end}{mark}] {_one_line(item.summary.text)}")
    other = len(memory.state.summaries) - len(located)
    if other:
        lines.append(f"({other} more summaries belong to other branches or to messages since edited)")
    return "\n".join(lines) if lines else "(nothing remembered yet: summaries are written as the story outgrows the context; /pin keeps a fact)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _writable(memory: StoryMemory) -> None:
    if memory.read_only:
        raise StoryError("this story is open read-only (another storyteller is writing it); memory cannot change here")


def _pick(story: Any, memory: StoryMemory, label: str) -> Pin | Located:
    _writable(memory)
    pins, located = rows(story, memory)
    label = label.strip().upper()
    table: list[Any] = pins if label.startswith("P") else located if label.startswith("S") else []
    try:
        number = int(label[1:])
    except ValueError:
        number = 0
    if not table or not 1 <= number <= len(table):
        raise StoryError(f"there is no {label or 'item'} in memory; /memory lists them (P1, S1, ...)")
    chosen = table[number - 1]
    return chosen[0] if label.startswith("P") else chosen


def pin(story: Any, memory: StoryMemory, text: str = "") -> str:
    """Pin a written fact, or (no text) the last message of the path."""
    _writable(memory)
    if text.strip():
        anchor = story.tree.current
        memory.state.pin_fact(text, anchor=anchor)
        memory.save()
        return "[pinned: it stays in every prompt on this path; /memory lists pins]"
    messages = story.messages()
    if not messages:
        raise StoryError("there is no message to pin yet; write /pin TEXT to pin a fact")
    memory.state.pin_message(messages[-1].head.id)
    memory.save()
    return f"[pinned the last message: {_one_line(messages[-1].text)[:80]}]"


def unpin(story: Any, memory: StoryMemory, label: str) -> str:
    """Remove a pin named as in the listing (``P1``)."""
    if not label.strip().upper().startswith("P"):
        raise StoryError("name the pin to remove as /memory lists it: /unpin P1")
    chosen = _pick(story, memory, label)
    assert isinstance(chosen, Pin)
    memory.state.unpin(chosen.id)
    memory.save()
    return f"[unpinned {label.strip().upper()}]"


def correct(story: Any, memory: StoryMemory, label: str, text: str) -> str:
    """Replace a summary's text with the player's own (``S2``)."""
    if not label.strip().upper().startswith("S") or not text.strip():
        raise StoryError("write /memory edit S2 NEW TEXT (/memory lists the summaries)")
    chosen = _pick(story, memory, label)
    assert isinstance(chosen, Located)
    memory.state.edit_summary(chosen.summary.id, text)
    memory.save()
    return f"[{label.strip().upper()} corrected; your text is kept]"


def forget(story: Any, memory: StoryMemory, label: str) -> str:
    """Forget a summary (``S2``) or a pin (``P1``)."""
    chosen = _pick(story, memory, label)
    if isinstance(chosen, Pin):
        memory.state.unpin(chosen.id)
    else:
        memory.state.remove_summary(chosen.summary.id)
    memory.save()
    return f"[forgot {label.strip().upper()}]"
