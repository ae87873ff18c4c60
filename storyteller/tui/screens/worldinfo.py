"""The world-info editor: a book's entries with search, a form for every field that matters, enable/disable.

:class:`WorldInfoScreen` edits world files (the app reads them in a thread worker and opens the
editor on them; saved atomically; the running story picks the change up at once).
:class:`CardBookScreen` edits a card's embedded lorebook in memory and hands it back to the
character screen, which saves it with the card.
Books are read, changed and written through :mod:`storyteller.session.editing`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Label, Select, Static, TextArea

from storyteller.errors import StorytellerError
from storyteller.paths import Paths
from storyteller.session import editing
from storyteller.session.editing import Lorebook, apply_form
from storyteller.tui.messages import WorldSaved

__all__ = ["CardBookScreen", "WorldInfoScreen", "apply_form"]

_POSITIONS = [("before the character", 0), ("after the character", 1), ("top of author's note", 2),
              ("bottom of author's note", 3), ("at depth", 4), ("top of examples", 5),
              ("bottom of examples", 6), ("outlet", 7)]
_LOGIC = [("AND ANY", 0), ("NOT ALL", 1), ("NOT ANY", 2), ("AND ALL", 3)]
_ROLES = [("as system", 0), ("as user", 1), ("as assistant", 2)]
# Three-way switches: the entry's own choice, or the global world-info setting ("default").
_TRI = [("default", "default"), ("yes", "yes"), ("no", "no")]


def _blank(value: int | None) -> str:
    return "" if value is None else str(value)


def _tri(value: bool | None) -> str:
    return "default" if value is None else "yes" if value else "no"


class WorldInfoScreen(Screen):
    """Edit the entries of one or more lorebooks.

    Args:
        paths: Where the library lives (bundled worlds are saved as the user's copy there).
        books: The books to edit, as ``(file, book)`` (from
            :func:`storyteller.session.editing.read_worlds`); the file is ``None`` for a book that
            lives inside something else (a card), which a subclass saves.
        errors: A line per world that could not be read (shown when no book is left).
    """

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+s", "save", "Save book", priority=True),
        Binding("ctrl+n", "new_entry", "New entry"),
        Binding("ctrl+d", "toggle_entry", "Enable/disable", priority=True),
        Binding("ctrl+f", "focus_search", "Search", show=False),
    ]
    DEFAULT_CSS = """
    WorldInfoScreen #wi-top { height: 3; }
    WorldInfoScreen #wi-top Select { width: 30; }
    WorldInfoScreen #wi-top Input { width: 1fr; }
    WorldInfoScreen #entries { height: 8; }
    WorldInfoScreen #entry-form { height: 1fr; padding: 0 1; }
    WorldInfoScreen #entry-form TextArea { height: 6; }
    WorldInfoScreen .row { height: auto; }
    WorldInfoScreen .row Input { width: 10; }
    WorldInfoScreen .row Label { padding: 1 1 0 1; }
    WorldInfoScreen .row Select { width: 28; }
    WorldInfoScreen .row Select.tri { width: 16; }
    WorldInfoScreen .row Input.wide { width: 1fr; }
    """

    def __init__(self, paths: Paths, books: Sequence[tuple[Path | None, Lorebook]],
                 errors: Sequence[str] = ()) -> None:
        super().__init__()
        self.paths = paths
        self.books: list[tuple[Path | None, Lorebook]] = list(books)
        self.errors: list[str] = list(errors)
        self.book_index = 0
        self.uid: int | None = None
        self.dirty = False

    @property
    def book(self) -> Lorebook | None:
        """The book being edited."""
        return self.books[self.book_index][1] if self.books else None

    def compose(self) -> ComposeResult:
        yield Static("World info", classes="screen-title", markup=False)
        if not self.books:
            message = "No world to edit: this story has none. Pick one in the Library (F6), Worlds tab."
            yield Static("\n".join([message, *self.errors]), markup=False)
            yield Footer()
            return
        with Horizontal(id="wi-top"):
            names = [(book.name or (path.stem if path else "lorebook"), i) for i, (path, book) in enumerate(self.books)]
            yield Select(names, value=0, allow_blank=False, id="book")
            yield Input(placeholder="search titles, keys and content", id="wi-search")
        yield DataTable(id="entries", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="entry-form"):
            yield Input(placeholder="title / comment", id="e-comment")
            yield Input(placeholder="keys, comma-separated (/regex/ allowed)", id="e-keys")
            yield Input(placeholder="secondary keys (optional filter)", id="e-secondary")
            yield TextArea("", id="e-content", soft_wrap=True)
            with Horizontal(classes="row"):
                yield Checkbox("enabled", True, id="e-enabled")
                yield Checkbox("always on", False, id="e-constant")
                yield Label("order")
                yield Input("100", id="e-order", type="integer")
                yield Label("chance %")
                yield Input("100", id="e-probability", type="integer")
            with Horizontal(classes="row"):
                yield Select(_POSITIONS, value=0, allow_blank=False, id="e-position")
                yield Label("depth")
                yield Input("4", id="e-depth", type="integer")
                yield Select(_ROLES, value=0, allow_blank=False, id="e-role")
            with Horizontal(classes="row"):
                yield Label("secondary logic")
                yield Select(_LOGIC, value=0, allow_blank=False, id="e-logic")
                yield Label("scan depth")
                yield Input("", id="e-scan-depth", type="integer", placeholder="-")
            with Horizontal(classes="row"):
                yield Label("case-sensitive")
                yield Select(_TRI, value="default", allow_blank=False, id="e-case", classes="tri")
                yield Label("whole words")
                yield Select(_TRI, value="default", allow_blank=False, id="e-whole", classes="tri")
            with Horizontal(classes="row"):
                yield Label("group")
                yield Input("", id="e-group", classes="wide", placeholder="none")
                yield Label("weight")
                yield Input("100", id="e-group-weight", type="number")
                yield Checkbox("prioritise", False, id="e-group-override")
            with Horizontal(classes="row"):
                yield Label("group scoring")
                yield Select(_TRI, value="default", allow_blank=False, id="e-group-scoring", classes="tri")
                yield Checkbox("use chance", True, id="e-use-probability")
            with Horizontal(classes="row"):
                yield Label("sticky")
                yield Input("", id="e-sticky", type="integer", placeholder="off")
                yield Label("cooldown")
                yield Input("", id="e-cooldown", type="integer", placeholder="off")
                yield Label("delay")
                yield Input("", id="e-delay", type="integer", placeholder="off")
            with Horizontal(classes="row"):
                yield Checkbox("not triggered by recursion", False, id="e-exclude-recursion")
                yield Checkbox("no further recursion", False, id="e-prevent-recursion")
            with Horizontal(classes="row"):
                yield Label("delay until recursion level")
                yield Input("0", id="e-delay-recursion", type="integer")
            with Horizontal(classes="row"):
                yield Button("Apply to entry", id="apply", variant="primary")
                yield Button("Save book (ctrl+s)", id="save")
                yield Button("New entry (ctrl+n)", id="new")
        yield Footer()

    def on_mount(self) -> None:
        if not self.books:
            return
        table = self.query_one("#entries", DataTable)
        table.add_columns("on", "uid", "title", "keys", "order")
        self._fill()
        table.focus()

    def _matches(self, entry: Any, needle: str) -> bool:
        return not needle or needle in " ".join([entry.title, *entry.keys, entry.content]).casefold()

    def _fill(self) -> None:
        table = self.query_one("#entries", DataTable)
        table.clear()
        needle = self.query_one("#wi-search", Input).value.strip().casefold()
        for entry in self.book.entries:
            if self._matches(entry, needle):
                table.add_row("·" if entry.disable else "✔", str(entry.uid), Text(entry.title),
                              Text(", ".join(entry.keys)[:40]), str(entry.order), key=str(entry.uid))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "wi-search":
            self._fill()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "book" and isinstance(event.value, int) and event.value != self.book_index:
            self.book_index = event.value
            self.uid = None
            self._fill()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is None:
            return
        uid = int(event.row_key.value)
        if self.uid is not None and self.uid != uid:
            self.apply()  # moving on keeps what was typed
        self._show(uid)

    def _show(self, uid: int) -> None:
        entry = self.book.entry(uid)
        self.uid = uid
        self.query_one("#e-comment", Input).value = entry.comment
        self.query_one("#e-keys", Input).value = ", ".join(entry.keys)
        self.query_one("#e-secondary", Input).value = ", ".join(entry.secondary_keys)
        self.query_one("#e-content", TextArea).load_text(entry.content)
        self.query_one("#e-enabled", Checkbox).value = not entry.disable
        self.query_one("#e-constant", Checkbox).value = entry.constant
        self.query_one("#e-order", Input).value = str(entry.order)
        self.query_one("#e-probability", Input).value = str(int(entry.probability))
        self.query_one("#e-position", Select).value = int(entry.position)
        self.query_one("#e-depth", Input).value = str(entry.depth)
        self.query_one("#e-role", Select).value = int(entry.role)
        self.query_one("#e-logic", Select).value = int(entry.selective_logic)
        self.query_one("#e-scan-depth", Input).value = _blank(entry.scan_depth)
        self.query_one("#e-case", Select).value = _tri(entry.case_sensitive)
        self.query_one("#e-whole", Select).value = _tri(entry.match_whole_words)
        self.query_one("#e-group", Input).value = entry.group
        self.query_one("#e-group-weight", Input).value = str(entry.group_weight)
        self.query_one("#e-group-override", Checkbox).value = entry.group_override
        self.query_one("#e-group-scoring", Select).value = _tri(entry.use_group_scoring)
        self.query_one("#e-use-probability", Checkbox).value = entry.use_probability
        self.query_one("#e-sticky", Input).value = _blank(entry.sticky)
        self.query_one("#e-cooldown", Input).value = _blank(entry.cooldown)
        self.query_one("#e-delay", Input).value = _blank(entry.delay)
        self.query_one("#e-exclude-recursion", Checkbox).value = entry.exclude_recursion
        self.query_one("#e-prevent-recursion", Checkbox).value = entry.prevent_recursion
        self.query_one("#e-delay-recursion", Input).value = str(int(entry.delay_until_recursion))

    def form_values(self) -> dict[str, Any]:
        """The form as plain values."""
        return {
            "comment": self.query_one("#e-comment", Input).value,
            "keys": self.query_one("#e-keys", Input).value,
            "secondary_keys": self.query_one("#e-secondary", Input).value,
            "content": self.query_one("#e-content", TextArea).text,
            "enabled": self.query_one("#e-enabled", Checkbox).value,
            "constant": self.query_one("#e-constant", Checkbox).value,
            "order": self.query_one("#e-order", Input).value,
            "probability": self.query_one("#e-probability", Input).value,
            "position": self.query_one("#e-position", Select).value,
            "depth": self.query_one("#e-depth", Input).value,
            "selective_logic": self.query_one("#e-logic", Select).value,
            "role": self.query_one("#e-role", Select).value,
            "scan_depth": self.query_one("#e-scan-depth", Input).value,
            "case_sensitive": self.query_one("#e-case", Select).value,
            "match_whole_words": self.query_one("#e-whole", Select).value,
            "group": self.query_one("#e-group", Input).value,
            "group_weight": self.query_one("#e-group-weight", Input).value,
            "group_override": self.query_one("#e-group-override", Checkbox).value,
            "use_group_scoring": self.query_one("#e-group-scoring", Select).value,
            "use_probability": self.query_one("#e-use-probability", Checkbox).value,
            "sticky": self.query_one("#e-sticky", Input).value,
            "cooldown": self.query_one("#e-cooldown", Input).value,
            "delay": self.query_one("#e-delay", Input).value,
            "exclude_recursion": self.query_one("#e-exclude-recursion", Checkbox).value,
            "prevent_recursion": self.query_one("#e-prevent-recursion", Checkbox).value,
            "delay_until_recursion": self.query_one("#e-delay-recursion", Input).value,
        }

    def apply(self) -> bool:
        """Put the form into the selected entry (in memory); False when the form is invalid."""
        if self.book is None or self.uid is None:
            return True
        entries = self.book.entries
        index = next(i for i, e in enumerate(entries) if e.uid == self.uid)
        try:
            changed = apply_form(entries[index], self.form_values())
        except ValueError as exc:
            self.notify(f"Not applied: {exc}", severity="error", markup=False)
            return False
        if changed != entries[index]:
            entries[index] = changed
            self.dirty = True
            self._refresh_row(changed)
        return True

    def _refresh_row(self, entry: Any) -> None:
        table = self.query_one("#entries", DataTable)
        key = str(entry.uid)
        if key in table.rows:
            columns = list(table.columns)
            table.update_cell(key, columns[0], "·" if entry.disable else "✔")
            table.update_cell(key, columns[2], Text(entry.title))
            table.update_cell(key, columns[3], Text(", ".join(entry.keys)[:40]))
            table.update_cell(key, columns[4], str(entry.order))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "apply":
            self.apply()
        elif event.button.id == "save":
            self.action_save()
        elif event.button.id == "new":
            self.action_new_entry()

    def action_toggle_entry(self) -> None:
        """Enable or disable the selected entry."""
        if self.uid is None:
            return
        box = self.query_one("#e-enabled", Checkbox)
        box.value = not box.value
        self.apply()

    def action_new_entry(self) -> None:
        """Add an empty entry and select it."""
        if self.book is None or not self.apply():
            return
        entry = editing.new_entry(self.book)
        self.dirty = True
        self.query_one("#wi-search", Input).value = ""  # the new entry matches no search yet
        self._fill()
        table = self.query_one("#entries", DataTable)
        table.move_cursor(row=table.get_row_index(str(entry.uid)))
        self._show(entry.uid)
        self.query_one("#e-comment", Input).focus()

    def save_target(self) -> Path:
        """Where the book is written: its own file, or the user's copy of a bundled world."""
        path = self.books[self.book_index][0]
        assert path is not None
        return editing.world_save_target(path, self.paths)

    def action_save(self) -> None:
        """Apply the form, then write the book atomically; the open story uses it from the next turn."""
        if self.book is None or not self.apply():
            return
        source = self.books[self.book_index][0]
        assert source is not None
        try:
            target = editing.save_world(self.book, source, self.paths)
        except (StorytellerError, OSError) as exc:
            self.notify(f"Not saved: {exc}", severity="error", markup=False, timeout=8)
            return
        self.books[self.book_index] = (target, self.book)
        self.dirty = False
        self.notify(f"Saved {target}.", markup=False)
        if source is not None:
            self.post_message(WorldSaved(source, target))

    def action_focus_search(self) -> None:
        """Put the cursor in the search box."""
        self.query_one("#wi-search", Input).focus()


class CardBookScreen(WorldInfoScreen):
    """Edit a card's embedded lorebook; ctrl+s hands the book to ``on_save`` (which saves the card).

    Args:
        paths: Where the library lives.
        book: The card's book (from :func:`storyteller.session.editing.card_book`; edited in place).
        on_save: Called with the book on ctrl+s; returns True when it was saved.
    """

    def __init__(self, paths: Paths, book: Lorebook, on_save: Callable[[Lorebook], bool]) -> None:
        super().__init__(paths, [(None, book)])
        self._on_save = on_save

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(".screen-title", Static).update(f"Embedded lorebook of {self.book.name or 'the card'}")

    def action_save(self) -> None:
        """Apply the form and save the book with the card."""
        if self.book is None or not self.apply():
            return
        if self._on_save(self.book):
            self.dirty = False
