"""The character card model: a superset of Character Card V3, plus the import report.

The models hold *normalised* data: the readers in :mod:`storyteller.cards.reader` repair raw
input that does not fit the model first (see :mod:`storyteller.cards._normalize`) and record what
they changed in an :class:`ImportReport`. What fits is kept as written: text byte for byte (CRLF
included; the prompt builder normalises line endings), unknown keys everywhere
(``extra="allow"``) and every ``extensions`` dict verbatim, typed or not. The accessors
(:attr:`Card.talkativeness`, :attr:`Card.depth_prompt`...) read SillyTavern's loosely typed
values (``"0.5"``, ``"2"``) without changing the stored card.

``model_dump()`` of each model gives exactly the spec shape: fields the spec marks optional
are left out while they are ``None``; unknown keys are written back as they came.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_serializer

from storyteller.coerce import Unreadable, to_float, to_int, to_text
from storyteller.importing import ImportReport as BaseImportReport

__all__ = ["Asset", "BookEntry", "Card", "CharacterBook", "ImportReport"]


def _drop_none(data: dict[str, Any], optional: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not (k in optional and v is None)}


class BookEntry(BaseModel):
    """One entry of an embedded lorebook (``character_book.entries[]``), V2/V3 shape.

    ``extensions`` keeps SillyTavern's keys exactly as written (snake_case such as
    ``exclude_recursion`` and the camelCase ``selectiveLogic`` / ``useProbability``).
    """

    model_config = ConfigDict(extra="allow")

    keys: list[str] = Field(default_factory=list)
    content: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    insertion_order: int = 100
    use_regex: bool = False
    """Required by V3; filled with ``False`` when a V1/V2 book lacks it."""
    case_sensitive: bool | None = None
    name: str | None = None
    priority: int | None = None
    id: int | str | None = None
    comment: str | None = None
    selective: bool | None = None
    secondary_keys: list[str] | None = None
    constant: bool | None = None
    position: str | None = None
    """``"before_char"`` or ``"after_char"``."""

    _OPTIONAL: ClassVar[frozenset[str]] = frozenset(
        {"case_sensitive", "name", "priority", "id", "comment", "selective", "secondary_keys",
         "constant", "position"}
    )

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Any) -> dict[str, Any]:
        return _drop_none(handler(self), self._OPTIONAL)


class CharacterBook(BaseModel):
    """A lorebook embedded in a card (``data.character_book``), entries as an array."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    description: str | None = None
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[BookEntry] = Field(default_factory=list)

    _OPTIONAL: ClassVar[frozenset[str]] = frozenset(
        {"name", "description", "scan_depth", "token_budget", "recursive_scanning"}
    )

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Any) -> dict[str, Any]:
        return _drop_none(handler(self), self._OPTIONAL)


class Asset(BaseModel):
    """A V3 asset reference (icon, background, emotion, user_icon, ``x_*``)."""

    model_config = ConfigDict(extra="allow")

    type: str = "icon"
    uri: str = "ccdefault:"
    name: str = "main"
    ext: str = "png"


class Card(BaseModel):
    """A character card: every V3 ``data`` field, unknown fields kept.

    Three things ride along outside the spec data and are not part of ``model_dump()``:
    ``top_level_extras`` (keys found beside ``spec``/``data``, such as SillyTavern's
    ``avatar``, ``chat`` and ``create_date``), ``image`` (the PNG the card came in, with its
    card chunks removed, so a re-export keeps the pixels) and ``files`` (embedded assets by
    path, from CHARX members or PNG ``chara-ext-asset_:`` chunks).

    ``creator_notes`` is for people browsing cards; it is never sent to a model.
    """

    model_config = ConfigDict(extra="allow")

    name: str = ""
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    creator_notes: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    creator: str = ""
    character_version: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    character_book: CharacterBook | None = None
    group_only_greetings: list[str] = Field(default_factory=list)
    assets: list[Asset] | None = None
    """``None`` means the V3 default: the card's own image is the main icon."""
    nickname: str | None = None
    creator_notes_multilingual: dict[str, str] | None = None
    source: list[str] | None = None
    creation_date: int | None = None
    """Unix seconds."""
    modification_date: int | None = None
    """Unix seconds."""

    _top_level_extras: dict[str, Any] = PrivateAttr(default_factory=dict)
    _image: bytes | None = PrivateAttr(default=None)
    _files: dict[str, bytes] = PrivateAttr(default_factory=dict)
    _legacy_fields: bool = PrivateAttr(default=False)

    _OPTIONAL: ClassVar[frozenset[str]] = frozenset(
        {"character_book", "assets", "nickname", "creator_notes_multilingual", "source",
         "creation_date", "modification_date"}
    )

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Any) -> dict[str, Any]:
        return _drop_none(handler(self), self._OPTIONAL)

    @property
    def top_level_extras(self) -> dict[str, Any]:
        """Unknown keys found beside ``spec``/``spec_version``/``data``; written back."""
        return self._top_level_extras

    @top_level_extras.setter
    def top_level_extras(self, value: dict[str, Any]) -> None:
        self._top_level_extras = dict(value)

    @property
    def legacy_fields(self) -> bool:
        """The card came with SillyTavern's top-level copies of its V1 fields (a V1 card or an ST
        hybrid); every export, V3 included, writes them back as SillyTavern's own writer does."""
        return self._legacy_fields

    @legacy_fields.setter
    def legacy_fields(self, value: bool) -> None:
        self._legacy_fields = bool(value)

    @property
    def image(self) -> bytes | None:
        """PNG bytes of the avatar without card chunks, or ``None``."""
        return self._image

    @image.setter
    def image(self, value: bytes | None) -> None:
        self._image = value

    @property
    def files(self) -> dict[str, bytes]:
        """Embedded files by path (``embeded://path`` / ``__asset:path``)."""
        return self._files

    @files.setter
    def files(self, value: dict[str, bytes]) -> None:
        self._files = dict(value)

    @property
    def greetings(self) -> list[str]:
        """``first_mes`` then the alternate greetings, empty ones left out."""
        return [g for g in [self.first_mes, *self.alternate_greetings] if g]

    @property
    def talkativeness(self) -> float:
        """SillyTavern's group-chat talkativeness (0..1), default 0.5; ``"0.5"`` is read too."""
        try:
            return min(1.0, max(0.0, float(to_float(self.extensions.get("talkativeness")))))
        except Unreadable:
            return 0.5

    @property
    def world(self) -> str | None:
        """Name of the linked world-info book (``extensions.world``), if any."""
        value = self.extensions.get("world")
        return value if isinstance(value, str) and value else None

    @property
    def depth_prompt(self) -> dict[str, Any] | None:
        """SillyTavern's Character's Note as ``{prompt: str, depth: int, role: str}``, if set.

        Read leniently (``"depth": "2"`` is depth 2, a missing role is ``system``); the stored
        ``extensions.depth_prompt`` is not changed.
        """
        value = self.extensions.get("depth_prompt")
        if not isinstance(value, dict):
            return None
        out = dict(value)
        try:
            out["prompt"] = to_text(value.get("prompt"))
        except Unreadable:
            out["prompt"] = ""
        try:
            out["depth"] = to_int(value.get("depth"), truncate=True)
        except Unreadable:
            out["depth"] = 4
        role = value.get("role")
        out["role"] = role if isinstance(role, str) and role else "system"
        return out


class ImportReport(BaseImportReport):
    """What a card import changed (see :class:`storyteller.importing.ImportReport`).

    Attributes:
        needs_name: The card had no name; a UI should ask for one.
    """

    needs_name: bool = False
