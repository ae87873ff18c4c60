"""/pin and /memory through `storyteller play --plain` in a subprocess, on the real bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from storyteller.paths import get_paths
from storyteller.story.store import StoryStore


def play(stdin: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTELLER_SAMPLING__MAX_TOKENS": "16", "STORYTELLER_SAMPLING__SEED": "5"}
    return subprocess.run([sys.executable, "-m", "storyteller.cli", "play", "--plain", "--context", "2048", *args],
                          input=stdin, capture_output=True, text=True, timeout=600, env=env)


def test_pin_and_memory_commands(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    script = ("/pin The key is under the blue stone.\nlook around\n/pin\n/memory\n/memory edit S1 nothing\n"
              "/unpin P9\n/unpin P1\n/memory\n/quit\n")
    first = play(script, "--story", "pins")
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "[pinned: it stays in every prompt on this path" in out
    assert "[pinned the last message:" in out
    assert "P1 [pinned fact] The key is under the blue stone." in out
    assert "P2 [pinned message]" in out
    assert "there is no S1 in memory" in out and "there is no P9 in memory" in out
    assert "[unpinned P1]" in out

    folder = get_paths().stories_dir / "pins"
    saved = json.loads((folder / "memory.json").read_text(encoding="utf-8"))
    assert [p["text"] for p in saved["pins"]] == [""], "the message pin is left; the fact was unpinned"
    with StoryStore(get_paths().stories_dir).open("pins", read_only=True) as story:
        assert [n.kind for n in story.current_path()] == ["greeting", "do", "generation"], "memory is not in the tree"
        pinned_id = saved["pins"][0]["node"]
        assert story.nodes[pinned_id].kind == "generation", "/pin pinned the last message: the reply"

    again = play("/memory\n", "--story", "pins")
    assert again.returncode == 0, again.stderr
    assert "P1 [pinned message]" in again.stdout and "blue stone" not in again.stdout
