"""Paths, settings and the UI-free rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller.config import load_settings
from storyteller.errors import ConfigError
from storyteller.paths import get_paths


def test_paths_live_under_storyteller_home(storyteller_home: Path) -> None:
    paths = get_paths()
    for folder in (paths.config_dir, paths.data_dir, paths.cache_dir):
        assert folder.is_relative_to(storyteller_home)
    assert paths.config_file == storyteller_home / "config" / "config.toml"
    paths.ensure()
    assert paths.data_dir.is_dir()


def test_paths_without_home_use_platform_dirs() -> None:
    paths = get_paths({})
    assert "storyteller" in str(paths.config_dir).lower()


def test_defaults_load_without_a_file() -> None:
    settings = load_settings()
    assert settings.engine.kind == "embedded"
    assert settings.sampling.max_tokens > 0


def test_file_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = get_paths().ensure()
    paths.config_file.write_text('[engine]\nn_gpu_layers = 5\nn_batch = 256\n[sampling]\ntemperature = 0.3\n')
    monkeypatch.setenv("STORYTELLER_ENGINE__N_GPU_LAYERS", "-1")
    settings = load_settings(paths)
    assert settings.engine.n_gpu_layers == -1  # the environment wins
    assert settings.engine.n_batch == 256
    assert settings.sampling.temperature == 0.3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[engine]\nn_batch = -3\n", "engine.n_batch"),
        ("[engine]\nbogus = 1\n", "engine.bogus"),
        ("[engine\n", "not valid TOML"),
        ("[sampling]\ntop_p = 7\n", "sampling.top_p"),
    ],
)
def test_invalid_file_names_file_and_key(text: str, expected: str) -> None:
    paths = get_paths().ensure()
    paths.config_file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(paths)
    assert expected in str(info.value)
    assert str(paths.config_file) in str(info.value)


def test_invalid_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYTELLER_ENGINE__N_GPU_LAYERS", "lots")
    with pytest.raises(ConfigError, match="engine.n_gpu_layers"):
        load_settings()


CORE_MODULES = [
    "storyteller",
    "storyteller.config",
    "storyteller.paths",
    "storyteller.errors",
    "storyteller.models",
    "storyteller.presets",
    "storyteller.session",
    "storyteller.session_setup",
    "storyteller.prompt_cmd",
    "storyteller.plain",
    "storyteller.content",
    "storyteller.fileio",
    "storyteller.importing",
    "storyteller.sampling",
    "storyteller.engines",
    "storyteller.engines.base",
    "storyteller.engines.fake",
    "storyteller.engines.llamacpp",
    "storyteller.engines.factory",
    "storyteller.cli",
]
OPTIONAL_CORE_PACKAGES = ["cards", "lore", "prompt", "story", "session", "kiosk", "engines.kobold", "engines.openai"]


def _core_modules() -> list[str]:
    import importlib.util

    found = list(CORE_MODULES)
    for name in OPTIONAL_CORE_PACKAGES:
        spec = importlib.util.find_spec(f"storyteller.{name}")
        if spec is not None:
            found.append(f"storyteller.{name}")
            for folder in spec.submodule_search_locations or []:
                for sub in sorted(Path(folder).glob("*.py")):
                    if sub.stem not in ("__init__", "__main__"):
                        found.append(f"storyteller.{name}.{sub.stem}")
    return found


@pytest.mark.parametrize("module", _core_modules())
def test_core_never_imports_the_ui(module: str) -> None:
    # httpx imports rich for its own command line when rich is installed; that is httpx's
    # doing, so rich counts only when our module adds it. textual must never be there.
    code = (
        "import importlib, json, sys\n"
        "import httpx\n"
        "before = set(sys.modules)\n"
        f"importlib.import_module({module!r})\n"
        "ui = lambda m: m.split('.')[0] in ('textual', 'rich')\n"
        "print(json.dumps({'textual': sorted(m for m in sys.modules if m.split('.')[0] == 'textual'),\n"
        "                  'added': sorted(m for m in set(sys.modules) - before if ui(m))}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    assert found == {"textual": [], "added": []}, f"{module} pulls in UI modules"
