"""The app's settings screen offers other apps' models by name, and saves the name."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Select

from storyteller.config import load_settings
from storyteller.paths import get_paths
from storyteller.tui.screens.settings import SettingsScreen
from tests.model_sources.helpers import hf_cache_model, ollama_model
from tests.tui.conftest import make_app, wait_story


async def test_settings_lists_other_apps_models_and_saves_the_name(isolated_home: Path, smollm2_path: Path) -> None:
    ollama_model(isolated_home / ".ollama" / "models", smollm2_path, "smol", "latest")
    hf_cache_model(isolated_home / ".cache" / "huggingface" / "hub", smollm2_path, "org/Smol-GGUF", "smol-Q4_1.gguf")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_story(pilot)
        await pilot.press("f9")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        picker = screen.query_one("#model", Select)
        values = [value for _label, value in picker._options]
        assert "ollama:smol:latest" in values and "hf:org/Smol-GGUF:smol-Q4_1.gguf" in values
        picker.value = "ollama:smol:latest"
        # the form cannot save n_gpu_layers = "auto" yet (reported); a number keeps this test about the model
        screen.query_one("#n_gpu_layers", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert load_settings(get_paths()).engine.model == "ollama:smol:latest"
        await pilot.press("ctrl+q")
