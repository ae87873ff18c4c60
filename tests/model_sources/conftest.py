"""Every test here sees only the app stores it builds: HOME and each app's variable point into tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model_sources.helpers import isolated_env

_CLEARED = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "HF_TOKEN", "APPDATA", "LOCALAPPDATA",
            "STORYTELLER_MODEL_PATH")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("apps")
    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    for key, value in isolated_env(root).items():
        monkeypatch.setenv(key, value)
    return root / "home"
