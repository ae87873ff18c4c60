"""Planning KV-cache reuse: common prefix, then spans removed from the middle (context shift).

A story that outgrows the context has old history trimmed from the middle of its prompt: the
new prompt is then the cached tokens with a span removed, plus new tokens at the end. Instead of
evaluating everything after the removed span again, the engine removes that span from the KV
cache and shifts the rest left (as koboldcpp's ContextShift does). The tokens after the span keep
attention values computed while the span was still there, an approximation that in practice
predicts the same text.

This module only plans; :mod:`storyteller.engines.llamacpp` applies the plan to llama.cpp.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ReusePlan", "plan_reuse"]

MIN_RUN = 16
"""A removed span is only assumed when at least this many tokens match after it: shorter runs
(a repeated ``\\nUser:``) would be coincidences."""


@dataclass(slots=True)
class ReusePlan:
    """How much of a new prompt the cache already holds.

    Attributes:
        prefix: Tokens shared from the start, untouched.
        reused: Prompt tokens covered by the cache after the removals (>= prefix).
        removals: Spans ``(start, end)`` of the cached tokens to remove, in the cache's
            original positions, in order.
        diverged_at: Where the prompt first differs from the cache (``None`` if it never does).
    """

    prefix: int
    reused: int
    removals: list[tuple[int, int]] = field(default_factory=list)
    diverged_at: int | None = None

    @property
    def shifted(self) -> int:
        """Reused tokens that had to be moved to new positions."""
        return self.reused - self.prefix if self.removals else 0

    @property
    def removed(self) -> int:
        """Cached tokens dropped from the middle."""
        return sum(end - start for start, end in self.removals)


def _lcp(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n


def _find(haystack: np.ndarray, needle: np.ndarray, start: int) -> int:
    """Index of the first occurrence of ``needle`` in ``haystack[start:]``, or -1."""
    if len(needle) == 0 or start >= len(haystack):
        return -1
    hay = haystack[start:].tobytes()
    pat = needle.tobytes()
    width = haystack.itemsize
    pos = hay.find(pat)
    while pos != -1 and pos % width:  # a match must start on a token boundary
        pos = hay.find(pat, pos + 1)
    return -1 if pos == -1 else start + pos // width


def plan_reuse(cached: Sequence[int], prompt: Sequence[int], *, shift: bool = True,
               min_run: int = MIN_RUN) -> ReusePlan:
    """Plan how to reuse ``cached`` tokens for ``prompt``.

    Args:
        cached: Tokens whose KV values the cache holds, by position.
        prompt: The new prompt's tokens.
        shift: Allow removing spans from the middle of the cache.
        min_run: Least number of matching tokens after a span for it to count as removed.
    """
    c = np.asarray(cached, dtype=np.int32)
    p = np.asarray(prompt, dtype=np.int32)
    prefix = _lcp(c, p)
    plan = ReusePlan(prefix=prefix, reused=prefix, diverged_at=prefix if prefix < len(p) else None)
    i = j = prefix
    while shift and i < len(c) and j < len(p):
        probe = p[j: j + min_run]
        if len(probe) < min_run:
            break
        k = _find(c, probe, i + 1)
        if k < 0:
            break
        run = _lcp(c[k:], p[j:])
        plan.removals.append((i, k))
        i, j = k + run, j + run
    plan.reused = j
    return plan
