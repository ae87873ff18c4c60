"""Every entry point that can load the engine imports llama_cpp before numpy.

With a CUDA build, numpy imported first makes ``Llama()`` segfault (seen on an H200). This machine
has no GPU, so the crash itself cannot happen here; what can be checked everywhere is the order.
A ``sitecustomize`` watcher records, in a fresh process, the first import of each module as it
happens (so a process killed in tmux has already written it), and the real entry points run:
the CLI, the line mode, the app and the kiosk in tmux, and the benchmark runner.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storyteller.engines import native

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

WATCHER = '''
import os, sys
_OUT = os.environ.get("ST_IMPORT_LOG")
class _Watch:
    seen = set()
    def find_spec(self, name, path=None, target=None):
        if name in ("numpy", "llama_cpp") and name not in self.seen:
            self.seen.add(name)
            with open(_OUT, "a") as f:
                f.write(name + "\\n")
        return None
if _OUT:
    sys.meta_path.insert(0, _Watch())
'''


@pytest.fixture
def watched(tmp_path: Path, storyteller_home: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WATCHER)
    log = tmp_path / "imports.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYTELLER_", "TMUX"))}
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), ST_IMPORT_LOG=str(log),
               STORYTELLER_HOME=str(storyteller_home), TERM="xterm-256color")
    return env, log


def _order(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _assert_engine_first(log: Path) -> None:
    order = _order(log)
    assert "llama_cpp" in order, f"the engine was never loaded (imports seen: {order})"
    assert native.import_order_ok(order), f"numpy was imported before llama_cpp: {order}"


def _wait_log(log: Path, name: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while name not in _order(log):
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never imported; seen {_order(log)}")
        time.sleep(0.2)  # another process: nothing to wait on instead


def test_the_watcher_sees_a_bad_order(watched):
    env, log = watched
    subprocess.run([sys.executable, "-c", "import numpy, llama_cpp"], env=env, check=True, timeout=60)
    assert _order(log) == ["numpy", "llama_cpp"]
    assert not native.import_order_ok(_order(log))


@pytest.mark.slow
def test_cli_generate(watched):
    env, log = watched
    out = subprocess.run([str(BIN / "storyteller"), "generate", "--max-tokens", "2", "Hello"], env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    _assert_engine_first(log)


@pytest.mark.slow
def test_line_mode(watched):
    env, log = watched
    out = subprocess.run([str(BIN / "storyteller"), "play", "--plain", "--story", "order"], input="/quit\n",
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    _assert_engine_first(log)


@pytest.mark.slow
def test_bench_runner(watched, tmp_path):
    env, log = watched
    # The runner's entry with an unknown benchmark name exits early, after its engine preload.
    out = subprocess.run([sys.executable, "-m", "bench", "no-such-bench"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown benchmark" in out.stderr
    assert _order(log)[:1] == ["llama_cpp"]


def _tmux(socket: Path, env: dict, *args: str) -> str:
    return subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True, text=True, env=env,
                          timeout=20).stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("entry", ["tui", "kiosk"])
def test_app_and_kiosk_in_a_terminal(watched, tmp_path, entry):
    env, log = watched
    if entry == "tui":
        command = f"{shlex.quote(sys.executable)} -m storyteller.tui --story order"
    else:
        from tests.kiosk.helpers import kiosk_settings, write_config

        config = write_config(tmp_path / "kiosk.toml", kiosk_settings(cooldown_seconds=0))
        command = f"{shlex.quote(sys.executable)} -m storyteller.kiosk --story lobby --config {shlex.quote(str(config))}"
    socket = tmp_path / "tmux.sock"
    _tmux(socket, env, "new-session", "-d", "-s", "t", "-x", "100", "-y", "30", f"exec {command}")
    try:
        _wait_log(log, "numpy")  # llama_cpp imports numpy itself once loaded
        _assert_engine_first(log)
    finally:
        _tmux(socket, env, "kill-server")
