"""Drive the app in a real terminal (tmux): type, read the screen, quit, find the story on disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storyteller.paths import get_paths
from storyteller.story import StoryStore

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

ROOT = Path(__file__).resolve().parents[2]


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _wait_for(session: str, predicate, what: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", session)
        if predicate(screen):
            return screen
        time.sleep(0.05)  # polling a real terminal: there is no event to wait on
    raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")


def test_play_in_a_real_terminal(storyteller_home: Path) -> None:
    session = f"storyteller-test-{os.getpid()}"
    env = {
        "STORYTELLER_HOME": str(storyteller_home),
        "STORYTELLER_ENGINE__KIND": "fake",
        "STORYTELLER_ENGINE__KV_STATE": "off",
        "TERM": "xterm-256color",
        "PYTHONPATH": str(ROOT),
    }
    exports = " ".join(f"{k}={v!s}" for k, v in env.items())
    command = f"env {exports} {sys.executable} -m storyteller.tui --story 'tmux tale'; echo EXITED:$?; sleep 30"
    _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)
    try:
        _wait_for(session, lambda s: "What do you do?" in s and "tmux tale" in s, "the story screen")
        _tmux("send-keys", "-t", session, "-l", "look around")
        _tmux("send-keys", "-t", session, "Enter")
        screen = _wait_for(session, lambda s: "The fog parts." in s and "> You look around." in s, "the reply")
        assert "fake · scripted" in screen
        _tmux("send-keys", "-t", session, "C-r")  # retry: a second alternative
        _wait_for(session, lambda s: "2/2" in s, "the swipe counter")
        _tmux("send-keys", "-t", session, "C-q")
        _wait_for(session, lambda s: "EXITED:0" in s, "the app to exit", timeout=10)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    with StoryStore(get_paths().stories_dir).open("tmux tale", read_only=True) as story:
        kinds = [n.kind for n in story.current_path()]
        assert kinds == ["greeting", "do", "generation"]
        assert len(story.siblings(story.current_path()[-1].id)) == 2
