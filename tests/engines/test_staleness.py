"""Reuse policies and staleness tracking on plans (no model needed)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storyteller.engines._kvcache import plan_reuse
from storyteller.engines._staleness import StalenessTracker, apply_policy, edit_points

HEAD = list(range(1000, 1040))  # 40 tokens that never change (system prompt)
LORE = list(range(2000, 2030))
CARD = list(range(3000, 3100))
OLD = list(range(4000, 4060))
HIST = list(range(5000, 5200))
NEW = [7, 8, 9, 10]


def _covers(plan, cached: list[int], prompt: list[int]) -> None:
    """Kept runs hold the prompt's tokens; kept runs and inserts tile [0, reused) exactly."""
    seen = [0] * plan.reused
    for b in plan.blocks:
        assert cached[b.cache_start: b.cache_start + b.length] == prompt[b.prompt_start: b.prompt_start + b.length]
        for i in range(b.prompt_start, b.prompt_start + b.length):
            seen[i] += 1
    for a, z in plan.inserts:
        assert z <= plan.reused
        for i in range(a, z):
            seen[i] += 1
    assert seen == [1] * plan.reused


def _plan(cached, prompt):
    return plan_reuse(cached, prompt, insert=True)


def test_fast_keeps_the_plan_and_counts_the_stale_tokens() -> None:
    cached, prompt = HEAD + CARD + OLD + HIST, HEAD + LORE + CARD + HIST + NEW
    plan = _plan(cached, prompt)
    before = (list(plan.blocks), list(plan.inserts))
    decision = apply_policy(plan, StalenessTracker(), "fast")
    assert (plan.blocks, plan.inserts) == before
    stale = decision.projection
    # The card missed the lore's insertion; the history missed that and the removal.
    assert stale.edits(40 + 30) == 1 and stale.edits(40 + 30 + 100 + 5) == 2
    assert stale.edits(5) == 0 and stale.stale_tokens() == len(CARD) + len(HIST)
    assert [s.edits for s in stale.spans()] == [1, 2]
    assert "30 tokens inserted" in stale.spans()[0].cause


def test_exact_reevaluates_after_an_insertion() -> None:
    cached, prompt = HEAD + CARD + HIST, HEAD + LORE + CARD + HIST + NEW
    plan = _plan(cached, prompt)
    decision = apply_policy(plan, StalenessTracker(), "exact")
    assert plan.reused == len(HEAD) and not plan.inserts
    assert decision.reevaluated_from == len(HEAD)
    assert decision.projection.stale_tokens() == 0


def test_exact_allows_a_removal_right_after_the_prefix() -> None:
    cached, prompt = HEAD + OLD + HIST, HEAD + HIST + NEW
    plan = _plan(cached, prompt)
    apply_policy(plan, StalenessTracker(), "exact")
    assert plan.reused == len(HEAD) + len(HIST) and plan.removals == [(40, 100)]


def test_exact_refuses_a_second_removal_further_in() -> None:
    cached, prompt = HEAD + LORE + CARD + OLD + HIST, HEAD + CARD + HIST + NEW
    plan = _plan(cached, prompt)
    assert len(plan.removals) == 2
    apply_policy(plan, StalenessTracker(), "exact")
    assert plan.reused == len(HEAD) and not plan.removals


def test_balanced_recomputes_the_tokens_after_each_edit() -> None:
    cached, prompt = HEAD + CARD + OLD + HIST, HEAD + LORE + CARD + HIST + NEW
    plan = _plan(cached, prompt)
    decision = apply_policy(plan, StalenessTracker(), "balanced", window=8, recent=0)
    _covers(plan, cached, prompt)
    card_at, hist_at = len(HEAD) + len(LORE), len(HEAD) + len(LORE) + len(CARD)
    assert (len(HEAD), card_at + 8) in plan.inserts  # the lore plus the card's first 8 tokens
    assert (hist_at, hist_at + 8) in plan.inserts
    assert decision.recomputed == 16 and plan.inserted == len(LORE) + 16
    assert decision.projection.edits(card_at + 3) == 0 and decision.projection.edits(card_at + 20) == 1


