"""Sampler presets and the story's template: the presets screen and the settings' story section."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Button, DataTable, Input, Select

from storyteller.presets import find_preset, list_presets, resolve_sampling
from storyteller.tui.screens.dialogs import Confirm, Report
from storyteller.tui.screens.presets import PresetsScreen
from storyteller.tui.screens.settings import SettingsScreen
from storyteller.tui.screens.story import StoryScreen
from tests.tui.conftest import make_app, settle, wait_story

# A SillyTavern text-completion preset file, as SillyTavern exports one (trimmed to a dozen keys).
ST_PRESET = {"temp": 1.3, "temperature_last": True, "top_p": 0.98, "top_k": 0, "top_a": 0, "min_p": 0.04,
             "rep_pen": 1.05, "rep_pen_range": 2048, "typical_p": 1, "mirostat_mode": 0, "genamt": 300,
             "max_length": 8192, "sampler_order": [6, 0, 1, 3, 4, 2, 5]}


def _row_of(screen: PresetsScreen, name: str) -> int:
    return next(i for i, p in enumerate(screen.presets) if p.name == name)


async def test_presets_screen_choose_create_import_delete(tmp_path: Path) -> None:
    source = tmp_path / "Wild ride.json"
    source.write_text(json.dumps(ST_PRESET))
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        await pilot.press("f10")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PresetsScreen)
        table = screen.query_one("#presets", DataTable)
        assert table.row_count == len(list_presets()) >= 5
        # Enter on a preset makes it the story's.
        table.move_cursor(row=_row_of(screen, "Creative"))
        await pilot.pause()
        assert screen.query_one("#p-temperature", Input).value == "1.1"
        await pilot.press("enter")
        await pilot.pause()
        story = app.session.story
        assert story.settings.sampler_preset == "Creative"
        assert "This story uses: Creative" in str(screen.query_one("#story-preset").render())
        # A new preset: a bad value is refused, a good one saved.
        await pilot.press("ctrl+n")
        screen.query_one("#p-name", Input).value = "Night owl"
        screen.query_one("#p-temperature", Input).value = "warm"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Night owl" not in [p.name for p in list_presets()]
        screen.query_one("#p-temperature", Input).value = "0.6"
        screen.query_one("#p-top_k", Input).value = "25"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert find_preset("Night owl").values == {"temperature": 0.6, "top_k": 25}
        assert screen.current.name == "Night owl"
        await pilot.press("ctrl+u")
        await pilot.pause()
        assert story.settings.sampler_preset == "Night owl"
        sampling = resolve_sampling(app.settings.sampling, story.settings.sampler_preset,
                                    story.settings.sampler_overrides)
        assert sampling.temperature == 0.6 and sampling.top_k == 25
        # Renaming the story's preset keeps the story on it.
        screen.query_one("#p-name", Input).value = "Night heron"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert story.settings.sampler_preset == "Night heron"
        assert "Night owl" not in [p.name for p in list_presets()]
        # Import a SillyTavern preset by path: the report is shown, the preset listed.
        path_input = screen.query_one("#import-path", Input)
        path_input.value = str(source)
        path_input.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, Report)
        body = str(app.screen.query_one("#report-body").render())
        assert "sillytavern" in body and "temp -> temperature" in body and "ignored: max_length" in body
        await pilot.press("escape")
        await pilot.pause()
        assert find_preset("Wild ride").values["max_tokens"] == 300
        assert screen.current.name == "Wild ride"
        # A broken file is reported, nothing crashes.
        path_input.value = str(tmp_path / "missing.json")
        screen.action_import()
        await settle(pilot)
        assert isinstance(app.screen, Report) and app.screen._title == "Preset import failed"
        await pilot.press("escape")
        await pilot.pause()
        # Delete the story's preset (after a yes): the story goes back to none.
        table.focus()
        table.move_cursor(row=_row_of(screen, "Night heron"))
        await pilot.pause()
        await pilot.press("ctrl+d")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause()
        assert "Night heron" not in [p.name for p in list_presets()]
        assert story.settings.sampler_preset is None
        # Bundled presets stay.
        table.move_cursor(row=_row_of(screen, "Precise"))
        await pilot.pause()
        await pilot.press("ctrl+d")
        await pilot.pause()
        assert isinstance(app.screen, PresetsScreen) and find_preset("Precise").bundled
        await pilot.press("ctrl+q")


async def test_settings_picks_the_story_preset_and_template() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        first = app.session
        await pilot.press("f9")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        preset = screen.query_one("#story-preset", Select)
        template = screen.query_one("#story-template", Select)
        assert preset.value == "" and template.value == "auto"
        names = [value for _label, value in template._options]
        assert {"auto", "none", "chatml", "llama3"} <= set(names)
        preset.value = "Precise"
        await pilot.pause()
        assert first.story.settings.sampler_preset == "Precise"
        template.value = "chatml"
        await pilot.pause()
        assert first.story.settings.template == "chatml"
        # The same story, no reopening: the next reply is built with the template.
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, StoryScreen) and app.session is first
        await pilot.press(*"look", "enter")
        await settle(pilot)
        assert app.session.last_prompt.template == "chatml"
        assert "<|im_start|>" in app.backend.requests[-1].prompt
        await pilot.press("f9")
        await pilot.pause()
        assert app.screen.query_one("#story-preset", Select).value == "Precise"
        assert app.screen.query_one("#story-template", Select).value == "chatml"
        template = app.screen.query_one("#story-template", Select)
        template.value = "auto"
        await pilot.pause()
        assert app.session.story.settings.template is None and app.session is first
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press(*"again", "enter")
        await settle(pilot)
        assert app.session.last_prompt.template == "none"  # auto: the scripted engine has no chat template
        assert "<|im_start|>" not in app.backend.requests[-1].prompt
        await pilot.press("f9")
        await pilot.pause()
        # The presets button asks the app (a message), which opens the presets on the open story.
        settings_screen = app.screen
        settings_screen.query_one("#presets", Button).press()
        await pilot.pause()
        assert isinstance(app.screen, PresetsScreen) and app.screen.session is app.session
        await pilot.press("ctrl+q")


def test_the_form_has_dry_and_xtc_fields_for_every_engine() -> None:
    from storyteller.tui.screens.presets import FORM_FIELDS, values_from_form

    names = {name for name, _label, _kind in FORM_FIELDS}
    assert {"dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n", "xtc_probability",
            "xtc_threshold", "top_n_sigma"} <= names
    values = values_from_form({"dry_penalty_last_n": "-1", "top_n_sigma": "1.5"},
                              keep={"dry_sequence_breakers": ["\n", ">"]})
    assert values == {"dry_penalty_last_n": -1, "top_n_sigma": 1.5, "dry_sequence_breakers": ["\n", ">"]}
