"""The operator PIN prompt. Dismisses with True when the PIN was right."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

if TYPE_CHECKING:
    from storyteller.tui.kiosk.app import KioskApp

__all__ = ["PinScreen"]


class PinScreen(ModalScreen[bool], inherit_bindings=False):
    """Asks for the operator PIN; Esc goes back without it."""

    DEFAULT_CSS = """
    PinScreen { align: center middle; }
    PinScreen #pin-box { width: 44; height: auto; border: thick $primary; background: $panel; padding: 1 2; }
    PinScreen #pin-message { color: $warning; height: 1; }
    """

    def __init__(self) -> None:
        super().__init__(id="pin-screen")

    def compose(self) -> ComposeResult:
        with Vertical(id="pin-box"):
            yield Static("Operator PIN", markup=False)
            yield Input(id="pin", password=True, max_length=64)
            yield Static("", id="pin-message", markup=False)

    def on_mount(self) -> None:
        self.query_one("#pin", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        app: KioskApp = self.app  # type: ignore[assignment]
        problem = app.controller.try_pin(event.value)
        event.input.value = ""
        if problem is None:
            self.dismiss(True)
        else:
            self.query_one("#pin-message", Static).update(problem)

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape":
            event.stop()
            self.dismiss(False)
