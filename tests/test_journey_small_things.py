"""The small things a player trips over (issue 14, items 16 and 17), walked through the real CLI.

Each test runs ``storyteller`` in a subprocess the way a player types it: library names for
``card inspect`` / ``card convert``, an ambiguous ``--card``, ``play --plain`` reopening the last
story, ``/undo`` on the greeting, a swipe that writes, ctrl+c during a reply, and
``storyteller play CARD.png WORLD.json`` opening a chat with that card in the app (tmux).
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

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
ROOT = Path(__file__).resolve().parents[1]
SERAPHINA = FIXTURES / "cards" / "default_Seraphina.png"
ELDORIA = FIXTURES / "worlds" / "Eldoria.json"

pytestmark = pytest.mark.skipif(not SERAPHINA.exists(), reason="shared fixtures are not beside the checkout")


def st(*args: str, stdin: str = "", env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full = {**os.environ, "STORYTELLER_SAMPLING__MAX_TOKENS": "16", "STORYTELLER_SAMPLING__SEED": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", "storyteller.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=full)


def test_card_commands_take_library_names(storyteller_home: Path, tmp_path: Path) -> None:
    assert st("card", "import", str(SERAPHINA)).returncode == 0
    shown = st("card", "inspect", "Seraphina")
    assert shown.returncode == 0, shown.stderr
    assert "Seraphina" in shown.stdout
    out = tmp_path / "copy.json"
    converted = st("card", "convert", "Seraphina", str(out))
    assert converted.returncode == 0, converted.stderr
    assert out.exists() and "Seraphina" in out.read_text(encoding="utf-8")
    missing = st("card", "inspect", "Nobody Here")
    assert missing.returncode == 1 and "no card called 'Nobody Here'" in missing.stderr


def test_an_ambiguous_card_warns(storyteller_home: Path) -> None:
    for _ in range(3):
        assert st("card", "import", str(SERAPHINA)).returncode == 0
    out = st("play", "--plain", "--card", "Seraphina", "--story", "amb", stdin="/quit\n",
             env={"STORYTELLER_ENGINE__KIND": "fake"})
    assert out.returncode == 0, out.stderr
    assert "3 cards match 'Seraphina'" in out.stderr and "Seraphina (2)" in out.stderr


def test_plain_reopens_the_last_story_and_keeps_the_greeting(storyteller_home: Path) -> None:
    fake = {"STORYTELLER_ENGINE__KIND": "fake"}
    first = st("play", "--plain", "--card", str(SERAPHINA), "--story", "forest walk", stdin="/undo\n/quit\n", env=fake)
    assert first.returncode == 0, first.stderr
    assert "nothing to undo: the greeting opens the story" in first.stdout
    again = st("play", "--plain", stdin="/show\n/quit\n", env=fake)
    assert again.returncode == 0, again.stderr
    assert "[story 'forest walk'" in again.stdout and "Seraphina" in again.stdout


def test_a_swipe_that_writes_says_so(storyteller_home: Path) -> None:
    out = st("play", "--plain", "--story", "swipes", stdin="look around\n/swipe 1\n/quit\n",
             env={"STORYTELLER_ENGINE__KIND": "fake"})
    assert out.returncode == 0, out.stderr
    assert "[no more replies: writing a new one...]" in out.stdout


@pytest.mark.slow
def test_ctrl_c_stops_the_reply_not_the_program(storyteller_home: Path, smollm2_path) -> None:
    env = {**os.environ, "STORYTELLER_SAMPLING__MAX_TOKENS": "400", "STORYTELLER_SAMPLING__SEED": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "storyteller.cli", "play", "--plain", "--story", "long",
                             "--mode", "story", "--context", "2048"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdin and proc.stdout
    proc.stdin.write("The wind rose over the hills, and the travellers\n")
    proc.stdin.flush()
    seen = ""
    deadline = time.monotonic() + 120
    while ">>> The wind rose" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    time.sleep(1.5)  # the reply is streaming now
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    out, err = proc.communicate("/show\n/quit\n", timeout=120)
    assert proc.returncode == 0, err
    assert "[stopped]" in out
    assert "Traceback" not in err


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_play_card_and_world_opens_a_chat_with_that_card(storyteller_home: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYTELLER_", "TMUX"))}
    env.update(STORYTELLER_HOME=str(storyteller_home), STORYTELLER_ENGINE__KIND="fake", TERM="xterm-256color",
               PYTHONPATH=str(ROOT))
    sock = str(tmp_path / "tmux.sock")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True, env=env, timeout=20).stdout

    command = (f"{shlex.quote(sys.executable)} -m storyteller.cli play {shlex.quote(str(SERAPHINA))} "
               f"{shlex.quote(str(ELDORIA))}")
    tmux("new-session", "-d", "-s", "t", "-x", "110", "-y", "32", f"exec {command}")
    try:
        deadline = time.monotonic() + 60
        screen = ""
        while "Seraphina" not in screen or "chat" not in screen.lower():
            if time.monotonic() > deadline:
                raise AssertionError(f"the chat with Seraphina never opened; the screen was:\n{screen}")
            time.sleep(0.2)  # another process's screen: nothing to wait on instead
            screen = tmux("capture-pane", "-p", "-t", "t")
        tmux("send-keys", "-t", "t", "C-q")
        time.sleep(1.0)
    finally:
        tmux("kill-server")
    from storyteller.paths import get_paths
    from storyteller.story.store import StoryStore

    stories = StoryStore(get_paths().stories_dir).list()
    assert stories and stories[0].name.startswith("Seraphina")
    with StoryStore(get_paths().stories_dir).open(stories[0].name, read_only=True) as story:
        assert story.settings.mode == "chat"
        assert story.settings.worlds, "the world given on the command line is attached"
