"""The lorebook data model: SillyTavern's world info entry with every field and its default.

Field names in Python are snake_case; each field's alias is SillyTavern's own JSON name
(``key``, ``keysecondary``, ``selectiveLogic``, ...), so ``model_dump(by_alias=True)`` writes a
world file SillyTavern reads. Unknown fields are kept (``extra="allow"``) so nothing is lost.

Defaults follow SillyTavern's ``newWorldInfoEntryTemplate``. The per-entry overrides of global
settings (``scan_depth``, ``case_sensitive``, ``match_whole_words``, ``use_group_scoring``) are
``None`` by default, meaning "inherit the global setting"; an absent field never turns into 0
or off.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from storyteller.importing import ImportReport as BaseImportReport

__all__ = [
    "CharacterFilter",
    "ImportReport",
    "Lorebook",
    "Position",
    "Role",
    "SelectiveLogic",
    "WorldEntry",
    "WorldInfoSettings",
]


class Position(IntEnum):
    """Where an activated entry goes in the prompt (SillyTavern's ``world_info_position``)."""

    BEFORE_CHAR = 0
    AFTER_CHAR = 1
    AN_TOP = 2
    AN_BOTTOM = 3
    AT_DEPTH = 4
    EM_TOP = 5
    EM_BOTTOM = 6
    OUTLET = 7


class SelectiveLogic(IntEnum):
    """How secondary keys combine with a primary match."""

    AND_ANY = 0
    NOT_ALL = 1
    NOT_ANY = 2
    AND_ALL = 3


class Role(IntEnum):
    """Message role of an @depth injection."""

    SYSTEM = 0
    USER = 1
    ASSISTANT = 2


class CharacterFilter(BaseModel):
    """Limits an entry to (or excludes it from) some characters.

    Attributes:
        is_exclude: When true the listed characters are excluded instead of required.
        names: Avatar file names without extension (SillyTavern's convention).
        tags: Tag ids.
    """

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    is_exclude: bool = Field(False, alias="isExclude")
    names: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class WorldEntry(BaseModel):
    """One world info entry, in SillyTavern's world-file shape.

    Attributes:
        uid: Identifier, unique within its book; also its key in the file's ``entries``.
        keys: Primary keys; each plain text or ``/regex/flags``.
        secondary_keys: Optional filter keys, combined by ``selective_logic``.
        comment: Title or memo; never sent to the model.
        content: Text inserted into the prompt; may start with ``@@`` decorator lines.
        constant: Always active.
        vectorized: Activatable by embeddings (kept, not used here).
        selective: Enables the secondary-key logic.
        selective_logic: AND_ANY, NOT_ALL, NOT_ANY or AND_ALL.
        add_memo: UI only.
        order: Insertion order; higher is considered first for the budget and placed later.
        position: Where the entry goes (see :class:`Position`).
        disable: Never activates.
        exclude_recursion: Cannot be activated by other entries' content.
        prevent_recursion: Its content does not activate other entries.
        delay_until_recursion: Activates only on a recursion pass of at least this level
            (0 = off; the old boolean form ``true`` means 1).
        probability: Chance in percent, used when ``use_probability`` is set.
        use_probability: Whether ``probability`` applies.
        depth: Depth for ``Position.AT_DEPTH``.
        role: Role for ``Position.AT_DEPTH``.
        group: Inclusion group names, comma-separated.
        group_override: "Prioritise inclusion": the highest ``order`` wins the group.
        group_weight: Weight in the group's random roll.
        use_group_scoring: None = global setting.
        scan_depth: None = global scan depth.
        case_sensitive: None = global setting.
        match_whole_words: None = global setting.
        automation_id: Kept for SillyTavern's Quick Replies; unused here.
        sticky: Stays active this many messages after activating (None/0 = off).
        cooldown: Cannot activate for this many messages after activating.
        delay: Cannot activate before the chat has this many messages.
        display_index: UI sort order.
        character_filter: Character or tag filter.
        triggers: Generation types that may activate it (empty = all).
        match_persona_description: Also scan the persona description.
        match_character_description: Also scan the character description.
        match_character_personality: Also scan the character personality.
        match_character_depth_prompt: Also scan the character's note.
        match_scenario: Also scan the scenario.
        match_creator_notes: Also scan the creator notes.
        ignore_budget: Inserted even when the token budget is exhausted.
        outlet_name: Outlet name for ``Position.OUTLET``.
        extensions: Card-book extension keys kept from a character card.
    """

    model_config = ConfigDict(populate_by_name=True, extra="allow", validate_assignment=False)

    uid: int = 0
    keys: list[str] = Field(default_factory=list, alias="key")
    secondary_keys: list[str] = Field(default_factory=list, alias="keysecondary")
    comment: str = ""
    content: str = ""
    constant: bool = False
    vectorized: bool = False
    selective: bool = True
    selective_logic: SelectiveLogic = Field(SelectiveLogic.AND_ANY, alias="selectiveLogic")
    add_memo: bool = Field(False, alias="addMemo")
    order: int = 100
    position: Position = Position.BEFORE_CHAR
    disable: bool = False
    exclude_recursion: bool = Field(False, alias="excludeRecursion")
    prevent_recursion: bool = Field(False, alias="preventRecursion")
    delay_until_recursion: bool | int = Field(0, alias="delayUntilRecursion")
    probability: int | float = 100
    use_probability: bool = Field(True, alias="useProbability")
    depth: int = 4
    role: Role = Role.SYSTEM
    group: str = ""
    group_override: bool = Field(False, alias="groupOverride")
    group_weight: int | float = Field(100, alias="groupWeight")
    use_group_scoring: bool | None = Field(None, alias="useGroupScoring")
    scan_depth: int | None = Field(None, alias="scanDepth")
    case_sensitive: bool | None = Field(None, alias="caseSensitive")
    match_whole_words: bool | None = Field(None, alias="matchWholeWords")
    automation_id: str = Field("", alias="automationId")
    sticky: int | None = None
    cooldown: int | None = None
    delay: int | None = None
    display_index: int | None = Field(None, alias="displayIndex")
    character_filter: CharacterFilter | None = Field(None, alias="characterFilter")
    triggers: list[str] = Field(default_factory=list)
    match_persona_description: bool = Field(False, alias="matchPersonaDescription")
    match_character_description: bool = Field(False, alias="matchCharacterDescription")
    match_character_personality: bool = Field(False, alias="matchCharacterPersonality")
    match_character_depth_prompt: bool = Field(False, alias="matchCharacterDepthPrompt")
    match_scenario: bool = Field(False, alias="matchScenario")
    match_creator_notes: bool = Field(False, alias="matchCreatorNotes")
    ignore_budget: bool = Field(False, alias="ignoreBudget")
    outlet_name: str = Field("", alias="outletName")
    extensions: dict[str, Any] = Field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        """The inclusion group names, split as SillyTavern does (comma, optional spaces)."""
        return [g.strip() for g in self.group.split(",") if g.strip()]

    @property
    def title(self) -> str:
        """A short human label: the comment, else the first key, else ``#uid``."""
        if self.comment.strip():
            return self.comment.strip()
        if self.keys:
            return self.keys[0]
        return f"#{self.uid}"


class Lorebook(BaseModel):
    """A world info book.

    Attributes:
        name: Display name (the file name without ``.json`` for SillyTavern worlds).
        description: Book description (card books and lorebook_v3).
        entries: Entries in file order; uids are unique.
        scan_depth: Book-level override from a card book; kept, not applied (as SillyTavern).
        token_budget: Book-level override from a card book; kept, not applied.
        recursive_scanning: Book-level override from a card book; kept, not applied.
        extensions: Book-level extensions from a card book.
        original_data: The character book this world was converted from (SillyTavern's
            ``originalData``), used to export it back losslessly.
        extra: Unknown top-level keys of the source file, written back unchanged.
    """

    name: str = ""
    description: str = ""
    entries: list[WorldEntry] = Field(default_factory=list)
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    original_data: dict[str, Any] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def entry(self, uid: int) -> WorldEntry:
        """Return the entry with this uid.

        Raises:
            KeyError: No such entry.
        """
        for item in self.entries:
            if item.uid == uid:
                return item
        raise KeyError(uid)

    def next_uid(self) -> int:
        """The smallest uid above every existing one."""
        return max((e.uid for e in self.entries), default=-1) + 1


class WorldInfoSettings(BaseModel):
    """Global world info settings (SillyTavern's ``world_info_settings``, its shipped defaults).

    Attributes:
        scan_depth: Messages scanned, newest first.
        budget_percent: Budget as a percentage of the prompt context.
        budget_cap: Absolute token cap on the budget; 0 = none.
        min_activations: Scan deeper until this many entries fire; 0 = off.
        min_activations_depth_max: Deepest scan for min activations; 0 = the chat length.
        max_recursion_steps: Passes allowed; 0 = unlimited (bounded by ``recursion_hard_limit``).
        recursive: Activated contents may activate further entries.
        case_sensitive: Default case sensitivity.
        match_whole_words: Default whole-word matching.
        use_group_scoring: Default group scoring.
        strategy: How books are ordered: ``"evenly"`` merges all books by order; ``"in_order"``
            keeps the caller's book order (character first or global first).
        recursion_hard_limit: Safety stop on passes even when the steps setting is 0.
        regex_timeout_s: Time limit for one regex key on one scan text.
    """

    model_config = ConfigDict(extra="forbid")

    scan_depth: int = Field(2, ge=0, le=1000)
    budget_percent: float = Field(25, ge=0, le=100)
    budget_cap: int = Field(0, ge=0)
    min_activations: int = Field(0, ge=0)
    min_activations_depth_max: int = Field(0, ge=0)
    max_recursion_steps: int = Field(0, ge=0)
    recursive: bool = True
    case_sensitive: bool = False
    match_whole_words: bool = True
    use_group_scoring: bool = False
    strategy: str = Field("in_order", pattern="^(evenly|in_order)$")
    recursion_hard_limit: int = Field(50, ge=1)
    regex_timeout_s: float = Field(0.05, gt=0)


class ImportReport(BaseImportReport):
    """What a lorebook import changed (see :class:`storyteller.importing.ImportReport`).

    Lorebooks default many absent fields on purpose (absent means "use the global setting"),
    so defaults alone do not make a report unclean.

    Attributes:
        warnings: Other things worth a look (an entry that can never fire, ...).
    """

    warnings: list[str] = Field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing was repaired, dropped or warned about."""
        return not (self.repaired or self.dropped or self.warnings)

    def lines(self) -> list[str]:
        """Human-readable lines, one per item."""
        return super().lines() + [f"warning: {item}" for item in self.warnings]
