"""Planning cache reuse: prefixes and removed spans."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from storyteller.engines._kvcache import plan_reuse


def test_prefix_only() -> None:
    plan = plan_reuse([1, 2, 3, 4], [1, 2, 3, 9, 9])
    assert (plan.prefix, plan.reused, plan.removals, plan.diverged_at) == (3, 3, [], 3)


def test_identical_and_extension() -> None:
    assert plan_reuse([1, 2, 3], [1, 2, 3]).reused == 3
    extended = plan_reuse([1, 2, 3], [1, 2, 3, 4])
    assert extended.reused == 3 and extended.diverged_at == 3


def test_removed_span_is_found() -> None:
    head, gone, tail = list(range(100, 110)), list(range(200, 250)), list(range(300, 340))
    plan = plan_reuse(head + gone + tail, head + tail + [7, 8, 9])
    assert plan.prefix == 10
    assert plan.removals == [(10, 60)]
    assert plan.reused == 50 and plan.shifted == 40 and plan.removed == 50


def test_two_removed_spans() -> None:
    a, x, b, y, c = (list(range(s, s + 20)) for s in (0, 100, 200, 300, 400))
    plan = plan_reuse(a + x + b + y + c, a + b + c + [1])
    assert plan.removals == [(20, 40), (60, 80)]
    assert plan.reused == 60


def test_short_coincidental_match_is_ignored() -> None:
    head = list(range(10))
    plan = plan_reuse(head + [50, 51, 52, 53] + [60] * 30, head + [52, 53, 99] + [70] * 30)
    assert plan.removals == [] and plan.reused == 10


def test_shift_off() -> None:
    head, gone, tail = list(range(10)), list(range(100, 120)), list(range(200, 240))
    plan = plan_reuse(head + gone + tail, head + tail, shift=False)
    assert plan.removals == [] and plan.reused == 10


@given(st.lists(st.integers(0, 5), max_size=60), st.lists(st.integers(0, 5), max_size=60), st.booleans())
def test_plan_is_always_consistent(cached: list[int], prompt: list[int], shift: bool) -> None:
    plan = plan_reuse(cached, prompt, shift=shift, min_run=3)
    assert 0 <= plan.prefix <= plan.reused <= len(prompt)
    # Removing the planned spans from the cache must give exactly the reused prompt tokens first.
    kept = [t for i, t in enumerate(cached) if not any(a <= i < b for a, b in plan.removals)]
    assert kept[: plan.reused] == prompt[: plan.reused]
    last = plan.prefix
    for a, b in plan.removals:
        assert last <= a < b <= len(cached)
        last = b
