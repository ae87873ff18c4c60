"""Property tests: mutated real cards never raise anything but the documented errors.

Readers may only raise FormatError (LimitExceededError is one). When a mutated card does
load, writing it in every format and reading it back must give the same card data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storyteller.cards import Limits, card_to_charx, load_card, render_card
from storyteller.errors import FormatError
from tests.cards.helpers import b64, make_zip, png_with, text_chunk

# CARDS_FUZZ_EXAMPLES=2000 for a long local run; CI keeps it small and fast.
FAST = settings(
    max_examples=int(os.environ.get("CARDS_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
LIMITS = Limits(max_zip_member_bytes=1 << 20, max_zip_total_bytes=2 << 20)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _replace(value: Any, path: tuple, new: Any, delete: bool) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    if not rest and delete:
        del copy[head]
        return copy
    copy[head] = _replace(copy[head], rest, new, delete)
    return copy


def _check(data: bytes) -> None:
    try:
        card, _ = load_card(data, "fuzz.json", limits=LIMITS)
    except FormatError:
        return
    for suffix in (".json", ".png", ".charx"):
        again, _ = load_card(render_card(card, suffix, "v2" if suffix == ".json" else "v3"), limits=LIMITS)
        if suffix == ".json":
            assert again.model_dump() == card.model_dump()


@pytest.fixture
def small_cards(shared_fixtures: Path) -> dict[str, bytes]:
    cards = shared_fixtures / "cards"
    files = {name: (cards / name).read_bytes() for name in
             ("Default-chan.png", "Default-chan.ccv3.json", "Seraphina_1.12.6.chara.json", "Aqua_tavernai.chara.json")}
    card, _ = load_card(files["Default-chan.png"])
    files["Default-chan.charx"] = card_to_charx(card)
    files["ooba.yaml"] = b"name: Fuzzy\ncontext: A test.\ngreeting: Hi.\n"
    return files


@FAST
@given(data=st.data())
def test_byte_mutations_of_real_cards(small_cards: dict[str, bytes], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(small_cards)))
    buf = bytearray(small_cards[name])
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "flip":
            buf[pos] ^= data.draw(st.integers(1, 255))
        elif op == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del buf[pos : pos + data.draw(st.integers(1, 16))]
        elif len(buf) > 1:
            del buf[max(1, pos):]
        if not buf:
            buf = bytearray(b"{")
    _check(bytes(buf))


@FAST
@given(data=st.data())
def test_structural_mutations_in_every_container(small_cards: dict[str, bytes], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["Default-chan.ccv3.json", "Seraphina_1.12.6.chara.json",
                                      "Aqua_tavernai.chara.json"]))
    obj: Any = json.loads(small_cards[name])
    for _ in range(data.draw(st.integers(1, 4))):
        paths = _paths(obj)
        path = data.draw(st.sampled_from(paths))
        obj = _replace(obj, path, data.draw(json_values), delete=bool(path) and data.draw(st.booleans()))
    text = json.dumps(obj)
    container = data.draw(st.sampled_from(["json", "png", "charx"]))
    if container == "json":
        _check(text.encode())
    elif container == "png":
        _check(png_with(text_chunk(data.draw(st.sampled_from(["chara", "ccv3"])), b64(obj))))
    else:
        _check(make_zip({"card.json": text.encode()}))
