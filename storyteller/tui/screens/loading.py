"""The screen shown while the engine loads, and when it could not be opened."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, LoadingIndicator, Static

__all__ = ["LoadingScreen"]


class LoadingScreen(Screen):
    """Shows what is loading; on failure, what went wrong and where to go from here."""

    BINDINGS = [Binding("r", "app.retry_engine", "Retry", show=False)]

    DEFAULT_CSS = """
    LoadingScreen { align: center middle; }
    LoadingScreen > Vertical { width: 80%; height: auto; }
    LoadingScreen #loading-title { text-style: bold; color: $accent; text-align: center; width: 100%; }
    LoadingScreen #loading-detail { color: $text-muted; text-align: center; width: 100%; }
    LoadingScreen LoadingIndicator { height: 3; }
    LoadingScreen #loading-error { color: $error; margin: 1 0; }
    LoadingScreen #loading-buttons { height: auto; align-horizontal: center; }
    LoadingScreen #loading-buttons Button { margin: 0 1; }
    """

    def __init__(self, detail: str = "") -> None:
        super().__init__()
        self._detail = detail
        self.failed = False
        """True while the screen shows an error (rather than progress)."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("storyteller", id="loading-title", markup=False)
            yield Static(self._detail, id="loading-detail", markup=False)
            yield LoadingIndicator()
            yield Static("", id="loading-error", markup=False)
            with Center(), Horizontal(id="loading-buttons"):
                yield Button("Retry (r)", id="retry", variant="primary")
                yield Button("Settings (F9)", id="settings")
                yield Button("Library (F6)", id="library")
                yield Button("Quit (ctrl+q)", id="quit", variant="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#loading-error").display = False
        self.query_one("#loading-buttons").display = False

    def set_detail(self, text: str) -> None:
        """Say what is loading now."""
        self.failed = False
        self.query_one("#loading-detail", Static).update(text)
        self.query_one(LoadingIndicator).display = True
        self.query_one("#loading-error").display = False
        self.query_one("#loading-buttons").display = False

    def show_error(self, message: str) -> None:
        """Stop the spinner and show the problem with the ways out."""
        self.failed = True
        self.query_one(LoadingIndicator).display = False
        error = self.query_one("#loading-error", Static)
        error.update(message)
        error.display = True
        self.query_one("#loading-buttons").display = True
        self.query_one("#retry", Button).focus()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        action = {"retry": "retry_engine", "settings": "settings", "library": "library", "quit": "quit"}
        await self.app.run_action(action[event.button.id or "quit"])
