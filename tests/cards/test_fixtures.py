"""Every real card in ../shared/fixtures/cards imports and round-trips."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from storyteller.cards import DEFAULT_LIMITS, Card, load_card, render_card
from storyteller.cards._png import read_card_chunks
from storyteller.cards.model import ImportReport
from tests.cards.helpers import CARD_FILES


@pytest.fixture
def cards_dir(shared_fixtures: Path) -> Path:
    return shared_fixtures / "cards"


def _raw_card(path: Path) -> dict:
    """The card's JSON as its file holds it (the ccv3 chunk first, as SillyTavern reads a PNG)."""
    data = path.read_bytes()
    if path.suffix == ".png":
        chunks = read_card_chunks(data, DEFAULT_LIMITS, ImportReport())
        return json.loads(base64.b64decode(chunks.ccv3 if chunks.ccv3 is not None else chunks.chara))
    return json.loads(data)


@pytest.mark.parametrize("filename", sorted(CARD_FILES))
def test_fixture_imports_with_expected_name_greetings_and_book(cards_dir: Path, filename: str) -> None:
    name, alternates, book_entries = CARD_FILES[filename]
    card, report = load_card(cards_dir / filename)
    assert card.name == name
    assert len(card.alternate_greetings) == alternates
    assert card.first_mes.strip()
    if book_entries is None:
        assert card.character_book is None
    else:
        assert card.character_book is not None
        assert len(card.character_book.entries) == book_entries
    assert not report.needs_name
    raw = json.dumps(_raw_card(cards_dir / filename), ensure_ascii=False)
    assert ("\\r" in raw) == ("\r" in card.description + card.mes_example + card.first_mes)


@pytest.mark.parametrize("filename", sorted(CARD_FILES))
@pytest.mark.parametrize("suffix", [".png", ".json", ".charx"])
@pytest.mark.parametrize("spec", ["v2", "v3"])
def test_round_trip_keeps_data_and_unknown_fields(cards_dir: Path, filename: str, suffix: str, spec: str) -> None:
    card, _ = load_card(cards_dir / filename)
    again, _ = load_card(render_card(card, suffix, spec))  # type: ignore[arg-type]
    expected = card.model_dump()
    if card.image is not None and suffix == ".charx":
        # The PNG's pixels travel as the CHARX main icon.
        expected["assets"] = [
            {"type": "icon", "uri": "embeded://assets/icon/image/main.png", "name": "main", "ext": "png"}
        ]
        assert again.files["assets/icon/image/main.png"] == card.image
    assert again.model_dump() == expected
    assert again.top_level_extras == card.top_level_extras
    if suffix == Path(filename).suffix and (spec == "v2") == card.legacy_fields:
        assert again == card  # same format: equal including image and files


def test_png_and_json_of_the_same_card_agree(cards_dir: Path) -> None:
    from_png, _ = load_card(cards_dir / "default_Seraphina.png")
    from_json, _ = load_card(cards_dir / "Seraphina_1.12.6.chara.json")
    assert from_png.model_dump() == from_json.model_dump()
    assert from_png.top_level_extras == from_json.top_level_extras == {
        "avatar": "none",
        "chat": "Seraphina - 2023-5-12 @21h 32m 29s 224ms",
        "create_date": "2023-5-12 @21h 32m 29s 228ms",
    }


def test_seraphina_details(cards_dir: Path) -> None:
    card, report = load_card(cards_dir / "default_Seraphina.png")
    # Kept as SillyTavern wrote it: a string talkativeness, CRLF in the description.
    assert card.extensions == {"talkativeness": "0.5", "fav": False, "world": "Eldoria"}
    assert card.world == "Eldoria" and card.talkativeness == 0.5
    assert card.creator_notes.startswith("ST Default Bot contest winner")
    assert "\u2014" in card.description
    assert "\r\n" in card.description
    assert not any("talkativeness" in line or "CRLF" in line for line in report.lines())
    book = card.character_book
    assert book is not None and book.name == "Eldoria"
    first = book.entries[0]
    assert first.keys == ["eldoria", "wood", "forest", "magical forest"]
    assert first.position == "before_char"
    assert first.extensions == {"position": 0, "probability": None, "useProbability": False}


def test_book_dump_is_the_spec_shape(cards_dir: Path) -> None:
    raw = json.loads((cards_dir / "Seraphina_1.12.6.chara.json").read_text(encoding="utf-8"))
    card, _ = load_card(cards_dir / "Seraphina_1.12.6.chara.json")
    assert card.character_book is not None
    dumped = card.character_book.model_dump()
    expected = raw["data"]["character_book"]
    for entry in expected["entries"]:
        entry["use_regex"] = False  # V3 requires it; a V2 book gets the default
    expected["extensions"] = {}  # required by V2 and V3, absent in this file
    assert dumped == expected
    assert json.loads(json.dumps(card.character_book.model_dump(mode="json"))) == expected


def test_default_chan_reports_missing_v3_field(cards_dir: Path) -> None:
    card, report = load_card(cards_dir / "Default-chan.png")
    assert card.group_only_greetings == []
    assert report.source_format.startswith("png/ccv3")
    assert any("group_only_greetings" in line for line in report.defaulted)
    assert card.extensions == {}
    assert card.assets is None


def test_aqua_is_upgraded_from_v1(cards_dir: Path) -> None:
    card, report = load_card(cards_dir / "Aqua.png")
    assert report.source_format == "png/chara/v1"
    assert card.top_level_extras == {"avatar": "none", "chat": "1673181146000", "create_date": "1674407315376"}
    assert card.mes_example.count("<START>") == 2
    assert any("V1" in line for line in report.repaired)


@pytest.mark.parametrize("filename", ["default_Seraphina.png", "Default-chan.png", "Aqua.png"])
def test_png_export_keeps_pixels_and_writes_both_chunks(cards_dir: Path, filename: str) -> None:
    original = (cards_dir / filename).read_bytes()
    card, _ = load_card(original)
    written = render_card(card, ".png")
    with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(written)) as b:
        assert a.size == b.size and a.mode == b.mode
        assert a.tobytes() == b.tobytes()
    chunks = read_card_chunks(written, DEFAULT_LIMITS, ImportReport())
    assert chunks.chara is not None and chunks.ccv3 is not None
    v2 = json.loads(base64.b64decode(chunks.chara))
    v3 = json.loads(base64.b64decode(chunks.ccv3))
    assert v2["spec"] == "chara_card_v2" and v2["name"] == card.name  # hybrid mirror for old readers
    assert v3["spec"] == "chara_card_v3" and v3["spec_version"] == "3.0"
    # SillyTavern's top-level V1 copies travel in V3 too when the card came with them (as in
    # SillyTavern's own writer); a pure V3 card stays pure.
    assert ("name" in v3) == card.legacy_fields == (filename != "Default-chan.png")
    assert v3["data"]["group_only_greetings"] == card.group_only_greetings


def test_card_equality_sees_extras() -> None:
    card = Card.model_validate({"name": "A", "x_custom": {"deep": [1, 2]}})
    assert card.model_dump()["x_custom"] == {"deep": [1, 2]}
    assert card != Card.model_validate({"name": "A"})
