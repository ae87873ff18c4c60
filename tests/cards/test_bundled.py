"""The bundled cards in characters/ exist, load cleanly and match their build script."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from storyteller.cards import load_card

CHARACTERS = Path(__file__).resolve().parents[2] / "characters"
STEMS = ["narrator_of_hollowmere", "ink_and_margin", "wren_calloway", "halden_voss"]


@pytest.mark.parametrize("stem", STEMS)
def test_bundled_card_loads_cleanly_as_png_and_json(stem: str) -> None:
    png, png_report = load_card(CHARACTERS / f"{stem}.png")
    js, json_report = load_card(CHARACTERS / f"{stem}.json")
    assert png_report.clean and json_report.clean
    assert png.model_dump() == js.model_dump()
    assert png.image is not None and png.first_mes and png.description
    assert png.creator == "storyteller project"


def test_narrator_links_hollowmere_and_never_acts_for_the_player() -> None:
    card, _ = load_card(CHARACTERS / "narrator_of_hollowmere.png")
    assert card.name == "Narrator of Hollowmere"
    assert card.world == "Hollowmere"
    assert "never" in card.system_prompt.lower() and '"you"' in card.system_prompt
    assert "Hollowmere" in card.first_mes + card.scenario


@pytest.mark.parametrize("stem", ["wren_calloway", "halden_voss"])
def test_roleplay_cards_have_greetings_examples_and_a_lorebook(stem: str) -> None:
    card, _ = load_card(CHARACTERS / f"{stem}.json")
    assert len(card.alternate_greetings) >= 2
    assert card.mes_example.count("<START>") >= 2
    assert card.character_book is not None and len(card.character_book.entries) >= 5
    assert all(entry.keys and entry.content for entry in card.character_book.entries)


def test_build_script_reproduces_the_committed_files(tmp_path: Path) -> None:
    build = runpy.run_path(str(CHARACTERS / "make_cards.py"))["build_cards"]
    written = build(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{s}{ext}" for s in STEMS for ext in (".png", ".json"))
    for path in written:
        assert path.read_bytes() == (CHARACTERS / path.name).read_bytes(), f"{path.name} is stale: rerun make_cards.py"
