"""End to end: several adventure turns through `storyteller play --plain` on the real model."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from storyteller.paths import get_paths
from storyteller.story.store import StoryStore


def play(stdin: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTELLER_SAMPLING__MAX_TOKENS": "24", "STORYTELLER_SAMPLING__SEED": "5"}
    return subprocess.run([sys.executable, "-m", "storyteller.cli", "play", "--plain", "--context", "2048", *args],
                          input=stdin, capture_output=True, text=True, timeout=300, env=env)


def test_plays_turns_and_reopens_them(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    # A 135M model sometimes answers with nothing but a stop string; three retries make at
    # least one alternative all but certain.
    script = "look around\n/say Hello there\n/do take the lantern\n/retry\n/retry\n/retry\n/swipe -1\n/quit\n"
    first = play(script, "--story", "adv")
    assert first.returncode == 0, first.stderr
    assert "Narrator of Hollowmere" in first.stdout and "adventure mode" in first.stdout
    assert ">>> /say Hello there" in first.stdout
    assert re.search(r"\[(\d)/(\d)\] ", first.stdout), "/swipe -1 shows which alternative is on screen"

    with StoryStore(get_paths().stories_dir).open("adv", read_only=True) as story:
        kinds = [n.kind for n in story.current_path()]
        assert kinds[:6] == ["greeting", "do", "generation", "say", "generation", "do"]
        user_turn = story.current_path()[5]
        alternatives = [n for n in story.children(user_turn.id) if n.kind == "generation"]
        assert len(alternatives) >= 2, "every retry is kept as a swipe"

    again = play("/show\n", "--story", "adv")
    assert again.returncode == 0, again.stderr
    for line in ("> You look around.", '> You say "Hello there"', "> You take the lantern."):
        assert line in again.stdout


def test_end_of_input_leaves_cleanly(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    out = play("/help\n/nonsense\n", "--story", "quiet")
    assert out.returncode == 0, out.stderr
    assert "/continue" in out.stdout and "unknown command /nonsense" in out.stdout
