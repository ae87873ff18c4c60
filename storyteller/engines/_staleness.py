"""Bounded staleness: which cached tokens no longer match their context, and what to do about it.

A token's key and value vectors are computed from everything before it. When the engine keeps
cached tokens across an edit (a span removed before them, a lore entry inserted before them),
they keep values computed against a context that no longer exists: they are *stale*. The
prediction at the end of the prompt leans on them, so staleness costs quality, and it piles up:
a token that sat behind twenty edits is further off than one that sat behind one.

:class:`StalenessTracker` follows, per cached position, how many edits a token has missed, since
which turn, and the first edit that made it stale. :func:`apply_policy` then shapes the reuse
plan of :mod:`~storyteller.engines._kvcache` by the ``engine.cache_reuse`` setting:

- ``exact``: the unchanged prefix, plus one span removed right after it (koboldcpp's FastForward
  and ContextShift); an insertion or any later edit means the rest is evaluated again.
- ``fast``: every kept run is reused, wherever it moved (the plan as it comes).
- ``balanced``: like ``fast``, but the first tokens right after each edit, whose values differ
  most from a fresh evaluation (CacheBlend, EuroSys 2025), are evaluated again in place; the
  last cached tokens before the new text (the recent messages the reply's first token leans on
  most) are never kept stale; and when the stale tokens have missed too many edits, everything
  from the first stale token on is evaluated again.

Recomputing tokens in place needs no new machinery: a recomputed run is planned as a removed
cache span plus an inserted prompt span at the same place, which the engine already applies.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from storyteller.engines._kvcache import Block, ReusePlan

__all__ = ["POLICIES", "Decision", "Policy", "StaleSpan", "StalenessTracker", "apply_policy", "edit_points"]

Policy = Literal["exact", "balanced", "fast"]
POLICIES: tuple[str, ...] = ("exact", "balanced", "fast")

RECOMPUTE_WINDOW = 16
"""``balanced``: tokens right after each edit that are evaluated again. On the cache benchmark's
story (``bench cache_quality``) this halved the mean KL against a fresh evaluation (0.029 nats
against 0.06 without it), for 1.6 times the new tokens."""
RECENT_WINDOW = 192
"""``balanced``: stale tokens among the last this many reused ones (right before the new text)
are evaluated again, with everything after them: the reply's first token leans on them most.
In a 12-turn paired replay of ``bench cache_quality``'s story (``bench/cache_replay.py``), mean
KL against a fresh evaluation went 0.072 nats (``fast``) -> 0.018 (the window alone) -> 0.008
(window and 128 recent) -> 0.003 (window and 256), for 1.5, 1.9 and 2.6 times the new tokens;
with 192, ``bench cache_quality`` measured 0.0055 over 24 turns at 2.6 times (docs/benchmarks.md)."""
EDIT_LIMIT = 32
"""``balanced``: a token that has missed this many edits triggers a re-evaluation from the first
stale token on."""
STALE_SHARE = 0.5
"""``balanced``: ... as does a prompt whose stale tokens have missed, on average over all its
tokens, more edits than ``STALE_SHARE * EDIT_LIMIT``."""


@dataclass(frozen=True, slots=True)
class StaleSpan:
    """A run of cached tokens that missed the same number of edits since the same turn."""

    start: int
    end: int
    edits: int
    since: int
    cause: str


class StalenessTracker:
    """Per cached position: edits missed, the turn it first went stale, and why."""

    def __init__(self) -> None:
        self.turn = 0
        self._edits: list[int] = []
        self._since: list[int] = []
        self._cause: list[str] = []

    def __len__(self) -> int:
        return len(self._edits)

    def reset(self) -> None:
        """Forget everything: the cache was cleared or replaced."""
        self._edits, self._since, self._cause = [], [], []

    def sync(self, n: int) -> None:
        """Match a cache of ``n`` tokens: tokens past what was tracked were evaluated fresh."""
        if len(self._edits) > n:
            del self._edits[n:], self._since[n:], self._cause[n:]
        else:
            pad = n - len(self._edits)
            self._edits += [0] * pad
            self._since += [0] * pad
            self._cause += [""] * pad

    def edits(self, position: int) -> int:
        """Edits the token at ``position`` has missed (0: exact)."""
        return self._edits[position] if position < len(self._edits) else 0

    def stale_tokens(self) -> int:
        """Cached tokens that missed at least one edit."""
        return sum(1 for e in self._edits if e)

    def token_edits(self) -> int:
        """Edits missed, summed over the cached tokens."""
        return sum(self._edits)

    def spans(self) -> list[StaleSpan]:
        """The stale runs, in order."""
        out: list[StaleSpan] = []
        start = 0
        n = len(self._edits)
        for i in range(1, n + 1):
            if i == n or (self._edits[i], self._since[i], self._cause[i]) != (
                    self._edits[start], self._since[start], self._cause[start]):
                if self._edits[start]:
                    out.append(StaleSpan(start, i, self._edits[start], self._since[start], self._cause[start]))
                start = i
        return out

    def project(self, plan: ReusePlan, causes: list[tuple[int, str]] | None = None) -> StalenessTracker:
        """The tracker as it would be once ``plan`` is applied (prompt tokens ``0..reused``).

        ``causes``: the edits in words, by prompt position, as planned before a policy moved
        them (a recomputed run shifts an edit's place but not what happened).
        """
        turn = self.turn + 1
        out = StalenessTracker()
        out.turn = turn
        n = plan.reused
        out._edits, out._since, out._cause = [0] * n, [0] * n, [""] * n
        blocks = plan.blocks or _blocks_of(plan)
        # Count the edits as planned: a run a policy evaluated again is fresh, and the seam it
        # leaves in the plan is not one more edit for the tokens after it.
        points = edit_points(plan) if causes is None else causes
        k = 0
        for block in blocks:
            for i in range(block.length):
                p, c = block.prompt_start + i, block.cache_start + i
                if p >= n:
                    break
                while k < len(points) and points[k][0] <= p:
                    k += 1
                extra = k  # edits before this token in this turn
                e, since, cause = self.edits(c), self._since[c] if c < len(self._since) else 0, \
                    self._cause[c] if c < len(self._cause) else ""
                if extra and not e:
                    since, cause = turn, _cause_at(causes or points, p, k)
                out._edits[p], out._since[p], out._cause[p] = e + extra, since, cause
            k = 0
        return out

    def adopt(self, other: StalenessTracker) -> None:
        """Take ``other``'s state (a projection that was applied)."""
        self.turn = other.turn
        self._edits, self._since, self._cause = other._edits, other._since, other._cause

    def summary(self) -> str:
        """One phrase for the cache report."""
        stale = self.stale_tokens()
        if not stale:
            return "no cached token is stale"
        worst = max(self._edits)
        oldest = min(s for s, e in zip(self._since, self._edits, strict=True) if e)
        first = next(i for i, e in enumerate(self._edits) if e)
        return (f"{stale} of {len(self._edits)} cached tokens stale (missed up to {worst} edits, "
                f"the oldest since generation {oldest}, now {self.turn}; the first at token {first}: "
                f"{self._cause[first]} in generation {self._since[first]})")


def _cause_at(points: list[tuple[int, str]], p: int, count: int) -> str:
    """The last edit before prompt position ``p``, in words, and how many more came before."""
    known = [text for at, text in points if at <= p] or [points[0][1]]
    return known[-1] if count <= 1 else f"{known[-1]} (and {count - 1} more before it)"


def _blocks_of(plan: ReusePlan) -> list[Block]:
    """Kept runs of a plan made without insertions (prefix, then runs after each removal)."""
    blocks = [Block(0, 0, plan.prefix)] if plan.prefix else []
    i = j = plan.prefix
    for start, end in plan.removals:
        if start > i:  # cannot happen for plans from plan_reuse; kept for safety
            blocks.append(Block(i, j, start - i))
            j += start - i
        i = end
    if plan.reused > j:
        blocks.append(Block(i, j, plan.reused - j))
    return blocks


def edit_points(plan: ReusePlan) -> list[tuple[int, str]]:
    """Prompt positions of kept runs that follow an edit, with the edit in words."""
    blocks = plan.blocks or _blocks_of(plan)
    points: list[tuple[int, str]] = []
    for before, block in itertools.pairwise(blocks):
        gap_cache = block.cache_start - (before.cache_start + before.length)
        gap_prompt = block.prompt_start - (before.prompt_start + before.length)
        parts = []
        if gap_cache > 0:
            parts.append(f"{gap_cache} tokens removed")
        if gap_prompt > 0:
            parts.append(f"{gap_prompt} tokens inserted")
        if parts:
            points.append((block.prompt_start, " and ".join(parts) + f" before token {block.prompt_start}"))
    return points


@dataclass(slots=True)
class Decision:
    """What a policy did to a plan, for the cache report."""

    policy: str
    recomputed: int = 0
    reevaluated_from: int | None = None
    why: str = ""
    projection: StalenessTracker | None = None

    def note(self) -> str:
        """The policy's part of the cache report."""
        parts = [f"policy {self.policy}"]
        if self.recomputed:
            parts.append(f"recomputed {self.recomputed} tokens right after edits")
        if self.reevaluated_from is not None:
            parts.append(f"evaluated again from token {self.reevaluated_from} ({self.why})")
        if self.projection is not None:
            parts.append(self.projection.summary())
        return "; ".join(parts)


def apply_policy(plan: ReusePlan, tracker: StalenessTracker, policy: str, *,
                 window: int | None = None, edit_limit: int | None = None,
                 stale_share: float | None = None, recent: int | None = None) -> Decision:
    """Shape ``plan`` (in place) by the reuse policy; returns what was done and the staleness after.

    Args:
        plan: A plan from :func:`~storyteller.engines._kvcache.plan_reuse` (with insertions, for
            ``balanced`` to recompute in place).
        tracker: The staleness of the cache the plan reads.
        policy: ``exact``, ``balanced`` or ``fast``.
        window: ``balanced``: tokens recomputed after each edit.
        edit_limit: ``balanced``: edits a token may miss before a re-evaluation.
        stale_share: ``balanced``: mean edits missed per prompt token, as a share of
            ``edit_limit``, that also triggers one.
        recent: ``balanced``: the last reused tokens that are never kept stale.

    Unset limits take the module's constants at the time of the call.
    """
    window = RECOMPUTE_WINDOW if window is None else window
    edit_limit = EDIT_LIMIT if edit_limit is None else edit_limit
    stale_share = STALE_SHARE if stale_share is None else stale_share
    recent = RECENT_WINDOW if recent is None else recent
    decision = Decision(policy)
    causes = edit_points(plan)
    if policy == "exact":
        blocks = plan.blocks or _blocks_of(plan)
        front_shift = (not plan.inserts and len(blocks) <= 2
                       and all(b.prompt_start == plan.prefix for b in blocks[1:]))
        if (plan.removals or plan.inserts) and not front_shift:
            _cut(plan, _first_edit(plan))
            decision.reevaluated_from = plan.reused
            decision.why = "the prompt changed in the middle"
    elif policy == "balanced" and plan.blocks:
        decision.recomputed = _recompute_after_edits(plan, window)
    projection = tracker.project(plan, causes)
    if policy == "balanced" and recent > 0 and projection.stale_tokens():
        edge = max(plan.prefix, plan.reused - recent)
        late = next((i for i in range(edge, len(projection)) if projection._edits[i]), None)
        if late is not None:
            _cut(plan, late)
            decision.reevaluated_from = plan.reused
            decision.why = f"stale tokens among the last {recent} before the new text"
            decision.recomputed = min(decision.recomputed, plan.inserted)
            projection = tracker.project(plan, causes)
    if policy == "balanced" and projection.stale_tokens():
        worst = max(projection._edits)
        mean = projection.token_edits() / max(1, plan.reused)
        if worst >= edit_limit or mean > stale_share * edit_limit:
            first = next(i for i, e in enumerate(projection._edits) if e)
            _cut(plan, first)
            decision.reevaluated_from = plan.reused
            decision.why = (f"a cached token missed {worst} edits" if worst >= edit_limit
                            else f"cached tokens missed {mean:.1f} edits on average")
            projection = tracker.project(plan, causes)
    decision.projection = projection
    return decision


def _first_edit(plan: ReusePlan) -> int:
    points = edit_points(plan)
    return points[0][0] if points else plan.reused


def _cut(plan: ReusePlan, n: int) -> None:
    """Reuse at most the plan's first ``n`` prompt tokens; the rest is evaluated again."""
    if plan.blocks:
        plan.limit(n)  # also drops the inserts past the last kept run: they become tail
    else:
        plan.reused = min(plan.reused, n)
        plan.removals = [] if n <= plan.prefix else plan.removals


def _recompute_after_edits(plan: ReusePlan, window: int) -> int:
    """Turn the first ``window`` tokens of each kept run after an edit into an in-place insert."""
    if window <= 0:
        return 0
    edited_starts = {p for p, _ in edit_points(plan)}
    spans = [(b.prompt_start, b.prompt_start + window) for b in plan.blocks[1:] if b.prompt_start in edited_starts]
    return _recompute_spans(plan, spans)


def _recompute_spans(plan: ReusePlan, spans: Sequence[tuple[int, int]]) -> int:
    """Turn the kept tokens inside ``spans`` (prompt positions) into in-place inserts.

    The first kept run (the unchanged prefix) is never touched: it is exact. Returns how many
    tokens will be evaluated again.
    """
    if not spans or not plan.blocks:
        return 0
    wanted = _merge(sorted(spans))
    blocks: list[Block] = [plan.blocks[0]]
    inserts = list(plan.inserts)
    recomputed = 0
    for block in plan.blocks[1:]:
        at, end = block.prompt_start, block.prompt_start + block.length
        for a, b in wanted:
            a, b = max(a, at), min(b, end)
            if a >= b:
                continue
            if a > at:
                blocks.append(Block(block.cache_start + (at - block.prompt_start), at, a - at))
            inserts.append((a, b))
            recomputed += b - a
            at = b
        if at < end:
            blocks.append(Block(block.cache_start + (at - block.prompt_start), at, end - at))
    plan.blocks = blocks
    plan.inserts = _merge(sorted(inserts))
    # Removals follow from the blocks: everything of the cache outside them goes.
    removals, end = [], blocks[0].cache_start + blocks[0].length if blocks else 0
    for block in blocks[1:]:
        if block.cache_start > end:
            removals.append((end, block.cache_start))
        end = block.cache_start + block.length
    plan.removals = removals
    last = blocks[-1] if blocks else None
    kept_end = last.prompt_start + last.length if last else 0
    # A recomputed run at the very end of the reused part is just more tail.
    while plan.inserts and plan.inserts[-1][0] >= kept_end:
        plan.inserts.pop()
    plan.reused = kept_end
    return min(recomputed, sum(b - a for a, b in plan.inserts))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
