"""The character and world info a Kobold Lite save carries, resolved from the story's card and worlds.

:func:`storyteller.story.kobold.export_kobold` writes a save from a story alone; this module adds
what Lite needs to play the character: its name (``chatopponent``), its card the way Lite's own
card import puts one into memory (``load_tavern_obj`` in Kobold Lite), and world info from the
story's worlds and the card's embedded book (as Lite's ``load_tavern_wi`` would).
"""

from __future__ import annotations

import re

from storyteller.cards import Card, load_card
from storyteller.content import find_card, find_world
from storyteller.errors import StorytellerError
from storyteller.lore import from_character_book, load_lorebook, to_kobold_lite
from storyteller.paths import Paths
from storyteller.story.kobold import LiteContext
from storyteller.story.model import StorySettings

__all__ = ["card_memory", "lite_context"]


def card_memory(card: Card) -> str:
    """The card as Kobold Lite's card import writes it into memory.

    System prompt, ``Persona:`` description, ``Personality:``, ``[Scenario: ...]``, the example
    dialogue, then ``***``; the text is the card's own, byte for byte.
    """
    memory = f"Persona: {card.description}" if card.description else ""
    memory += f"\nPersonality: {card.personality}" if card.personality else ""
    scenario = f"\n[Scenario: {card.scenario}]" if card.scenario else ""
    examples = f"\n{card.mes_example}" if card.mes_example else ""
    system = f"{card.system_prompt}\n" if card.system_prompt else ""
    return system + memory + scenario + examples + "\n***"


def lite_context(settings: StorySettings, paths: Paths) -> tuple[LiteContext, list[str]]:
    """The Lite context for a story, and notes on what could not be carried.

    A card or world that cannot be found or read is left out with a note; the export goes on.
    """
    notes: list[str] = []
    if settings.group is not None:
        return _group_context(settings, paths, notes)
    card: Card | None = None
    if settings.cards:
        try:
            card = load_card(find_card(settings.cards[0], paths))[0]
        except StorytellerError as exc:
            notes.append(f"card {settings.cards[0]!r} left out: {exc}")
    books = _world_books(settings, paths, notes)
    if card is not None and card.character_book is not None and card.character_book.entries:
        books.append(from_character_book(card.character_book.model_dump(), name=card.name or "card"))
    entries = _lite_entries(books, notes)
    if card is None:
        return LiteContext(world_info=tuple(entries)), notes
    return LiteContext(opponent=card.nickname or card.name, card_memory=card_memory(card),
                       world_info=tuple(entries)), notes


def _world_books(settings: StorySettings, paths: Paths, notes: list[str]) -> list:
    books = []
    for ref in settings.worlds:
        try:
            books.append(load_lorebook(find_world(ref, paths))[0])
        except StorytellerError as exc:
            notes.append(f"world {ref!r} left out: {exc}")
    return books


def _lite_entries(books: list, notes: list[str]) -> list[dict]:
    entries = []
    for book in books:
        written, book_notes = to_kobold_lite(book)
        entries += written
        notes += book_notes
    return entries


_CHAR = re.compile(r"\{\{char\}\}", re.I)


def _group_context(settings: StorySettings, paths: Paths, notes: list[str]) -> tuple[LiteContext, list[str]]:
    """A group as Lite's multi-character chat: ``chatopponent`` is the members' names joined by
    ``||$||`` (Lite picks who answers among them and stops at each name), memory holds every
    member's card (``{{char}}`` written out as that member, since Lite's ``{{char}}`` would be the
    whole list) and world info every member's embedded book."""
    books = _world_books(settings, paths, notes)
    memories = []
    for member in settings.group.members:
        try:
            card = load_card(find_card(member.card, paths))[0]
        except StorytellerError as exc:
            notes.append(f"card of {member.name!r} left out: {exc}")
            continue
        memories.append(_CHAR.sub(lambda _m, name=member.name: name, card_memory(card)))
        if card.character_book is not None and card.character_book.entries:
            books.append(from_character_book(card.character_book.model_dump(), name=member.name))
    opponent = "||$||".join(m.name for m in settings.group.members if m.name)
    return LiteContext(opponent=opponent, card_memory="\n".join(memories),
                       world_info=tuple(_lite_entries(books, notes))), notes
