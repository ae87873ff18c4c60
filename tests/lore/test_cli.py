"""``storyteller lore`` sub-commands through their own argparse wiring."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from storyteller.errors import FormatError
from storyteller.lore.cli import read_chat, register
from storyteller.paths import get_paths


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="storyteller")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_import_never_overwrites(shared_fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = shared_fixtures / "worlds" / "Eldoria.json"
    assert _main(["lore", "import", str(source)]) == 0
    assert _main(["lore", "import", str(source)]) == 0
    names = sorted(p.name for p in get_paths().worlds_dir.glob("*.json"))
    assert names == ["Eldoria (2).json", "Eldoria.json"]
    assert "imported 4 entries (sillytavern)" in capsys.readouterr().out


def test_import_of_bad_file_saves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"entries": {"0": {"key": ["/(unclosed/"]}}}', encoding="utf-8")
    with pytest.raises(FormatError, match="does not compile"):
        _main(["lore", "import", str(bad)])
    folder = get_paths().worlds_dir
    assert not folder.exists() or not any(folder.iterdir())


def test_convert_to_v3_and_refuse_overwrite(shared_fixtures: Path, tmp_path: Path) -> None:
    dst = tmp_path / "nai.lorebook_v3.json"
    assert _main(["lore", "convert", str(shared_fixtures / "worlds" / "test_lorebook.lorebook"), str(dst)]) == 0
    data = json.loads(dst.read_text(encoding="utf-8"))
    assert data["spec"] == "lorebook_v3" and len(data["data"]["entries"]) == 3
    with pytest.raises(FormatError, match="already exists"):
        _main(["lore", "convert", str(shared_fixtures / "worlds" / "Eldoria.json"), str(dst)])
    assert json.loads(dst.read_text(encoding="utf-8")) == data


def test_list_shows_bundled_worlds(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["lore", "list"]) == 0
    out = capsys.readouterr().out
    assert "hollowmere" in out and "bundled" in out


def test_scan_json_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["lore", "scan", "hollowmere", "--text", "I walk the causeway.", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    activated = {item["comment"]: item for item in data["activated"]}
    assert activated["The Lantern Causeway"]["matched_key"] == "causeway"
    assert activated["The Lantern Causeway"]["tokens"] > 0
    assert any(item["reason"] == "delay" for item in data["skipped"])


def test_test_alias_prints_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chat = tmp_path / "chat.jsonl"
    lines = [{"user_name": "You", "character_name": "N"}, {"name": "You", "mes": "Where is Sister Maud?", "is_user": True}]
    chat.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    assert read_chat(chat) == ["You: Where is Sister Maud?"]
    assert _main(["lore", "test", "Hollowmere", "--chat", str(chat)]) == 0
    out = capsys.readouterr().out
    assert "Sister Maud" in out and "entries fired" in out


def test_scan_unknown_world() -> None:
    with pytest.raises(FormatError, match="no world named"):
        _main(["lore", "scan", "nowhere", "--text", "x"])
