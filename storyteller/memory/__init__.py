"""Memory that keeps what matters past the context: scene summaries and pinned facts.

As history is about to leave the context window, the model writes a short summary of each span
of messages (through the session's side road: nothing is added to the story tree). Summaries
are keyed by what their messages say, so editing, swiping, undoing or branching makes the ones
that covered a changed message stop applying; new ones are written lazily. The player's
corrections are kept as written. Pinned facts (a message, or a fact written by the player) are
always sent. Memory is stored next to the story (``memory.json``) and goes into the prompt
just before the history, where it changes only when history is trimmed. See ``docs/memory.md``.
"""

from storyteller.memory.model import Located, MemoryState, Pin, Summary, cover, message_key
from storyteller.memory.store import FILE, PathView, StoryMemory, recall_for
from storyteller.memory.writer import Maintenance, clean_summary, maintain

__all__ = [
    "FILE",
    "Located",
    "Maintenance",
    "MemoryState",
    "PathView",
    "Pin",
    "StoryMemory",
    "Summary",
    "clean_summary",
    "cover",
    "maintain",
    "message_key",
    "recall_for",
]
