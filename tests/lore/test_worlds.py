"""The bundled worlds load cleanly, use every feature they claim, and those features fire."""

from __future__ import annotations

from pathlib import Path

import pytest

from storyteller.lore import Position, load_lorebook
from storyteller.lore._keys import is_regex_key
from tests.lore.helpers import fired, run, trace

WORLDS = Path(__file__).resolve().parents[2] / "worlds"


@pytest.mark.parametrize("name", ["hollowmere.json", "saltglass-harbour.json"])
def test_world_is_complete(name: str) -> None:
    book, report = load_lorebook(WORLDS / name)
    assert len(book.entries) >= 25
    assert not report.repaired and not report.dropped and not report.warnings
    e = book.entries
    assert any(is_regex_key(k) for x in e for k in x.keys)
    assert {x.selective_logic for x in e if x.secondary_keys} >= {0, 2, 3}
    assert any(x.constant for x in e) and any(x.group for x in e)
    assert any(x.sticky for x in e) and any(x.cooldown for x in e) and any(x.delay for x in e)
    assert any(x.prevent_recursion for x in e) and any(x.exclude_recursion for x in e)
    assert any(x.delay_until_recursion for x in e)
    assert len({x.position for x in e}) >= 5
    assert len({x.uid for x in e}) == len(e)


def test_hollowmere_features_fire() -> None:
    book, _ = load_lorebook(WORLDS / "hollowmere.json")
    assert book.name == "Hollowmere"
    by_title = {x.comment: x.uid for x in book.entries}
    chat = ["Player: I walk the causeway at dusk.", "Narrator: The fog rolls in. A hound bays out by the mud."]
    result = run(book, chat, max_context=8192)
    got = fired(result)
    assert by_title["Hollowmere: the town"] in got  # constant
    assert by_title["Event: the fog surges"] in got  # regex key + sticky
    assert by_title["Night fog"] in got  # AND ANY secondary
    assert by_title["Causeway without a light"] in got  # NOT ANY secondary
    assert by_title["Hazard: quickmud"] in got  # group, prioritised
    assert trace(result, by_title["Hazard: fenhounds"]).reason == "group_lost"
    assert by_title["Pell the lamplighter"] in got  # recursion from the causeway entry
    assert by_title["The Lantern Compact"] in got
    assert trace(result, by_title["Midnight toll"]).reason == "delay"
    assert result.prompt.depth and result.prompt.outlets["hollowmere-map"]
    assert result.timed.sticky  # the fog surge stays a few turns
    later = run(book, [*chat, "Player: I wait.", "Narrator: Silence."], timed=result.timed, max_context=8192)
    assert trace(later, by_title["Event: the fog surges"]).reason == "sticky"


def test_saltglass_features_fire() -> None:
    book, _ = load_lorebook(WORLDS / "saltglass-harbour.json")
    by_title = {x.comment: x.uid for x in book.entries}
    chat = ["Writer: A gale hits the harbour; ships strain at the quay.", "Writer: Harbourmaster Vane watches."]
    result = run(book, chat, max_context=8192)
    got = fired(result)
    assert by_title["Storm in the harbour"] in got  # AND ALL
    assert by_title["Harbourmaster Oriel Vane"] in got  # regex key
    assert by_title["The Harbour Guild"] in got  # recursion
    assert by_title["Saltglass (the material)"] in got  # delay until recursion
    crowd = run(book, ["Writer: The crowd at the stall jostles for glass."], max_context=8192)
    group = {by_title[t] for t in ("Encounter: pickpocket", "Encounter: street preacher", "Encounter: glass-seller")}
    assert fired(crowd) & group == {by_title["Encounter: glass-seller"]}  # group scoring: 3 keys beat 1
    alarm = run(book, ["Writer: Fire! The alarm\nbells ring."], max_context=8192)
    assert by_title["Event: alarm bells"] in fired(alarm)
    assert any(e.position == Position.OUTLET for e in book.entries)
