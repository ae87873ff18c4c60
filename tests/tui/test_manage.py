"""Library, character, world-info and settings screens on the scripted engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from textual.widgets import DataTable, Input, TextArea

from storyteller.cards import load_card
from storyteller.config import load_settings
from storyteller.content import BUNDLED_CHARACTERS, BUNDLED_WORLDS
from storyteller.lore import load_lorebook
from storyteller.paths import get_paths
from storyteller.tui.screens.character import CharacterScreen
from storyteller.tui.screens.dialogs import Report
from storyteller.tui.screens.library import LibraryScreen, NewStoryDialog
from storyteller.tui.screens.settings import SettingsScreen
from storyteller.tui.screens.story import StoryScreen
from storyteller.tui.screens.worldinfo import WorldInfoScreen
from tests.tui.conftest import make_app, settle, wait_story


async def _library(pilot) -> LibraryScreen:
    await pilot.press("f6")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, LibraryScreen)
    return screen


async def test_library_lists_imports_and_starts_a_story(tmp_path: Path) -> None:
    source = tmp_path / "halden.json"
    shutil.copy(BUNDLED_CHARACTERS / "halden_voss.json", source)
    app = make_app(["Halden looks up from the ledger."])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        library = await _library(pilot)
        names = [c[0] for c in library.cards]
        assert "Narrator of Hollowmere" in names and "tale" in [s[0] for s in library.stories]
        library.query_one("#import-path", Input).value = str(source)
        library.query_one("#import-path", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, Report)
        body = str(app.screen.query_one("#report-body").render())
        assert "saved as" in body and "characters" in body
        await pilot.press("escape")
        await settle(pilot)
        imported = [c for c in library.cards if not c[3]]
        assert len(imported) == 1 and imported[0][1].parent == get_paths().characters_dir
        # Search narrows the list; Enter on a card asks for a greeting and a name.
        library.query_one("#search", Input).value = imported[0][0][:6]
        await pilot.pause()
        table = library.query_one("#cards", DataTable)
        assert table.row_count >= 1
        table.focus()
        key = next(k for k in table.rows if library.cards[int(k.value)][1] == imported[0][1])
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("enter")
        await settle(pilot)  # the card or worlds are read in a worker
        assert isinstance(app.screen, NewStoryDialog)
        app.screen.query_one("#story-name", Input).value = "halden tale"
        await pilot.press("enter")  # picks the highlighted (first) greeting
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, StoryScreen) and screen.session.story.name == "halden tale"
        assert screen.session.path()[0].kind == "greeting"
        assert screen.session.story.settings.mode == "chat" and screen.kind == "say"
        await pilot.press("ctrl+q")


async def test_import_errors_are_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{ not json")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        library = await _library(pilot)
        for path in (bad, tmp_path / "missing.png"):
            library.query_one("#import-path", Input).value = str(path)
            library.import_file(str(path))
            await settle(pilot)
            assert isinstance(app.screen, Report) and app.screen._title == "Import failed"
            await pilot.press("escape")
            await pilot.pause()
        await pilot.press("ctrl+q")


async def test_character_edit_saves_a_copy_of_a_bundled_card_and_exports(tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        await pilot.press("f7")
        await settle(pilot)  # the card or worlds are read in a worker
        screen = app.screen
        assert isinstance(screen, CharacterScreen) and screen.card.name == "Narrator of Hollowmere"
        screen.query_one("#f-description", TextArea).text = "A narrator who [never] hurries."
        screen.query_one("#f-tags", Input).value = "adventure, fog"
        await pilot.press("ctrl+g")
        await pilot.pause()
        screen.query(".greeting").last(TextArea).text = "Another foggy morning."
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = get_paths().characters_dir / screen.path.name
        assert screen.path == saved and saved.is_file()
        card, _ = load_card(saved)
        assert card.description == "A narrator who [never] hurries." and card.tags == ["adventure", "fog"]
        assert card.alternate_greetings[-1] == "Another foggy morning."
        bundled, _ = load_card(BUNDLED_CHARACTERS / saved.name)
        assert bundled.description != card.description  # the installed file is untouched
        target = tmp_path / "out.json"
        await pilot.press("ctrl+e")
        await pilot.pause()
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert json.loads(target.read_text())["data"]["description"] == "A narrator who [never] hurries."
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+q")


async def test_world_info_editor_changes_and_saves_an_entry() -> None:
    app = make_app()
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_story(pilot)
        await pilot.press("f8")
        await settle(pilot)  # the card or worlds are read in a worker
        screen = app.screen
        assert isinstance(screen, WorldInfoScreen) and screen.book.name == "Hollowmere"
        table = screen.query_one("#entries", DataTable)
        assert table.row_count == len(screen.book.entries) > 2
        screen.query_one("#wi-search", Input).value = "bell"
        await pilot.pause()
        assert 0 < table.row_count < len(screen.book.entries)
        table.focus()
        table.move_cursor(row=0)
        await pilot.pause()
        uid = screen.uid
        screen.query_one("#e-content", TextArea).text = "The bell is cracked. [It never rings twice.]"
        screen.query_one("#e-keys", Input).value = "bell, tower"
        await pilot.press("ctrl+d")  # disable
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = get_paths().worlds_dir / "hollowmere.json"
        book, _ = load_lorebook(saved)
        entry = book.entry(uid)
        assert entry.content == "The bell is cracked. [It never rings twice.]"
        assert entry.keys == ["bell", "tower"] and entry.disable
        original, _ = load_lorebook(BUNDLED_WORLDS / "hollowmere.json")
        assert not original.entry(uid).disable
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert len(screen.book.entries) == len(original.entries) + 1
        await pilot.press("ctrl+q")


async def test_settings_save_and_test_connection() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        await pilot.press("f9")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#temperature", Input).value = "0.4"
        screen.query_one("#n_gpu_layers", Input).value = "-1"
        screen.query_one("#url", Input).value = "http://127.0.0.1:5555"
        await pilot.press("ctrl+s")
        await pilot.pause()
        settings = load_settings(get_paths())
        assert settings.sampling.temperature == 0.4 and settings.engine.n_gpu_layers == -1
        assert settings.remote.url == "http://127.0.0.1:5555" and settings.engine.kind == "fake"
        assert app.settings.sampling.temperature == 0.4
        screen.query_one("#top_p", Input).value = "7"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert load_settings(get_paths()).sampling.top_p != 7  # refused, file unchanged
        screen.query_one("#top_p", Input).value = "0.9"
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert screen.last_test is not None and screen.last_test.startswith("ok: fake")
        await pilot.press("ctrl+q")
