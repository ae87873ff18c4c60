"""The Textual terminal app: play, write, manage cards and worlds, and see what the model saw.

Entry point: :func:`run_app`. Everything here talks to the core only through
:class:`storyteller.session.Session` and the data modules; nothing below ``tui/`` imports Textual.
"""

from storyteller.tui.app import StorytellerApp, run_app

__all__ = ["StorytellerApp", "run_app"]
