"""The app's widgets, one file per screen region."""

from storyteller.tui.widgets.status import StatusBar, status_text
from storyteller.tui.widgets.transcript import PAGE, MessageView, Transcript

__all__ = ["PAGE", "MessageView", "StatusBar", "Transcript", "status_text"]
