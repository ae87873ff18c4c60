"""Character cards: every community format in, lossless out.

Read with :func:`load_card` (PNG, CHARX, JSON V1/V2/V3/hybrid/Pygmalion, oobabooga YAML),
write with :func:`save_card` (format by extension) or the ``card_to_*`` functions, and keep
a library of cards in the data folder with :func:`import_card` / :func:`list_cards`.
Limits for hostile input are documented in :mod:`storyteller.cards.limits`.
"""

from __future__ import annotations

from storyteller.cards.library import LibraryEntry, import_card, list_cards, safe_file_stem
from storyteller.cards.limits import DEFAULT_LIMITS, Limits
from storyteller.cards.model import Asset, BookEntry, Card, CharacterBook, ImportReport
from storyteller.cards.reader import load_card
from storyteller.cards.writer import (
    card_to_charx,
    card_to_json,
    card_to_png,
    card_to_v2,
    card_to_v3,
    render_card,
    save_card,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Asset",
    "BookEntry",
    "Card",
    "CharacterBook",
    "ImportReport",
    "LibraryEntry",
    "Limits",
    "card_to_charx",
    "card_to_json",
    "card_to_png",
    "card_to_v2",
    "card_to_v3",
    "import_card",
    "list_cards",
    "load_card",
    "render_card",
    "safe_file_stem",
    "save_card",
]
