"""PNG chunk reading and writing for character cards, without decoding pixels.

The card lives in text chunks: ``chara`` (V1/V2) and ``ccv3`` (V3), each base64 of UTF-8
JSON, plus V3 asset chunks ``chara-ext-asset_:<path>``. SillyTavern reads only tEXt; we also
read zTXt and iTXt. Keywords compare case-insensitively. Pixels are never decoded: the image
chunks are copied byte for byte, so APNGs and PNGs Pillow cannot decode still import and
re-export unchanged.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from dataclasses import dataclass

from storyteller.cards.limits import Limits
from storyteller.cards.model import ImportReport
from storyteller.errors import FormatError, LimitExceededError

__all__ = ["PNG_MAGIC", "CardChunks", "build_png", "decode_payload", "read_card_chunks"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ASSET_PREFIX = "chara-ext-asset_"
_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")


@dataclass
class CardChunks:
    """The card-related content of a PNG.

    Attributes:
        ccv3: Text of the first ``ccv3`` chunk, if any.
        chara: Text of the first ``chara`` chunk, if any.
        assets: Asset chunk payloads (still base64 text) by path.
        image: The PNG with every card chunk removed.
        width: Width from IHDR (0 when IHDR is damaged).
        height: Height from IHDR.
    """

    ccv3: str | None
    chara: str | None
    assets: dict[str, str]
    image: bytes
    width: int
    height: int


def _inflate(data: bytes, limit: int, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise FormatError(f"the PNG {what} chunk is compressed but broken ({exc}); re-export the card") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise LimitExceededError(
            f"the PNG {what} chunk inflates to more than {limit} bytes; refusing a possible zip bomb"
        )
    return out


def _text_chunk(ctype: bytes, data: bytes, limits: Limits) -> tuple[str, str] | None:
    """Keyword and text of a tEXt/zTXt/iTXt chunk, or ``None`` if it is unreadable."""
    keyword_raw, sep, rest = data.partition(b"\0")
    if not sep:
        return None
    keyword = keyword_raw.decode("latin-1")
    limit = limits.max_text_chunk_bytes
    if ctype == b"tEXt":
        return keyword, rest.decode("latin-1")
    if ctype == b"zTXt":
        return keyword, _inflate(rest[1:], limit, keyword).decode("latin-1")
    if len(rest) < 2:
        return None
    compressed, rest = rest[0], rest[2:]
    _lang, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        text = _inflate(text, limit, keyword)
    try:
        return keyword, text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"the PNG iTXt chunk {keyword!r} is not valid UTF-8") from exc


def iter_chunks(buf: bytes, limits: Limits, report: ImportReport) -> list[tuple[bytes, bytes, bytes]]:
    """Split a PNG into ``(type, data, raw chunk bytes)``; lenient about CRCs and truncation."""
    if not buf.startswith(PNG_MAGIC):
        raise FormatError("not a PNG file (the PNG signature is missing)")
    chunks = []
    pos, bad_crc = len(PNG_MAGIC), []
    while pos < len(buf):
        if len(chunks) >= limits.max_png_chunks:
            raise LimitExceededError(f"the PNG has more than {limits.max_png_chunks} chunks")
        if pos + 8 > len(buf):
            report.repaired.append("the PNG ends in the middle of a chunk header; ignored the rest")
            break
        (length,) = struct.unpack(">I", buf[pos : pos + 4])
        ctype = buf[pos + 4 : pos + 8]
        if ctype in _TEXT_TYPES and length > limits.max_text_chunk_bytes:
            raise LimitExceededError(
                f"a PNG text chunk claims {length} bytes; the limit is {limits.max_text_chunk_bytes}"
            )
        if length > limits.max_file_bytes:
            raise LimitExceededError(f"a PNG chunk claims {length} bytes; the limit is {limits.max_file_bytes}")
        end = pos + 12 + length
        if end > len(buf):
            report.repaired.append(f"the PNG is truncated inside a {ctype!r} chunk; ignored the rest")
            break
        data = buf[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", buf[end - 4 : end])
        if zlib.crc32(ctype + data) != crc:
            bad_crc.append(ctype.decode("latin-1"))
        chunks.append((ctype, data, buf[pos:end]))
        pos = end
        if ctype == b"IEND":
            break
    if bad_crc:
        report.repaired.append(f"ignored bad checksums in PNG chunks: {', '.join(sorted(set(bad_crc)))}")
    return chunks


def read_card_chunks(buf: bytes, limits: Limits, report: ImportReport) -> CardChunks:
    """Find the card chunks of a PNG and check the image size against the pixel limit."""
    chunks = iter_chunks(buf, limits, report)
    width = height = 0
    if chunks and chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13:
        width, height = struct.unpack(">II", chunks[0][1][:8])
        if width * height > limits.max_image_pixels:
            raise LimitExceededError(
                f"the avatar is {width}x{height} pixels, more than the limit of {limits.max_image_pixels}"
                " (a decompression bomb?); re-save the image smaller"
            )
    else:
        report.repaired.append("the PNG header chunk (IHDR) is missing or damaged; the image may not display")
    ccv3 = chara = None
    assets: dict[str, str] = {}
    kept = [PNG_MAGIC]
    total = duplicates = 0
    for ctype, data, raw in chunks:
        keyword_raw = data.partition(b"\0")[0]
        keyword_low = keyword_raw[:80].decode("latin-1").lower()
        if ctype in _TEXT_TYPES and (keyword_low in ("ccv3", "chara") or keyword_low.startswith(ASSET_PREFIX)):
            # Only the first chunk of each keyword counts, so later copies are dropped before
            # they are inflated: 3,000 duplicate ccv3 chunks cost nothing.
            asset = keyword_raw.decode("latin-1")[len(ASSET_PREFIX):].removeprefix(":") if keyword_low.startswith(ASSET_PREFIX) else None
            if (keyword_low == "ccv3" and ccv3 is not None) or (keyword_low == "chara" and chara is not None) \
                    or (asset is not None and asset in assets):
                duplicates += 1
                continue
            parsed = _text_chunk(ctype, data, limits)
            if parsed is not None:
                keyword, text = parsed
                total += len(text)
                if total > limits.max_text_total_bytes:
                    raise LimitExceededError(
                        f"the PNG's card chunks hold more than {limits.max_text_total_bytes // (1024 * 1024)} MiB "
                        "of text in all; refusing a possible zip bomb (re-export the card, or use CHARX for big assets)"
                    )
                low = keyword.lower()
                if low == "ccv3":
                    ccv3 = text
                    continue
                if low == "chara":
                    chara = text
                    continue
                if low.startswith(ASSET_PREFIX):
                    assets[keyword[len(ASSET_PREFIX) :].removeprefix(":")] = text
                    continue
        kept.append(raw)
    if duplicates:
        report.dropped.append(f"{duplicates} repeated card chunk(s) in the PNG; the first of each was used")
    return CardChunks(ccv3, chara, assets, b"".join(kept), width, height)


def decode_payload(text: str, what: str, report: ImportReport) -> bytes:
    """Base64 text of a card chunk to bytes; plain JSON is accepted and reported."""
    stripped = "".join(text.split())
    if stripped.startswith("{"):
        report.repaired.append(f"the {what} chunk holds plain JSON instead of base64")
        try:
            return text.encode("latin-1")  # tEXt text was decoded as latin-1: get the bytes back
        except UnicodeEncodeError:
            return text.encode("utf-8")  # iTXt text is real Unicode
    stripped = stripped.replace("-", "+").replace("_", "/")
    if len(stripped) % 4:
        report.repaired.append(f"the {what} chunk's base64 lacked padding")
        stripped += "=" * (-len(stripped) % 4)
    try:
        return base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(
            f"the {what} chunk is not valid base64 ({exc}); the card is damaged, get a fresh copy"
        ) from exc


def _chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def build_png(image: bytes, texts: list[tuple[str, str]]) -> bytes:
    """Insert tEXt chunks before IEND of ``image`` (which has no card chunks left).

    Args:
        image: A PNG as produced by :func:`read_card_chunks` (card chunks already removed).
        texts: ``(keyword, latin-1-safe text)`` pairs, written in order.
    """
    new = b"".join(_chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1")) for k, v in texts)
    pos, parts = len(PNG_MAGIC), [PNG_MAGIC]
    while pos + 8 <= len(image):
        (length,) = struct.unpack(">I", image[pos : pos + 4])
        ctype = image[pos + 4 : pos + 8]
        end = pos + 12 + length
        if ctype == b"IEND":
            break
        parts.append(image[pos:end])
        pos = end
    parts.append(new)
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
