"""The group benchmark: its verdict on a reply, its script, its arithmetic, and one real turn through
``python -m bench group``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import group_bench

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["Halden Voss", "Wren Calloway", "Ink & Margin"]


def test_a_line_opened_by_another_members_or_the_players_marker_is_their_turn() -> None:
    def other(text: str, speaker: str = "Wren Calloway") -> str | None:
        return group_bench.other_turn(text, speaker, NAMES, "User")

    assert other('"Six winters," she says.') is None
    assert other("Wren Calloway: I keep the light.") is None, "the speaker's own marker is not another's turn"
    assert other("I keep the light.\nHalden Voss: Fuel costs money.") == "Halden Voss"
    assert other("Aye.\nhalden: and more") == "Halden Voss", "a first name, any case"
    assert other("Fine.\n*Ink & Margin: The page turns.") == "Ink & Margin"
    assert other("Well.\nUser: I leave.") == "User"
    assert other("[Ink & Margin: I'd love it if you went on.]") == "Ink & Margin", "a bracketed marker too"
    assert other("Pete: a name that is nobody's in the group.") is None
    assert other("She says Halden: the name, mid-line.") is None
    assert other("Aye.\nUser: go\nInk: then") == "User", "the first marker in the reply"


def test_the_script_is_fixed_and_names_members() -> None:
    lines = group_bench.group_script(40, NAMES)
    assert lines == group_bench.group_script(40, NAMES)
    assert lines != group_bench.group_script(40, NAMES, seed=8)
    named = [line for line in lines if any(n.split()[0] in line for n in NAMES)]
    assert 0.3 < len(named) / len(lines) < 0.9


def _row(turn: int, speaker: str, new: int, evaluated: int, *, overflow: bool = True, changed: bool = True,
         shown: str = "Aye.", raw: str = "Aye.", note: str = "", stopped: str | None = None) -> dict:
    return {"turn": turn, "input": "Hi.", "speaker": speaker, "speaker_changed": changed, "prompt_tokens": 1900,
            "new_tokens": new, "overflow": overflow, "evaluated": evaluated, "reused": 1800, "shifted": 0,
            "ttft": 0.5, "stable_prefix": 400, "attempts": 1, "shown": shown, "raw": [raw],
            "shown_other": None, "raw_other": None, "stopped_at_other": stopped,
            "stop_strings": [f"\n{stopped}:" if stopped else None], "cache_note": note, "loadavg": "1 1 1",
            "seconds": 10.0 * turn}


def test_figures_from_the_progress_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STORYTELLER_BENCH_HOME", str(tmp_path))
    rows = [
        _row(1, "Wren Calloway", 1200, 1200, overflow=False, changed=False),
        _row(2, "Halden Voss", 40, 56, note="reused 1800 of 1900 prompt tokens; recomputed 16 tokens right after edits"),
        _row(2, "Wren Calloway", 50, 50, raw="Aye.\nUser: I go.", stopped="Ink & Margin"),
        _row(3, "Wren Calloway", 100, 110, changed=False, shown="Aye.\nHalden: no.", raw="Aye.\nHalden: no."),
    ]
    path = group_bench.progress_path("join")
    path.write_text("\n".join([json.dumps({"mode": "join", "model": "m", "members": NAMES, "machine": "x",
                                           "loadavg_start": "2 2 2", "cache_reuse": "balanced"}),
                               *map(json.dumps, rows)]) + "\n")
    head, read = group_bench.read_progress("join")
    result = group_bench.summarise("join", head, read)
    assert result["turns"] == 3 and result["replies"] == 4 and result["overflow_replies"] == 3
    assert result["evaluated_over_new"] == round((56 / 40 + 1 + 1.1) / 3, 4)
    assert result["evaluated_over_new_median"] == 1.1
    assert result["evaluated_over_new_total"] == round(216 / 190, 4)
    assert result["full_reads"] == 0, "the first reply reads the whole prompt; it does not count"
    assert result["evaluated_over_new_without_full_reads"] == result["evaluated_over_new_total"]
    assert result["evaluated_over_new_speaker_changed"] == round(106 / 90, 4)
    assert result["recomputed_tokens"] == 16
    assert result["evaluated_over_new_without_recompute"] == round(200 / 190, 4)
    assert result["other_turn_rate"] == 0.25 and result["raw_other_turn_rate"] == 0.5
    assert result["stopped_at_other_rate"] == 0.25
    assert result["replies_by_speaker"] == {"Wren Calloway": 3, "Halden Voss": 1}
    assert group_bench.summarise("join", head, group_bench.read_progress("join", 2)[1])["replies"] == 3
    table = group_bench._markdown({"join": result})
    assert "| evaluated / new tokens (overflowing replies) | 1.17 | join <= 1.1 (missed) |" in table
    assert "| replies that write another's turn (shown) | 25.0% | < 5% (missed) |" in table


def test_one_real_turn_through_the_runner(tmp_path, smollm2_path) -> None:
    import pytest

    pytest.importorskip("llama_cpp")
    env = {**os.environ, "STORYTELLER_BENCH_OUT": str(tmp_path / "out"),
           "STORYTELLER_BENCH_HOME": str(tmp_path / "home"), "STORYTELLER_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "bench", "group", "--json", "--turns", "1", "--mode", "join",
                           "--threads", "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])["join"]
    assert result["turns"] == 1 and result["replies"] >= 1
    assert result["members"] == NAMES and result["overflow_replies"] == 0
    saved = json.loads((tmp_path / "out" / "results" / "group-join.json").read_text())
    first = saved["per_reply"][0]
    assert first["new_tokens"] == first["prompt_tokens"] > 500, "the first reply reads the whole prompt"
    assert first["evaluated"] >= first["prompt_tokens"] - 1
    assert first["speaker"] in NAMES and first["shown"] and "stopped_at_other" in first
    assert "## group" in (tmp_path / "out" / "benchmarks.md").read_text()


def test_the_policys_rereads_and_the_side_roads_are_told_apart(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STORYTELLER_BENCH_HOME", str(tmp_path))
    rows = [
        _row(1, "Wren Calloway", 1200, 1200, overflow=False, changed=False),
        _row(2, "Halden Voss", 40, 300, note="reused 1600 of 1900 prompt tokens; policy balanced; recomputed 20 "
             "tokens right after edits; evaluated again from token 1700 (stale tokens among the last 192)"),
        _row(3, "Wren Calloway", 50, 51),
    ]
    for row, asides in zip(rows, (0, 0, 1), strict=True):
        row["asides_before"], row["aside_evaluated"] = asides, 30 * asides
    group_bench.progress_path("join-balanced").write_text("\n".join(
        [json.dumps({"mode": "join", "members": NAMES, "cache_reuse": "balanced"}), *map(json.dumps, rows)]) + "\n")
    result = group_bench.summarise("join-balanced", *group_bench.read_progress("join-balanced"))
    # 20 after the edit, and 1900 - 1700 read again from a stale token less the 40 new ones
    assert result["policy_rereads"] == 20 + 160
    assert result["evaluated_over_new_total"] == round(351 / 90, 4)
    assert result["evaluated_over_new_without_policy_rereads"] == round((351 - 180) / 90, 4)
    assert result["asides"] == 1 and result["replies_after_aside"] == 1
    assert result["evaluated_over_new_after_aside"] == round(51 / 50, 4)
    assert result["evaluated_over_new_not_after_aside"] == round(300 / 40, 4)
    table = group_bench._markdown({"join-balanced": result})
    assert "| same, totals, less all the policy's re-reads (estimate: window after edits, stale tail) | 1.9 |" in table
