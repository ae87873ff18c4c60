"""The files a session reads for its story: the worlds and the card's embedded book."""

from __future__ import annotations

from collections.abc import Sequence

from storyteller.cards import Card
from storyteller.content import find_world
from storyteller.lore import Lorebook, from_character_book, load_lorebook
from storyteller.paths import Paths

__all__ = ["dedupe_books", "load_books"]


def load_books(refs: Sequence[str], card: Card | None, paths: Paths) -> list[Lorebook]:
    """The story's worlds, then the card's embedded book."""
    books = []
    for ref in refs:
        book, _report = load_lorebook(find_world(ref, paths))
        books.append(book)
    if card is not None and card.character_book is not None and card.character_book.entries:
        books.append(from_character_book(card.character_book.model_dump(), name=card.name or "card"))
    return dedupe_books(books)


def _entry_key(entry) -> tuple:
    return (tuple(sorted(k.strip().casefold() for k in entry.keys)),
            tuple(sorted(k.strip().casefold() for k in entry.secondary_keys)),
            " ".join(entry.content.split()))


def dedupe_books(books: list[Lorebook]) -> list[Lorebook]:
    """The same book is one book, whichever ways it arrives.

    A card's embedded book is often also in the library as a world (SillyTavern links them,
    and importing the card exports it), so a story can get it twice: as the card's book and as
    an attached world. An entry whose keys and text already came from an earlier book is dropped
    from the later one; a book left with no entries is dropped. Entries repeated inside one
    book are the author's and stay.
    """
    seen: set[tuple] = set()
    result: list[Lorebook] = []
    for book in books:
        keys = [_entry_key(e) for e in book.entries]
        kept = [e for e, k in zip(book.entries, keys, strict=True) if k not in seen]
        seen.update(keys)
        if len(kept) == len(book.entries):
            result.append(book)
        elif kept:
            result.append(book.model_copy(update={"entries": kept}))
    return result
