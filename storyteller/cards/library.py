"""The character library: cards copied into ``get_paths().characters_dir``.

Importing never overwrites: a second "Seraphina" becomes ``Seraphina (2).png``. File names
come from the card name through an allow-list (no path separators, no leading dots, no
reserved device names), so a hostile name cannot escape the folder. The file is written to a
temp file, fsynced, then hard-linked into place, which fails instead of replacing an existing
file (or a symlink planted under that name).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from storyteller.cards import _charx, _png
from storyteller.cards.limits import DEFAULT_LIMITS, Limits
from storyteller.cards.model import Card, ImportReport
from storyteller.cards.reader import CardSource, load_card, read_bytes
from storyteller.cards.writer import render_card
from storyteller.errors import StorytellerError
from storyteller.fileio import link_new
from storyteller.paths import get_paths
from storyteller.textsafe import SURROGATE_NOTE

__all__ = ["CARD_SUFFIXES", "LibraryEntry", "import_card", "list_cards", "safe_file_stem"]

CARD_SUFFIXES = (".png", ".json", ".charx", ".yaml", ".yml")
_UNSAFE = re.compile(r"[^\w \-.,'()&!+]")
_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)
_MAX_STEM = 80


@dataclass(frozen=True, slots=True)
class LibraryEntry:
    """One card file in the library.

    Attributes:
        path: The file.
        card: The loaded card, or ``None`` when it could not be read.
        report: What loading repaired (``None`` on error).
        error: Why the file could not be read, or ``None``.
    """

    path: Path
    card: Card | None
    report: ImportReport | None
    error: str | None = None


def safe_file_stem(name: str) -> str:
    """A file-name stem made from a card name, safe on every platform."""
    stem = unicodedata.normalize("NFC", name)
    stem = _UNSAFE.sub("_", stem)
    stem = " ".join(stem.split()).strip(" .")[:_MAX_STEM].strip(" .")
    if _RESERVED.match(stem):
        stem = f"_{stem}"
    return stem or "character"


def _suffix_for(buf: bytes, report: ImportReport) -> str:
    if buf.startswith(_png.PNG_MAGIC) and report.source_format.startswith("png"):
        return ".png"
    if report.source_format.startswith("charx") or _charx.is_zip(buf):
        return ".charx"
    if report.source_format.startswith("yaml"):
        return ".yaml"
    return ".json"


def _link_new(directory: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Place ``data`` under the first free ``stem (n)suffix`` name; never replaces a file."""
    return link_new(directory, stem, suffix, data, "cards")


def import_card(
    source: CardSource,
    *,
    filename: str | None = None,
    name: str | None = None,
    directory: Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> LibraryEntry:
    """Copy a card into the library, never overwriting an existing file.

    The original bytes are kept as they are (the most lossless copy) unless ``name`` is
    given, in which case the card is rewritten in the same format with that name.

    Args:
        source: Path or bytes of the card.
        filename: File name for bytes input (its stem names a nameless card).
        name: Give the card this name (e.g. after a UI asked for one).
        directory: Library folder; defaults to ``get_paths().characters_dir``.
        limits: Safety limits for reading.

    Returns:
        The library entry of the new file.

    Raises:
        FormatError: The source is not a readable card (nothing is written).
    """
    buf, file_name = read_bytes(source, limits)
    card, report = load_card(buf, filename or file_name, limits=limits)
    suffix = _suffix_for(buf, report)
    if name is not None and name.strip():
        card.name = name.strip()
        report.needs_name = False
        suffix = ".json" if suffix == ".yaml" else suffix
        buf = render_card(card, suffix, limits=limits)
    elif any(line.startswith(SURROGATE_NOTE) for line in report.repaired):
        # The original holds text no file or terminal can encode: keep the repaired card instead.
        suffix = ".json" if suffix == ".yaml" else suffix
        buf = render_card(card, suffix, limits=limits)
    folder = Path(directory) if directory is not None else get_paths().characters_dir
    folder.mkdir(parents=True, exist_ok=True)
    target = _link_new(folder, safe_file_stem(card.name), suffix, buf)
    return LibraryEntry(target, card, report)


def list_cards(directory: Path | None = None, *, limits: Limits = DEFAULT_LIMITS) -> list[LibraryEntry]:
    """Load every card file in the library, sorted by card name.

    Files that cannot be read are listed with their error instead of raising; symlinks,
    hidden files and other suffixes are skipped.
    """
    folder = Path(directory) if directory is not None else get_paths().characters_dir
    if not folder.is_dir():
        return []
    entries = []
    with os.scandir(folder) as it:
        for item in it:
            if item.name.startswith(".") or not item.is_file(follow_symlinks=False):
                continue
            if not item.name.lower().endswith(CARD_SUFFIXES):
                continue
            path = Path(item.path)
            try:
                card, report = load_card(path, limits=limits)
            except StorytellerError as exc:
                entries.append(LibraryEntry(path, None, None, str(exc)))
                continue
            entries.append(LibraryEntry(path, card, report))
    return sorted(entries, key=lambda e: ((e.card.name if e.card else e.path.stem).casefold(), e.path.name))
