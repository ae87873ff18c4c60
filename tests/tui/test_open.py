"""Opening: a long story mounts lazily; an engine that cannot open shows what to do."""

from __future__ import annotations

from textual.widgets import Button, Static

from storyteller.config import Settings
from storyteller.paths import get_paths
from storyteller.story import StorySettings, StoryStore
from storyteller.story.model import Node
from storyteller.tui.app import StorytellerApp
from storyteller.tui.screens.loading import LoadingScreen
from storyteller.tui.screens.settings import SettingsScreen
from storyteller.tui.widgets.transcript import PAGE
from tests.tui.conftest import make_app, settle, wait_story


def _long_story(name: str, count: int) -> None:
    store = StoryStore(get_paths().ensure().stories_dir)
    story = store.create(name, StorySettings(mode="adventure", cards=["narrator_of_hollowmere"]))
    nodes, parent = [], None
    for i in range(count):
        node = Node.make(f"passage {i}", author="user" if i % 2 == 0 else "Narrator of Hollowmere",
                         kind="do" if i % 2 == 0 else "generation", parent=parent)
        nodes.append(node)
        parent = node.id
    story.add_nodes(nodes, select=parent)
    story.close()


async def test_a_long_story_mounts_the_newest_page_then_more_on_demand() -> None:
    _long_story("long", 3 * PAGE + 10)
    app = make_app(story="long")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await wait_story(pilot)
        transcript = screen.transcript
        assert len(transcript.views) == PAGE and transcript.first_mounted == 2 * PAGE + 10
        assert transcript.views[-1].text == f"passage {3 * PAGE + 9}"
        transcript.focus()
        await pilot.press("home")
        await pilot.pause()
        assert transcript.first_mounted == PAGE + 10 and len(transcript.views) == 2 * PAGE
        assert transcript.views[0].text == f"> You passage {PAGE + 10}."
        # New turns still land at the end.
        await pilot.click("#prompt-input")
        await pilot.press(*"wave", "enter")
        await settle(pilot)
        assert transcript.views[-1].text == "The fog parts." and transcript.first_mounted == PAGE + 10
        await pilot.press("ctrl+q")


async def test_engine_failure_shows_the_way_out() -> None:
    settings = Settings()
    settings.engine.model = "/nowhere/missing.gguf"
    app = StorytellerApp(settings, get_paths().ensure(), story="x")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LoadingScreen)
        error = str(screen.query_one("#loading-error", Static).render())
        assert "missing.gguf" in error and "Settings" in error
        assert screen.query_one("#loading-buttons").display
        await pilot.click("#settings")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one("#retry", Button)
        await pilot.press("ctrl+q")
    assert app.return_value == 0
