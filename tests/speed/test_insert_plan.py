"""Planning cache edits with insertions: the plan always rebuilds the prompt exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storyteller.engines._kvcache import MIN_PREFIX, plan_reuse


def _rebuild(cached: list[int], prompt: list[int], plan) -> list[int]:
    """The prompt's first ``reused`` tokens as the engine would hold them after the edits."""
    out: dict[int, int] = {}
    for block in plan.blocks:
        for k in range(block.length):
            out[block.prompt_start + k] = cached[block.cache_start + k]
    for start, end in plan.inserts:
        for k in range(start, end):
            assert k not in out, "an inserted token overlaps a kept one"
            out[k] = prompt[k]
    assert sorted(out) == list(range(plan.reused)), "the edits leave a hole"
    return [out[k] for k in range(plan.reused)]


def test_world_info_inserted_near_the_top_keeps_the_rest() -> None:
    head, lore, story, new = list(range(100, 120)), list(range(500, 540)), list(range(200, 400)), [7, 8, 9]
    plan = plan_reuse(head + story, head + lore + story + new, insert=True)
    assert plan.inserts == [(20, 60)]
    assert plan.removals == []
    assert plan.reused == 260 and plan.kept == 220 and plan.inserted == 40
    assert plan.shifted == 200  # the story moved right by the inserted entry


def test_note_removed_and_entry_replaced_in_one_plan() -> None:
    head, old, new_entry = list(range(100, 120)), list(range(500, 530)), list(range(600, 625))
    a, note, b = list(range(200, 300)), list(range(700, 720)), list(range(300, 380))
    cached = head + old + a + note + b
    prompt = head + new_entry + a + b + [1, 2]
    plan = plan_reuse(cached, prompt, insert=True)
    assert plan.inserts == [(20, 45)]
    assert plan.removals == [(20, 50), (150, 170)]
    assert _rebuild(cached, prompt, plan) == prompt[: plan.reused]
    assert plan.reused == len(prompt) - 2


def test_a_new_beginning_is_a_new_prompt() -> None:
    story = list(range(200, 400))
    plan = plan_reuse([1, 2] + story, [3, 4] + story, insert=True)
    assert MIN_PREFIX > 0 and plan.reused == 0 and not plan.inserts


def test_limit_leaves_the_last_token_to_evaluate() -> None:
    head, lore, story = list(range(100, 120)), list(range(500, 540)), list(range(200, 400))
    prompt = head + lore + story
    plan = plan_reuse(head + story, prompt, insert=True)
    plan.limit(len(prompt) - 1)
    assert plan.reused == len(prompt) - 1
    assert _rebuild(head + story, prompt, plan) == prompt[:-1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=0, max_size=80), st.lists(st.integers(0, 6), max_size=80),
       st.integers(0, 80))
def test_plan_always_rebuilds_the_prompt(cached: list[int], prompt: list[int], limit: int) -> None:
    cached = [9, 9, 9, 9] + cached
    prompt = [9, 9, 9, 9] + prompt
    plan = plan_reuse(cached, prompt, insert=True, min_run=3)
    assert _rebuild(cached, prompt, plan) == prompt[: plan.reused]
    plan.limit(limit)
    assert plan.reused <= max(limit, 0)
    assert _rebuild(cached, prompt, plan) == prompt[: plan.reused]
    last = 0
    for start, end in plan.removals:
        assert last <= start < end <= len(cached)
        last = end
