"""The author's note, memory and persona of the open story (saved with the story), and what the
story remembers past the context: pinned facts and scene summaries (:mod:`storyteller.memory`)."""

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

    BINDINGS = [Binding("escape", "back", "Back"), Binding("ctrl+s", "save", "Save", priority=True)]
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
        self._opened: tuple | None = None

    def _form(self) -> tuple:
        """The editable fields as they are now (Esc compares them with how the screen opened)."""
        return (*(self.query_one(f"#{i}", TextArea).text for i in ("note-text", "memory", "persona-description")),
                *(self.query_one(f"#{i}", Input).value for i in ("note-depth", "note-interval", "persona-name")),
                self.query_one("#note-role", Select).value)

    def on_mount(self) -> None:
        self._opened = self._form()
        self.query_one("#note-text", TextArea).focus()

    def action_back(self) -> None:
        """Leave; with unsaved changes, ask first."""
        if self._opened is not None and self._form() != self._opened:
            from storyteller.tui.screens.dialogs import Confirm

            self.app.push_screen(Confirm("Leave without saving your changes to the note, memory or persona? "
                                         "(ctrl+s saves)"), lambda discard: self.app.pop_screen() if discard else None)
            return
        self.app.pop_screen()

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
            yield Label("Remembered past the context: pins (P1...) and summaries (S1...) of this path")
            yield Static(self._listing(), id="recall-list", markup=False)
            yield Input(id="recall-command", placeholder="pin TEXT · unpin P1 · edit S2 TEXT · forget S2 (Enter)")
            yield Static("ctrl+s saves · Esc goes back without saving", classes="hint", markup=False)
            yield Button("Save", id="save", variant="primary")
        yield Footer()

    def _listing(self) -> str:
        from storyteller.memory.commands import listing

        memory = getattr(self.session, "memory", None)
        if memory is None:
            return "(memory is not available)"
        prompt = self.session.last_prompt
        shown = {s.source for s in prompt.segments} if prompt is not None else None
        return listing(self.session.story, memory, in_prompt=shown)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Memory commands: ``pin TEXT``, ``unpin P1``, ``edit S2 TEXT``, ``forget S2``."""
        if event.input.id != "recall-command":
            return
        event.stop()
        from storyteller.memory import commands

        memory = getattr(self.session, "memory", None)
        action, _, rest = event.value.strip().partition(" ")
        story = self.session.story
        try:
            if memory is None or self.session.generating:
                raise StorytellerError("memory cannot change while a reply is being generated")
            if action == "pin":
                done = commands.pin(story, memory, rest)
            elif action == "unpin":
                done = commands.unpin(story, memory, rest)
            elif action == "edit":
                label, _, text = rest.strip().partition(" ")
                done = commands.correct(story, memory, label, text)
            elif action == "forget":
                done = commands.forget(story, memory, rest)
            else:
                raise StorytellerError("type pin TEXT, unpin P1, edit S2 TEXT or forget S2")
        except StorytellerError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=8)
            return
        event.input.value = ""
        self.query_one("#recall-list", Static).update(self._listing())
        self.notify(done.strip("[]"), markup=False)

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
