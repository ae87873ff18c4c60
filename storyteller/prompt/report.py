"""Why a prompt changed from the last one, and what a turn cost: read from the prompts' segments.

Engines reuse their cache up to the first change, so :func:`explain_prompt_change` is how a slow
turn is explained; :class:`TurnReport` carries that with the engine's own figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storyteller.prompt.model import Prompt

__all__ = ["TurnReport", "explain_prompt_change"]


@dataclass(frozen=True, slots=True)
class TurnReport:
    """What one reply cost and why, the same for every engine (unknown figures are ``None``).

    Attributes:
        prompt_tokens: Tokens in the prompt.
        stable_prefix_tokens: Tokens before the first part that may change from turn to turn.
        changed_at: Tokens the prompt shares with the previous one, counted by segment.
        why: Why the prompt changed before its end (in words, from the prompt's segments).
        cache_note: The engine's own account of its cache (empty for engines that give none).
        tokens_evaluated: Prompt tokens the engine evaluated.
        tokens_reused: Prompt tokens it took from its cache.
        tokens_shifted: Cached tokens it kept by moving them.
        seconds_to_first_token: From the request to the first text.
        tokens_per_second: Generation speed.
    """

    prompt_tokens: int | None
    stable_prefix_tokens: int
    changed_at: int
    why: str
    cache_note: str = ""
    tokens_evaluated: int | None = None
    tokens_reused: int | None = None
    tokens_shifted: int | None = None
    seconds_to_first_token: float | None = None
    tokens_per_second: float | None = None

    def summary(self) -> str:
        """One line for a status bar or a log."""
        parts = []
        if self.tokens_evaluated is not None and self.prompt_tokens:
            parts.append(f"evaluated {self.tokens_evaluated} of {self.prompt_tokens} prompt tokens")
        if self.tokens_shifted:
            parts.append(f"shifted {self.tokens_shifted}")
        if self.seconds_to_first_token is not None:
            parts.append(f"first token after {self.seconds_to_first_token:.2f} s")
        if self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:.1f} tokens/s")
        parts.append(self.why)
        return "; ".join(parts)


def _describe(segment: Any) -> str:
    kind = segment.kind.replace("_", " ")
    return f"{kind} {segment.source!r}" if segment.source and segment.source != segment.kind else kind


def explain_prompt_change(previous: Prompt | None, current: Prompt) -> tuple[int, str]:
    """Where ``current`` first differs from ``previous`` (in tokens), and why, in words.

    Engines reuse their cache up to the first change (and, with context shifting, around it),
    so this is what a slow turn is explained with: a world-info entry that started or stopped
    firing, the author's note coming or going, old history trimmed.
    """
    if previous is None:
        return 0, "first prompt of this session: nothing to reuse yet"
    old, new = previous.segments, current.segments
    same = 0
    tokens = 0
    while same < min(len(old), len(new)) and old[same] == new[same]:
        tokens += new[same].tokens
        same += 1
    if same == len(new) == len(old):
        return tokens, "the prompt is the same as last time"
    # The reply header and the newest messages change every turn: that is the normal append.
    tail_kinds = {"history", "reply_header", "post_history", "template"}
    if all(s.kind in tail_kinds for s in new[same:]) and all(s.kind in tail_kinds for s in old[same:]):
        first_new = next((s for s in new[same:] if s.kind == "history"), None)
        first_old = next((s for s in old[same:] if s.kind == "history"), None)
        if first_new is not None and first_old is not None and first_new.source != first_old.source \
                and any(s.source == first_new.source for s in old):
            return tokens, f"old history was trimmed: the window now starts at {first_new.source}"
        return tokens, "new messages at the end (the rest is unchanged)"
    old_keys = {(s.kind, s.source, s.text) for s in old}
    new_keys = {(s.kind, s.source, s.text) for s in new}
    a = old[same] if same < len(old) else None
    b = new[same] if same < len(new) else None
    if b is not None and (b.kind, b.source, b.text) not in old_keys:
        if any(s.kind == b.kind and s.source == b.source for s in old):
            return tokens, f"{_describe(b)} changed"
        what = "started firing" if b.kind == "world_info" else "was inserted"
        return tokens, f"{_describe(b)} {what}"
    if a is not None and (a.kind, a.source, a.text) not in new_keys:
        if a.kind == "history":
            return tokens, f"old history was trimmed: {a.source} and older left the window"
        what = "stopped firing" if a.kind == "world_info" else "was removed"
        return tokens, f"{_describe(a)} {what}"
    moved = a if a is not None and a.kind != "history" else b if b is not None and b.kind != "history" else a or b
    if moved is not None and moved.kind != "history":
        return tokens, f"{_describe(moved)} moved: it is placed a fixed number of messages from the end"
    return tokens, f"{_describe(moved)} moved"
