"""Small builders for hand-made PNG and zip inputs used by the card tests."""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib
from typing import Any

from storyteller.cards._image import placeholder_png

CARD_FILES = {
    "default_Seraphina.png": ("Seraphina", 0, 4),
    "Seraphina_1.12.6.chara.json": ("Seraphina", 0, 4),
    "Default-chan.png": ("Default-chan", 2, None),
    "Default-chan.ccv3.json": ("Default-chan", 2, None),
    "Aqua.png": ("Aqua", 0, None),
    "Aqua_tavernai.chara.json": ("Aqua", 0, None),
}
"""Fixture file -> (name, alternate greetings, book entries or None)."""


def chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def split_png(png: bytes) -> tuple[bytes, bytes]:
    """(everything before IEND, the IEND chunk)."""
    index = png.rindex(b"IEND") - 4
    return png[:index], png[index:]


def png_with(*chunks: bytes, base: bytes | None = None) -> bytes:
    head, tail = split_png(base or placeholder_png("test", 16))
    return head + b"".join(chunks) + tail


def b64(obj: Any) -> bytes:
    return base64.b64encode(json.dumps(obj).encode("utf-8"))


def text_chunk(keyword: str, payload: bytes) -> bytes:
    return chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + payload)


def ztxt_chunk(keyword: str, payload: bytes) -> bytes:
    return chunk(b"zTXt", keyword.encode("latin-1") + b"\0\0" + zlib.compress(payload))


def itxt_chunk(keyword: str, text: str, compressed: bool = False) -> bytes:
    body = text.encode("utf-8")
    if compressed:
        body = zlib.compress(body)
    return chunk(b"iTXt", keyword.encode("latin-1") + b"\0" + bytes([int(compressed), 0]) + b"\0\0" + body)


def v2_card(name: str = "Tester", **data: Any) -> dict[str, Any]:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": name, **data}}


def make_zip(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name == symlink:
                info.external_attr = (0o120777 << 16)
            archive.writestr(info, data)
    return out.getvalue()
