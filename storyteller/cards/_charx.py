"""CHARX archives: a zip with ``card.json`` (V3) and the assets it references.

Members are read into memory (never extracted to disk), through bounded reads that count
inflated bytes, so a zip bomb stops at the limit whatever the headers claim. Member names
that could escape a folder (``..``, absolute paths, drive letters, backslashes) and symlink
members make the whole archive invalid. A CHARX glued after another file (a self-extracting
stub, a JPEG) works because :mod:`zipfile` finds the central directory from the end.
"""

from __future__ import annotations

import io
import lzma
import re
import stat
import struct
import zipfile
import zlib

from storyteller.cards.limits import Limits
from storyteller.errors import FormatError, LimitExceededError

__all__ = ["is_zip", "read_charx", "write_charx"]

_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_BLOCK = 1024 * 1024
# What zipfile lets through when a member is damaged: its own errors, and those of the codecs.
_ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, struct.error, OSError,
    EOFError, ValueError, NotImplementedError, RuntimeError, KeyError,
)


def is_zip(buf: bytes) -> bool:
    """True when ``buf`` ends in a zip archive (possibly glued after other data)."""
    if b"PK\x05\x06" not in buf[-(65536 + 22) :]:
        return False
    try:
        return zipfile.is_zipfile(io.BytesIO(buf))
    except (OSError, ValueError):
        return False


def check_member_name(name: str) -> str:
    """Return a safe relative member path or raise :class:`FormatError`."""
    if not name or "\\" in name or "\0" in name or name.startswith("/") or _DRIVE.match(name):
        raise FormatError(
            f"the CHARX archive has an unsafe member path {name!r} (absolute or with backslashes);"
            " refusing it"
        )
    parts = name.split("/")
    if any(p == ".." for p in parts):
        raise FormatError(f"the CHARX archive has a member path that climbs out ({name!r}); refusing it")
    return "/".join(p for p in parts if p not in ("", "."))


def read_charx(buf: bytes, limits: Limits) -> dict[str, bytes]:
    """Read every file member of a CHARX archive into memory, within the limits.

    Returns:
        Member bytes by normalised relative path (directories left out).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(buf))
    except _ZIP_ERRORS as exc:
        raise FormatError(f"not a readable CHARX/zip archive ({exc})") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_zip_members:
            raise LimitExceededError(
                f"the CHARX archive has {len(infos)} members; the limit is {limits.max_zip_members}"
            )
        files: dict[str, bytes] = {}
        total = 0
        for info in infos:
            path = check_member_name(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise FormatError(f"the CHARX archive member {info.filename!r} is a symbolic link; refusing it")
            if info.is_dir() or not path:
                continue
            if info.flag_bits & 0x1:
                raise FormatError(f"the CHARX member {info.filename!r} is encrypted; cannot read it")
            data = _read_member(archive, info, limits, total)
            total += len(data)
            files[path] = data
    return files


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, total: int) -> bytes:
    out = bytearray()
    try:
        with archive.open(info) as member:
            while True:
                block = member.read(_READ_BLOCK)
                if not block:
                    break
                out += block
                if len(out) > limits.max_zip_member_bytes:
                    raise LimitExceededError(
                        f"the CHARX member {info.filename!r} inflates past {limits.max_zip_member_bytes} bytes"
                        " (a zip bomb?)"
                    )
                if total + len(out) > limits.max_zip_total_bytes:
                    raise LimitExceededError(
                        f"the CHARX archive inflates past {limits.max_zip_total_bytes} bytes in total (a zip bomb?)"
                    )
    except LimitExceededError:
        raise
    except _ZIP_ERRORS as exc:
        raise FormatError(f"the CHARX member {info.filename!r} is damaged ({exc})") from exc
    return bytes(out)


def write_charx(card_json: bytes, files: dict[str, bytes]) -> bytes:
    """Build a CHARX archive: ``card.json`` first, then the files in path order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", card_json)
        for path in sorted(files):
            if path == "card.json":
                continue
            archive.writestr(check_member_name(path), files[path])
    return out.getvalue()
