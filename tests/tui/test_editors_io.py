"""The character screen, the world-info editor and the library's new-story dialog read their files
off the UI thread (through the session layer's editing service), and say clearly when a file
cannot be read."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from textual.widgets import Static

from storyteller.content import BUNDLED_CHARACTERS
from storyteller.paths import get_paths
from storyteller.session import editing
from storyteller.session.library import Library
from storyteller.tui.messages import CardEditChosen, WorldEditChosen
from storyteller.tui.screens.character import CharacterScreen
from storyteller.tui.screens.dialogs import Report
from storyteller.tui.screens.library import LibraryScreen, NewStoryDialog
from storyteller.tui.screens.worldinfo import WorldInfoScreen
from tests.tui.conftest import make_app, settle, wait_story


def _record_threads(monkeypatch, target, name: str, seen: list[str]) -> None:
    original = getattr(target, name)

    def wrapped(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapped)


async def test_card_worlds_and_new_story_are_read_off_the_ui_thread(monkeypatch) -> None:
    seen: list[str] = []
    _record_threads(monkeypatch, editing, "read_card", seen)
    _record_threads(monkeypatch, editing, "read_worlds", seen)
    _record_threads(monkeypatch, Library, "new_story_offer", seen)
    ui = threading.current_thread().name
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        await pilot.press("f7")
        await settle(pilot)
        assert isinstance(app.screen, CharacterScreen) and app.screen.card.name == "Narrator of Hollowmere"
        await pilot.press("escape")
        await pilot.press("f8")
        await settle(pilot)
        assert isinstance(app.screen, WorldInfoScreen) and app.screen.book.name == "Hollowmere"
        await pilot.press("escape")
        await pilot.press("f6")
        await settle(pilot)
        library = app.screen
        assert isinstance(library, LibraryScreen)
        index = next(i for i, card in enumerate(library.cards) if card[0] == "Narrator of Hollowmere")
        library._new_story(index)
        await settle(pilot)
        assert isinstance(app.screen, NewStoryDialog)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+q")
    assert len(seen) == 3, seen
    assert ui not in seen, f"a file was read on the UI thread: {seen}"


async def test_a_card_that_breaks_after_listing_is_reported_not_raised() -> None:
    paths = get_paths().ensure()
    paths.characters_dir.mkdir(parents=True, exist_ok=True)
    target = paths.characters_dir / "halden.json"
    shutil.copy(BUNDLED_CHARACTERS / "halden_voss.json", target)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        await pilot.press("f6")
        await settle(pilot)
        library = app.screen
        assert isinstance(library, LibraryScreen)
        index = next(i for i, card in enumerate(library.cards) if Path(card[1]) == target)
        target.write_text("{ not a card", encoding="utf-8")  # broken after the list was read
        library._new_story(index)
        await settle(pilot)
        assert isinstance(app.screen, Report) and app.screen._title == "halden.json cannot be used"
        await pilot.press("escape")
        await pilot.pause()
        # The character screen on the same file says why instead of opening an empty form.
        library.post_message(CardEditChosen(target))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CharacterScreen) and screen.card is None and screen.error
        assert "cannot be read" in str(screen.query_one("#card-form Static").render())
        await pilot.press("ctrl+s")  # nothing to save: the broken file is left as it was
        await pilot.pause()
        assert target.read_text(encoding="utf-8") == "{ not a card"
        # A world that is not there: the editor opens and says which one and why.
        await pilot.press("escape")
        await pilot.pause()
        library.post_message(WorldEditChosen(["atlantis"]))
        await settle(pilot)
        editor = app.screen
        assert isinstance(editor, WorldInfoScreen) and editor.book is None
        shown = " ".join(str(w.render()) for w in editor.query(Static))
        assert "No world to edit" in shown and "atlantis" in shown
        await pilot.press("ctrl+q")


def test_editing_service_saves_bundled_content_as_the_users_copy_and_rejects_bad_books() -> None:
    paths = get_paths().ensure()
    bundled = BUNDLED_CHARACTERS / "halden_voss.json"
    before = bundled.read_bytes()
    card = editing.read_card(bundled)
    card.description = "Changed in the editor."
    written = editing.save_card_file(card, bundled, paths)
    assert written == paths.characters_dir / bundled.name and bundled.read_bytes() == before
    assert editing.read_card(written).description == "Changed in the editor."
    book = editing.card_book(card)
    entry = editing.new_entry(book)
    changed = editing.apply_form(entry, {
        "comment": "Ledger", "keys": "ledger, books", "secondary_keys": "", "content": "The ledger is red.",
        "enabled": True, "constant": False, "order": "7", "probability": "100", "position": 0,
        "depth": "", "selective_logic": 0})
    book.entries[-1] = changed
    editing.set_card_book(card, book)
    assert card.character_book.entries[-1].keys == ["ledger", "books"]
    assert card.character_book.entries[-1].insertion_order == 7


async def test_only_the_last_editor_asked_for_opens(monkeypatch) -> None:
    # F7 then F8 before the card is read: the card's worker is cancelled and opens nothing.
    gate = threading.Event()
    original = editing.read_card

    def slow_read(path):
        gate.wait(10)
        return original(path)

    monkeypatch.setattr(editing, "read_card", slow_read)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        await pilot.press("f7")
        await pilot.press("f8")
        gate.set()
        await settle(pilot)
        assert isinstance(app.screen, WorldInfoScreen)
        assert not any(isinstance(screen, CharacterScreen) for screen in app.screen_stack)
        await pilot.press("ctrl+q")
