"""Property tests: activation never raises on random books and chats, and keeps the budget."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storyteller.lore import Lorebook, TimedEffectsState, WorldEntry, WorldInfoSettings, activate

WORDS = ["fog", "bell", "Bell", "lantern", "東京", "café", "/fo+g/i", "/(a|b)*c/", "mud", "x y", ""]
text = st.lists(st.sampled_from(WORDS + ["and", "the", "!"]), max_size=12).map(" ".join)

entries = st.builds(
    WorldEntry,
    uid=st.integers(0, 50),
    keys=st.lists(st.sampled_from(WORDS), max_size=3),
    secondary_keys=st.lists(st.sampled_from(WORDS), max_size=2),
    selective_logic=st.integers(0, 3),
    content=text,
    constant=st.booleans(),
    order=st.integers(-5, 500),
    position=st.integers(0, 7),
    probability=st.integers(0, 100),
    use_probability=st.booleans(),
    group=st.sampled_from(["", "g", "g, h", "h"]),
    group_override=st.booleans(),
    group_weight=st.integers(0, 200),
    prevent_recursion=st.booleans(),
    exclude_recursion=st.booleans(),
    delay_until_recursion=st.integers(0, 3),
    scan_depth=st.none() | st.integers(0, 5),
    case_sensitive=st.none() | st.booleans(),
    match_whole_words=st.none() | st.booleans(),
    sticky=st.none() | st.integers(0, 3),
    cooldown=st.none() | st.integers(0, 3),
    delay=st.none() | st.integers(0, 3),
    ignore_budget=st.booleans(),
)


def _dedupe(items: list[WorldEntry]) -> list[WorldEntry]:
    seen: dict[int, WorldEntry] = {}
    for item in items:
        seen.setdefault(item.uid, item)
    return list(seen.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    books=st.lists(st.lists(entries, max_size=8).map(_dedupe), min_size=1, max_size=2),
    messages=st.lists(text, max_size=6),
    budget=st.integers(0, 100),
    context=st.integers(1, 400),
    min_act=st.integers(0, 3),
    steps=st.integers(0, 3),
    seed=st.integers(0, 1000),
)
def test_activation_never_raises_and_keeps_budget(books, messages, budget, context, min_act, steps, seed) -> None:
    lorebooks = [Lorebook(name=f"b{i}", entries=b) for i, b in enumerate(books)]
    config = WorldInfoSettings(budget_percent=budget, min_activations=min_act, max_recursion_steps=steps)
    state = TimedEffectsState()
    for turn in range(2):
        result = activate(lorebooks, messages[: len(messages) - 1 + turn] if messages else [], settings=config,
                          max_context=context, count_tokens=len, rng=random.Random(seed), timed=state)  # fmt: skip
        state = result.timed
        assert result.tokens_used < result.budget or result.tokens_used == 0
        counted = sum(a.tokens for a in result.activated if not _free(lorebooks, a.key))
        assert counted <= result.tokens_used
        assert len(result.trace) == sum(len(b.entries) for b in lorebooks)
        assert {a.key for a in result.activated} <= {t.key for t in result.trace if t.status == "activated"}


def _free(books: list[Lorebook], key: str) -> bool:
    name, uid = key.rsplit(".", 1)
    book = next(b for b in books if b.name == name)
    return book.entry(int(uid)).ignore_budget
