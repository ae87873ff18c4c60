"""The author's note, memory and persona of the open story (saved with the story)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static, TextArea

from storyteller.errors import StorytellerError

__all__ = ["NotesScreen"]


class NotesScreen(Screen):
    """Edit what steers the story: author's note (with depth and interval), memory, persona.

    Args:
        session: The open session; changes go to ``session.story.set_settings``.
    """

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("ctrl+s", "save", "Save", priority=True)]
    DEFAULT_CSS = """
    NotesScreen VerticalScroll { padding: 0 1; }
    NotesScreen TextArea { height: 6; }
    NotesScreen .row { height: auto; }
    NotesScreen .row Input { width: 12; }
    NotesScreen .row Label { padding: 1 1 0 0; }
    NotesScreen Select { width: 20; }
    NotesScreen .hint { color: $text-muted; }
    """

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        st = self.session.story.settings
        note = st.authors_note
        yield Static("Author's note, memory and persona", classes="screen-title", markup=False)
        with VerticalScroll():
            yield Label("Author's note: steering text placed near the end of the prompt")
            yield TextArea(note.text, id="note-text", soft_wrap=True)
            with Horizontal(classes="row"):
                yield Label("depth")
                yield Input(str(note.depth), id="note-depth", type="integer")
                yield Label("every N inputs")
                yield Input(str(note.interval), id="note-interval", type="integer")
                yield Label("role")
                yield Select([(r, r) for r in ("system", "user", "assistant")], value=note.role,
                             id="note-role", allow_blank=False)
            yield Label("Memory: always at the top of the prompt")
            yield TextArea(st.memory, id="memory", soft_wrap=True)
            yield Label("Persona: who you are in this story")
            yield Input(st.persona.name, id="persona-name", placeholder="your name ({{user}})")
            yield TextArea(st.persona.description, id="persona-description", soft_wrap=True)
            yield Static("ctrl+s saves · Esc goes back without saving", classes="hint", markup=False)
            yield Button("Save", id="save", variant="primary")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        """Save the three panels with the story (journaled like a turn)."""
        if self.session.generating:
            self.notify("A reply is being generated; save when it is done.", severity="warning", markup=False)
            return
        try:
            depth = int(self.query_one("#note-depth", Input).value or 4)
            interval = int(self.query_one("#note-interval", Input).value or 1)
        except ValueError:
            self.notify("Depth and interval are whole numbers.", severity="error", markup=False)
            return
        try:
            self.session.story.set_settings(
                authors_note={"text": self.query_one("#note-text", TextArea).text, "depth": depth,
                              "interval": interval, "role": self.query_one("#note-role", Select).value},
                memory=self.query_one("#memory", TextArea).text,
                persona={"name": self.query_one("#persona-name", Input).value.strip() or "User",
                         "description": self.query_one("#persona-description", TextArea).text},
            )
        except StorytellerError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=8)
            return
        self.notify("Saved with the story; the next reply uses it.", markup=False)
        self.app.pop_screen()
