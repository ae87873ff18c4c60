"""The real ``python -m storyteller.kiosk`` started as a group (``--card`` twice, or ``--group NAME``
for a saved group) in tmux: a visitor names a member and sees that member answer under its name.
Skipped without tmux; scripted engine."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kiosk.helpers import kiosk_settings, write_config
from tests.kiosk.test_tmux import ROOT, Tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def group_tmux(tmp_path: Path, storyteller_home: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYTELLER_", "TMUX"))}
    env.update(STORYTELLER_HOME=str(storyteller_home), STORYTELLER_ENGINE__KIND="fake", TERM="xterm-256color",
               PYTHONPATH=str(ROOT))
    server = Tmux(tmp_path / "tmux.sock", env)
    yield server
    server.kill_server()


def test_a_group_kiosk_from_the_command_line(group_tmux: Tmux, tmp_path: Path) -> None:
    tmux = group_tmux
    config = write_config(tmp_path / "kiosk.toml", kiosk_settings(cooldown_seconds=0))
    command = (f"{shlex.quote(sys.executable)} -m storyteller.kiosk --story tavern --card halden_voss "
               f"--card wren_calloway --order list --config {shlex.quote(str(config))}")
    tmux.start(command)
    tmux.wait_for("Press any key to add to the story")
    screen = tmux.wait_for("— Wren Calloway, ")  # the passages show a moment after the invitation
    assert "— Halden Voss, " in screen  # both members greet
    tmux.keys("x")
    tmux.wait_for("What should the story call you")
    tmux.keys("Zoe", literal=True)
    tmux.keys("Enter")
    tmux.wait_for("Your turn, Zoe")
    tmux.keys("Hello, both of you.", literal=True)
    tmux.keys("Enter")
    screen = tmux.wait_for("Enter: keep it")
    # list order: the member after the last greeter (Wren Calloway) is Halden Voss
    assert "Halden Voss: The fog parts." in screen
    tmux.keys("Enter")
    screen = tmux.wait_for("Zoe, ")
    assert screen.rindex("— Halden Voss, ") > screen.index("Zoe, ")  # the reply, under the visitor's line


def test_a_kiosk_plays_a_saved_group(group_tmux: Tmux, tmp_path: Path, storyteller_home: Path) -> None:
    saved = subprocess.run([sys.executable, "-m", "storyteller.cli", "group", "save", "Lighthouse crew", "--card",
                            "wren_calloway", "--card", "ink_and_margin", "--order", "everyone"],
                           capture_output=True, text=True, cwd=ROOT, env=group_tmux.env, timeout=60)
    assert saved.returncode == 0, saved.stderr
    tmux = group_tmux
    config = write_config(tmp_path / "kiosk.toml", kiosk_settings(cooldown_seconds=0))
    tmux.start(f"{shlex.quote(sys.executable)} -m storyteller.kiosk --story light --group 'Lighthouse crew' "
               f"--config {shlex.quote(str(config))}")
    tmux.wait_for("Press any key to add to the story")
    tmux.wait_for("— Ink & Margin, ")
    tmux.keys("x")
    tmux.wait_for("What should the story call you")
    tmux.keys("Enter")
    tmux.wait_for("Your turn")
    tmux.keys("Evening.", literal=True)
    tmux.keys("Enter")
    screen = tmux.wait_for("Enter: keep it")
    # everyone answers, in the saved group's list order
    assert screen.index("Wren Calloway: The fog parts.") < screen.index("Ink & Margin: The fog parts.")
