"""The character screen: every field of a card, alternate greetings, its embedded lorebook; save, export.

The embedded lorebook opens in the world-info editor (F8 here); its ctrl+s saves the book with
the card. When the card is the open story's, the story uses the saved card from the next reply.
The app reads the card in a thread worker and opens this screen on it; the screen edits and
saves it through :mod:`storyteller.session.editing`.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static, TextArea

from storyteller.errors import StorytellerError
from storyteller.paths import Paths
from storyteller.session import editing
from storyteller.session.editing import Card, Lorebook
from storyteller.tui.messages import CardSaved
from storyteller.tui.screens.dialogs import AskText
from storyteller.tui.screens.library import PathSuggester

__all__ = ["TEXT_FIELDS", "CharacterScreen"]

LINE_FIELDS = [("name", "Name"), ("nickname", "Nickname ({{char}} when set)"), ("creator", "Creator"),
               ("character_version", "Version")]
TEXT_FIELDS = [
    ("description", "Description"), ("personality", "Personality"), ("scenario", "Scenario"),
    ("first_mes", "First message (greeting)"), ("mes_example", "Example dialogue (<START> blocks)"),
    ("system_prompt", "System prompt ({{original}} keeps the default)"),
    ("post_history_instructions", "Post-history instructions"),
    ("creator_notes", "Creator notes (never sent to the model)"),
]


class CharacterScreen(Screen):
    """View and edit a character card file.

    Args:
        path: The card file. Bundled cards are saved as a copy in the user's characters folder.
        paths: Where the library lives.
        card: The card read from ``path`` (:func:`storyteller.session.editing.read_card`), or
            ``None`` when it cannot be read.
        error: Why it cannot be read.
    """

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+e", "export", "Export", priority=True),
        Binding("ctrl+g", "add_greeting", "Add greeting", priority=True),
        Binding("f8", "edit_book", "Lorebook"),
    ]
    DEFAULT_CSS = """
    CharacterScreen VerticalScroll { padding: 0 1; }
    CharacterScreen TextArea { height: 5; }
    CharacterScreen .field-label { color: $accent; margin-top: 1; }
    CharacterScreen #card-buttons { height: auto; }
    CharacterScreen #card-buttons Button { margin-right: 1; }
    """

    def __init__(self, path: Path, paths: Paths, card: Card | None, error: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.paths = paths
        self.card = card
        self.error = error

    def compose(self) -> ComposeResult:
        yield Static(f"Character: {self.path.name}", classes="screen-title", markup=False)
        with VerticalScroll(id="card-form"):
            if self.card is None:
                yield Static(f"This card cannot be read: {self.error}", markup=False)
            else:
                card = self.card
                for field, label in LINE_FIELDS:
                    yield Label(label, classes="field-label")
                    yield Input(getattr(card, field) or "", id=f"f-{field}")
                yield Label("Tags (comma-separated)", classes="field-label")
                yield Input(", ".join(card.tags), id="f-tags")
                for field, label in TEXT_FIELDS:
                    yield Label(label, classes="field-label")
                    yield TextArea(getattr(card, field) or "", id=f"f-{field}", soft_wrap=True)
                yield Label("Alternate greetings (an empty one is removed on save)", classes="field-label")
                for i, text in enumerate(card.alternate_greetings):
                    yield TextArea(text, id=f"greeting-{i}", classes="greeting", soft_wrap=True)
                yield Static(self._book_summary(), id="card-book", markup=False)
                with Horizontal(id="card-buttons"):
                    yield Button("Save (ctrl+s)", id="save", variant="primary")
                    yield Button("Export (ctrl+e)", id="export")
                    yield Button("Add greeting (ctrl+g)", id="add-greeting")
                    yield Button("Edit lorebook (F8)", id="edit-book")
        yield Footer()

    def _book_summary(self) -> str:
        book = self.card.character_book if self.card is not None else None
        if book is None or not book.entries:
            return "Embedded lorebook: none"
        titles = []
        for entry in book.entries[:20]:
            keys = getattr(entry, "keys", None) or []
            titles.append(getattr(entry, "comment", "") or getattr(entry, "name", "") or ", ".join(keys[:3]))
        more = f" (+{len(book.entries) - 20} more)" if len(book.entries) > 20 else ""
        return f"Embedded lorebook: {len(book.entries)} entries — " + "; ".join(t for t in titles if t) + more

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"save": self.action_save, "export": self.action_export, "add-greeting": self.action_add_greeting,
         "edit-book": self.action_edit_book}[event.button.id or "save"]()

    def action_add_greeting(self) -> None:
        """Add an empty alternate greeting to fill in."""
        if self.card is None:
            return
        count = len(self.query(".greeting"))
        area = TextArea("", id=f"greeting-{count}", classes="greeting", soft_wrap=True)
        self.query_one("#card-form").mount(area, before=self.query_one("#card-book"))
        area.focus()

    def collect(self) -> Card:
        """The card with the form's values (a copy; the file is not touched)."""
        assert self.card is not None
        card = self.card.model_copy(deep=True)
        for field, _label in LINE_FIELDS:
            value = self.query_one(f"#f-{field}", Input).value
            setattr(card, field, value.strip() or None if field == "nickname" else value.strip())
        card.tags = [t.strip() for t in self.query_one("#f-tags", Input).value.split(",") if t.strip()]
        for field, _label in TEXT_FIELDS:
            text, kept = self.query_one(f"#f-{field}", TextArea).text, getattr(self.card, field)
            if text != kept.replace("\r\n", "\n").replace("\r", "\n"):  # unchanged keeps its CRLF
                setattr(card, field, text)
        card.alternate_greetings = [a.text for a in self.query(".greeting").results(TextArea) if a.text.strip()]
        # Private attributes (the PNG pixels, embedded files) do not survive model_copy in every case.
        card.image, card.files = self.card.image, self.card.files
        card.legacy_fields = self.card.legacy_fields
        return card

    def action_save(self) -> bool:
        """Save the card (in its own format); a bundled card is saved as the user's copy.

        Returns:
            Whether the card was written.
        """
        if self.card is None:
            return False
        if not self.query_one("#f-name", Input).value.strip():
            self.notify("A card needs a name.", severity="error", markup=False)
            return False
        card = self.collect()
        source = self.path
        try:
            target = editing.save_card_file(card, source, self.paths)
        except (StorytellerError, OSError) as exc:
            self.notify(f"Not saved: {exc}", severity="error", markup=False, timeout=8)
            return False
        self.card, self.path = card, target
        self.notify(f"Saved {target}.", markup=False)
        self.post_message(CardSaved(source, target, card))
        return True

    def action_edit_book(self) -> None:
        """Edit the card's embedded lorebook in the world-info editor (ctrl+s there saves the card)."""
        if self.card is None:
            return
        from storyteller.tui.screens.worldinfo import CardBookScreen

        try:
            book = editing.card_book(self.card)
        except StorytellerError as exc:
            self.notify(f"The embedded lorebook cannot be edited: {exc}", severity="error", markup=False)
            return
        self.app.push_screen(CardBookScreen(self.paths, book, self.save_book))

    def save_book(self, book: Lorebook) -> bool:
        """Put ``book`` into the card as its embedded lorebook and save the card."""
        if self.card is None:
            return False
        try:
            editing.set_card_book(self.card, book)
        except StorytellerError as exc:
            self.notify(f"The lorebook cannot be stored in the card: {exc}", severity="error", markup=False)
            return False
        self.query_one("#card-book", Static).update(self._book_summary())
        return self.action_save()

    def action_export(self) -> None:
        """Write the card to a file; the format follows the name (.png, .json, .charx, .yaml)."""
        if self.card is None:
            return

        def done(raw: str | None) -> None:
            if not raw or not raw.strip():
                return
            target = Path(raw.strip()).expanduser()
            try:
                editing.export_card(self.collect(), target)
            except (StorytellerError, OSError) as exc:
                self.notify(f"Not exported: {exc}", severity="error", markup=False, timeout=8)
                return
            self.notify(f"Exported {target}.", markup=False)

        default = str(Path.cwd() / f"{self.path.stem}.json")
        self.app.push_screen(AskText("Export the card to (.png, .json, .charx or .yaml):", default,
                                     suggester=PathSuggester()), done)
