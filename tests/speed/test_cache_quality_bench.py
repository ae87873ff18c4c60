"""``python -m bench cache_quality``: the runner, on the real model, a few turns only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTELLER_BENCH_OUT": str(tmp_path / "out"),
           "STORYTELLER_BENCH_HOME": str(tmp_path / "home"), "STORYTELLER_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-m", "bench", "cache_quality", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def test_remote_engines_and_unknown_policies_are_refused(tmp_path) -> None:
    done = _bench(["--engine", "fake"], tmp_path)
    assert done.returncode == 2 and "embedded engine only" in done.stderr
    done = _bench(["--policies", "quick"], tmp_path)
    assert done.returncode == 2 and "unknown policy 'quick'" in done.stderr


def test_a_short_run_compares_each_turn_with_a_fresh_evaluation(tmp_path, smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    done = _bench(["--json", "--turns", "2", "--policies", "exact", "--context", "1024", "--controls", "1",
                   "--threads", "1"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = {s["policy"]: s for s in json.loads(done.stdout.strip().splitlines()[-1])}
    assert set(summary) == {"exact"}
    exact = summary["exact"]
    assert exact["turns"] == 1  # the first turn has no cache to compare
    assert exact["controls"]["repeat_kl_max"] == 0.0  # the fresh evaluation is deterministic
    assert exact["max_kl"] < 1e-3  # nothing stale is kept: batch splits at most
    raw = json.loads((tmp_path / "out" / "results" / "cache_quality.json").read_text())
    assert {row["turn"] for row in raw["per_turn"]["exact"]} == {1, 2}
    doc = (tmp_path / "out" / "benchmarks.md").read_text()
    assert "## cache_quality" in doc and "| exact |" in doc and "mean KL" in doc
