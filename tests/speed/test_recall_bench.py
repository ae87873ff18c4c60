"""The recall benchmark's bookkeeping (its figures come from running it: docs/benchmarks.md)."""

from __future__ import annotations

from bench.recall_bench import FACTS, _contains, plan, summarize


def test_a_key_counts_only_as_a_whole_word() -> None:
    assert _contains("by the feast of Saint Odo.", ("Odo",))
    assert not _contains("the odour of peat", ("Odo",))
    assert _contains("Details: seventeen copper pennies.", ("seventeen", "17"))
    assert not _contains("170 pennies", ("seventeen", "17"))


def test_every_fact_is_planted_before_it_is_asked() -> None:
    for turns in (80, 200):
        plant, ask = plan(turns)
        planted = {fact.text: turn for turn, fact in plant.items()}
        assert len(ask) == len(FACTS) and all(planted[f.text] + 10 <= turn <= turns for turn, f in ask.items())


def test_shares_count_only_facts_that_had_left_the_context() -> None:
    rows = [{"pinned": False, "left_context": True, "in_prompt": True, "answered": False},
            {"pinned": False, "left_context": True, "in_prompt": False, "answered": False},
            {"pinned": False, "left_context": False, "in_prompt": True, "answered": True},
            {"pinned": True, "left_context": True, "in_prompt": True, "answered": True}]
    shares = summarize({"rows": rows})
    assert (shares["in_prompt_summarised"], shares["in_prompt_pinned"], shares["answered_summarised"]) == (50.0, 100.0, 0.0)
    assert shares["left_context"] == 3
