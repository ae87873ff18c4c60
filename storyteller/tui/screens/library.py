"""The library: characters, worlds and stories, with search, import by path, new story, open."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.suggester import Suggester
from textual.worker import get_current_worker
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    OptionList,
    SelectionList,
    Static,
    TabbedContent,
    TabPane,
)

from storyteller.errors import StorytellerError
from storyteller.paths import Paths
from storyteller.session.library import Library
from storyteller.tui.messages import (
    CardEditChosen,
    ImportFinished,
    LibraryLoaded,
    NewStoryOffered,
    StoryChosen,
    WorldEditChosen,
)
from storyteller.tui.screens.dialogs import Report

__all__ = ["LibraryScreen", "NewStoryDialog", "PathInput", "PathSuggester", "read_library"]

_TABLES = {"tab-cards": "cards", "tab-worlds": "worlds", "tab-stories": "stories"}


class PathSuggester(Suggester):
    """Completes file paths: the first entry of the folder that starts with what was typed."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        folder, _, prefix = expanded.rpartition(os.sep)
        folder = folder or (os.sep if expanded.startswith(os.sep) else ".")
        try:
            names = sorted(n for n in os.listdir(folder) if n.startswith(prefix) and not n.startswith("."))
        except OSError:
            return None
        if not names:
            return None
        tail = names[0][len(prefix):]
        if os.path.isdir(os.path.join(folder, names[0])):
            tail += os.sep
        return value + tail if tail else None


class PathInput(Input):
    """An input for a file path where Tab takes the completion shown (and moves on when there is none)."""

    BINDINGS = [Binding("tab", "complete", "Complete", show=False)]

    def action_complete(self) -> None:
        """Take the suggested completion; with none, Tab moves the focus on as usual."""
        suggestion = self._suggestion
        if suggestion and len(suggestion) > len(self.value) and suggestion.startswith(self.value):
            self.value = suggestion
            self.cursor_position = len(suggestion)
        else:
            self.screen.focus_next()


def read_library(paths: Paths) -> tuple[list, list, list]:
    """Cards, worlds and stories (user's first, then the bundled ones). Runs in a thread."""
    library = Library(paths)
    return library.cards(), library.worlds(), library.stories()


