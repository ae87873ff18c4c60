"""Every world-info field in the editor, the running story using a saved world at once, the card's
embedded lorebook, and files imported from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from textual.widgets import Checkbox, DataTable, Input, Select, TextArea

from storyteller.cards import load_card
from storyteller.content import BUNDLED_CHARACTERS, BUNDLED_WORLDS, find_card
from storyteller.lore import load_lorebook
from storyteller.lore.model import Position, Role
from storyteller.paths import get_paths
from storyteller.tui.screens.character import CharacterScreen
from storyteller.tui.screens.dialogs import Report
from storyteller.tui.screens.worldinfo import CardBookScreen, WorldInfoScreen, apply_form
from storyteller.tui.screens.story import StoryScreen
from tests.tui.conftest import make_app, settle, wait_story


async def test_every_entry_field_is_saved_and_the_story_uses_it_at_once() -> None:
    app = make_app(["The town waits.", "Again."])
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_story(pilot)
        await pilot.press("f8")
        await settle(pilot)  # the card or worlds are read in a worker
        screen = app.screen
        assert isinstance(screen, WorldInfoScreen)
        table = screen.query_one("#entries", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("0"))  # "Hollowmere: the town", always on
        await pilot.pause()
        assert screen.uid == 0
        q = screen.query_one
        q("#e-content", TextArea).text = "Hollowmere floats on [reed rafts] now."
        q("#e-position", Select).value = int(Position.AT_DEPTH)
        q("#e-depth", Input).value = "2"
        q("#e-role", Select).value = int(Role.USER)
        q("#e-scan-depth", Input).value = "3"
        q("#e-case", Select).value = "yes"
        q("#e-whole", Select).value = "no"
        q("#e-group", Input).value = "town"
        q("#e-group-weight", Input).value = "40"
        q("#e-group-override", Checkbox).value = True
        q("#e-group-scoring", Select).value = "yes"
        q("#e-use-probability", Checkbox).value = False
        q("#e-sticky", Input).value = "3"
        q("#e-cooldown", Input).value = "1"
        q("#e-delay", Input).value = "2"
        q("#e-exclude-recursion", Checkbox).value = True
        q("#e-prevent-recursion", Checkbox).value = True
        q("#e-delay-recursion", Input).value = "1"
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = get_paths().worlds_dir / "hollowmere.json"
        entry = load_lorebook(saved)[0].entry(0)
        assert entry.content == "Hollowmere floats on [reed rafts] now."
        assert (entry.position, entry.depth, entry.role) == (Position.AT_DEPTH, 2, Role.USER)
        assert (entry.scan_depth, entry.case_sensitive, entry.match_whole_words) == (3, True, False)
        assert (entry.group, entry.group_weight, entry.group_override, entry.use_group_scoring) == (
            "town", 40, True, True)
        assert not entry.use_probability
        assert (entry.sticky, entry.cooldown, entry.delay) == (3, 1, 2)
        assert entry.exclude_recursion and entry.prevent_recursion and entry.delay_until_recursion == 1
        # Moving to another entry and back shows the same values (nothing lost in the round trip).
        table.move_cursor(row=table.get_row_index("3"))
        await pilot.pause()
        assert q("#e-sticky", Input).value == "" and q("#e-case", Select).value == "default"
        table.move_cursor(row=table.get_row_index("0"))
        await pilot.pause()
        assert q("#e-group", Input).value == "town" and q("#e-whole", Select).value == "no"
        assert not screen.dirty
        # The running story has the edited world, without reopening, and the next turn uses it.
        assert app.session.parts.books[0].entry(0).content == "Hollowmere floats on [reed rafts] now."
        table.move_cursor(row=table.get_row_index("1"))  # "Narration: the fog", always on
        await pilot.pause()
        q("#e-content", TextArea).text = "The fog tastes of copper tonight."
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press(*"look around", "enter")
        await settle(pilot)
        assert "The fog tastes of copper tonight." in app.backend.requests[-1].prompt
        await pilot.press("ctrl+q")


def test_apply_form_keeps_fields_it_is_not_given_and_names_bad_numbers() -> None:
    book, _ = load_lorebook(BUNDLED_WORLDS / "hollowmere.json")
    entry = book.entry(3)
    values = {"comment": entry.comment, "keys": ", ".join(entry.keys), "secondary_keys": "", "content": "x",
              "constant": False, "enabled": True, "order": "-5", "position": 0, "depth": "4",
              "probability": "100", "selective_logic": 0}
    changed = apply_form(entry, values)
    assert changed.order == -5 and changed.sticky == entry.sticky and changed.group == entry.group
    for field, bad, message in (("sticky", "soon", "sticky must be a whole number"),
                                ("group_weight", "heavy", "group weight must be a number"),
                                ("probability", "150", "chance is a percentage"),
                                ("scan_depth", "-1", "scan depth cannot be negative")):
        try:
            apply_form(entry, {**values, field: bad})
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{field}={bad!r} was accepted")


async def test_card_embedded_lorebook_is_edited_and_saved_with_the_card() -> None:
    app = make_app(["Noted."])
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_story(pilot)
        await pilot.press("f7")
        await settle(pilot)  # the card or worlds are read in a worker
        character = app.screen
        assert isinstance(character, CharacterScreen)
        assert character.card.character_book is None or not character.card.character_book.entries
        await pilot.press("f8")
        await pilot.pause()
        book_screen = app.screen
        assert isinstance(book_screen, CardBookScreen)
        await pilot.press("ctrl+n")
        await pilot.pause()
        q = book_screen.query_one
        q("#e-comment", Input).value = "The lamplighters"
        q("#e-keys", Input).value = "lamp, lamplighter"
        q("#e-content", TextArea).text = "Lamplighters walk the causeways at dusk with [brass] poles."
        q("#e-order", Input).value = "42"
        q("#e-position", Select).value = int(Position.AFTER_CHAR)
        q("#e-constant", Checkbox).value = True
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = get_paths().characters_dir / character.path.name
        assert character.path == saved
        card, _ = load_card(saved)
        [entry] = card.character_book.entries
        assert entry.keys == ["lamp", "lamplighter"] and entry.comment == "The lamplighters"
        assert entry.content == "Lamplighters walk the causeways at dusk with [brass] poles."
        assert entry.insertion_order == 42 and entry.constant and entry.enabled
        assert entry.position == "after_char" and entry.extensions["position"] == int(Position.AFTER_CHAR)
        assert load_card(BUNDLED_CHARACTERS / saved.name)[0].character_book is None  # installed file untouched
        # The story now plays the saved copy, with its book.
        session = app.session
        assert session.story.settings.cards[0] == saved.name  # named: the library copy wins the name
        assert find_card(saved.name, get_paths()) == saved
        assert session.parts.card.character_book.entries[0].content.startswith("Lamplighters")
        assert any(e.content.startswith("Lamplighters") for b in session.parts.books for e in b.entries)
        # Disable it from the book editor: saved with the card again.
        await pilot.press("ctrl+d")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not load_card(saved)[0].character_book.entries[0].enabled
        await pilot.press("escape")
        await pilot.pause()
        assert "1 entries" in str(character.query_one("#card-book").render())
        await pilot.press("ctrl+q")


async def test_files_named_at_start_are_imported_with_reports(tmp_path: Path) -> None:
    card = tmp_path / "halden.json"
    shutil.copy(BUNDLED_CHARACTERS / "halden_voss.json", card)
    world = tmp_path / "fen.json"
    world.write_text(json.dumps({"entries": {"0": {"uid": 0, "key": ["fen"], "content": "The fen is wide."}}}))
    app = make_app(imports=[str(card), str(world), str(tmp_path / "missing.png")])
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(50):  # the reports wait for the story screen, then cover it
            await settle(pilot)
            if isinstance(app.screen, Report):
                break
        assert isinstance(app.screen, Report) and isinstance(app.screen_stack[-2], StoryScreen)
        body = str(app.screen.query_one("#report-body").render())
        assert app.screen._title == "Imported 3 files"
        assert "Imported card" in body and "Imported world" in body and "missing.png: not imported" in body
        assert len(app.import_reports) == 3
        assert any(p.suffix == ".json" for p in get_paths().characters_dir.iterdir())
        assert load_lorebook(next(get_paths().worlds_dir.iterdir()))[0].entries[0].content == "The fen is wide."
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+q")
