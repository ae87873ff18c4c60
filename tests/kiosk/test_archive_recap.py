"""The nightly archive (on the injected clock), the model-written recap, and the settings file."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from storyteller.errors import ConfigError
from storyteller.kiosk.archive import KioskState, archive_due
from storyteller.kiosk.settings import (
    KioskSettings,
    apply_low_power,
    hash_pin,
    load_kiosk_settings,
    verify_pin,
)
from storyteller.config import Settings
from storyteller.paths import get_paths

from tests.kiosk.helpers import PIN_HASH, FakeClock, kiosk_app, screen_text, settle, type_text


async def _turn(app, pilot, text: str) -> None:
    app.controller.cooldown_until = 0
    await pilot.press("a", "enter")
    await type_text(pilot, text)
    await pilot.press("enter")
    await settle(app, pilot)
    await pilot.press("enter")
    await settle(app, pilot)


async def test_nightly_archive_runs_once_a_day_after_its_time() -> None:
    clock = FakeClock(datetime(2025, 6, 15, 2, 59).timestamp())
    archive = {"enabled": True, "time": "03:00"}
    async with kiosk_app(["Stars wheel overhead."], clock=clock, archive=archive) as (app, pilot, _):
        await _turn(app, pilot, "look up")
        folder = get_paths().data_dir / "kiosk-archive"
        app.tick()
        assert not folder.exists()
        clock.advance(60)  # 03:00
        app.tick()
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["cafe-2025-06-15.jsonl", "cafe-2025-06-15.md"]
        md = (folder / "cafe-2025-06-15.md").read_text(encoding="utf-8")
        assert "> look up" in md and "Stars wheel overhead." in md
        assert re.search(r"\*— a visitor, \d{4}-\d\d-\d\d \d\d:\d\d\*", md)
        clock.advance(3600)
        (folder / "cafe-2025-06-15.md").unlink()
        app.tick()
        assert not (folder / "cafe-2025-06-15.md").exists()  # once a day only
        clock.advance(24 * 3600)
        app.tick()
        assert (folder / "cafe-2025-06-16.md").exists()
        # the day of the last archive is kept with the story, so a restart does not repeat it
        assert KioskState.load(app.controller.session.story.folder).archived_on == "2025-06-16"


def test_archive_due() -> None:
    state = KioskState(archived_on="2025-06-15")
    day = datetime(2025, 6, 15, 3, 0)
    assert not archive_due(day, state, "03:00")
    assert archive_due(day + timedelta(days=1), state, "03:00")
    assert not archive_due(day + timedelta(days=1) - timedelta(minutes=1), state, "03:00")


async def test_recap_is_written_every_n_turns_shown_and_kept() -> None:
    replies = ["The gate opens.", "A fox appears.", "A traveller opened a gate and met a fox."]
    async with kiosk_app(replies, recap_every=2) as (app, pilot, clock):
        await _turn(app, pilot, "open it")
        assert app.controller.state.recap == ""
        await _turn(app, pilot, "wait")
        assert app.controller.state.recap == "A traveller opened a gate and met a fox."
        assert "The story so far: A traveller opened a gate and met a fox." in screen_text(app)
        # the recap is not part of the story
        assert all("traveller" not in m.text for m in app.controller.messages())
        # it asked the model with the story's own prompt plus one instruction at the end
        recap_request = app.controller.session.backend.requests[-1]
        assert "what has happened in this story so far" in recap_request.prompt
        assert "A fox appears." in recap_request.prompt
    async with kiosk_app(["unused"], recap_every=2) as (app, pilot, clock):
        assert "A traveller opened a gate and met a fox." in screen_text(app)  # kept across a restart


async def test_cancel_recap_stops_a_recap_in_progress() -> None:
    from tests.kiosk.helpers import GatedBackend

    backend = GatedBackend(["one two three four five six seven eight nine ten"])
    async with kiosk_app(backend=backend, recap_every=1) as (app, pilot, clock):
        app.run_recap()
        await pilot.pause()
        await app.controller.cancel_recap()
        backend.gate.set()
        await settle(app, pilot)
        assert app.controller.state.recap == ""


def _write(tmp_path, text: str):
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_file_errors_are_clear(tmp_path) -> None:
    paths = get_paths()
    with pytest.raises(ConfigError, match="no kiosk settings at .*--hash-pin"):
        load_kiosk_settings(paths)
    with pytest.raises(ConfigError, match="pin_hash: missing"):
        load_kiosk_settings(paths, _write(tmp_path, "idle_seconds = 30\n"))
    with pytest.raises(ConfigError, match="pin_hash: is not a PIN hash"):
        load_kiosk_settings(paths, _write(tmp_path, 'pin_hash = "1234"\n'))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_kiosk_settings(paths, _write(tmp_path, "idle_seconds = \n"))
    with pytest.raises(ConfigError, match="idle_secs: Extra inputs are not permitted"):
        load_kiosk_settings(paths, _write(tmp_path, f'pin_hash = "{PIN_HASH}"\nidle_secs = 3\n'))
    with pytest.raises(ConfigError, match="moderation.patterns: .*not a valid regular expression"):
        load_kiosk_settings(paths, _write(tmp_path, f'pin_hash = "{PIN_HASH}"\n[moderation]\npatterns = ["(x"]\n'))
    with pytest.raises(ConfigError, match="archive.time: .*HH:MM"):
        load_kiosk_settings(paths, _write(tmp_path, f'pin_hash = "{PIN_HASH}"\n[archive]\ntime = "25:00"\n'))
    good = load_kiosk_settings(paths, _write(tmp_path, f'pin_hash = "{PIN_HASH}"\ncooldown_seconds = 5\n'))
    assert good.cooldown_seconds == 5 and good.moderation.enabled is False


def test_pin_hash_round_trip() -> None:
    stored = hash_pin("4321", iterations=1000)
    assert verify_pin("4321", stored) and not verify_pin("4322", stored)
    assert "4321" not in stored
    with pytest.raises(ConfigError):
        hash_pin("12")


def test_low_power_profile() -> None:
    settings = Settings()
    kiosk = KioskSettings(pin_hash=PIN_HASH, low_power={"enabled": True, "threads": 1, "model": "tiny.gguf"})
    low = apply_low_power(settings, kiosk)
    assert (low.engine.n_ctx, low.engine.n_threads, low.engine.model) == (2048, 1, "tiny.gguf")
    assert settings.engine.n_ctx is None  # the original is unchanged
    assert not kiosk.markdown()
    off = KioskSettings(pin_hash=PIN_HASH)
    assert apply_low_power(settings, off) is settings and off.markdown()
