"""The narrative as a player meets it in `storyteller play --plain` on the real bundled model.

- adventure: over several turns the narrator never writes the player's action or speech and no
  prompt label reaches the prose (what is saved is exactly what was printed);
- story mode: a reply cut off mid-sentence is trimmed back to its last full sentence, the story
  tree keeps the cut text, and /continue picks it up again and finishes it;
- chat mode: trimming is off unless the setting turns it on.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from storyteller.paths import get_paths
from storyteller.prompt.reply_filter import find_label, find_player_turn, input_verbs
from storyteller.story.store import StoryStore

PLAYER = ("User", "You", "Player")


def play(stdin: str, *args: str, tokens: int = 40, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "STORYTELLER_SAMPLING__MAX_TOKENS": str(tokens), "STORYTELLER_SAMPLING__SEED": "11",
               "STORYTELLER_ENGINE__KV_STATE": "off", **env}
    return subprocess.run([sys.executable, "-m", "storyteller.cli", "play", "--plain", "--context", "2048", *args],
                          input=stdin, capture_output=True, text=True, timeout=900, env=environ)


def _story(name: str):
    return StoryStore(get_paths().stories_dir).open(name, read_only=True)


def test_adventure_narrator_never_plays_the_player_nor_leaks_labels(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    script = "look around\n/say Who are you?\nask the woman about the notice\n/say I'm not a priest.\n/quit\n"
    out = play(script, "--story", "adv")
    assert out.returncode == 0, out.stderr
    with _story("adv") as story:
        names = [story.settings.persona.name, "Narrator of Hollowmere", "Narrator"]
        path = story.current_path()
        replies = 0
        for before, node in zip(path, path[1:], strict=False):
            if node.kind != "generation":
                continue
            replies += 1
            allowed = input_verbs(before.kind, before.text) if before.kind in ("say", "do", "story") else frozenset()
            assert find_player_turn(node.text, names=PLAYER, allowed=allowed) is None, node.text
            assert find_label(node.text, names) is None, node.text
            assert not node.text.lstrip().startswith(">"), node.text
            assert node.text in out.stdout, "what was printed is what the story keeps"
        assert replies >= 3


def test_story_mode_trims_and_continue_finishes_the_cut_sentence(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    # 40-token replies stop mid-sentence almost every time; continue after each one.
    script = ("/story Ada lifted the lamp and\n/continue\n/story The stairs creaked as\n/continue\n"
              "/story Outside, the rain\n/continue\n/show\n/quit\n")
    out = play(script, "--card", "ink_and_margin", "--mode", "story", "--story", "ink", tokens=40)
    assert out.returncode == 0, out.stderr
    with _story("ink") as story:
        nodes = list(story.nodes.values())
        trimmed = [n for n in nodes if n.kind in ("generation", "continue") and n.generation and n.generation.trimmed]
        assert trimmed, "some 40-token reply ended mid-sentence and was trimmed"
        finished = 0
        for node in trimmed:
            assert node.text.rstrip()[-1:] in ".!?…\"”)*'’", f"kept text ends a sentence: {node.text!r}"
            after = [c for c in story.children(node.id) if c.kind == "continue"]
            for child in after:
                assert child.text.startswith(node.generation.trimmed), "Continue starts with the cut text"
                finished += 1
        assert finished, "Continue went on from a trimmed reply"
        shown = "\n".join(m.text for m in story.messages())
    assert shown.splitlines()[-1] in out.stdout


def test_trimming_is_off_in_chat_and_follows_the_setting(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    script = "/say Tell me about the house on the square.\n/say And the lamp?\n/quit\n"
    chat = play(script, "--card", "ink_and_margin", "--story", "chat", tokens=12)
    assert chat.returncode == 0, chat.stderr
    off = play("/story Ada lifted the lamp and\n/story The stairs creaked as\n/quit\n", "--card", "ink_and_margin",
               "--mode", "story", "--story", "untrimmed", tokens=12, STORYTELLER_REPLY__TRIM_SENTENCES="off")
    assert off.returncode == 0, off.stderr
    for name in ("chat", "untrimmed"):
        with _story(name) as story:
            replies = [n for n in story.nodes.values() if n.kind == "generation"]
            assert replies and all(not n.generation.trimmed for n in replies), name
            # Twelve tokens rarely end a sentence: untrimmed replies keep their unfinished end.
            assert any(n.text.rstrip()[-1:] not in ".!?…\"”" for n in replies), name
