"""Finding other apps' models in their real layouts, naming them, and reporting what is broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller.config import Settings
from storyteller.errors import ModelNotFoundError
from storyteller.model_memory import estimate_bytes, fits, parse_nvidia_smi
from storyteller.model_sources import apply_model_defaults, discover, resolve_ref, store_roots
from storyteller.models import read_gguf_info
from storyteller.paths import get_paths
from tests.model_sources.helpers import (
    CHATML_GO,
    gpt4all_model,
    hf_cache_model,
    jan_model,
    lmstudio_model,
    ollama_model,
)

PARAMS = {"temperature": 0.3, "top_k": 20, "stop": ["<|im_end|>", "<|endoftext|>"], "num_ctx": 1024,
          "num_predict": 3, "seed": 7, "top_p": "not a number"}


@pytest.fixture
def stores(isolated_home: Path, smollm2_path: Path) -> dict[str, Path]:
    """One model in each app's store, plus a broken Ollama entry and a truncated GGUF."""
    home = isolated_home
    ollama = home / ".ollama" / "models"
    built = {
        "ollama": ollama_model(ollama, smollm2_path, "smol", "latest", params=PARAMS, system="You narrate."),
        "ollama_user": ollama_model(ollama, smollm2_path, "storybot", "v1", namespace="alice", template=None),
        "ghost": ollama_model(ollama, smollm2_path, "ghost", "latest", drop_model_blob=True),
        "hf": hf_cache_model(home / ".cache" / "huggingface" / "hub", smollm2_path,
                             "bartowski/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-Q4_1.gguf"),
        "lmstudio": lmstudio_model(home / ".lmstudio" / "models", smollm2_path, "lmstudio-community",
                                   "SmolLM2-GGUF", "SmolLM2-135M-Q4_1.gguf"),
        "jan": jan_model(home / ".local" / "share" / "Jan" / "data" / "llamacpp" / "models", smollm2_path,
                         "smollm2-jan"),
        "gpt4all": gpt4all_model(home / ".local" / "share" / "nomic.ai" / "GPT4All", smollm2_path,
                                 "smollm2-gpt4all.gguf"),
    }
    cut = home / ".local" / "share" / "nomic.ai" / "GPT4All" / "half-model.gguf"
    with smollm2_path.open("rb") as src:
        cut.write_bytes(src.read(3_000_000))
    built["truncated"] = cut
    return built


def refs() -> dict[str, object]:
    return {m.ref: m for m in discover(get_paths()).models}


def test_each_store_is_found_with_its_name(stores: dict[str, Path], smollm2_path: Path) -> None:
    found = refs()
    assert {"ollama:smol:latest", "ollama:alice/storybot:v1",
            "hf:bartowski/SmolLM2-135M-Instruct-GGUF:SmolLM2-135M-Instruct-Q4_1.gguf",
            "lmstudio:lmstudio-community/SmolLM2-GGUF/SmolLM2-135M-Q4_1", "jan:smollm2-jan",
            "gpt4all:smollm2-gpt4all", "gpt4all:half-model"} <= set(found)
    smol = found["ollama:smol:latest"]
    assert smol.path.name.startswith("sha256-") and smol.template == CHATML_GO
    assert smol.params["num_ctx"] == 1024 and smol.system == "You narrate."
    assert found["hf:bartowski/SmolLM2-135M-Instruct-GGUF:SmolLM2-135M-Instruct-Q4_1.gguf"].path.is_symlink()
    assert "ollama:ghost:latest" not in found


def test_a_missing_blob_is_one_line_and_the_rest_still_shows(stores: dict[str, Path]) -> None:
    found = discover(get_paths())
    ghost = [p for p in found.problems if "ghost" in p]
    assert len(ghost) == 1 and "missing" in ghost[0] and "ollama pull ghost:latest" in ghost[0]
    assert "\n" not in ghost[0]
    assert len(found.models) >= 7


@pytest.mark.parametrize("name, source", [
    ("ollama:smol:latest", "ollama"), ("ollama:smol", "ollama"), ("ollama:alice/storybot:v1", "ollama"),
    ("alice/storybot:v1", "ollama"),
    ("hf:bartowski/SmolLM2-135M-Instruct-GGUF", "hf"), ("hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q4_1", "hf"),
    ("hf:bartowski/SmolLM2-135M-Instruct-GGUF:SmolLM2-135M-Instruct-Q4_1.gguf", "hf"),
    ("lmstudio:lmstudio-community/SmolLM2-GGUF", "lmstudio"), ("lmstudio:SmolLM2-135M-Q4_1", "lmstudio"),
    ("jan:smollm2-jan", "jan"), ("gpt4all:smollm2-gpt4all", "gpt4all"), ("smollm2-jan", "jan"),
])
def test_name_forms_resolve(stores: dict[str, Path], name: str, source: str) -> None:
    model = resolve_ref(name, get_paths())
    assert model.source == source
    assert read_gguf_info(model.path).quantization == "Q4_1"


