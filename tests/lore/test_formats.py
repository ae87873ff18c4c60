"""Lorebook formats: the fixture files, card books both ways, foreign imports, bad files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from storyteller.errors import FormatError, LimitExceededError
from storyteller.lore import (
    Lorebook,
    Position,
    SelectiveLogic,
    dump_lorebook,
    from_character_book,
    load_lorebook,
    parse_lorebook,
    save_lorebook,
    to_character_book,
    to_lorebook_v3,
)
from storyteller.lore.io import MAX_FILE_BYTES


def _seraphina_book(shared_fixtures: Path) -> dict:
    card = json.loads((shared_fixtures / "cards" / "Seraphina_1.12.6.chara.json").read_text(encoding="utf-8"))
    return card["data"]["character_book"]


def test_eldoria_reads_with_defaults(shared_fixtures: Path) -> None:
    book, report = load_lorebook(shared_fixtures / "worlds" / "Eldoria.json")
    assert book.name == "Eldoria"
    assert [e.uid for e in book.entries] == [0, 1, 2, 3]
    first = book.entries[0]
    assert first.keys == ["eldoria", "wood", "forest", "magical forest"]
    assert first.selective is False and first.order == 100 and first.position == Position.BEFORE_CHAR
    # absent fields: template defaults, and "inherit global" stays None (never 0 / off)
    assert first.probability == 100 and first.use_probability is True
    assert first.depth == 4 and first.group_weight == 100 and first.delay_until_recursion == 0
    assert first.scan_depth is None and first.case_sensitive is None and first.match_whole_words is None
    assert first.use_group_scoring is None and first.sticky is None
    assert report.source_format == "sillytavern"
    assert any("scanDepth" in line for line in report.defaulted)
    assert not report.repaired and not report.dropped


def test_novelai_import(shared_fixtures: Path) -> None:
    book, report = load_lorebook(shared_fixtures / "worlds" / "test_lorebook.lorebook")
    assert book.name == "test_lorebook"
    assert len(book.entries) == 3
    assert [e.order for e in book.entries] == [400, 500, 450]
    assert book.entries[0].comment == "The Ancient Library of Alexandria"
    assert book.entries[0].keys == ["Alexandria"]
    assert book.entries[1].keys == [] and book.entries[2].keys == ["crystals", "caves"]
    assert all(e.selective is False and e.position == 0 and not e.disable for e in book.entries)
    assert book.entries[2].content.startswith("----\nThe Crystal Caves")
    assert report.source_format == "novelai"
    assert any("Master Elara" in w and "never fires" in w for w in report.warnings)
    assert any("searchRange" in d for d in report.dropped)


def test_card_book_round_trip_is_lossless(shared_fixtures: Path) -> None:
    original = _seraphina_book(shared_fixtures)
    kept = copy.deepcopy(original)
    book = from_character_book(original)
    assert len(book.entries) == 4 and book.name == "Eldoria"
    # the card says probability null + useProbability false: SillyTavern's conversion gives 100 / off
    assert book.entries[0].probability == 100 and book.entries[0].use_probability is False
    assert to_character_book(book) == kept
    assert original == kept  # the input was not mutated


def test_card_book_survives_world_file(shared_fixtures: Path, tmp_path: Path) -> None:
    original = _seraphina_book(shared_fixtures)
    book = from_character_book(original)
    save_lorebook(book, tmp_path / "Eldoria.json")
    again, _ = load_lorebook(tmp_path / "Eldoria.json")
    assert [e.model_dump() for e in again.entries] == [e.model_dump() for e in book.entries]
    assert to_character_book(again) == original


def test_edited_card_entry_is_exported_in_full(shared_fixtures: Path) -> None:
    original = _seraphina_book(shared_fixtures)
    book = from_character_book(original)
    book.entries[1].content = "changed"
    book.entries[1].sticky = 3
    out = to_character_book(book)
    assert out["entries"][0] == original["entries"][0]
    changed = out["entries"][1]
    assert changed["content"] == "changed" and changed["extensions"]["sticky"] == 3
    assert changed["position"] == "before_char" and changed["extensions"]["position"] == 0
    assert from_character_book(out).entries[1].sticky == 3


def test_card_entry_without_enabled_stays_enabled() -> None:
    book = from_character_book({"entries": [{"keys": ["a"], "content": "x", "insertion_order": 5}]})
    assert book.entries[0].disable is False
    assert book.entries[0].position == Position.AFTER_CHAR  # SillyTavern: no position means after_char


def test_lorebook_v3_export_and_reimport() -> None:
    book = Lorebook(name="B", entries=[])
    data = to_lorebook_v3(from_character_book({"name": "B", "entries": [{"keys": ["k"], "content": "c"}]}))
    assert data["spec"] == "lorebook_v3" and data["data"]["name"] == "B"
    assert data["data"]["entries"][0]["use_regex"] is True
    again, report = parse_lorebook(data)
    assert report.source_format == "lorebook_v3" and again.entries[0].keys == ["k"]
    assert dump_lorebook(book)["entries"] == {}


def test_kobold_lite_world_info() -> None:
    save = {
        "wiinsertlocation": 1,
        "worldinfo": [
            {"key": "dragon, wyrm", "keysecondary": "", "keyanti": "", "content": "A dragon.", "comment": "D",
             "folder": None, "selective": False, "constant": False, "probability": 100, "wigroup": ""},
            {"key": "king", "keysecondary": "", "keyanti": "dead", "content": "The king lives.",
             "selective": True, "constant": False, "probability": 50},
            {"key": "queen", "keysecondary": "crown", "keyanti": "exile", "content": "Q", "selective": True},
        ],
    }
    book, report = parse_lorebook(save, "lite")
    assert report.source_format == "kobold_lite"
    dragon, king, queen = book.entries
    assert dragon.keys == ["dragon", "wyrm"] and dragon.match_whole_words is False
    assert dragon.position == Position.AN_TOP
    assert king.secondary_keys == ["dead"] and king.selective_logic == SelectiveLogic.NOT_ANY
    assert king.probability == 50 and king.use_probability is True
    assert queen.content.startswith("@@exclude_keys exile\n")


def test_old_file_missing_position_and_disable(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"entries": {"7": {"uid": 7, "key": ["a"], "content": "x"}}}), encoding="utf-8")
    book, _ = load_lorebook(path)
    (only,) = book.entries
    assert only.uid == 7 and only.position == Position.BEFORE_CHAR and only.disable is False
    assert only.scan_depth is None


def test_wrong_types_are_repaired_and_reported() -> None:
    data = {"entries": {
        "0": {"uid": "0", "key": "a, b", "order": "150", "probability": None, "constant": "true",
              "delayUntilRecursion": True, "position": "after_char", "sticky": "2", "scanDepth": "x"},
        "1": {"uid": 0, "key": ["c"]},
    }}  # fmt: skip
    book, report = parse_lorebook(data, "w")
    first, second = book.entries
    assert first.keys == ["a", "b"] and first.order == 150 and first.constant is True
    assert first.probability == 100 and first.delay_until_recursion == 1 and first.position == 1
    assert first.sticky == 2 and first.scan_depth is None
    assert second.uid == 1  # duplicate uid got a fresh one
    text = "\n".join(report.lines())
    assert "scanDepth" in text and "duplicate uid" in text and "probability was null" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"entries": "nope"}', "not a lorebook"),
        ('{"entries": {"0": 5}}', "not an object"),
        ("[1, 2]", "not Kobold Lite"),
        ('{"entries": {"0": {"key": ["/a(b/"]}}}', "does not compile"),
    ],
)
def test_bad_files_raise_format_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        load_lorebook(path)


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # sparse: costs no disk
    assert path.stat().st_size > MAX_FILE_BYTES
    with pytest.raises(LimitExceededError, match="MiB"):
        load_lorebook(path)


def test_overlong_regex_key_is_refused() -> None:
    with pytest.raises(LimitExceededError):
        parse_lorebook({"entries": {"0": {"key": ["/" + "a" * 2000 + "/"]}}})


def test_key_with_unescaped_slash_is_plain_text() -> None:
    book, _ = parse_lorebook({"entries": {"0": {"key": ["/and/or/"]}}})
    assert book.entries[0].keys == ["/and/or/"]


def test_sillytavern_writer_round_trip(tmp_path: Path, shared_fixtures: Path) -> None:
    book, _ = load_lorebook(shared_fixtures / "worlds" / "Eldoria.json")
    book.entries[0].extra_field = "kept"  # type: ignore[attr-defined]
    save_lorebook(book, tmp_path / "E.json")
    raw = json.loads((tmp_path / "E.json").read_text(encoding="utf-8"))
    assert set(raw["entries"]) == {"0", "1", "2", "3"}
    assert raw["entries"]["0"]["extra_field"] == "kept" and raw["entries"]["0"]["scanDepth"] is None
    again, report = load_lorebook(tmp_path / "E.json")
    assert [e.model_dump() for e in again.entries] == [e.model_dump() for e in book.entries]
    assert not report.defaulted or all("characterFilter" in d for d in report.defaulted)
