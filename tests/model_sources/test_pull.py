"""`storyteller models pull` against a local server: progress, a dropped connection, resume, sha256."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller.model_pull import PullError, parse_source
from storyteller.paths import get_paths
from tests.model_sources.gguf_server import GGUFServer, Served
from tests.model_sources.helpers import sha256_of

NAME = "SmolLM2-135M-Instruct-Q4_1.gguf"
MB = 1 << 20


@pytest.fixture(scope="module")
def gguf_bytes(smollm2_path: Path) -> bytes:
    return smollm2_path.read_bytes()


@pytest.fixture
def server(gguf_bytes: bytes):
    srv = GGUFServer(files={NAME: Served(gguf_bytes)}).start()
    yield srv
    srv.stop()


def pull(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storyteller.cli", "models", "pull", *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir()) if models.is_dir() else []


def test_pull_a_url_with_progress_then_play_it(server: GGUFServer, smollm2_path: Path) -> None:
    models = get_paths().models_dir
    out = pull(f"{server.url}/files/{NAME}")
    assert out.returncode == 0, out.stderr
    target = models / NAME
    assert sha256_of(target) == sha256_of(smollm2_path)
    assert leftovers(models) == [NAME], "no part files are left behind"
    percents = [line for line in out.stderr.splitlines() if "%" in line]
    assert len(percents) >= 5 and "100.0%" in percents[-1], out.stderr
    assert "not checked: the source gave no hash" in out.stdout
    pytest.importorskip("llama_cpp")
    gen = subprocess.run([sys.executable, "-m", "storyteller.cli", "generate", "--model", target.stem,
                          "--max-tokens", "4", "--context", "512", "--json", "Once upon a time"],
                         capture_output=True, text=True, timeout=120)
    assert gen.returncode == 0, gen.stderr


def test_a_dropped_connection_is_resumed_with_a_range_request(server: GGUFServer, smollm2_path: Path) -> None:
    server.drops = [30 * MB]
    out = pull(f"{server.url}/files/{NAME}")
    assert out.returncode == 0, out.stderr
    ranges = [r for path, r in server.requests if path.endswith(NAME)]
    assert ranges[0] is None and ranges[1] is not None
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 30 * MB
    assert sha256_of(get_paths().models_dir / NAME) == sha256_of(smollm2_path)


def test_an_interrupted_pull_continues_on_the_next_run(server: GGUFServer, smollm2_path: Path) -> None:
    models = get_paths().models_dir
    server.drops = [20 * MB]
    first = pull(f"{server.url}/files/{NAME}", "--retries", "0")
    assert first.returncode == 1
    errors = [line for line in first.stderr.splitlines() if line.startswith("storyteller:")]
    assert len(errors) == 1 and "interrupted" in errors[0] and "run the same command again" in errors[0]
    part = models / f".{NAME}.part"
    kept = part.stat().st_size
    assert 0 < kept <= 20 * MB and not (models / NAME).exists()

    second = pull(f"{server.url}/files/{NAME}")
    assert second.returncode == 0, second.stderr
    assert "continuing from" in second.stderr
    assert server.requests[-1][1] == f"bytes={kept}-"
    assert sha256_of(models / NAME) == sha256_of(smollm2_path)
    assert leftovers(models) == [NAME]


def test_a_wrong_sha256_deletes_the_download(server: GGUFServer) -> None:
    models = get_paths().models_dir
    out = pull(f"{server.url}/files/{NAME}", "--sha256", "0" * 64)
    assert out.returncode == 1
    assert "sha256 mismatch" in out.stderr and "--sha256" in out.stderr
    assert len(out.stderr.strip().splitlines()[-1]) > 0 and not (models / NAME).exists()
    assert [n for n in leftovers(models) if n.endswith(".part")] == []


def test_hugging_face_shorthand_verifies_x_linked_etag(server: GGUFServer) -> None:
    out = pull("someone/SmolLM2-GGUF:Q4_1", env={"HF_ENDPOINT": server.url, "HF_TOKEN": "hf_secret"})
    assert out.returncode == 0, out.stderr
    assert "matches X-Linked-Etag" in out.stdout
    assert ("/api/models/someone/SmolLM2-GGUF", None) in server.requests
    assert server.authorization[0] == "Bearer hf_secret" and "hf_secret" not in out.stdout + out.stderr
    assert (get_paths().models_dir / NAME).is_file()


def test_hugging_face_hash_catches_damaged_bytes(gguf_bytes: bytes) -> None:
    damaged = bytearray(gguf_bytes)
    damaged[len(damaged) // 2] ^= 0xFF
    srv = GGUFServer(files={NAME: Served(bytes(damaged), linked_sha=hashlib.sha256(gguf_bytes).hexdigest())}).start()
    try:
        out = pull(f"someone/SmolLM2-GGUF:{NAME}", env={"HF_ENDPOINT": srv.url})
    finally:
        srv.stop()
    assert out.returncode == 1
    assert "sha256 mismatch" in out.stderr and "X-Linked-Etag" in out.stderr
    assert not (get_paths().models_dir / NAME).exists()


def test_not_enough_free_space_is_refused_before_writing(gguf_bytes: bytes) -> None:
    srv = GGUFServer(files={NAME: Served(gguf_bytes, claimed_size=10**15)}).start()
    try:
        out = pull(f"{srv.url}/files/{NAME}")
    finally:
        srv.stop()
    assert out.returncode == 1
    assert "not enough free space" in out.stderr
    models = get_paths().models_dir
    assert not (models / NAME).exists() and not (models / f".{NAME}.part").exists()


def test_never_replaces_a_link_or_folder(server: GGUFServer, tmp_path: Path) -> None:
    models = get_paths().models_dir
    models.mkdir(parents=True)
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("keep me")
    (models / NAME).symlink_to(elsewhere)
    out = pull(f"{server.url}/files/{NAME}", "--force")
    assert out.returncode == 1 and "not a regular file" in out.stderr
    assert (models / NAME).is_symlink() and elsewhere.read_text() == "keep me"


def test_an_html_page_is_not_saved(gguf_bytes: bytes) -> None:
    srv = GGUFServer(files={"page.gguf": Served(b"<!doctype html><html>sign in</html>" * 100)}).start()
    try:
        out = pull(f"{srv.url}/files/page.gguf")
    finally:
        srv.stop()
    assert out.returncode == 1 and "not a GGUF file" in out.stderr
    assert leftovers(get_paths().models_dir) == []


@pytest.mark.parametrize("source, message", [
    ("http://example.com/x.gguf", "plain http is allowed only to this machine"),
    ("ftp://example.com/x.gguf", "only https:// URLs"),
    ("https://example.com/notes.txt", "not a usable GGUF file name"),
    ("just-a-word", "neither a URL nor ORG/NAME:FILE.gguf"),
])
def test_bad_sources_are_one_clear_error(source: str, message: str) -> None:
    with pytest.raises(PullError, match=message):
        parse_source(source)
    with pytest.raises(PullError, match="not a sha256"):
        parse_source("https://example.com/x.gguf", sha256="abc")


def test_progress_is_one_redrawn_line_on_a_terminal(server: GGUFServer) -> None:
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "storyteller.cli", "models", "pull", f"{server.url}/files/{NAME}"],
                              stdout=subprocess.PIPE, stderr=slave, text=True, timeout=300)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    assert proc.returncode == 0
    shown = b"".join(chunks).decode(errors="replace")
    assert shown.count("\r") >= 2 and "100.0%" in shown
    assert len([line for line in shown.split("\n") if "%" in line]) == 1, "redrawn in place, not one line each"


def test_a_complete_part_file_is_finished_without_downloading_again(server: GGUFServer, gguf_bytes: bytes) -> None:
    import json

    models = get_paths().models_dir
    models.mkdir(parents=True)
    url = f"{server.url}/files/{NAME}"
    (models / f".{NAME}.part").write_bytes(gguf_bytes)
    (models / f".{NAME}.part.json").write_text(json.dumps({"url": url, "total": len(gguf_bytes)}))
    out = pull(url, "--sha256", hashlib.sha256(gguf_bytes).hexdigest())
    assert out.returncode == 0, out.stderr
    assert server.requests == [(f"/files/{NAME}", f"bytes={len(gguf_bytes)}-")]
    assert "matches --sha256" in out.stdout and leftovers(models) == [NAME]


def test_ctrl_c_keeps_the_part_for_the_next_run(server: GGUFServer, smollm2_path: Path) -> None:
    import signal
    import time

    models = get_paths().models_dir
    part = models / f".{NAME}.part"
    server.chunk_delay = 0.05
    proc = subprocess.Popen([sys.executable, "-m", "storyteller.cli", "models", "pull", f"{server.url}/files/{NAME}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > 5 * MB):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "download stopped; run the same command again" in err
    assert part.stat().st_size > 5 * MB and not (models / NAME).exists()
    server.chunk_delay = 0.0
    again = pull(f"{server.url}/files/{NAME}")
    assert again.returncode == 0 and "continuing from" in again.stderr
    assert sha256_of(models / NAME) == sha256_of(smollm2_path)
