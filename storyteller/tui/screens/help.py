"""The help screen: every key and what it does (the command palette lists the same actions)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label
from textual.containers import Vertical

__all__ = ["HelpScreen"]


class HelpScreen(ModalScreen[None]):
    """A table of keys, actions and what they do.

    Args:
        actions: ``(key, action, name, description)`` rows.
    """

    BINDINGS = [Binding("escape,f1,q", "close", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 95%; max-width: 110; height: 90%; border: thick $primary; background: $surface; }
    HelpScreen Label { text-style: bold; color: $accent; padding: 0 1; }
    HelpScreen DataTable { height: 1fr; }
    """

    def __init__(self, actions: Sequence[tuple[str, str, str, str]]) -> None:
        super().__init__()
        self._actions = list(actions)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Keys (Esc closes; ctrl+p searches every action)")
            yield DataTable(cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action", "What it does")
        for key, _action, name, text in self._actions:
            table.add_row(key, name, text)
        table.focus()

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
