"""Choose a story's worlds: every world in the library, the story's ones ticked (Space toggles)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, SelectionList

__all__ = ["WorldsDialog"]


class WorldsDialog(ModalScreen[list[str] | None]):
    """Tick the worlds a story uses; returns the ticked references (library names where the
    world is in the library), or ``None`` when cancelled.

    Args:
        title: What the worlds are for.
        worlds: ``(name, path, reference)`` of every world that can be chosen.
        chosen: The files (resolved paths) ticked at the start.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Done", priority=True)]
    DEFAULT_CSS = """
    WorldsDialog { align: center middle; }
    WorldsDialog > Vertical { width: 90%; max-width: 90; height: auto; max-height: 90%;
                              border: thick $primary; background: $surface; padding: 0 1; }
    WorldsDialog SelectionList { height: auto; max-height: 16; }
    WorldsDialog .dialog-buttons { height: auto; align-horizontal: right; }
    """

    def __init__(self, title: str, worlds: Sequence[tuple[str, Path, str]], chosen: Sequence[str | Path]) -> None:
        super().__init__()
        self._title = title
        self._worlds = list(worlds)
        self._chosen = {str(c) for c in chosen}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, markup=False)
            yield Label("Space ticks or unticks a world; ctrl+s keeps the choice, Esc cancels.", markup=False)
            yield SelectionList[str](
                *((Text(f"{name}  ({path.name})"), ref, str(path.resolve()) in self._chosen)
                  for name, path, ref in self._worlds),
                id="world-list",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Done (ctrl+s)", id="done", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save() if event.button.id == "done" else self.action_cancel()

    def action_save(self) -> None:
        """Close with the ticked worlds."""
        self.dismiss(list(self.query_one(SelectionList).selected))

    def action_cancel(self) -> None:
        """Close without a change."""
        self.dismiss(None)
