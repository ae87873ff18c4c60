"""Saving a card from the character screen keeps what the user did not change, byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

from storyteller.cards import load_card
from storyteller.paths import get_paths
from storyteller.tui.screens.character import CharacterScreen
from tests.tui.conftest import make_app, settle, wait_story


async def test_unchanged_fields_keep_crlf_and_string_talkativeness(shared_fixtures: Path) -> None:
    paths = get_paths().ensure()
    paths.characters_dir.mkdir(parents=True, exist_ok=True)
    target = paths.characters_dir / "Seraphina.json"
    shutil.copy(shared_fixtures / "cards" / "Seraphina_1.12.6.chara.json", target)
    before, _ = load_card(target)
    assert "\r\n" in before.description and before.extensions["talkativeness"] == "0.5"
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_story(pilot)
        app.edit_card(target)  # read in a worker, then the screen opens on it
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CharacterScreen) and screen.path == target
        collected = screen.collect()
        assert collected.description == before.description
        assert collected.legacy_fields and collected.extensions == before.extensions
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("ctrl+q")
    assert target.read_bytes() != (shared_fixtures / "cards" / "Seraphina_1.12.6.chara.json").read_bytes()  # saved
    after, _ = load_card(target)
    assert after.model_dump() == before.model_dump()
    assert after.top_level_extras == before.top_level_extras and after.legacy_fields