class NewStoryDialog(ModalScreen[tuple[str, int, list[str]] | None]):
    """Pick a greeting, the worlds and a name for a new story with a card; returns
    ``(name, greeting, worlds)``.

    Args:
        card_name: The card's name.
        greetings: The first message and the alternate greetings.
        name: A suggested story name.
        worlds: ``(name, path, reference)`` of the worlds that can be attached.
        chosen: The files (resolved paths) of the worlds ticked at first (the card's linked one).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    NewStoryDialog { align: center middle; }
    NewStoryDialog > Vertical { width: 90%; max-width: 100; height: auto; max-height: 90%;
                                border: thick $primary; background: $surface; padding: 0 1; }
    NewStoryDialog OptionList { height: auto; max-height: 12; }
    NewStoryDialog SelectionList { height: auto; max-height: 8; }
    NewStoryDialog .dialog-buttons { height: auto; align-horizontal: right; }
    """

    def __init__(self, card_name: str, greetings: list[str], name: str,
                 worlds: Sequence[tuple[str, Path, str]] = (), chosen: Sequence[str] = ()) -> None:
        super().__init__()
        self._worlds = list(worlds)
        self._chosen = set(chosen)
        self._card_name = card_name
        self._greetings = greetings or [""]
        self._name = name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"New story with {self._card_name}", markup=False)
            yield Input(self._name, id="story-name", placeholder="story name")
            yield Label("Opening greeting (Enter starts):")
            options = []
            for i, text in enumerate(self._greetings):
                first = " ".join(text.split())[:90] or "(empty)"
                options.append(Text(f"{i}: {first}"))
            yield OptionList(*options, id="greetings")
            if self._worlds:
                yield Label("Worlds (Tab here, Space ticks):")
                yield SelectionList[str](
                    *((Text(f"{name}  ({path.name})"), ref, str(path.resolve()) in self._chosen)
                      for name, path, ref in self._worlds), id="new-worlds")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start", id="start", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#greetings", OptionList).highlighted = 0
        self.query_one("#greetings", OptionList).focus()

    def _finish(self, index: int | None = None) -> None:
        name = self.query_one("#story-name", Input).value.strip()
        if not name:
            self.notify("Give the story a name.", severity="warning", markup=False)
            return
        if index is None:
            index = self.query_one("#greetings", OptionList).highlighted or 0
        worlds = list(self.query_one("#new-worlds", SelectionList).selected) if self._worlds else []
        self.dismiss((name, index, worlds))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_list.id == "greetings":
            self._finish(event.option_index)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._finish()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._finish() if event.button.id == "start" else self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without starting."""
        self.dismiss(None)


class LibraryScreen(Screen):
    """Characters, worlds and stories.

    Args:
        paths: Where the library lives.
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+o", "focus_import", "Import"),
        Binding("ctrl+f", "focus_search", "Search"),
        Binding("ctrl+e", "edit", "Edit card/world", priority=True),
        Binding("ctrl+g", "new_group", "New group"),
        Binding("f5", "reload", "Reload", show=False),
        Binding("alt+1", "show_tab('tab-cards')", "Characters", show=False),
        Binding("alt+2", "show_tab('tab-worlds')", "Worlds", show=False),
        Binding("alt+3", "show_tab('tab-stories')", "Stories", show=False),
    ]
    DEFAULT_CSS = """
    LibraryScreen #library-bar { height: 3; }
    LibraryScreen #library-bar Input { width: 1fr; }
    LibraryScreen DataTable { height: 1fr; }
    LibraryScreen .hint { color: $text-muted; height: 1; padding: 0 1; }
    """

    def __init__(self, paths: Paths) -> None:
        super().__init__()
        self.paths = paths
        self.cards: list = []
        self.worlds: list = []
        self.stories: list = []

    def compose(self) -> ComposeResult:
        yield Static("Library", classes="screen-title", markup=False)
        with Horizontal(id="library-bar"):
            yield Input(placeholder="search", id="search")
            yield PathInput(placeholder="import a card, lorebook or chat: path (Tab completes)", id="import-path",
                            suggester=PathSuggester())
        with TabbedContent(id="tabs"):
            with TabPane("Characters", id="tab-cards"):
                yield DataTable(id="cards", cursor_type="row", zebra_stripes=True)
            with TabPane("Worlds", id="tab-worlds"):
                yield DataTable(id="worlds", cursor_type="row", zebra_stripes=True)
            with TabPane("Stories", id="tab-stories"):
                yield DataTable(id="stories", cursor_type="row", zebra_stripes=True)
        yield Static("Enter: start / open / edit · ctrl+e: edit · alt+1/2/3: tabs · a letter: its row",
                     classes="hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cards", DataTable).add_columns("character", "file")
        self.query_one("#worlds", DataTable).add_columns("world", "file")
        self.query_one("#stories", DataTable).add_columns("story", "last changed")
        self.query_one("#cards", DataTable).focus(scroll_visible=False)
        self.load()

    @work(thread=True, exclusive=True, group="library", exit_on_error=False, name="read library")
    def load(self) -> None:
        """Read the library in a thread (cards are parsed to get their names)."""
        cards, worlds, stories = read_library(self.paths)
        self.post_message(LibraryLoaded(cards, worlds, stories))

    def on_library_loaded(self, message: LibraryLoaded) -> None:
        self.cards, self.worlds, self.stories = message.cards, message.worlds, message.stories
        self._fill()

    def _fill(self) -> None:
        import time

        needle = self.query_one("#search", Input).value.strip().casefold()
        cards = self.query_one("#cards", DataTable)
        cards.clear()
        for i, (name, path, error, bundled) in enumerate(self.cards):
            if needle in name.casefold():
                label = f"{path.name} (bundled)" if bundled else path.name
                cards.add_row(Text(name), Text(label if not error else f"{label}: {error}"), key=str(i))
        worlds = self.query_one("#worlds", DataTable)
        worlds.clear()
        for i, (name, path, _error, bundled) in enumerate(self.worlds):
            if needle in name.casefold():
                worlds.add_row(Text(name), Text(f"{path.name} (bundled)" if bundled else path.name), key=str(i))
        stories = self.query_one("#stories", DataTable)
        stories.clear()
        for i, (name, modified) in enumerate(self.stories):
            if needle in name.casefold():
                stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(modified)) if modified else ""
                stories.add_row(Text(name), stamp, key=str(i))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "import-path" and event.value.strip():
            self.import_file(event.value)
        elif event.input.id == "search":
            self.query_one(TabbedContent).active_pane.query_one(DataTable).focus()  # type: ignore[union-attr]

    @work(thread=True, exclusive=True, group="import", exit_on_error=False, name="import")
    def import_file(self, raw: str) -> None:
        """Import a file by path in a thread; the report comes back as a message."""
        from storyteller.session.importing import import_path

        try:
            self.post_message(ImportFinished(import_path(raw, self.paths), None))
        except StorytellerError as exc:
            self.post_message(ImportFinished(None, str(exc)))
        except OSError as exc:
            self.post_message(ImportFinished(None, f"cannot read or write a file: {exc}"))

    def on_import_finished(self, message: ImportFinished) -> None:
        if message.error is not None:
            self.app.push_screen(Report("Import failed", [message.error]))
            return
        result = message.result
        self.query_one("#import-path", Input).value = ""
        from storyteller.session.importing import result_lines

        self.app.push_screen(Report(f"Imported {result.kind}: {result.name}", result_lines(result)))
        tab = {"card": "tab-cards", "world": "tab-worlds", "story": "tab-stories"}[result.kind]
        self.query_one(TabbedContent).active = tab
        self.load()

    def _selected(self, table_id: str) -> int | None:
        table = self.query_one(f"#{table_id}", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        index = int(event.row_key.value or 0)
        table = event.data_table.id
        if table == "cards":
            self._new_story(index)
        elif table == "stories":
            self.post_message(StoryChosen(self.stories[index][0]))
        elif table == "worlds":
            self._edit_world(index)

    def _new_story(self, index: int) -> None:
        name, path, error, _bundled = self.cards[index]
        if error:
            self.app.push_screen(Report(f"{path.name} cannot be used", [error]))
            return
        self.read_new_story(name, path)

    @work(thread=True, exclusive=True, group="new-story", exit_on_error=False, name="read card")
    def read_new_story(self, name: str, path: Path) -> None:
        """Read the card and what a new story with it offers, in a thread (answers with NewStoryOffered)."""
        title = f"{path.name} cannot be used"
        try:
            message = NewStoryOffered(Library(self.paths).new_story_offer(path, name), title, None)
        except StorytellerError as exc:
            message = NewStoryOffered(None, title, str(exc))
        except OSError as exc:
            message = NewStoryOffered(None, title, f"cannot read the card: {exc.strerror or exc}")
        if not get_current_worker().is_cancelled:  # another card was picked meanwhile
            self.post_message(message)

    def on_new_story_offered(self, message: NewStoryOffered) -> None:
        offer = message.offer
        if offer is None:
            self.app.push_screen(Report(message.title, [message.error or "unknown error"]))
            return

        def start(choice: tuple[str, int, list[str]] | None) -> None:
            if choice is None:
                return
            story, greeting, worlds = choice
            self.post_message(StoryChosen(story, card=str(offer.card), greeting=greeting, worlds=worlds or None))

        self.app.push_screen(NewStoryDialog(offer.card_name, offer.greetings, offer.suggestion, offer.worlds,
                                            offer.chosen), start)

    def _edit_world(self, index: int) -> None:
        self.post_message(WorldEditChosen([str(self.worlds[index][1])]))  # the app reads it, then opens the editor

    def action_edit(self) -> None:
        """Edit the highlighted character or world."""
        active = self.query_one(TabbedContent).active
        if active == "tab-cards" and (index := self._selected("cards")) is not None:
            self.post_message(CardEditChosen(Path(self.cards[index][1])))  # the app reads it, then opens it
        elif active == "tab-worlds" and (index := self._selected("worlds")) is not None:
            self._edit_world(index)

    def action_new_group(self) -> None:
        """Start a group chat: tick two or more characters, name the group, pick its order and card mode."""
        from storyteller.tui.screens.group import GroupChoice, NewGroupDialog

        cards = [(name, Path(path)) for name, path, error, _bundled in self.cards if not error]
        if len(cards) < 2:
            self.notify("A group needs two or more characters: import some first (ctrl+o).", markup=False)
            return
        ticked = []
        if self.query_one(TabbedContent).active == "tab-cards" and (index := self._selected("cards")) is not None \
                and not self.cards[index][2]:
            ticked.append(str(self.cards[index][1]))

        def start(choice: GroupChoice | None) -> None:
            if choice is not None:
                self.post_message(StoryChosen(choice.story, group=choice))

        self.app.push_screen(NewGroupDialog(cards, Library(self.paths).unique_story_name("group"), ticked), start)

    def action_show_tab(self, tab: str) -> None:
        """Show a tab and put the cursor in its list."""
        self.query_one(TabbedContent).active = tab
        self.query_one(f"#{_TABLES[tab]}", DataTable).focus()

    def on_key(self, event: events.Key) -> None:
        """A letter typed in a list jumps to the next row that starts with it."""
        table = self.focused
        if not isinstance(table, DataTable) or not event.character or not event.character.isalnum() \
                or event.character != event.key:
            return
        rows = {"cards": self.cards, "worlds": self.worlds, "stories": self.stories}.get(table.id or "")
        if not rows or table.row_count == 0:
            return
        letter = event.character.casefold()
        keys = list(table.rows)
        start = table.cursor_row
        for step in range(1, len(keys) + 1):
            at = (start + step) % len(keys)
            if str(rows[int(keys[at].value)][0]).casefold().startswith(letter):
                table.move_cursor(row=at)
                event.stop()
                return

    def action_focus_import(self) -> None:
        """Put the cursor in the import path."""
        self.query_one("#import-path", Input).focus()

    def action_focus_search(self) -> None:
        """Put the cursor in the search box."""
        self.query_one("#search", Input).focus()

    def action_reload(self) -> None:
        """Read the library again."""
        self.load()

    def action_back(self) -> None:
        """Back to the story (or stay, when no story is open yet)."""
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
