"""Kiosk mode's UI-free core: one shared, persistent story that visitors continue in turn.

The rules (turns, cooldown, moderation, recap, archive, admin actions) live in
:mod:`storyteller.kiosk.controller`, :mod:`~storyteller.kiosk.moderation`,
:mod:`~storyteller.kiosk.archive` and :mod:`~storyteller.kiosk.settings`. The Textual app, its
screens and the launcher live in :mod:`storyteller.tui.kiosk`; nothing here imports Textual.
``python -m storyteller.kiosk`` (the systemd unit's entry) is kept in ``__main__``.
"""

from __future__ import annotations
