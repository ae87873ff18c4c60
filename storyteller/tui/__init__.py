"""The Textual terminal app: play, write, manage cards and worlds, and see what the model saw.

Entry point: :func:`run_app`. Everything here talks to the core only through
:class:`storyteller.session.Session` and the data modules; nothing below ``tui/`` imports Textual.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StorytellerApp", "run_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``storyteller.tui.kiosk.cli`` can be imported without Textual.
    if name in __all__:
        from storyteller.tui import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
