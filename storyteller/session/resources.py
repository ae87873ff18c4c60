"""The files a session reads for its story: the worlds, the card's embedded book, a group's cards,
the instruct template."""

from __future__ import annotations

from collections.abc import Sequence

from storyteller.cards import Card, load_card
from storyteller.engines.base import BackendInfo
from storyteller.content import find_card, find_world
from storyteller.errors import StorytellerError
from storyteller.lore import Lorebook, from_character_book, load_lorebook
from storyteller.paths import Paths
from storyteller.prompt import NONE_TEMPLATE, InstructTemplate, detect_preset, load_library
from storyteller.story.model import GroupSettings, StorySettings

__all__ = ["card_book", "dedupe_books", "load_books", "load_members", "pick_template"]


def card_book(card: Card | None) -> Lorebook | None:
    """The card's embedded lorebook, if it has entries."""
    if card is not None and card.character_book is not None and card.character_book.entries:
        return from_character_book(card.character_book.model_dump(), name=card.name or "card")
    return None


def load_members(group: GroupSettings, paths: Paths) -> tuple[dict[str, Card | None], list[str]]:
    """Each member's card by member name, in list order, and warnings for cards that are missing.

    A member whose card cannot be found or read still speaks under its name (as an imported
    chat's character does), with a warning that says which file to add.
    """
    cards: dict[str, Card | None] = {}
    warnings: list[str] = []
    for member in group.members:
        try:
            cards[member.name] = load_card(find_card(member.card, paths))[0]
        except (StorytellerError, OSError) as exc:
            cards[member.name] = Card(name=member.name)
            warnings.append(f"{member.name} plays without a card ({exc}); import the card to give them one.")
    return cards, warnings


def load_books(refs: Sequence[str], card: Card | None, paths: Paths) -> list[Lorebook]:
    """The story's worlds, then the card's embedded book."""
    books = []
    for ref in refs:
        book, _report = load_lorebook(find_world(ref, paths))
        books.append(book)
    book = card_book(card)
    if book is not None:
        books.append(book)
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


def pick_template(story_settings: StorySettings, info: BackendInfo, paths: Paths) -> tuple[InstructTemplate, list[str]]:
    """The story's instruct template, or the one that matches the model's own chat template.

    Returns:
        The template, and the template library's warnings (files that did not load).
    """
    library = load_library(paths.config_dir / "templates")
    warnings = list(library.warnings)
    name = story_settings.template or "auto"
    if name != "auto":
        return library.get_instruct(name), warnings
    if info.chat_template:
        found = detect_preset(info.chat_template, library.instruct.values())
        if found is not None:
            return found, warnings
    return NONE_TEMPLATE, warnings
