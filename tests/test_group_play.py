"""A group chat played as a player plays it: `storyteller play --plain --card A --card B --card C`
on the real bundled model, and `storyteller prompt` on a group story."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.paths import get_paths
from storyteller.session import open_session
from storyteller.story.store import StoryStore
from storyteller.textsafe import safe_json

CARDS = ["--card", "halden_voss", "--card", "wren_calloway", "--card", "ink_and_margin"]
NAMES = ["Halden Voss", "Wren Calloway", "Ink & Margin"]


def _cli(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storyteller.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **env})


def play(stdin: str, *args: str) -> subprocess.CompletedProcess:
    return _cli("play", "--plain", "--context", "2048", *args, stdin=stdin,
                STORYTELLER_SAMPLING__MAX_TOKENS="20", STORYTELLER_SAMPLING__SEED="5")


def test_three_members_play_in_the_line_mode(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    script = ("Wren, how long have you kept the light?\n"
              "/as Halden Voss\n"
              "/retry\n"
              "/continue\n"
              "/mute Ink & Margin\n"
              "/members\n"
              "/order everyone\n"
              "What do you both make of this?\n"
              "/as Bob\n"
              "/quit\n")
    done = play(script, *CARDS, "--story", "crew")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "group 'Group: Halden Voss, Wren Calloway, Ink & Margin'" in out
    assert "Ink & Margin (muted)" in out and "Wren Calloway, talkativeness 0.60" in out
    assert "no member called 'Bob'" in out and "the members are Halden Voss, Wren Calloway, Ink & Margin" in out

    with StoryStore(get_paths().stories_dir).open("crew", read_only=True) as story:
        path = story.current_path()
        assert story.settings.group is not None and story.settings.group.member("Ink & Margin").muted
        assert [n.author for n in path[:3]] == NAMES and {n.kind for n in path[:3]} == {"greeting"}
        turns: list[list] = []
        for node in path[3:]:
            if node.kind == "say":
                turns.append([node])
            else:
                turns[-1].append(node)
        first, second = turns
        assert first[0].text == "Wren, how long have you kept the light?"
        replies = [n for n in first[1:] if n.kind == "generation"]
        # natural order: the member named answers first; /as Halden Voss added his reply after
        assert replies[0].author == "Wren Calloway"
        assert replies[-1].author == "Halden Voss"
        # /retry made another Halden reply in place of the first (kept as a swipe); /continue goes on as him
        swipes = [n for n in story.children(replies[-1].parent) if n.kind == "generation"
                  and n.created >= replies[-2].created and n.id != replies[-2].id]
        assert len(swipes) >= 2 and {n.author for n in swipes} == {"Halden Voss"}
        assert {n.author for n in first if n.kind == "continue"} <= {"Halden Voss"}
        # everyone answers in list order, and the muted member does not
        assert [n.author for n in second[1:] if n.kind == "generation"] == ["Halden Voss", "Wren Calloway"]
        for node in replies:  # what was printed is the reply, named
            assert f"{node.author}: {node.text}" in out


def test_group_save_list_and_play_a_saved_group(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    saved = _cli("group", "save", "Lighthouse crew", "--card", "halden_voss", "--card", "wren_calloway",
                 "--order", "list")
    assert saved.returncode == 0, saved.stderr
    listed = _cli("group", "list")
    assert "Lighthouse crew: Halden Voss, Wren Calloway (list order, join)" in listed.stdout
    done = play("Hello.\nHello again.\n", "--group", "lighthouse crew", "--story", "saved")
    assert done.returncode == 0, done.stderr
    with StoryStore(get_paths().stories_dir).open("saved", read_only=True) as story:
        assert story.settings.group.name == "Lighthouse crew"
        replies = [n.author for n in story.current_path() if n.kind == "generation"]
        # list order: one member a turn, the next after the last to speak (the greetings end with Wren)
        assert replies == ["Halden Voss", "Wren Calloway"]


def test_group_options_need_a_group_and_a_known_name() -> None:
    done = _cli("play", "--plain", "--card", "halden_voss", "--order", "list", stdin="")
    assert done.returncode == 1 and "--order needs a group" in done.stderr
    done = _cli("play", "--plain", "--group", "nobody", stdin="")
    assert done.returncode == 1 and "no saved group called 'nobody'" in done.stderr


async def test_prompt_json_is_what_the_next_group_turn_sends(monkeypatch) -> None:
    monkeypatch.setenv("STORYTELLER_ENGINE__KIND", "fake")
    settings = Settings(engine={"kind": "fake", "kv_state": "off"})
    paths = get_paths().ensure()
    session = await open_session("trio", settings=settings, paths=paths, backend=ScriptedBackend(["Aye."]),
                                 cards=["halden_voss", "wren_calloway", "ink_and_margin"])
    await session.submit("Halden, is the tug safe?")
    await session.close()

    done = _cli("prompt", "--story", "trio", "--json")
    assert done.returncode == 0, done.stderr
    shown = done.stdout

    backend = ScriptedBackend(["It is."])
    session = await open_session("trio", settings=settings, paths=paths, backend=backend)
    try:
        started = []
        session.subscribe(lambda e: started.append(e) if type(e).__name__ == "PromptBuilt" else None)
        await session.submit("")
    finally:
        await session.close()
    first = started[0].prompt
    assert shown == safe_json(first.to_dict(), indent=2) + "\n"
    data = json.loads(shown)
    assert data["text"] == backend.requests[0].prompt
    assert all(name in data["text"] for name in NAMES)


def test_manual_order_waits_for_as_in_the_line_mode() -> None:
    done = _cli("play", "--plain", *CARDS, "--order", "manual", "--story", "quiet",
                stdin="Hello?\n/as wren calloway\n/swipe 1\n/swipe -1\n/mute Halden Voss\n/mute Wren Calloway\n"
                      "/mute Ink & Margin\n/order natural\nStill nobody?\n/show\n",
                STORYTELLER_ENGINE__KIND="fake")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[manual order: pick who answers with /as NAME]" in out
    assert "\nWren Calloway: The fog parts." in out  # the fake engine's reply, named
    assert "[every member is muted: /unmute NAME, or /as NAME for one reply]" in out
    # /swipe past the last reply writes another, as Wren; /swipe -1 goes back to the first
    assert out.count("\nWren Calloway: The fog parts.") >= 2 and "[1/2] Wren Calloway: The fog parts." in out
    assert "> Hello?\n\nWren Calloway: " in out  # /show names each reply's member
