"""The library (import/list) and the ``card`` sub-commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from storyteller.cards import Card, import_card, list_cards, load_card, safe_file_stem
from storyteller.cards.cli import register
from storyteller.paths import get_paths


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="storyteller")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_import_never_overwrites(shared_fixtures: Path) -> None:
    src = shared_fixtures / "cards" / "default_Seraphina.png"
    first = import_card(src)
    second = import_card(src)
    third = import_card(src)
    assert [p.path.name for p in (first, second, third)] == ["Seraphina.png", "Seraphina (2).png",
                                                            "Seraphina (3).png"]
    assert first.path.read_bytes() == src.read_bytes()  # the original bytes, untouched
    assert first.path.parent == get_paths().characters_dir


def test_import_with_a_new_name_rewrites_the_card(tmp_path: Path) -> None:
    src = tmp_path / "x.json"
    src.write_text(json.dumps({"spec": "chara_card_v2", "data": {"name": ""}}))
    entry = import_card(src, name="Named Later")
    assert entry.path.name == "Named Later.json"
    assert load_card(entry.path)[0].name == "Named Later"


def test_list_reports_unreadable_files(tmp_path: Path) -> None:
    folder = get_paths().characters_dir
    folder.mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"nope")
    (folder / "Zed.json").write_text(json.dumps({"name": "Zed"}))
    (folder / "notes.txt").write_text("ignored")
    entries = list_cards()
    assert [(e.path.name, e.card.name if e.card else None) for e in entries] == [
        ("broken.png", None), ("Zed.json", "Zed")]
    assert "PNG" in (entries[0].error or "")


@pytest.mark.parametrize(("name", "stem"), [
    ("Seraphina", "Seraphina"), ("a/b", "a_b"), ("..", "character"), ("CON", "_CON"), ("  .x. ", "x"),
    ("Zoë & Co", "Zoë & Co"), ("x" * 200, "x" * 80),
])
def test_safe_file_stem(name: str, stem: str) -> None:
    assert safe_file_stem(name) == stem


def test_cli_import_list_inspect_convert(shared_fixtures: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cards = shared_fixtures / "cards"
    assert run(["card", "import", str(cards / "Default-chan.png")]) == 0
    assert "Imported 'Default-chan'" in capsys.readouterr().out
    assert run(["card", "list"]) == 0
    assert "Default-chan" in capsys.readouterr().out

    assert run(["card", "inspect", str(cards / "default_Seraphina.png"), "--json", "--report"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["spec"] == "chara_card_v3" and out["spec_version"] == "3.0"
    assert out["data"]["name"] == "Seraphina" and len(out["data"]["character_book"]["entries"]) == 4
    assert out["report"]["source_format"] == "png/chara/v2" and not out["report"]["repaired"]
    assert out["data"]["extensions"]["talkativeness"] == "0.5" and "\r\n" in out["data"]["description"]

    assert run(["card", "inspect", str(cards / "Aqua.png")]) == 0
    human = capsys.readouterr().out
    assert "Name:        Aqua" in human and "Report" not in human

    dst = tmp_path / "seraphina.json"
    assert run(["card", "convert", str(cards / "default_Seraphina.png"), str(dst), "--spec", "v2"]) == 0
    assert json.loads(dst.read_text())["spec"] == "chara_card_v2"
    for suffix in (".png", ".charx"):
        out_path = tmp_path / f"s{suffix}"
        assert run(["card", "convert", str(dst), str(out_path)]) == 0
        assert load_card(out_path)[0].model_dump() == load_card(dst)[0].model_dump()


def test_cli_inspect_of_a_nameless_card_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "Mystery Guest.json"
    src.write_text(json.dumps({"spec": "chara_card_v2", "data": {"name": "", "first_mes": "\x1b[2Jhi"}}))
    assert run(["card", "inspect", str(src)]) == 0
    out = capsys.readouterr().out
    assert "Mystery Guest" in out and "no name" in out
    assert "\x1b" not in out


def test_cli_convert_refuses_unknown_extension(tmp_path: Path, shared_fixtures: Path) -> None:
    from storyteller.errors import FormatError

    with pytest.raises(FormatError, match=".png, .json or .charx"):
        run(["card", "convert", str(shared_fixtures / "cards" / "Aqua.png"), str(tmp_path / "x.txt")])
    assert not (tmp_path / "x.txt").exists()


def test_card_is_a_v3_superset() -> None:
    fields = set(Card.model_fields)
    v3 = {"name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
          "system_prompt", "post_history_instructions", "alternate_greetings", "character_book", "tags",
          "creator", "character_version", "extensions", "group_only_greetings", "assets", "nickname",
          "creator_notes_multilingual", "source", "creation_date", "modification_date"}
    assert v3 <= fields