def test_an_ambiguous_bare_name_lists_the_choices(stores: dict[str, Path], smollm2_path: Path) -> None:
    gpt4all_model(stores["gpt4all"].parent, smollm2_path, "SmolLM2-135M-Q4_1.gguf")
    with pytest.raises(ModelNotFoundError) as err:
        resolve_ref("SmolLM2-135M-Q4_1", get_paths())
    message = str(err.value)
    assert "matches 2 models" in message
    assert "lmstudio:lmstudio-community/SmolLM2-GGUF/SmolLM2-135M-Q4_1" in message
    assert "gpt4all:SmolLM2-135M-Q4_1" in message


def test_the_models_folder_wins_a_bare_name(stores: dict[str, Path], smollm2_path: Path) -> None:
    paths = get_paths()
    paths.models_dir.mkdir(parents=True)
    mine = gpt4all_model(paths.models_dir, smollm2_path, "smollm2-jan.gguf")
    assert resolve_ref("smollm2-jan", paths).path == mine


def test_unknown_names_say_what_to_do(stores: dict[str, Path]) -> None:
    with pytest.raises(ModelNotFoundError, match="ollama pull llama3.2:1b"):
        resolve_ref("ollama:llama3.2:1b", get_paths())
    with pytest.raises(ModelNotFoundError, match="storyteller models pull nobody/nothing:FILE.gguf"):
        resolve_ref("hf:nobody/nothing", get_paths())
    with pytest.raises(ModelNotFoundError, match="missing"):
        resolve_ref("ollama:ghost", get_paths())
    with pytest.raises(ModelNotFoundError, match="'latest' not found"):
        resolve_ref("latest", get_paths())  # not the broken ghost:latest's message


