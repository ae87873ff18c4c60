"""The narrator benchmark's arithmetic: verdicts per reply, rates, and the doc table."""

from __future__ import annotations

import json

from bench import narrator_bench


def _row(turn: int, shown: str, raw: list[str], kind: str = "do", typed: str = "look around") -> dict:
    names = ["Narrator of Hollowmere", "Narrator", "User"]
    return {"turn": turn, "kind": kind, "input": typed, "shown": shown, "raw": raw,
            "shown_verdict": narrator_bench.classify(shown, kind, typed, names), "raw_player_turn": False,
            "raw_label": False, "finish_reason": "length", "trimmed": False, "template": "chatml"}


def test_rates_come_from_the_reply_filter_rules(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STORYTELLER_BENCH_HOME", str(tmp_path))
    rows = [
        _row(1, "The fog thins. You see a lamp.", ["The fog thins. You see a lamp."]),
        _row(2, "The fog thins.", ["The fog thins. You kiss him on the cheek."]),
        _row(3, "Scenario: a marsh\nThe reeds bend.", ["Scenario: a marsh\nThe reeds bend."]),
        _row(4, 'You answer, "I am no priest."', ['You answer, "I am no priest."']),
    ]
    path = narrator_bench.progress_path("after")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([json.dumps({"model": "m", "reply_tokens": 60}), *map(json.dumps, rows)]) + "\n")
    result = narrator_bench.from_progress("after", 100)
    assert result["turns"] == 4
    assert result["player_turn_rate"] == 0.25  # turn 4
    assert result["raw_player_turn_rate"] == 0.5  # turns 2 and 4: judged again from the raw text
    assert result["label_rate"] == 0.25 and result["raw_label_rate"] == 0.25
    table = narrator_bench._markdown(None, result)
    assert "| replies that play the player (shown) | n/a | 25% |" in table
    assert narrator_bench.from_progress("after", 2)["turns"] == 2
