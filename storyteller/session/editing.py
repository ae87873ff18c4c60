"""Editing cards and worlds, as the character and world-info screens need it, without a UI.

The screens hold a card or a book in memory and call these to read, save and export it, so
that no screen imports :mod:`storyteller.cards` or :mod:`storyteller.lore`. Reading and
writing touch files: the screens call the readers from a thread worker.

A bundled card or world is never written over: saving it writes the user's copy in the
library instead (:func:`card_save_target`, :func:`world_save_target`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from storyteller.cards import Card, CharacterBook, load_card, save_card
from storyteller.content import BUNDLED_CHARACTERS, BUNDLED_WORLDS, find_world
from storyteller.errors import FormatError, StorytellerError
from storyteller.lore import Lorebook, WorldEntry, from_character_book, load_lorebook, save_lorebook, to_character_book
from storyteller.lore.model import Position, Role, SelectiveLogic
from storyteller.paths import Paths

__all__ = [
    "Card",
    "Lorebook",
    "WorldEntry",
    "apply_form",
    "card_book",
    "card_save_target",
    "export_card",
    "new_entry",
    "read_card",
    "read_worlds",
    "save_card_file",
    "save_world",
    "set_card_book",
    "world_save_target",
]


# -- cards --------------------------------------------------------------------------------------

def read_card(path: Path) -> Card:
    """The card in ``path`` (its import report is not needed for editing).

    Raises:
        StorytellerError: The file is not a card storyteller can read, or cannot be read.
    """
    return load_card(Path(path))[0]


def card_save_target(path: Path, paths: Paths) -> Path:
    """Where saving the card read from ``path`` writes: the file itself, or the user's copy of a bundled card."""
    if Path(path).resolve().is_relative_to(BUNDLED_CHARACTERS.resolve()):
        return paths.characters_dir / Path(path).name  # never write into the installed package
    return Path(path)


def save_card_file(card: Card, path: Path, paths: Paths) -> Path:
    """Save ``card`` (read from ``path``) in its own format; returns the file written.

    Raises:
        StorytellerError: The card cannot be written in that format.
        OSError: The file cannot be written.
    """
    target = card_save_target(path, paths)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_card(card, target)
    return target


def export_card(card: Card, target: Path) -> Path:
    """Write ``card`` to ``target``, the format chosen by its extension (.png, .json, .charx, .yaml)."""
    return save_card(card, Path(target))


def card_book(card: Card) -> Lorebook:
    """The card's embedded lorebook as an editable book (an empty one when it has none).

    Raises:
        StorytellerError: The embedded book cannot be read.
    """
    embedded = card.character_book
    name = (embedded.name if embedded is not None and embedded.name else "") or card.name or "card"
    if embedded is None:
        return Lorebook(name=name)
    return from_character_book(embedded.model_dump(), name=name)


def set_card_book(card: Card, book: Lorebook) -> None:
    """Put ``book`` into ``card`` as its embedded lorebook (in memory).

    Raises:
        FormatError: The book cannot be stored in a card.
    """
    try:
        card.character_book = CharacterBook.model_validate(to_character_book(book))
    except ValidationError as exc:
        raise FormatError(f"the lorebook does not fit a card's book: {exc.errors()[0]['msg']}") from None


# -- worlds -------------------------------------------------------------------------------------

def read_worlds(refs: list[str], paths: Paths) -> tuple[list[tuple[Path, Lorebook]], list[str]]:
    """The books that world references (names or paths) name, and a line for each that cannot be read."""
    books: list[tuple[Path, Lorebook]] = []
    errors: list[str] = []
    for ref in refs:
        try:
            path = find_world(ref, paths)
            books.append((path, load_lorebook(path)[0]))
        except StorytellerError as exc:
            errors.append(str(exc))
    return books, errors


