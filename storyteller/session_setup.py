"""Old home of :func:`open_session` and the turn's parts; they live in :mod:`storyteller.session` now.

Kept so that code written against ``storyteller.session_setup`` keeps working.
"""

from __future__ import annotations

from storyteller.session import (
    SessionParts,
    TurnReport,
    explain_prompt_change,
    history_of,
    load_books,
    lore_inserts,
    open_session,
    plain_messages,
)

__all__ = ["SessionParts", "TurnReport", "explain_prompt_change", "history_of", "load_books", "lore_inserts",
           "open_session", "plain_messages"]
