"""The repetition benchmark's measures, on hand-made replies."""

from __future__ import annotations

from bench.repetition_bench import distinct_2, repeated_runs


def test_a_twelve_token_run_from_an_earlier_reply_counts() -> None:
    first = list(range(100, 130))
    second = [1, 2] + first[5:17] + [3]  # 12 tokens of the first reply
    third = [7, 8] + first[5:16] + [9]  # only 11
    assert repeated_runs([first, second, third]) == [None, 0, None]


def test_repeats_inside_one_reply_do_not_count() -> None:
    reply = list(range(12)) * 2
    assert repeated_runs([reply]) == [None]
    assert repeated_runs([reply, list(range(12))]) == [None, 0]


def test_distinct_2_counts_word_pairs_over_all_replies() -> None:
    assert distinct_2(["a b c", "d e"]) == 1.0
    assert distinct_2(["the fog rolls", "the fog rolls"]) == 0.5  # 2 distinct pairs of 4
    assert distinct_2(["The, fog", "the fog"]) == 0.5  # case and punctuation do not make pairs new
