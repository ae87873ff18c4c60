"""The one road to an engine for play.

- :mod:`~storyteller.session.turn`: :func:`build_turn`, the pure assembly of one turn's prompt
  (history, world info, the builder) from :class:`SessionParts`.
- :mod:`~storyteller.session.core`: :class:`Session`, the only thing that streams from an engine
  for play (submit, retry, continue, swipe, edit, undo; :meth:`Session.aside` for recaps and
  summaries that write nothing to the story), and, from :mod:`~storyteller.session.playing_with`,
  the changes to what a story is played with (:meth:`Session.use_card`,
  :meth:`Session.attach_world`, :meth:`Session.reload_lore`, :meth:`Session.apply_sampling`,
  :meth:`Session.use_template`).
- :mod:`~storyteller.session.opening`: :func:`open_session`, which builds a Session (imports
  point that way only).
- :mod:`~storyteller.session.group` and :mod:`~storyteller.session.group_play`: group chats (who
  answers, the cards a group prompt holds; :meth:`Session.reply_as`, :meth:`Session.set_muted`).
- :mod:`~storyteller.session.library`: :class:`Library`, the cards, worlds and stories the UI
  lists, starts and branches; :mod:`~storyteller.session.editing`: reading, saving and exporting
  the cards and worlds the UI's editors change (bundled files are saved as the user's copy).

The story model's rules the UI needs (input kinds per mode) are re-exported here, so the UI
talks to this layer only.
"""

from __future__ import annotations

from storyteller.prompt import TurnReport, explain_prompt_change
from storyteller.session.core import Session
from storyteller.session.events import (
    GenerationFailed,
    GenerationFinished,
    GenerationStarted,
    PromptBuilt,
    PromptProcessed,
    SessionEvent,
    StoryChanged,
    TextReceived,
)
from storyteller.session.library import Library
from storyteller.engines.base import Backend, BackendInfo
from storyteller.engines.registry import ENGINE_NAMES
from storyteller.session.group import choose_speakers, new_group
from storyteller.session.opening import (
    make_parts,
    open_engine,
    open_session,
    pick_template,
    probe_engine,
    start_group_story,
)
from storyteller.session.resources import load_books
from storyteller.session.turn import SessionParts, build_turn, history_of, lore_inserts, plain_messages
from storyteller.prompt import format_action
from storyteller.story.model import PLAYER_KINDS, GroupSettings, Mode, kinds_for_mode

__all__ = [
    "ENGINE_NAMES",
    "PLAYER_KINDS",
    "Backend",
    "BackendInfo",
    "GenerationFailed",
    "GenerationFinished",
    "GenerationStarted",
    "GroupSettings",
    "Library",
    "Mode",
    "PromptBuilt",
    "PromptProcessed",
    "Session",
    "SessionEvent",
    "SessionParts",
    "StoryChanged",
    "TextReceived",
    "TurnReport",
    "build_turn",
    "choose_speakers",
    "explain_prompt_change",
    "format_action",
    "history_of",
    "kinds_for_mode",
    "load_books",
    "lore_inserts",
    "make_parts",
    "new_group",
    "open_engine",
    "open_session",
    "pick_template",
    "plain_messages",
    "probe_engine",
    "start_group_story",
]
