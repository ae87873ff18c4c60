"""World info (lorebooks): SillyTavern-compatible models, formats and the activation engine.

Typical use::

    book, report = load_lorebook(path)               # any supported format + what was repaired
    result = activate([book], messages, settings=WorldInfoSettings(), max_context=3584,
                      count_tokens=backend_counter, rng=seeded_rng(story_id, turn),
                      timed=story.timed_world_info)
    result.prompt.before, result.prompt.depth, ...    # for the prompt builder
    story.timed_world_info = result.timed            # store with the story
    result.to_json()                                  # the trace, for the UI
"""

from storyteller.lore._foreign import to_kobold_lite
from storyteller.lore._formats import from_character_book, to_character_book, to_lorebook_v3
from storyteller.lore.activation import activate, approx_tokens, compute_budget, seeded_rng
from storyteller.lore.io import dump_lorebook, load_lorebook, parse_lorebook, save_lorebook
from storyteller.lore.model import (
    CharacterFilter,
    ImportReport,
    Lorebook,
    Position,
    Role,
    SelectiveLogic,
    WorldEntry,
    WorldInfoSettings,
)
from storyteller.lore.results import (
    ActivatedEntry,
    ActivationResult,
    DepthInjection,
    EntryTrace,
    ScanSources,
    WorldInfoPrompt,
)
from storyteller.lore.timed import TimedEffect, TimedEffectsState

__all__ = [
    "ActivatedEntry",
    "ActivationResult",
    "CharacterFilter",
    "DepthInjection",
    "EntryTrace",
    "ImportReport",
    "Lorebook",
    "Position",
    "Role",
    "ScanSources",
    "SelectiveLogic",
    "TimedEffect",
    "TimedEffectsState",
    "WorldEntry",
    "WorldInfoPrompt",
    "WorldInfoSettings",
    "activate",
    "approx_tokens",
    "compute_budget",
    "dump_lorebook",
    "from_character_book",
    "load_lorebook",
    "parse_lorebook",
    "save_lorebook",
    "seeded_rng",
    "to_character_book",
    "to_kobold_lite",
    "to_lorebook_v3",
]
