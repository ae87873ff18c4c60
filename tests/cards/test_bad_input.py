"""Hostile and broken inputs: one clear error each, bounded cost, nothing written."""

from __future__ import annotations

import json
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from storyteller.cards import Limits, card_to_charx, import_card, list_cards, load_card
from storyteller.cards._image import placeholder_png, to_png
from storyteller.cards.model import Card
from storyteller.errors import FormatError, LimitExceededError
from storyteller.paths import get_paths
from tests.cards.helpers import b64, chunk, make_zip, png_with, text_chunk, v2_card, ztxt_chunk

SMALL = Limits(max_file_bytes=1 << 20, max_text_chunk_bytes=64 << 10, max_zip_member_bytes=256 << 10,
               max_zip_total_bytes=512 << 10, max_zip_members=50, max_image_pixels=1 << 20)


def card_zip(**members: bytes) -> bytes:
    return make_zip({"card.json": json.dumps(v2_card("Z")).encode(), **members})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a not a card at all", "not a character card"),
        (placeholder_png("plain", 8), "no character card"),
        (png_with(text_chunk("chara", b"%%% not base64 %%%")), "base64"),
        (png_with(text_chunk("chara", b64("x")[:-1] + b"\xff")), "base64"),
        (png_with(text_chunk("chara", b"gICA")), "UTF-8"),
        (b'{"name": "caf\xe9"}', "UTF-8"),
        (b'{"spec": "chara_card_v2", "data": ', "not valid JSON"),
        (b'{"hello": "world"}', "not a character card"),
        (b"[1, 2, 3]", "not a character card"),
        (b'{"entries": {"0": {"key": ["a"]}}}', "lorebook"),
        (make_zip({"readme.txt": b"hi"}), "no card.json"),
        (b"name: &a [x]\nother: *a\n", "aliases"),
    ],
    ids=["not-png", "png-without-card", "broken-base64", "base64-junk", "chunk-not-utf8", "json-not-utf8",
         "truncated-json", "non-card-json", "json-list", "lorebook", "zip-without-card", "yaml-alias"],
)
def test_bad_input_gives_one_clear_format_error(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        load_card(data)


@pytest.mark.parametrize("member", ["../../x", "/etc/passwd", "C:/evil.txt", "a\\..\\b", "assets/../../up"])
def test_charx_member_paths_that_escape_are_refused(member: str) -> None:
    with pytest.raises(FormatError, match="member path"):
        load_card(card_zip(**{member: b"boom"}))


def test_charx_symlink_member_is_refused() -> None:
    data = make_zip({"card.json": json.dumps(v2_card("Z")).encode(), "link": b"/etc/passwd"}, symlink="link")
    with pytest.raises(FormatError, match="symbolic link"):
        load_card(data)


def test_zip_bomb_stops_at_the_limit_quickly() -> None:
    bomb = card_zip(**{"assets/bomb.bin": b"\0" * (8 << 20)})  # 8 MiB of zeros: ~8 KiB compressed
    assert len(bomb) < 64 << 10
    start = time.monotonic()
    with pytest.raises(LimitExceededError, match="zip bomb"):
        load_card(bomb, limits=SMALL)
    assert time.monotonic() - start < 2


def test_zip_bomb_with_lying_headers_is_caught_while_inflating() -> None:
    bomb = bytearray(card_zip(**{"assets/bomb.bin": b"\0" * (2 << 20)}))
    # Make both headers claim a tiny size; only counting inflated bytes can catch it.
    with zipfile.ZipFile(__import__("io").BytesIO(bytes(bomb))) as archive:
        info = archive.getinfo("assets/bomb.bin")
    struct.pack_into("<I", bomb, info.header_offset + 22, 10)
    central = bytes(bomb).rindex(b"PK\x01\x02")
    struct.pack_into("<I", bomb, central + 24, 10)
    with pytest.raises(FormatError):
        load_card(bytes(bomb), limits=SMALL)


def test_too_many_zip_members() -> None:
    with pytest.raises(LimitExceededError, match="members"):
        load_card(card_zip(**{f"f{i}": b"" for i in range(60)}), limits=SMALL)


def test_huge_declared_chunk_is_refused_without_reading_it() -> None:
    head = png_with(base=placeholder_png("x", 8))
    idx = head.rindex(b"IEND") - 4
    huge = struct.pack(">I", 500 * 1024 * 1024) + b"tEXt" + b"chara\0AAAA"
    with pytest.raises(LimitExceededError, match="claims"):
        load_card(head[:idx] + huge + head[idx:])


def test_real_oversized_text_chunk_is_refused() -> None:
    with pytest.raises(LimitExceededError):
        load_card(png_with(text_chunk("chara", b"A" * (80 << 10))), limits=SMALL)


def test_ztxt_bomb_is_refused() -> None:
    with pytest.raises(LimitExceededError, match="inflates"):
        load_card(png_with(ztxt_chunk("chara", b"A" * (1 << 20))), limits=SMALL)


def test_decompression_bomb_png_is_refused_from_its_header() -> None:
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 1024))
    png = b"\x89PNG\r\n\x1a\n" + ihdr + idat + text_chunk("chara", b64(v2_card("Bomb"))) + chunk(b"IEND", b"")
    with pytest.raises(LimitExceededError, match="pixels"):
        load_card(png)