def test_extra_folders_from_settings_and_environment(isolated_home: Path, smollm2_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = isolated_home / "one", isolated_home / "two"
    gpt4all_model(one / "deep" / "er", smollm2_path, "alpha.gguf")
    gpt4all_model(two, smollm2_path, "beta.gguf")
    monkeypatch.setenv("STORYTELLER_MODEL_PATH", str(two))
    found = {m.ref for m in discover(get_paths(), folders=[str(one), str(isolated_home / "nowhere")]).models}
    assert {"folder:deep/er/alpha", "folder:beta"} <= found
    problems = discover(get_paths(), folders=[str(isolated_home / "nowhere")]).problems
    assert any("nowhere" in p and "does not exist" in p for p in problems)
    assert resolve_ref("alpha", get_paths(), folders=[str(one)]).path.name == "alpha.gguf"


def test_other_apps_can_be_switched_off(stores: dict[str, Path]) -> None:
    sources = {m.source for m in discover(get_paths(), other_apps=False).models}
    assert sources <= {"storyteller", "bundled", "folder"}
    assert resolve_ref("ollama:smol", get_paths(), other_apps=False).source == "ollama"  # asked by name


def test_an_unreadable_folder_is_one_line(stores: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    locked = stores["lmstudio"].parent.parent  # the publisher folder
    if os.geteuid() == 0:  # root reads anything: stand in for the permission check it skips
        real = os.scandir

        def scandir(path):
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)
    else:
        locked.chmod(0)
    try:
        found = discover(get_paths())
    finally:
        locked.chmod(0o755)
    lines = [p for p in found.problems if str(locked) in p]
    assert len(lines) == 1 and "permission denied" in lines[0]
    assert "ollama:smol:latest" in {m.ref for m in found.models}


def test_models_command_lists_sources_and_problems(stores: dict[str, Path]) -> None:
    out = subprocess.run([sys.executable, "-m", "storyteller.cli", "models", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    rows = {row["ref"]: row for row in report["models"]}
    smol = rows["ollama:smol:latest"]
    assert smol["source"] == "ollama" and smol["quantization"] == "Q4_1" and smol["context_length"] == 8192
    assert smol["template"] == "chatml" and smol["ollama"]["template"] == "chatml"
    assert smol["context_used"] == 1024  # Ollama's num_ctx
    assert smol["fits_memory"] in ("yes", "tight") and smol["needs_bytes"] > smol["file_size"]
    assert {r["source"] for r in rows.values()} >= {"ollama", "hf", "lmstudio", "jan", "gpt4all", "bundled"}
    assert any("half-model" in p and "truncated" in p for p in report["problems"])
    assert any("ghost" in p for p in report["problems"])

    human = subprocess.run([sys.executable, "-m", "storyteller.cli", "models"], capture_output=True, text=True,
                           timeout=120)
    assert human.returncode == 0
    assert "ollama:smol:latest    [ollama]" in human.stdout and "fits in memory:" in human.stdout
    assert "Ollama's parameters" in human.stdout and "135M parameters" in human.stdout
    skipped = [line for line in human.stderr.splitlines() if line.startswith("storyteller: skipped")]
    assert len(skipped) == 2, human.stderr


def test_ollama_params_fill_only_what_the_user_left_alone(stores: dict[str, Path]) -> None:
    settings = Settings(engine={"model": "ollama:smol"}, sampling={"top_k": 50})
    found = apply_model_defaults(settings, get_paths())
    assert found is not None and found.source == "ollama"
    s = settings.sampling
    assert s.temperature == 0.3 and s.seed == 7 and s.max_tokens == 3
    assert s.top_k == 50, "the user's own value wins"
    assert s.top_p == 0.95, "a bad value in the params layer is ignored"
    assert s.stop == ["<|im_end|>", "<|endoftext|>"] and settings.engine.n_ctx == 1024
    apply_model_defaults(settings, get_paths())
    assert settings.sampling.stop == ["<|im_end|>", "<|endoftext|>"], "applying twice adds nothing"
    kept = Settings(engine={"model": "ollama:smol"})
    apply_model_defaults(kept, get_paths(), keep={"temperature"})
    assert kept.sampling.temperature == 0.8


def test_store_locations_per_platform() -> None:
    def roots(system: str, env: dict[str, str]) -> set[tuple[str, str]]:
        return {(s.source, Path(s.root).as_posix()) for s in store_roots(env, system=system)}

    linux = roots("Linux", {"HOME": "/h"})
    assert {("ollama", "/h/.ollama/models"), ("ollama", "/usr/share/ollama/.ollama/models"),
            ("lmstudio", "/h/.lmstudio/models"), ("jan", "/h/.local/share/Jan/data/llamacpp/models"),
            ("gpt4all", "/h/.local/share/nomic.ai/GPT4All"), ("hf", "/h/.cache/huggingface/hub")} <= linux
    mac = roots("Darwin", {"HOME": "/Users/a"})
    assert ("gpt4all", "/Users/a/Library/Application Support/nomic.ai/GPT4All") in mac
    assert ("jan", "/Users/a/Library/Application Support/Jan/data/llamacpp/models") in mac
    win = roots("Windows", {"USERPROFILE": "C:/Users/a", "APPDATA": "C:/Users/a/AppData/Roaming",
                            "LOCALAPPDATA": "C:/Users/a/AppData/Local"})
    assert {("ollama", "C:/Users/a/.ollama/models"), ("gpt4all", "C:/Users/a/AppData/Local/nomic.ai/GPT4All"),
            ("jan", "C:/Users/a/AppData/Roaming/Jan/data/llamacpp/models"),
            ("hf", "C:/Users/a/.cache/huggingface/hub")} <= win
    custom = roots("Linux", {"HOME": "/h", "OLLAMA_MODELS": "/big/ollama", "HF_HUB_CACHE": "/big/hf"})
    assert ("ollama", "/big/ollama") in custom and ("ollama", "/h/.ollama/models") not in custom
    assert ("hf", "/big/hf") in custom


def test_settings_files_of_other_apps_add_their_folders(tmp_path: Path) -> None:
    home = tmp_path / "h"
    (home / ".config" / "nomic.ai").mkdir(parents=True)
    (home / ".config" / "nomic.ai" / "GPT4All.ini").write_text("[General]\nmodelPath=/data/gpt4all\n")
    (home / ".lmstudio-home-pointer").write_text(str(tmp_path / "lms") + "\n")
    found = {(s.source, s.root.as_posix()) for s in store_roots({"HOME": str(home)}, system="Linux")}
    assert ("gpt4all", "/data/gpt4all") in found
    assert ("lmstudio", (tmp_path / "lms" / "models").as_posix()) in found


def test_memory_estimate_and_gpu_fit(smollm2_path: Path) -> None:
    info = read_gguf_info(smollm2_path)
    small, big = estimate_bytes(info, 512), estimate_bytes(info, 8192)
    # SmolLM2-135M: 30 layers, 3 KV heads of 64: 30 * 8192 * 3 * 128 * 2 bytes of f16 KV cache
    assert big - small == pytest.approx(30 * (8192 - 512) * 3 * 128 * 2 * 1.1, rel=0.001)
    assert fits(big, 10 * big, 2 * big) == "yes" and fits(big, 2 * big, big // 2) == "tight"
    assert fits(big, big // 2, 0) == "no"
    gpus = parse_nvidia_smi("NVIDIA H200, 143771, 140000\nbad line\nRTX, 8192, 100\n")
    assert [(g.name, g.total // 2**20, g.free // 2**20) for g in gpus] == [("NVIDIA H200", 143771, 140000),
                                                                          ("RTX", 8192, 100)]


def test_linked_folders_are_followed_without_looping(isolated_home: Path, smollm2_path: Path) -> None:
    outside = isolated_home / "central"
    gpt4all_model(outside / "repo", smollm2_path, "linked.gguf")
    (outside / "repo" / "loop").symlink_to(outside, target_is_directory=True)
    models = isolated_home / ".lmstudio" / "models"
    models.mkdir(parents=True)
    (models / "mine").symlink_to(outside, target_is_directory=True)
    refs = [m.ref for m in discover(get_paths()).models if m.source == "lmstudio"]
    assert refs == ["lmstudio:mine/repo/linked"]
