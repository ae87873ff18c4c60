"""``storyteller story ...`` sub-commands, through the parser that ``register`` builds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from storyteller.errors import FormatError, StoryError
from storyteller.story import StoryStore
from storyteller.story.cli import register


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="storyteller")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_import_list_show_export(shared_fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = shared_fixtures / "chats" / "Aqua_1673181146000.jsonl"
    assert run("story", "import", str(src)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "Aqua_1673181146000" and "1 nodes" in out[0]
    assert run("story", "import", str(src), "--name", "second") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "second"
    assert run("story", "import", str(src)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Aqua_1673181146000-2"  # never replaces a story

    assert run("story", "list") == 0
    listing = capsys.readouterr().out
    assert "second  1 turns" in listing and "Aqua_1673181146000-2" in listing

    assert run("story", "show", "second") == 0
    shown = capsys.readouterr().out
    assert "persona: You" in shown and "greeting] Aqua:" in shown and "goddess of water" in shown

    for fmt, name in (("st", "a.jsonl"), ("kobold", "a.json"), ("md", "a.md"), ("txt", "a.txt")):
        assert run("story", "export", "second", str(tmp_path / name), "--format", fmt) == 0
        assert capsys.readouterr().out.strip() == f"wrote {tmp_path / name}"
    assert json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])["character_name"] == "Aqua"
    assert json.loads((tmp_path / "a.json").read_text())["prompt"].startswith("\nAqua: *I am in")
    assert (tmp_path / "a.txt").read_text().startswith("Aqua: *I am in")


def test_show_strips_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    with StoryStore().create("esc") as story:
        story.add_node("red \x1b[31malert\x1b[0m", author="Bot", kind="generation")
    assert run("story", "show", "esc") == 0
    assert "\x1b" not in capsys.readouterr().out


def test_errors_are_storyteller_errors(tmp_path: Path) -> None:
    with pytest.raises(StoryError, match="no story named"):
        run("story", "show", "missing")
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(FormatError):
        run("story", "import", str(bad))
    assert StoryStore().list() == []  # a failed import leaves nothing behind