def world_save_target(path: Path, paths: Paths) -> Path:
    """Where saving the world read from ``path`` writes: the file itself, or the user's copy of a bundled world."""
    if Path(path).resolve().is_relative_to(BUNDLED_WORLDS.resolve()):
        return paths.worlds_dir / Path(path).name
    return Path(path)


def save_world(book: Lorebook, path: Path, paths: Paths) -> Path:
    """Write ``book`` (read from ``path``) atomically; returns the file written."""
    target = world_save_target(path, paths)
    save_lorebook(book, target)
    return target


def new_entry(book: Lorebook) -> WorldEntry:
    """Add an empty entry to ``book`` and return it."""
    entry = WorldEntry(uid=book.next_uid(), comment="new entry")
    book.entries.append(entry)
    return entry


def _int(values: dict[str, Any], name: str, label: str, default: int | None) -> int | None:
    raw = str(values.get(name, "")).strip()
    if raw == "":
        return default
    try:
        number = int(raw)
    except ValueError:
        raise ValueError(f"{label} must be a whole number, not {raw!r}") from None
    if number < 0:
        raise ValueError(f"{label} cannot be negative")
    return number


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _from_tri(value: Any) -> bool | None:
    return None if value not in ("yes", "no") else value == "yes"


def apply_form(entry: WorldEntry, values: dict[str, Any]) -> WorldEntry:
    """A copy of ``entry`` with an editor form's values (keys as comma-separated text).

    Fields missing from ``values`` keep the entry's value. Blank number fields mean "not set"
    where the entry allows that (scan depth, sticky, cooldown, delay), else the default.
    Three-way switches are ``"yes"``, ``"no"`` or ``"default"`` (the global setting).

    Raises:
        ValueError: A number field is not a number or out of range (the message names it).
    """
    changed = entry.model_copy(deep=True)
    changed.comment = values["comment"]
    changed.keys = _split(values["keys"])
    changed.secondary_keys = _split(values["secondary_keys"])
    changed.content = values["content"]
    changed.constant = bool(values["constant"])
    changed.disable = not values["enabled"]
    raw_order = str(values["order"]).strip()
    try:
        changed.order = int(raw_order) if raw_order else 100  # SillyTavern allows negative orders
    except ValueError:
        raise ValueError(f"order must be a whole number, not {raw_order!r}") from None
    changed.position = Position(int(values["position"]))
    changed.depth = _int(values, "depth", "depth", 4)
    probability = _int(values, "probability", "chance", 100)
    if probability > 100:
        raise ValueError("chance is a percentage, 0 to 100")
    changed.probability = probability
    changed.use_probability = bool(values.get("use_probability", entry.use_probability))
    changed.selective_logic = SelectiveLogic(int(values["selective_logic"]))
    changed.selective = bool(changed.secondary_keys) or entry.selective
    if "role" in values:
        changed.role = Role(int(values["role"]))
    if "scan_depth" in values:
        changed.scan_depth = _int(values, "scan_depth", "scan depth", None)
    for name in ("case_sensitive", "match_whole_words", "use_group_scoring"):
        if name in values:
            setattr(changed, name, _from_tri(values[name]))
    if "group" in values:
        changed.group = values["group"].strip()
    if "group_weight" in values:
        raw = str(values["group_weight"]).strip() or "100"
        try:
            weight = float(raw)
        except ValueError:
            raise ValueError(f"group weight must be a number, not {raw!r}") from None
        if weight < 0:
            raise ValueError("group weight cannot be negative")
        changed.group_weight = int(weight) if weight.is_integer() else weight
    for name, label in (("sticky", "sticky"), ("cooldown", "cooldown"), ("delay", "delay")):
        if name in values:
            setattr(changed, name, _int(values, name, label, None))
    if "delay_until_recursion" in values:
        changed.delay_until_recursion = _int(values, "delay_until_recursion", "delay until recursion", 0)
    for name in ("group_override", "exclude_recursion", "prevent_recursion"):
        if name in values:
            setattr(changed, name, bool(values[name]))
    return changed