def test_balanced_reevaluates_once_staleness_piles_up() -> None:
    tracker = StalenessTracker()
    cached = HEAD + CARD + HIST
    for turn in range(30):
        lore = LORE if turn % 2 else []
        prompt = HEAD + lore + CARD + HIST
        plan = _plan(cached, prompt)
        decision = apply_policy(plan, tracker, "balanced", window=4, edit_limit=6, recent=0)
        _covers(plan, cached, prompt)
        tracker.adopt(decision.projection)
        tracker.sync(len(prompt))
        assert max((s.edits for s in tracker.spans()), default=0) < 6
        if decision.reevaluated_from is not None:
            # From the first stale token: the recomputed window after the edit stays.
            assert len(HEAD) <= decision.reevaluated_from <= len(HEAD) + 4
            assert plan.reused == decision.reevaluated_from
            assert tracker.stale_tokens() == 0
            break
        cached = prompt
    else:
        raise AssertionError("staleness never triggered a re-evaluation")
    assert 2 <= turn <= 5  # by the sixth edit at the latest


def test_balanced_never_keeps_the_last_tokens_before_the_new_text_stale() -> None:
    cached, prompt = HEAD + CARD + OLD + HIST, HEAD + LORE + CARD + HIST + NEW
    plan = _plan(cached, prompt)
    decision = apply_policy(plan, StalenessTracker(), "balanced", window=8, recent=50)
    _covers(plan, cached, prompt)
    end = len(HEAD) + len(LORE) + len(CARD) + len(HIST)
    # The history's last 50 tokens were stale: the plan now stops before them.
    assert plan.reused == end - 50 and decision.reevaluated_from == end - 50
    assert "among the last 50" in decision.why and "evaluated again from token" in decision.note()
    # What is still kept stale lies further back; the card's window stayed recomputed.
    assert decision.projection.edits(end - 51) == 2 and len(decision.projection) == end - 50
    assert decision.projection.edits(len(HEAD) + len(LORE) + 3) == 0


def test_balanced_leaves_fresh_recent_tokens_alone() -> None:
    cached, prompt = HEAD + CARD + HIST, HEAD + CARD + HIST + NEW  # an append: nothing stale
    plan = _plan(cached, prompt)
    decision = apply_policy(plan, StalenessTracker(), "balanced", recent=50)
    assert plan.reused == len(cached) and decision.reevaluated_from is None


def test_edit_points_name_what_happened() -> None:
    plan = _plan(HEAD + OLD + HIST, HEAD + LORE + HIST)
    assert edit_points(plan) == [(70, "60 tokens removed and 30 tokens inserted before token 70")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), max_size=80), st.lists(st.integers(0, 4), max_size=80),
       st.sampled_from(["exact", "balanced", "fast"]), st.integers(1, 6))
def test_every_policy_keeps_the_plan_consistent(cached: list[int], prompt: list[int], policy: str,
                                                window: int) -> None:
    cached = [9, 9, 9, 9] + cached
    prompt = [9, 9, 9, 9] + prompt
    plan = plan_reuse(cached, prompt, insert=True, min_run=3)
    decision = apply_policy(plan, StalenessTracker(), policy, window=window)
    assert plan.prefix <= plan.reused or plan.reused == plan.prefix
    if plan.blocks:
        _covers(plan, cached, prompt)
    assert len(decision.projection) == plan.reused
    if policy == "exact":
        assert not plan.inserts


def test_a_run_evaluated_again_mid_block_is_fresh_and_not_an_edit() -> None:
    from storyteller.engines._staleness import _recompute_spans

    cached, prompt = HEAD + CARD + HIST, HEAD + LORE + CARD + HIST + NEW
    plan = _plan(cached, prompt)
    causes = edit_points(plan)
    hist_at = len(HEAD) + len(LORE) + len(CARD)
    assert _recompute_spans(plan, [(hist_at + 10, hist_at + 12)]) == 2
    _covers(plan, cached, prompt)
    stale = StalenessTracker().project(plan, causes)
    assert stale.edits(hist_at + 10) == 0 and stale.edits(hist_at + 11) == 0  # evaluated again
    # The tokens after it missed the lore's insertion, and nothing else: the seam is no edit.
    assert stale.edits(hist_at + 12) == 1 and stale.edits(hist_at + 50) == 1
