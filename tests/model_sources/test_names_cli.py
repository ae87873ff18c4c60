"""A turn through every name form, with the real CLI and the real model in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller.paths import get_paths
from tests.model_sources.gguf_server import GGUFServer
from tests.model_sources.helpers import (
    CHATML_GO,
    gpt4all_model,
    hf_cache_model,
    jan_model,
    lmstudio_model,
    ollama_model,
    without_chat_template,
)

HF_REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"


@pytest.fixture
def stores(isolated_home: Path, smollm2_path: Path) -> Path:
    pytest.importorskip("llama_cpp")
    home = isolated_home
    ollama = home / ".ollama" / "models"
    ollama_model(ollama, smollm2_path, "smol", "latest", params={"num_predict": 3, "stop": ["<|im_end|>"]})
    ollama_model(ollama, smollm2_path, "storybot", "v1", namespace="alice")
    ollama_model(ollama, smollm2_path, "ghost", "latest", drop_model_blob=True)
    hf_cache_model(home / ".cache" / "huggingface" / "hub", smollm2_path, HF_REPO, "SmolLM2-135M-Instruct-Q4_1.gguf")
    lmstudio_model(home / ".lmstudio" / "models", smollm2_path, "lmstudio-community", "SmolLM2-GGUF",
                   "SmolLM2-135M-Q4_1.gguf")
    jan_model(home / ".local" / "share" / "Jan" / "data" / "llamacpp" / "models", smollm2_path, "smollm2-jan")
    gpt4all_model(home / ".local" / "share" / "nomic.ai" / "GPT4All", smollm2_path, "smollm2-gpt4all.gguf")
    return home


def generate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storyteller.cli", "generate", "--json", "--seed", "1",
                           "--context", "512", *args, "Once upon a time"],
                          capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})})


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    "ollama:smol:latest", "ollama:alice/storybot:v1", f"hf:{HF_REPO}", f"hf:{HF_REPO}:Q4_1",
    "lmstudio:lmstudio-community/SmolLM2-GGUF", "jan:smollm2-jan", "gpt4all:smollm2-gpt4all", "smollm2-gpt4all",
])
def test_generate_through_each_name_form(stores: Path, name: str) -> None:
    out = generate("--model", name, "--max-tokens", "4")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["prompt_tokens"] == 4 and 0 < result["completion_tokens"] <= 4


@pytest.mark.slow
def test_config_file_and_environment_take_the_same_names(stores: Path) -> None:
    paths = get_paths().ensure()
    paths.config_file.write_text(f'[engine]\nmodel = "hf:{HF_REPO}"\n')
    out = generate("--max-tokens", "4")
    assert out.returncode == 0, out.stderr
    broken = generate("--max-tokens", "4", env={"STORYTELLER_ENGINE__MODEL": "lmstudio:no-such-model"})
    assert broken.returncode == 1 and "No lmstudio model 'no-such-model'" in broken.stderr
    assert generate("--max-tokens", "4", env={"STORYTELLER_ENGINE__MODEL": "jan:smollm2-jan"}).returncode == 0


@pytest.mark.slow
def test_ollama_params_are_used_when_the_user_has_not_chosen(stores: Path) -> None:
    free = json.loads(generate("--model", f"hf:{HF_REPO}").stdout)
    assert free["completion_tokens"] > 3, "without Ollama's num_predict the same prompt runs longer"
    ollama = json.loads(generate("--model", "ollama:smol").stdout)
    assert ollama["completion_tokens"] <= 3
    chosen = json.loads(generate("--model", "ollama:smol", "--max-tokens", "5").stdout)
    assert chosen["completion_tokens"] == min(5, free["completion_tokens"])


@pytest.mark.slow
def test_play_a_turn_with_an_ollama_name(stores: Path) -> None:
    env = {**os.environ, "STORYTELLER_SAMPLING__MAX_TOKENS": "16", "STORYTELLER_SAMPLING__SEED": "5"}
    out = subprocess.run([sys.executable, "-m", "storyteller.cli", "play", "--plain", "--context", "1024",
                          "--model", "ollama:alice/storybot:v1", "--story", "via-ollama"],
                         input="look around\n/quit\n", capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    from storyteller.story.store import StoryStore

    with StoryStore(get_paths().stories_dir).open("via-ollama", read_only=True) as story:
        assert [n.kind for n in story.current_path()][:3] == ["greeting", "do", "generation"]


@pytest.mark.slow
def test_a_broken_name_is_one_line_and_nothing_is_downloaded(stores: Path) -> None:
    watcher = GGUFServer().start()
    try:
        env = {"HF_ENDPOINT": watcher.url}
        ghost = generate("--model", "ollama:ghost", env=env)
        missing = generate("--model", "hf:nobody/nothing", env=env)
    finally:
        watcher.stop()
    assert ghost.returncode == 1 and missing.returncode == 1
    assert ghost.stderr.count("\n") == 1 and "ollama pull ghost:latest" in ghost.stderr
    assert missing.stderr.count("\n") == 1 and "storyteller models pull" in missing.stderr
    assert watcher.requests == [], "resolving a name never downloads"


async def test_ollama_template_stands_in_for_a_missing_gguf_template(isolated_home: Path, smollm2_path: Path,
                                                                    tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from storyteller.config import Settings
    from storyteller.engines.factory import open_backend
    from storyteller.prompt.templates import detect_preset, load_library

    bare = without_chat_template(smollm2_path, tmp_path / "bare.gguf")
    ollama_model(isolated_home / ".ollama" / "models", bare, "bare", "latest", template=CHATML_GO)
    settings = Settings(engine={"model": "ollama:bare", "n_ctx": 512})
    backend = await open_backend(settings, get_paths())
    try:
        info = backend.info()
        assert info.chat_template == CHATML_GO
        assert "chat" not in info.capabilities, "a Go template is never run as Jinja"
        assert detect_preset(info.chat_template, load_library().instruct.values()).name == "chatml"
    finally:
        await backend.aclose()
    plain = Settings(engine={"model": str(bare), "n_ctx": 512})
    backend = await open_backend(plain, get_paths())
    try:
        assert backend.info().chat_template is None
    finally:
        await backend.aclose()
