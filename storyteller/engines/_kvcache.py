"""Planning KV-cache reuse: common prefix, then spans removed from (and inserted into) the middle.

A story that outgrows the context has old history trimmed from the middle of its prompt: the
new prompt is then the cached tokens with a span removed, plus new tokens at the end. Instead of
evaluating everything after the removed span again, the engine removes that span from the KV
cache and shifts the rest left (as koboldcpp's ContextShift does). The tokens after the span keep
attention values computed while the span was still there, an approximation that in practice
predicts the same text.

Volatile parts change in the middle too: a world-info entry starts firing near the top, the
author's note appears four messages from the end, an entry inserted at a depth moves down with
the story. With ``insert=True`` the plan also lists spans of the prompt that are new in the
middle: the engine shifts the cached tokens after them to the right and evaluates only the new
span at its positions. Tokens after an inserted span did not see it (the same approximation,
the other way round); everything evaluated after it, the turn's new text included, does.

This module only plans; :mod:`storyteller.engines.llamacpp` applies the plan to llama.cpp.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported lazily: it must never load before llama_cpp (see engines.native)
    import numpy as np

__all__ = ["Block", "ReusePlan", "plan_reuse"]

MIN_RUN = 16
"""A removed span is only assumed when at least this many tokens match after it: shorter runs
(a repeated ``\\nUser:``) would be coincidences."""
MIN_PREFIX = 3
"""Edits with insertions need at least this many tokens shared from the start: the template's
opening turn (``<|im_start|>system\n`` is three tokens in ChatML), so a prompt whose system
prompt changed (a group in ``swap`` mode, where one member's card brings its own) keeps its
history, while a prompt that starts differently from its first tokens is a new prompt."""


@dataclass(frozen=True, slots=True)
class Block:
    """A run of cached tokens reused at a (possibly different) place in the prompt."""

    cache_start: int
    prompt_start: int
    length: int

    @property
    def delta(self) -> int:
        """How far the block moves: positive to the right."""
        return self.prompt_start - self.cache_start


@dataclass(slots=True)
class ReusePlan:
    """How much of a new prompt the cache already holds.

    Attributes:
        prefix: Tokens shared from the start, untouched.
        reused: Prompt tokens covered by the cache after the removals (>= prefix).
        removals: Spans ``(start, end)`` of the cached tokens to remove, in the cache's
            original positions, in order.
        diverged_at: Where the prompt first differs from the cache (``None`` if it never does).
        blocks: With insertions planned: the cached runs kept, in order (the prefix first).
        inserts: With insertions planned: spans ``(start, end)`` of the prompt, before
            ``reused``, that are not in the cache and are evaluated in place.
    """

    prefix: int
    reused: int
    removals: list[tuple[int, int]] = field(default_factory=list)
    diverged_at: int | None = None
    blocks: list[Block] = field(default_factory=list)
    inserts: list[tuple[int, int]] = field(default_factory=list)

    @property
    def shifted(self) -> int:
        """Reused tokens that had to be moved to new positions."""
        if self.blocks:
            return sum(b.length for b in self.blocks if b.delta)
        return self.reused - self.prefix if self.removals else 0

    @property
    def inserted(self) -> int:
        """Prompt tokens evaluated in the middle, before ``reused``."""
        return sum(end - start for start, end in self.inserts)

    @property
    def kept(self) -> int:
        """Cached tokens reused, wherever they end up."""
        return self.reused - self.inserted

    def limit(self, n: int) -> None:
        """Cover at most the first ``n`` prompt tokens; the rest is evaluated as the tail."""
        if self.reused <= n:
            return
        if not self.blocks:
            self.reused = max(n, 0)
            return
        blocks = []
        for block in self.blocks:
            if block.prompt_start >= n:
                break
            blocks.append(Block(block.cache_start, block.prompt_start, min(block.length, n - block.prompt_start)))
        self.blocks = blocks
        last = blocks[-1] if blocks else None
        self.reused = last.prompt_start + last.length if last else 0
        self.inserts = [(a, b) for a, b in self.inserts if b <= self.reused]
        cache_end = last.cache_start + last.length if last else 0
        self.removals = [(a, b) for a, b in self.removals if b <= cache_end]

    @property
    def removed(self) -> int:
        """Cached tokens dropped from the middle."""
        return sum(end - start for start, end in self.removals)


def _lcp(a: np.ndarray, b: np.ndarray) -> int:
    import numpy as np

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
               min_run: int = MIN_RUN, insert: bool = False) -> ReusePlan:
    """Plan how to reuse ``cached`` tokens for ``prompt``.

    Args:
        cached: Tokens whose KV values the cache holds, by position.
        prompt: The new prompt's tokens.
        shift: Allow removing spans from the middle of the cache.
        min_run: Least number of matching tokens after a span for it to count as removed.
        insert: Also allow spans of new tokens in the middle of the prompt (needs ``shift``).
    """
    import numpy as np

    c = np.asarray(cached, dtype=np.int32)
    p = np.asarray(prompt, dtype=np.int32)
    prefix = _lcp(c, p)
    plan = ReusePlan(prefix=prefix, reused=prefix, diverged_at=prefix if prefix < len(p) else None)
    if shift and insert:
        return _plan_edits(c, p, plan, min_run)
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


def _plan_edits(c: np.ndarray, p: np.ndarray, plan: ReusePlan, min_run: int) -> ReusePlan:
    """Align the prompt with the cache: kept runs, removed cache spans, inserted prompt spans.

    The alignment is difflib's (longest matching run first, then the same on each side), so a
    run that moved a little never costs a long one; runs shorter than ``min_run`` tokens are
    coincidences and count as new. Runs are never reordered.
    """
    prefix = plan.prefix
    if prefix == len(c) or prefix == len(p) or prefix < MIN_PREFIX:
        # The prompt extends the cache (or is part of it): nothing to align. Or it starts
        # differently: every cached value leans on the first tokens (the "attention sink"),
        # so a prompt with a new beginning is a new prompt.
        plan.blocks = [Block(0, 0, prefix)] if prefix else []
        return plan
    matcher = difflib.SequenceMatcher(None, c[prefix:].tolist(), p[prefix:].tolist(), autojunk=False)
    blocks = [Block(0, 0, prefix)]
    for a, b, size in matcher.get_matching_blocks():
        if size >= min_run:
            blocks.append(Block(prefix + a, prefix + b, size))
    i = j = prefix
    for block in blocks[1:]:
        if block.cache_start > i:
            plan.removals.append((i, block.cache_start))
        if block.prompt_start > j:
            plan.inserts.append((j, block.prompt_start))
        i, j = block.cache_start + block.length, block.prompt_start + block.length
    plan.blocks = blocks
    plan.reused = j  # new text after the last kept run is the tail, evaluated as usual
    return plan
