"""Memory in SillyTavern chats and Kobold Lite saves, both directions.

SillyTavern's Summarize extension keeps its summary on a message, as ``extra.memory``: the
newest one before the last message is the summary in use (the default template puts it in the
prompt as ``[Summary: ...]``). Kobold Lite has one memory box; its "AutoGenerate Memory" writes
``[Summary: ...]`` there, and ``[Summary Continued: ...]`` when it adds to one.

Import: such a summary becomes a summary of ours (marked as from SillyTavern or Kobold, kept as
written: it is never regenerated) covering the messages up to where it was written. Kobold's
summary blocks move out of the memory box into it; the rest of the box stays story memory.
Export: the summaries our prompt uses for the current path are joined into one text; SillyTavern
gets it as ``extra.memory`` on the last message they cover, Kobold Lite as a ``[Summary: ...]``
block after its memory box, after the pinned facts as ``[Pinned: ...]`` lines.
"""

from __future__ import annotations

import json
import re
from typing import Any

from storyteller.memory.commands import rows
from storyteller.memory.model import cover
from storyteller.memory.store import PathView, StoryMemory

__all__ = ["export_kobold_memory", "export_sillytavern_memory", "import_memory"]

_KOBOLD_SUMMARY = re.compile(r"\[Summary(?: Continued)?:\s*(.*?)\]\s*(?=\n\s*\[|\Z)", re.S)


def _st_memory(node: Any) -> str:
    st = node.extra.get("st") if isinstance(node.extra.get("st"), dict) else {}
    message = st.get("message") if isinstance(st.get("message"), dict) else {}
    extra = message.get("extra") if isinstance(message.get("extra"), dict) else {}
    value = extra.get("memory")
    if isinstance(value, dict):  # section-based summarizers: {characters, body, lore}
        value = "\n".join(str(v) for v in value.values() if isinstance(v, str) and v.strip())
    return value.strip() if isinstance(value, str) else ""


def import_memory(story: Any, memory: StoryMemory) -> list[str]:
    """Turn an imported story's SillyTavern or Kobold summary into ours; returns what was done."""
    messages = story.messages()
    view = PathView.of(messages)
    done = []
    for index in range(len(messages) - 2, -1, -1):  # SillyTavern skips the last message
        text = _st_memory(messages[index].head)
        if text:
            memory.state.add_summary(view.keys[:index + 1], view.heads[:index + 1], text, manual=True,
                                     source="sillytavern")
            done.append(f"SillyTavern summary of messages 1-{index + 1} kept as a summary")
            break
    box = story.settings.memory
    found = [m.group(1).strip() for m in _KOBOLD_SUMMARY.finditer(box)]
    if found and messages and not story.read_only:
        memory.state.add_summary(view.keys, view.heads, "\n".join(found), manual=True, source="kobold")
        story.set_settings(memory=_KOBOLD_SUMMARY.sub("", box).strip())
        done.append(f"Kobold Lite summary ({len(found)} block(s)) moved from memory to a summary of "
                    f"messages 1-{len(messages)}")
    if done:
        memory.save()
    return done


def _current(story: Any, memory: StoryMemory) -> tuple[list[str], str, int]:
    pins, located = rows(story, memory)
    chosen = cover(located, len(story.messages()))
    return [text for _pin, text in pins], "\n".join(x.summary.text for x in chosen), (chosen[-1].end if chosen else 0)


def export_sillytavern_memory(story: Any, memory: StoryMemory, jsonl: str) -> str:
    """A chat exported by :func:`~storyteller.story.export_story` with our summary in ``extra.memory``."""
    _pins, text, end = _current(story, memory)
    if not text:
        return jsonl
    lines = jsonl.split("\n")
    offset = 0 if lines and "mes" in json.loads(lines[0]) else 1
    target = offset + end - 1
    if not offset <= target < len(lines):
        return jsonl
    message = json.loads(lines[target])
    extra = dict(message.get("extra")) if isinstance(message.get("extra"), dict) else {}
    extra["memory"] = text
    message["extra"] = extra
    lines[target] = json.dumps(message, ensure_ascii=False)
    return "\n".join(lines)


def export_kobold_memory(story: Any, memory: StoryMemory, save_json: str) -> str:
    """A Kobold Lite save with the pinned facts and our summary added to its memory box."""
    pins, text, _end = _current(story, memory)
    if not pins and not text:
        return save_json
    save = json.loads(save_json)
    parts = [str(save.get("memory") or "").strip()]
    parts += [f"[Pinned: {' '.join(p.split())}]" for p in pins]
    if text:
        parts.append(f"[Summary: {text}]")
    save["memory"] = "\n".join(p for p in parts if p)
    return json.dumps(save, ensure_ascii=False, indent=1)
