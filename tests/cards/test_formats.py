"""Every readable flavour, built by hand: PNG chunk kinds, CHARX, JSON variants, YAML, coercion."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from storyteller.cards import Card, card_to_charx, card_to_png, load_card, render_card
from storyteller.cards._image import placeholder_png
from tests.cards.helpers import (
    b64,
    chunk,
    itxt_chunk,
    make_zip,
    png_with,
    split_png,
    text_chunk,
    v2_card,
    ztxt_chunk,
)


def v3_card(name: str = "Three", **data: object) -> dict:
    return {"spec": "chara_card_v3", "spec_version": "3.0",
            "data": {"name": name, "group_only_greetings": [], **data}}


def test_ccv3_wins_over_chara_and_keywords_ignore_case() -> None:
    png = png_with(text_chunk("Chara", b64(v2_card("Two"))), text_chunk("CCV3", b64(v3_card("Three"))))
    card, report = load_card(png)
    assert card.name == "Three"
    assert report.source_format == "png/ccv3/v3"


@pytest.mark.parametrize("make", [
    lambda: ztxt_chunk("chara", b64(v2_card("Zed"))),
    lambda: itxt_chunk("chara", b64(v2_card("Zed")).decode()),
    lambda: itxt_chunk("chara", b64(v2_card("Zed")).decode(), compressed=True),
])
def test_ztxt_and_itxt_chunks_are_read(make) -> None:  # type: ignore[no-untyped-def]
    card, _ = load_card(png_with(make()))
    assert card.name == "Zed"


def test_unreadable_ccv3_falls_back_to_chara() -> None:
    png = png_with(text_chunk("ccv3", b"!!!not base64!!!"), text_chunk("chara", b64(v2_card("Fallback"))))
    card, report = load_card(png)
    assert card.name == "Fallback"
    assert any("ccv3" in line for line in report.dropped)


def test_png_asset_chunks_round_trip() -> None:
    asset = b"\x89PNG fake sprite bytes"
    data = {"assets": [{"type": "emotion", "uri": "__asset:joy.png", "name": "joy", "ext": "png"}]}
    png = png_with(text_chunk("ccv3", b64(v3_card("Sprite", **data))),
                   text_chunk("chara-ext-asset_:joy.png", base64.b64encode(asset)))
    card, report = load_card(png)
    assert card.files == {"joy.png": asset}
    assert report.dropped == []
    again, _ = load_card(card_to_png(card))
    assert again == card


@pytest.mark.parametrize("prefix", ["embeded://", "embedded://"])
def test_charx_with_assets_and_icon(prefix: str) -> None:
    icon = placeholder_png("icon", 32)
    data = {"assets": [{"type": "icon", "uri": f"{prefix}assets/icon/image/main.png", "name": "main", "ext": "png"}]}
    archive = make_zip({"card.json": json.dumps(v3_card("Zippy", **data)).encode(),
                        "assets/icon/image/main.png": icon, "x_meta/1.json": b"{}"})
    card, report = load_card(archive)
    assert card.name == "Zippy" and report.dropped == []
    assert card.files == {"assets/icon/image/main.png": icon, "x_meta/1.json": b"{}"}
    assert load_card(card_to_charx(card))[0] == card
    as_png, _ = load_card(card_to_png(card))  # the icon becomes the PNG itself
    assert as_png.image is not None and as_png.assets is not None
    assert as_png.assets[0].uri == "ccdefault:" and "assets/icon/image/main.png" not in as_png.files


def test_charx_glued_after_a_jpeg_and_after_a_png() -> None:
    archive = make_zip({"card.json": json.dumps(v3_card("Glued")).encode()})
    assert load_card(b"\xff\xd8\xff\xe0 fake jpeg body" * 50 + archive)[0].name == "Glued"
    card, report = load_card(placeholder_png("x", 8) + archive)
    assert card.name == "Glued" and any("glued" in line for line in report.repaired)


def test_charx_missing_asset_file_is_reported() -> None:
    data = {"assets": [{"type": "background", "uri": "embeded://bg.png", "name": "bg", "ext": "png"}]}
    card, report = load_card(make_zip({"card.json": json.dumps(v3_card("Bg", **data)).encode()}))
    assert card.assets is not None and card.assets[0].uri == "embeded://bg.png"
    assert any("bg.png" in line for line in report.dropped)


def test_hybrid_data_wins_and_missing_data_fields_come_from_top_level() -> None:
    obj = {"name": "Old", "scenario": "From the top", "avatar": "none",
           **v2_card("New", description="d", extensions={"x": 1})}
    card, report = load_card(json.dumps(obj).encode())
    assert card.name == "New" and card.scenario == "From the top"
    assert card.top_level_extras == {"avatar": "none"}
    assert any("data wins" in line for line in report.repaired)
    assert card.extensions == {"x": 1}


def test_pygmalion_and_v1() -> None:
    pyg = {"char_name": "Pyg", "char_persona": "persona", "char_greeting": "hi", "world_scenario": "w",
           "example_dialogue": "<START>\nYou: hey", "extra_thing": 5}
    card, report = load_card(json.dumps(pyg).encode())
    assert (card.name, card.description, card.first_mes, card.scenario) == ("Pyg", "persona", "hi", "w")
    assert card.top_level_extras == {"extra_thing": 5}
    assert report.source_format == "json/pygmalion"
    v1 = {"name": "Vee", "first_mes": "yo", "creatorcomment": "Creator's notes go here.",
          "talkativeness": "0.7", "fav": "false"}
    card, report = load_card(json.dumps(v1).encode())
    assert card.creator_notes == "" and card.extensions == {"talkativeness": "0.7", "fav": "false"}
    assert card.talkativeness == 0.7


def test_oobabooga_yaml() -> None:
    text = "name: Yammy\ncontext: |\n  A careful archivist.\ngreeting: Welcome.\nyour_name: Reader\n"
    card, report = load_card(text.encode(), "yammy.yaml")
    assert (card.name, card.description.strip(), card.first_mes) == ("Yammy", "A careful archivist.", "Welcome.")
    assert card.top_level_extras == {"your_name": "Reader"}
    assert report.source_format == "yaml/oobabooga"


def test_lenient_coercion_is_reported() -> None:
    data = {"alternate_greetings": "only one", "tags": "a, b", "creator": 7,
            "extensions": {"talkativeness": "0.5", "fav": "false", "depth_prompt": {"prompt": "p", "depth": "2"}},
            "character_book": {"scan_depth": "", "entries": [
                {"keys": "k1, k2", "content": "c\r\nd", "enabled": "false", "insertion_order": "",
                 "position": 1, "extensions": {"selectiveLogic": 0, "useProbability": True, "x_y": [1]},
                 "mystery": "kept"}]},
            "creation_date": "1700000000000", "x_unknown": {"a": 1}}
    card, report = load_card(json.dumps(v2_card("Loose", **data)).encode())
    assert card.alternate_greetings == ["only one"] and card.tags == ["a", "b"] and card.creator == "7"
    # extensions stay as written; the accessors read them leniently.
    assert card.extensions["talkativeness"] == "0.5" and card.extensions["fav"] == "false"
    assert card.extensions["depth_prompt"] == {"prompt": "p", "depth": "2"}
    assert card.talkativeness == 0.5
    assert card.depth_prompt == {"prompt": "p", "depth": 2, "role": "system"}
    assert card.creation_date == 1700000000
    assert card.model_dump()["x_unknown"] == {"a": 1}
    book = card.character_book
    assert book is not None and book.scan_depth is None
    entry = book.entries[0]
    assert entry.keys == ["k1", "k2"] and entry.content == "c\r\nd" and entry.enabled is False
    assert entry.insertion_order == 100 and entry.position == "after_char"
    dumped = entry.model_dump()
    assert dumped["mystery"] == "kept"
    assert dumped["extensions"] == {"selectiveLogic": 0, "useProbability": True, "x_y": [1]}
    assert len(report.repaired) >= 6 and report.defaulted


def test_world_file_entries_object_becomes_a_list() -> None:
    book = {"entries": {"0": {"keys": ["a"], "content": "x"}, "1": {"keys": ["b"], "content": "y"}}}
    card, report = load_card(json.dumps(v2_card("Book", character_book=book)).encode())
    assert card.character_book is not None and [e.content for e in card.character_book.entries] == ["x", "y"]


@pytest.mark.parametrize("name", ["", "   ", None])
def test_card_without_a_name_asks_for_one(name: object) -> None:
    card, report = load_card(json.dumps(v2_card(name)).encode(), "Lost Soul.json")  # type: ignore[arg-type]
    assert card.name == "Lost Soul" and report.needs_name
    card, report = load_card(json.dumps(v2_card(name)).encode())  # type: ignore[arg-type]
    assert card.name == "Unnamed character" and report.needs_name


def test_v2_output_is_a_sillytavern_hybrid_and_v3_is_pure() -> None:
    card = Card(name="Pure", creator_notes="notes", extensions={"talkativeness": 0.3})
    v2 = json.loads(render_card(card, ".json", "v2"))
    v3 = json.loads(render_card(card, ".json", "v3"))
    assert v2["name"] == "Pure" and v2["creatorcomment"] == "notes" and v2["talkativeness"] == 0.3
    assert set(v3) == {"spec", "spec_version", "data"} and v3["data"]["group_only_greetings"] == []
    assert "assets" not in v3["data"]  # optional fields stay absent while unset


def test_apng_and_undecodable_pngs_still_import_and_keep_their_chunks() -> None:
    head, tail = split_png(placeholder_png("x", 8))
    actl = chunk(b"acTL", struct.pack(">II", 1, 0))  # APNG animation control
    junk = chunk(b"IDAT", b"not zlib at all")  # pixels nobody can decode
    png = head[:33] + actl + head[33:] + junk + text_chunk("chara", b64(v2_card("Anim"))) + tail
    card, _ = load_card(png)
    assert card.name == "Anim"
    written = card_to_png(card)
    assert actl in written and junk in written
    assert load_card(written)[0] == card