def test_decompression_bomb_icon_is_refused_by_pillow_guard() -> None:
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 30_000, 30_000, 8, 0, 0, 0, 0))
    png = b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    with pytest.raises(LimitExceededError):
        to_png(png, SMALL)
    card = Card(name="Icon", assets=[{"type": "icon", "uri": "embeded://i.webp", "name": "main", "ext": "webp"}])
    card.files = {"i.webp": png}
    with pytest.raises(LimitExceededError):
        from storyteller.cards import card_to_png

        card_to_png(card, limits=SMALL)


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * ((1 << 20) + 10))
    with pytest.raises(LimitExceededError, match="limit"):
        load_card(path, limits=SMALL)


def test_deep_nesting_is_refused() -> None:
    deep = '{"name": "n", "x": ' + "[" * 500 + "]" * 500 + "}"
    with pytest.raises(LimitExceededError, match="nest"):
        load_card(deep.encode())


def test_symlink_and_special_files_are_refused(tmp_path: Path, shared_fixtures: Path) -> None:
    link = tmp_path / "link.png"
    link.symlink_to(shared_fixtures / "cards" / "Default-chan.png")
    with pytest.raises(FormatError, match="symbolic link"):
        load_card(link)
    with pytest.raises(FormatError, match="regular file"):
        load_card(tmp_path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="regular file"):
        load_card(fifo)
    with pytest.raises(FormatError, match="cannot read"):
        load_card(tmp_path / "missing.png")


def test_bad_import_writes_nothing_and_symlinks_in_library_are_skipped(tmp_path: Path) -> None:
    folder = get_paths().characters_dir
    bad = tmp_path / "bad.png"
    bad.write_bytes(placeholder_png("x", 8))
    with pytest.raises(FormatError):
        import_card(bad)
    assert not folder.exists() or list(folder.iterdir()) == []
    good = tmp_path / "good.charx"
    good.write_bytes(card_to_charx(Card(name="Good")))
    import_card(good)
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(v2_card("Outside")))
    (folder / "Outside.json").symlink_to(outside)
    assert [e.card.name for e in list_cards() if e.card] == ["Good"]


def test_hostile_names_stay_inside_the_library(tmp_path: Path) -> None:
    for name in ["../../escape", "/etc/passwd", "CON", "..", "a/b\\c", "\x1b[31mred"]:
        src = tmp_path / "in.json"
        src.write_text(json.dumps(v2_card(name)))
        entry = import_card(src)
        assert entry.path.parent == get_paths().characters_dir
        assert entry.path.name not in (".json", "..json")
