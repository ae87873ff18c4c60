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


def _group_prompt(msgs: list[list[int]], first: int, last: int, *, note: bool, lore: list[int], speaker: int,
                  nudge: bool) -> list[int]:
    """Token ids shaped like a joined group prompt: a head, lore entries, the cards, the history
    (the author's note four messages from the end), the nudge, the reply header."""
    head, card = list(range(1, 45)), list(range(100, 600))
    entries = [[900 + k * 40 + i for i in range(31)] for k in lore]
    history: list[int] = []
    for i in range(first, last):
        if note and i == last - 4:
            history += [40, 41, *range(700, 725), 42]
        history += msgs[i]
    header = [20, 21, 22 + speaker, 30]
    return head + sum(entries, []) + card + history + ([40, 41, 600, 601, 22 + speaker, 42] if nudge else []) + header


def _ideal_new(cached: list[int], prompt: list[int], least: int = 8) -> int:
    """What an ideal cache still reads: the prompt less every common run of ``least`` tokens or more."""
    import difflib

    matcher = difflib.SequenceMatcher(None, cached, prompt, autojunk=False)
    return len(prompt) - sum(b.size for b in matcher.get_matching_blocks() if b.size >= least)


def test_group_turns_read_what_an_ideal_cache_reads() -> None:
    """A group reply brings several edits at once: the oldest messages trimmed, the author's note
    in, out or moved, two lore entries swapped at the head, the previous nudge gone. Every message
    starts with the same few header tokens, so short runs repeat everywhere; the plan must still
    keep every long run an ideal cache keeps (with or without the nudge)."""
    import random

    rng = random.Random(3)
    msgs = []
    for n in range(160):
        r = random.Random(n)
        header = [10, 11, 12] if n % 3 == 0 else [20, 21, 22 + n % 3, 30]
        msgs.append(header + [r.randrange(2000, 2100) for _ in range(r.randrange(20, 60))] + [99])
    for nudge in (True, False):
        excess = []
        for t in range(30, 150):
            first = t - 25
            cached = _group_prompt(msgs, first, t, note=t % 3 > 0, lore=[0, 1] if t % 5 else [1, 0],
                                   speaker=t % 3, nudge=nudge) + msgs[t][4:]  # + the reply it generated
            first += rng.choice([0, 0, 1, 2])
            prompt = _group_prompt(msgs, first, t + 1, note=(t + 1) % 3 > 0, lore=[0, 1] if (t + 1) % 5 else [1, 0],
                                   speaker=(t + 1) % 3, nudge=nudge)
            plan = plan_reuse(cached, prompt, insert=True)
            evaluated = len(prompt) - plan.kept
            excess.append(evaluated - _ideal_new(cached, prompt))
        assert max(excess) <= 0, f"the plan read more than an ideal cache (nudge={nudge}): {excess}"


def test_a_new_system_prompt_keeps_the_history_after_it() -> None:
    """A group in swap mode: one member's card brings its own system prompt, so the prompt differs
    from its fourth token (after ``<|im_start|>system\\n``); the history after the cards is kept."""
    opening, history = [1, 2, 3], list(range(5000, 5600))
    cached = opening + list(range(100, 140)) + list(range(300, 700)) + history + [9] * 20
    prompt = opening + list(range(200, 230)) + list(range(800, 1100)) + history + [7, 8]
    plan = plan_reuse(cached, prompt, insert=True)
    assert plan.prefix == 3 and plan.kept == 3 + len(history)
    assert plan.inserts == [(3, 333)] and plan.removals == [(3, 443)]  # the new system prompt and card
    assert len(prompt) - plan.kept == 330 + 2  # they and the new text are all that is read
