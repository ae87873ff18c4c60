"""End to end with the real SmolLM2 engine: play, retry, swipe, undo, quit, reopen, find it."""

from __future__ import annotations

import pytest

from storyteller.config import Settings
from storyteller.paths import get_paths
from storyteller.tui.app import StorytellerApp
from storyteller.tui.messages import StreamFlushed
from storyteller.tui.screens.library import LibraryScreen
from tests.tui.conftest import settle, wait_story

pytestmark = pytest.mark.slow


def _settings(model) -> Settings:
    settings = Settings()
    settings.engine.kind = "embedded"
    settings.engine.model = str(model)
    settings.engine.n_ctx = 2048
    settings.engine.n_threads = 2
    settings.sampling.max_tokens = 24
    settings.sampling.seed = 7
    return settings


async def test_play_on_smollm2_then_reopen(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    paths = get_paths().ensure()
    seen: list = []
    app = StorytellerApp(_settings(smollm2_path), paths, story="real tale")  # opens the engine itself
    async with app.run_test(size=(80, 24), message_hook=seen.append) as pilot:
        screen = await wait_story(pilot)
        assert app.backend.info().engine == "embedded" and screen.kind == "do"
        await pilot.press(*"open the door", "enter")
        await settle(pilot)
        session = screen.session
        reply = session.path()[-1]
        assert reply.kind == "generation" and reply.text.strip()
        assert any(isinstance(m, StreamFlushed) for m in seen), "the reply should have streamed"
        assert screen.transcript.views[-1].text == reply.text
        assert "embedded" in screen.status.line and "tok/s" in screen.status.line
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert session.swipe_position() == (1, 2)
        await pilot.press("alt+left")
        await settle(pilot)
        assert session.swipe_position() == (0, 2) and session.path()[-1].id == reply.id
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert session.path()[-1].kind == "do"
        await pilot.press("ctrl+y")
        await settle(pilot)
        kept = [n.id for n in session.path()]
        await pilot.press("ctrl+q")
    assert app.return_value == 0 and app.backend is None  # story and engine closed

    again = StorytellerApp(_settings(smollm2_path), paths)  # no story named: the most recent one
    async with again.run_test(size=(80, 24)) as pilot:
        screen = await wait_story(pilot)
        assert screen.session.story.name == "real tale"
        assert [n.id for n in screen.session.path()] == kept
        assert screen.transcript.views[-1].counter == "1/2"
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(again.screen, LibraryScreen)
        assert "real tale" in [name for name, _ in again.screen.stories]
        await pilot.press("ctrl+q")
