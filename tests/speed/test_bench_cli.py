"""``python -m bench``: the runner from the repository, the report helpers, and the per-turn report
in a session. The installed ``storyteller`` command has no ``bench``: the benchmarks ship with the
source, not the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.paths import get_paths
from storyteller.session_setup import open_session

ROOT = Path(__file__).resolve().parents[2]


def _bench(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTELLER_BENCH_OUT": str(tmp_path / "out"),
           "STORYTELLER_BENCH_HOME": str(tmp_path / "home"), "STORYTELLER_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cache_bench_on_the_fake_engine_prints_one_json_object(tmp_path) -> None:
    pytest.importorskip("llama_cpp")  # new tokens are counted with SmolLM2's tokenizer
    from storyteller.models import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("the default model is not installed")
    done = _bench(["cache", "--json", "--engine", "fake", "--turns", "4", "--no-naive"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints exactly one line"
    result = json.loads(lines[0])
    assert result["turns"] == 4 and result["engine"] == "fake"
    for key in ("overflow_turns", "evaluated_over_new", "ttft_over_new_eval", "naive_over_cached_ttft"):
        assert key in result
    assert (tmp_path / "out" / "results" / "cache-fake.json").is_file()
    doc = (tmp_path / "out" / "benchmarks.md").read_text()
    assert "## cache-fake" in doc and "evaluated / new tokens" in doc


def test_unknown_benchmark_is_refused(tmp_path) -> None:
    done = _bench(["nonsense", "--json"], tmp_path)
    assert done.returncode == 2 and "unknown benchmark 'nonsense'" in done.stderr


def test_the_installed_command_has_no_bench(tmp_path) -> None:
    env = {**os.environ, "STORYTELLER_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "storyteller.cli", "bench", "cache"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "invalid choice: 'bench'" in done.stderr


def test_sections_are_replaced_not_repeated(tmp_path, monkeypatch) -> None:
    from bench._report import write_json, write_section

    monkeypatch.setenv("STORYTELLER_BENCH_OUT", str(tmp_path))
    write_section("alpha", "first")
    write_section("beta", "second")
    write_section("alpha", "third")
    text = (tmp_path / "benchmarks.md").read_text()
    assert text.count("## alpha") == 1 and "third" in text and "first" not in text and "second" in text
    assert json.loads(write_json("x", {"a": 1}).read_text()) == {"a": 1}


async def test_session_reports_why_the_prompt_changed() -> None:
    settings = Settings()
    settings.engine.kv_state = "off"
    backend = ScriptedBackend(["Water laps at the stilts."])
    session = await open_session("report", settings=settings, paths=get_paths().ensure(), backend=backend)
    try:
        await session.submit("wait and listen", "do")
        first = session.last_report
        assert first is not None and "first prompt" in first.why
        assert first.stable_prefix_tokens > 0
        for _ in range(3):  # until the greeting's keywords leave the scanned messages
            await session.submit("wait and listen", "do")
        # The bundled world's fog reminder sits two messages from the end: it moves every turn.
        why = session.last_report.why
        assert "world info" in why and "moved" in why and "from the end" in why, why
        # Naming Mirewell fires its world-info entry, near the top of the prompt.
        await session.submit("walk to Mirewell", "do")
        report = session.last_report
        assert "world info" in report.why and "started firing" in report.why, report.why
        assert 0 < report.changed_at < report.prompt_tokens
        assert report.why in report.summary()
    finally:
        await session.close()
