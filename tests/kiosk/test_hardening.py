"""A kiosk under attack: bytes that are not UTF-8, SIGTSTP from outside, PIN guessing, odd exits."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from storyteller.kiosk.pinguard import MAX_LOCKOUT_SECONDS, PinGuard
from storyteller.paths import get_paths
from storyteller.tui.kiosk.admin import AdminScreen
from storyteller.tui.kiosk.pin import PinScreen

from tests.kiosk.helpers import PIN, FakeClock, kiosk_app, kiosk_settings, type_text, write_config
from tests.kiosk.test_tmux import Tmux, tmux  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


async def _wrong_pins(app, pilot, count: int) -> str:
    for n in range(count):
        await type_text(pilot, f"{9000 + n}")
        await pilot.press("enter")
        await pilot.pause()
    return str(app.screen.query_one("#pin-message").render())


async def test_pin_lockout_escalates_and_survives_a_restart() -> None:
    clock = FakeClock()
    async with kiosk_app(clock=clock, pin_attempts=3, pin_lockout_seconds=60) as (app, pilot, _):
        await pilot.press("f12")
        await pilot.pause()
        assert "Locked for 60 s" in await _wrong_pins(app, pilot, 3)
        clock.advance(61)
        assert "Locked for 2 min" in await _wrong_pins(app, pilot, 3)  # doubled: 120 s
    # the power is cut and the kiosk restarts: the lock is still there, and so is the count
    async with kiosk_app(clock=clock, pin_attempts=3, pin_lockout_seconds=60) as (app, pilot, _):
        await pilot.press("f12")
        await pilot.pause()
        await type_text(pilot, PIN)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PinScreen)
        assert "Too many wrong PINs" in str(app.screen.query_one("#pin-message").render())
        clock.advance(121)
        assert "Locked for 4 min" in await _wrong_pins(app, pilot, 3)
        clock.advance(241)
        await type_text(pilot, PIN)  # the operator's right PIN clears the count
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AdminScreen)
    assert PinGuard(get_paths().data_dir, 3, 60).state.lockouts == 0


def test_a_week_of_guessing_gets_nowhere_near_ten_thousand_pins(tmp_path: Path) -> None:
    guard = PinGuard(tmp_path, attempts=3, lockout_seconds=60)
    now, end, guesses = 0.0, 7 * 24 * 3600.0, 0
    while now < end:
        now += guard.locked_for(now)  # a patient attacker waits out every lock
        if now >= end:
            break
        guard.failed(now)
        guesses += 1
    assert guesses < 100  # with the defaults: about 50 in a week
    assert guard.lockout_seconds * 2 ** guard.state.lockouts >= MAX_LOCKOUT_SECONDS


async def test_only_the_operator_ends_the_kiosk_with_status_0() -> None:
    async with kiosk_app() as (app, pilot, _):
        app.exit()  # anything but the operator: a crash, a dead terminal
        await pilot.pause()
    assert app.exit_status != 0
    async with kiosk_app() as (app, pilot, _):
        app.quit_kiosk()  # the admin screen's quit (and systemd's SIGTERM)
        await pilot.pause()
    assert app.exit_status == 0


def test_shipped_unit_restarts_always_and_the_docs_say_so() -> None:
    unit = (ROOT / "deploy" / "storyteller-kiosk.service").read_text()
    assert "Restart=always" in unit and "Restart=on-failure" not in unit
    docs = (ROOT / "docs" / "kiosk.md").read_text()
    assert "Restart=always" in docs


@needs_tmux
def test_bytes_that_are_not_utf8_and_sigtstp_do_not_stop_the_real_kiosk(tmux: Tmux, tmp_path: Path) -> None:  # noqa: F811
    config = write_config(tmp_path / "kiosk.toml", kiosk_settings(title="The Hollowmere Book", cooldown_seconds=0))
    command = f"{shlex.quote(sys.executable)} -m storyteller.kiosk --story lobby --config {shlex.quote(str(config))}"
    tmux.start(command)  # exec: the pane's process is the kiosk
    tmux.wait_for("Press any key to add to the story")
    kiosk = int(tmux.pane("#{pane_pid}"))
    tmux.run("send-keys", "-t", tmux.session, "-H", "ff", "fe", "c3")  # not UTF-8, and a cut sequence
    time.sleep(0.5)
    assert "Traceback" not in tmux.screen() and tmux.pane("#{pane_dead}") == "0"
    tmux.keys("x")  # still listening to the keyboard
    tmux.wait_for("What should the story call you")
    os.kill(kiosk, signal.SIGTSTP)  # another process tries to stop it
    time.sleep(0.5)
    assert _state(kiosk) not in ("T", "t")
    tmux.keys("Escape")
    tmux.wait_for("Press any key to add to the story")


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
