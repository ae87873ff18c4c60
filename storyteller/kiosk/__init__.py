"""Kiosk mode: one shared, persistent story that visitors continue in turn, locked down.

The Textual app lives in :mod:`storyteller.kiosk.app`; the rules (turns, cooldown, moderation,
recap, archive, admin actions) in the UI-free :mod:`storyteller.kiosk.controller`. Importing this
package does not import Textual, so the main command can register ``storyteller kiosk`` cheaply.
"""

from __future__ import annotations

__all__ = ["run_kiosk"]


def run_kiosk(*args, **kwargs) -> int:
    """See :func:`storyteller.kiosk.run.run_kiosk`."""
    from storyteller.kiosk.run import run_kiosk as run

    return run(*args, **kwargs)
