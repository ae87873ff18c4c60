"""Writing summaries: what to ask the model, how to tidy its answer, and when to ask.

The model is reached through a ``write`` function (the session's side road, which generates
without adding anything to the story tree). :func:`maintain` runs after a reply: it writes the
summaries of spans about to leave the context, then merges old summaries when those in use
pass 80% of their budget.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from storyteller.config import MemorySettings
from storyteller.memory.details import MAX_MERGED_DETAILS, details_of, split_details, with_details
from storyteller.memory.store import PathView, StoryMemory, budgets, merge_pair, spans_to_write

__all__ = ["MERGE_INSTRUCTION", "SUMMARY_INSTRUCTION", "Maintenance", "clean_summary", "maintain", "passage"]

SUMMARY_INSTRUCTION = (
    "Summarize the passage above in two or three sentences, in the language it is written in. "
    "Keep every name, place, object and promise."
)
MERGE_INSTRUCTION = (
    "Combine the two summaries above (one part of a story, then the next) into one summary of at most "
    "four sentences, in their language. Keep every name, place, object and promise."
)
MAX_SUMMARY_CHARS = 900
_LABEL = re.compile(r"^\s*(?:\*\*)?(?:summary|summarized|recap)\s*(?:\*\*)?\s*[:\-]\s*", re.I)
_SENTENCE_END = re.compile(r"[.!?…。！？\"”')\]](?=\s|$)")

Write = Callable[[str, str, int], Awaitable[str]]
"""``write(instruction, text, max_tokens)`` -> the model's answer (never added to the story).

Small models follow an instruction best right before their answer: put the text first."""


def passage(view: PathView, start: int, end: int, names: Callable[[str], str]) -> str:
    """Messages ``start`` to ``end - 1`` as ``Name: text`` lines."""
    return "\n".join(f"{names(view.authors[i])}: {view.texts[i].strip()}" for i in range(start, end))


def clean_summary(text: str) -> str:
    """The model's answer as a summary: no label, no blank lines, cut at the last full sentence."""
    text = _LABEL.sub("", text.strip())
    text = re.sub(r"\n\s*\n+", "\n", text).strip()
    if len(text) > MAX_SUMMARY_CHARS:
        text = text[:MAX_SUMMARY_CHARS]
    ends = list(_SENTENCE_END.finditer(text))
    if ends and ends[-1].end() < len(text):
        text = text[:ends[-1].end()]
    return text.strip()


@dataclass(slots=True)
class Maintenance:
    """What one :func:`maintain` call did."""

    written: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


async def maintain(memory: StoryMemory, messages: Sequence[Any], *, trimmed: int, fill: float, room: int,
                   settings: MemorySettings, write: Write, count_tokens: Callable[[str], int],
                   names: Callable[[str], str]) -> Maintenance:
    """Write the summaries the next prompts will need, then merge old ones if they grow too big.

    Args:
        memory: The story's memory (saved after each summary).
        messages: The current path.
        trimmed: Messages the last prompt left out (its history started there).
        fill: Share of the prompt room the last prompt used.
        room: Tokens of context minus the reply.
        settings: Memory settings.
        write: Asks the model (see :data:`Write`).
        count_tokens: Counts tokens.
        names: The display name for a node author.
    """
    done = Maintenance()
    if not settings.enabled or memory.read_only:
        return done
    view = PathView.of(messages)
    horizon = trimmed + settings.lookahead_messages if trimmed or fill >= 0.75 else 0
    jobs = settings.jobs_per_turn
    located = memory.state.locate(view.keys)
    for start, end in spans_to_write(located, len(view.keys), horizon, trimmed, settings)[:jobs]:
        text = clean_summary(await write(SUMMARY_INSTRUCTION, passage(view, start, end, names),
                                         settings.summary_tokens))
        jobs -= 1
        if not text:  # stopped, or the model gave nothing: try again after a later reply
            done.failed.append(f"messages {start + 1}-{end}")
            return done
        text = with_details(text, details_of(view.texts[start:end], view.texts))
        summary = memory.state.add_summary(view.keys[start:end], view.heads[start:end], text)
        memory.save()
        done.written.append(summary.id)
    summary_budget, _ = budgets(settings, room)
    while jobs > 0:
        pair = merge_pair(memory.state.locate(view.keys), max(horizon, trimmed), summary_budget, count_tokens)
        if pair is None:
            break
        a, b = pair
        jobs -= 1
        text = clean_summary(await write(MERGE_INSTRUCTION, f"{a.summary.text}\n\n{b.summary.text}",
                                         settings.summary_tokens))
        if not text or count_tokens(text) >= count_tokens(a.summary.text) + count_tokens(b.summary.text):
            done.failed.append(f"merge of messages {a.start + 1}-{b.end}")
            break
        # The details come from the parts' lines and the messages themselves, never from the
        # model's retelling: what one summary listed stays listed after any number of merges.
        details = [*split_details(a.summary.text)[1], *details_of(view.texts[a.start:a.end], view.texts),
                   *split_details(b.summary.text)[1], *details_of(view.texts[b.start:b.end], view.texts)]
        text = with_details(text, details, limit=MAX_MERGED_DETAILS)
        merged = memory.state.add_summary(a.summary.keys + b.summary.keys, a.summary.nodes + b.summary.nodes, text,
                                          parts=(a.summary.id, b.summary.id))
        memory.save()
        done.merged.append(merged.id)
    return done
