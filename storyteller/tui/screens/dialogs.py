"""Small modal dialogs: edit a text, ask for a line, show a report, confirm."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

__all__ = ["AskText", "Confirm", "EditText", "Report"]

_DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 90%; max-width: 100; height: auto; max-height: 90%;
    border: thick $primary; background: $surface; padding: 0 1;
}}
{name} .dialog-title {{ text-style: bold; color: $accent; }}
{name} .dialog-buttons {{ height: auto; align-horizontal: right; }}
{name} .dialog-buttons Button {{ margin-left: 1; min-width: 10; }}
"""


class EditText(ModalScreen[str | None]):
    """Edit a (possibly long) text; returns the new text, or ``None`` when cancelled.

    Args:
        title: What is being edited.
        text: The text to start from.
    """

    DEFAULT_CSS = _DIALOG_CSS.format(name="EditText") + "EditText TextArea { height: 12; }"
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save", priority=True)]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self._title = title
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, markup=False, classes="dialog-title")
            yield TextArea(self._text, id="edit-text", soft_wrap=True, show_line_numbers=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_save(self) -> None:
        """Close with the edited text."""
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        """Close without a change."""
        self.dismiss(None)


class AskText(ModalScreen[str | None]):
    """Ask for one line (a name, a path); returns it, or ``None`` when cancelled.

    Args:
        title: The question.
        value: The starting value.
        placeholder: Shown when empty.
        suggester: Completion for the input (e.g. paths).
    """

    DEFAULT_CSS = _DIALOG_CSS.format(name="AskText")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "", suggester=None) -> None:
        super().__init__()
        self._title = title
        self._value = value
        self._placeholder = placeholder
        self._suggester = suggester

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, markup=False, classes="dialog-title")
            yield Input(self._value, placeholder=self._placeholder, id="ask-input", suggester=self._suggester)
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.dismiss(self.query_one(Input).value)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)


class Report(ModalScreen[None]):
    """Show lines of text (an import report, an error with advice).

    Args:
        title: The heading.
        lines: The body, one item per line.
    """

    DEFAULT_CSS = _DIALOG_CSS.format(name="Report") + "Report VerticalScroll { height: auto; max-height: 16; }"
    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, title: str, lines: Sequence[str]) -> None:
        super().__init__()
        self._title = title
        self._lines = list(lines)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, markup=False, classes="dialog-title")
            with VerticalScroll():
                yield Static("\n".join(self._lines) or "(nothing to report)", markup=False, id="report-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        """Close the report."""
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """Ask yes or no.

    Args:
        question: What to confirm.
    """

    DEFAULT_CSS = _DIALOG_CSS.format(name="Confirm")
    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self._question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._question, markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)
