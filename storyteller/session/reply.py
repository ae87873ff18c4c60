"""A reply's own rules in play: the stream filter for a turn, trimming, and Continue's cut text.

Pure helpers the :class:`~storyteller.session.Session` calls at three points of a turn:

- :func:`turn_filter` chains the stop strings with :class:`~storyteller.prompt.reply_filter.ReplyFilter`
  (adventure: the reply ends where it starts playing the player; story and adventure: prompt
  labels are dropped);
- :func:`trim_reply` cuts a finished reply back to its last complete sentence when the setting
  asks for it (``reply.trim_sentences``), returning the cut text for the story tree;
- :func:`restore_cut` gives Continue the text the last reply lost to trimming, so the prompt
  ends where the model stopped and the continuation begins by finishing that sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storyteller.engines.base import GenerationStats
from storyteller.prompt import Prompt, StopFilter, TurnReport, explain_prompt_change
from storyteller.prompt.reply_filter import FilterChain, ReplyFilter, input_verbs, trim_incomplete
from storyteller.story.model import Node, StorySettings
from storyteller.story.tree import Message

__all__ = ["restore_cut", "trim_enabled", "trim_reply", "turn_filter", "turn_report"]

_NOT_TRIMMED = ("cancelled", "error")
_PROSE_MODES = ("story", "adventure")
_PLAYER_KINDS = ("say", "do", "story")


def trim_enabled(setting: str, mode: str) -> bool:
    """Whether replies are trimmed: ``on``, ``off``, or ``auto`` (story and adventure modes)."""
    if setting == "auto":
        return mode in _PROSE_MODES
    return setting == "on"


def trim_reply(text: str, *, setting: str, mode: str, reason: str) -> tuple[str, str]:
    """``(kept, cut)`` for a finished reply; nothing is cut when stopped by the player or failed.

    Args:
        text: The reply as it will be saved.
        setting: ``reply.trim_sentences`` (``auto``, ``on``, ``off``).
        mode: The story's mode.
        reason: Why the reply ended (``stop``, ``length``, ``cancelled``, ``error``...).
    """
    if reason in _NOT_TRIMMED or not trim_enabled(setting, mode):
        return text, ""
    return trim_incomplete(text)


def restore_cut(messages: Sequence[Message]) -> tuple[list[Message], str]:
    """The path with the last reply's trimmed text put back, and that text ("" when none).

    Only the newest node of the last message counts: an older cut was already finished by the
    continuation after it, or given up by an edit.
    """
    if not messages:
        return list(messages), ""
    last = messages[-1].nodes[-1]
    cut = last.generation.trimmed if last.generation is not None else ""
    if not cut or last.kind not in ("generation", "continue", "greeting"):
        return list(messages), ""
    restored = Node(id=last.id + "~cut", parent=last.id, text=cut, author=last.author, kind="continue",
                    created=last.created)
    return [*messages[:-1], Message((*messages[-1].nodes, restored))], cut


def turn_filter(prompt: Prompt, st: StorySettings, messages: Sequence[Message], *, speaker: str,
                prefix: str = "") -> FilterChain | StopFilter:
    """The filter a turn's text streams through.

    Args:
        prompt: The turn's prompt (its stop strings, and its end, where a stop may begin).
        st: The story's settings (mode, the player's name).
        messages: The path the reply follows; the player's newest input says which action the
            narrator may restate.
        speaker: Who writes the reply (the card's name).
        prefix: Text shown before the reply (Continue's restored cut text).
    """
    stops = StopFilter(prompt.stops, context=(prompt.text or "")[-64:])
    if st.mode not in _PROSE_MODES:
        return stops if not prefix else FilterChain(stops, prefix=prefix)
    user = st.persona.name or "User"
    player = None
    allowed: frozenset[str] = frozenset()
    if st.mode == "adventure":
        player = [user, "You", "Player"]
        # The player's input this reply answers: the last message, or the one before the
        # reply being continued.
        last_input = next((m for m in reversed(messages[-2:]) if m.head.kind in _PLAYER_KINDS), None)
        if last_input is not None:
            allowed = input_verbs(last_input.head.kind, last_input.text)
    reply = ReplyFilter(names=[speaker, "Narrator", user], player=player, allowed=allowed)
    return FilterChain(stops, reply, prefix=prefix)


def turn_report(previous: Any, prompt: Any, stats: GenerationStats) -> TurnReport:
    """What a reply cost and why its prompt changed from the previous one."""
    changed_at, why = explain_prompt_change(previous, prompt)
    return TurnReport(
        prompt_tokens=stats.prompt_tokens, stable_prefix_tokens=prompt.stable_prefix_tokens,
        changed_at=changed_at, why=why, cache_note=stats.cache_note,
        tokens_evaluated=stats.tokens_evaluated, tokens_reused=stats.tokens_reused,
        tokens_shifted=stats.tokens_shifted, seconds_to_first_token=stats.seconds_to_first_token,
        tokens_per_second=stats.tokens_per_second,
    )
