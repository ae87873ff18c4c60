"""Helpers for the app's tests: settings with no KV state, a scripted engine, a started app."""

from __future__ import annotations

import pytest

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.paths import get_paths
from storyteller.tui.app import StorytellerApp
from storyteller.tui.screens.story import StoryScreen


def make_settings() -> Settings:
    """Default settings with the KV-state file switched off (the fake has none)."""
    settings = Settings()
    settings.engine.kv_state = "off"
    settings.engine.kind = "fake"
    return settings


def make_app(replies=("The fog parts.",), *, delay: float = 0.0, story: str | None = "tale", **kwargs) -> StorytellerApp:
    """An app on a ScriptedBackend with a fixed story name."""
    backend = kwargs.pop("backend", None) or ScriptedBackend(list(replies), delay=delay)
    return StorytellerApp(make_settings(), get_paths().ensure(), story=story, backend=backend, **kwargs)


async def wait_story(pilot) -> StoryScreen:
    """Wait until the story screen is up."""
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    for _ in range(50):
        if isinstance(app.screen, StoryScreen):
            break
        await pilot.pause()
    assert isinstance(app.screen, StoryScreen), f"expected the story screen, got {app.screen!r}"
    await pilot.pause()
    return app.screen


async def settle(pilot) -> None:
    """Wait for running workers, then for the messages they posted."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


@pytest.fixture
def recorder():
    """A message hook that records the messages posted while the app runs."""
    seen: list = []
    return seen
