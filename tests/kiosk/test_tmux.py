"""The real ``python -m storyteller.kiosk`` in tmux, driven key by key as a visitor would.

Skipped when tmux is not installed. The engine is the scripted fake (STORYTELLER_ENGINE__KIND).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kiosk.helpers import PIN, kiosk_settings, write_config

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """One tmux server of our own (its own socket), one session."""

    def __init__(self, socket: Path, env: dict[str, str]) -> None:
        self.socket = socket
        self.env = env
        self.session = "kiosk"

    def run(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, env=self.env,
                             timeout=20)
        return out.stdout

    def start(self, command: str) -> None:
        self.run("new-session", "-d", "-s", self.session, "-x", "100", "-y", "32", f"exec {command}")
        self.run("set-option", "-t", self.session, "remain-on-exit", "on")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")
            time.sleep(0.1)  # polling another process's screen: nothing to wait on instead

    def pane(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", self.session, fmt).strip()

    def kill_server(self) -> None:
        self.run("kill-server")


@pytest.fixture
def tmux(tmp_path: Path, storyteller_home: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYTELLER_", "TMUX"))}
    env.update(STORYTELLER_HOME=str(storyteller_home), STORYTELLER_ENGINE__KIND="fake", TERM="xterm-256color",
               PYTHONPATH=str(ROOT))
    server = Tmux(tmp_path / "tmux.sock", env)
    yield server
    server.kill_server()


def test_a_visitor_plays_the_real_kiosk_in_tmux(tmux: Tmux, tmp_path: Path) -> None:
    config = write_config(tmp_path / "kiosk.toml", kiosk_settings(title="The Hollowmere Book", cooldown_seconds=0))
    command = f"{shlex.quote(sys.executable)} -m storyteller.kiosk --story lobby --config {shlex.quote(str(config))}"
    tmux.start(command)
    tmux.wait_for("Press any key to add to the story")
    assert "The Hollowmere Book" in tmux.screen()

    tmux.keys("x")
    tmux.wait_for("What should the story call you")
    tmux.keys("Zoe", literal=True)
    tmux.keys("Enter")
    tmux.wait_for("Your turn, Zoe")
    tmux.keys("open the gate", literal=True)
    tmux.keys("Enter")
    tmux.wait_for("Enter: keep it")
    assert "The fog parts." in tmux.screen()
    tmux.keys("Enter")
    tmux.wait_for("Press any key to add to the story")
    screen = tmux.wait_for("Zoe, ")
    assert "You open the gate." in screen and "Zoe, " in screen

    # the ways out a visitor might try
    for key in ("C-c", "C-q", "C-z", "C-p", "C-\\", "Escape"):
        tmux.keys(key)
    tmux.keys("Escape")
    tmux.wait_for("Press any key to add to the story")
    assert tmux.pane("#{pane_dead}") == "0"

    # a power cut: kill -9, then start again in a fresh pane
    pid = int(tmux.pane("#{pane_pid}"))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while tmux.pane("#{pane_dead}") != "1" and time.monotonic() < deadline:
        time.sleep(0.05)
    # this time through a shell that reports the exit code when the kiosk ends
    tmux.run("respawn-pane", "-t", tmux.session, f"{command}; echo kiosk-exit=$?; sleep 30")
    tmux.wait_for("Press any key to add to the story")
    screen = tmux.wait_for("Zoe, ")
    assert "You open the gate." in screen and "Zoe, " in screen and "The fog parts." in screen

    # the operator leaves with the PIN
    tmux.keys("F12")
    tmux.wait_for("Operator PIN")
    tmux.keys(PIN, literal=True)
    tmux.keys("Enter")
    tmux.wait_for("Quit the kiosk")
    tmux.keys("End")
    tmux.keys("Enter")
    tmux.wait_for("Quit the kiosk?")
    tmux.keys("y")
    tmux.wait_for("kiosk-exit=0")
