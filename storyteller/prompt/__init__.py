"""The prompt builder: what the model sees each turn.

Modes (chat, story, adventure, instruct), instruct and context templates kept as data, macros,
the author's note, world-info placement, exact token budgets with cached counts, and the stop
strings plus a streaming :class:`StopFilter`. See ``docs/prompt.md``.
"""

from __future__ import annotations

from storyteller.prompt._render import DEFAULT_SYSTEM_PROMPTS, format_action, parse_examples
from storyteller.prompt.builder import PromptBuilder, PromptOptions
from storyteller.prompt.macros import MacroContext, expand_macros, expand_names
from storyteller.prompt.model import (
    AuthorsNote,
    Budget,
    CharacterInfo,
    HistoryMessage,
    Persona,
    Prompt,
    PromptTooLongError,
    Recall,
    Segment,
    WorldInfoInsert,
)
from storyteller.prompt.report import TurnReport, explain_prompt_change
from storyteller.prompt.stops import ACTION_MARKER, StopFilter, cut_at_stop, name_stops
from storyteller.prompt.templates import (
    NONE_TEMPLATE,
    ContextTemplate,
    InstructTemplate,
    TemplateLibrary,
    detect_preset,
    load_library,
    parse_template,
)
from storyteller.prompt.tokens import TokenCounter, tiktoken_counter

__all__ = [
    "ACTION_MARKER",
    "DEFAULT_SYSTEM_PROMPTS",
    "NONE_TEMPLATE",
    "AuthorsNote",
    "Budget",
    "CharacterInfo",
    "ContextTemplate",
    "HistoryMessage",
    "InstructTemplate",
    "MacroContext",
    "Persona",
    "Prompt",
    "PromptBuilder",
    "PromptOptions",
    "PromptTooLongError",
    "Recall",
    "Segment",
    "StopFilter",
    "TemplateLibrary",
    "TokenCounter",
    "TurnReport",
    "WorldInfoInsert",
    "cut_at_stop",
    "detect_preset",
    "expand_macros",
    "expand_names",
    "explain_prompt_change",
    "format_action",
    "load_library",
    "name_stops",
    "parse_examples",
    "parse_template",
    "tiktoken_counter",
]
