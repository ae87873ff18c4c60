"""How a play session uses memory: the recall for each prompt, and summaries after a reply.

The session calls :func:`recall_of` whenever it builds a prompt (a reply, an aside, the
inspector's preview) so every prompt of a story carries the same memory, and :func:`remember`
after a reply, outside its generation lock. Summaries are written through ``session.aside``:
the story's own prompt plus the request, so an engine that keeps its cache only reads the
request, and nothing is added to the story tree.
"""

from __future__ import annotations

from typing import Any

from storyteller.memory.store import StoryMemory, recall_for
from storyteller.memory.writer import Maintenance, maintain
from storyteller.prompt import Recall

__all__ = ["recall_of", "remember", "trimmed_of"]


def _room(session: Any) -> int:
    sampling = session.parts.sampling(session.story.settings)
    return max(session.parts.info.context_length - sampling.max_tokens, 0)


def recall_of(session: Any, messages: Any) -> Recall | None:
    """The pins and summaries for a prompt after ``messages`` (``None`` when memory is off)."""
    settings = session.parts.settings.memory
    memory: StoryMemory | None = getattr(session, "memory", None)
    if memory is None or not settings.enabled:
        return None
    recall, _view, _located = recall_for(memory.state, messages, session.story.nodes, settings, _room(session),
                                       count_tokens=session.parts.count_sync)
    return recall


def trimmed_of(prompt: Any) -> int:
    """How many of the oldest history messages a prompt left out."""
    if prompt is None:
        return 0
    for segment in prompt.segments:
        if segment.kind == "history" and segment.source.startswith("history:"):
            try:
                return int(segment.source.split(":", 1)[1])
            except ValueError:
                return 0
    return 0


async def remember(session: Any) -> Maintenance:
    """Write the summaries the story's next prompts will need (after a reply, or on request)."""
    settings = session.parts.settings.memory
    memory: StoryMemory | None = getattr(session, "memory", None)
    if memory is None or not settings.enabled or session.story.read_only:
        return Maintenance()
    prompt = session.last_prompt
    room = _room(session)
    fill = (prompt.budget.used / room) if prompt is not None and room else 0.0
    persona = session.story.settings.persona.name or "User"

    def names(author: str) -> str:
        if author == "user":
            return persona
        return author.removeprefix("kiosk:") or persona

    async def write(instruction: str, text: str, max_tokens: int) -> str:
        return await session.aside(f"{text}\n\n{instruction}", max_tokens=max_tokens)

    return await maintain(memory, session.story.messages(), trimmed=trimmed_of(prompt), fill=fill, room=room,
                          settings=settings, write=write, count_tokens=session.parts.count_sync, names=names)
