"""``storyteller doctor`` on the real bundled model, and a native crash turned into one line.

The crash cannot be provoked honestly on this machine (no AMX, no GPU), so the child process is
made to segfault for real (``faulthandler._sigsegv``) at the stage named by
``STORYTELLER_DOCTOR_FAULT``: the parent sees exactly what a crashing llama.cpp would give it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller import crashlog

BIN = Path(sys.executable).parent / "storyteller"


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYTELLER_")}
    env.update(STORYTELLER_HOME=str(home), **extra)
    return env


@pytest.mark.slow
def test_doctor_reports_the_engine(storyteller_home: Path) -> None:
    out = subprocess.run([str(BIN), "doctor", "--json"], env=_env(storyteller_home), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] is True
    assert "AVX" in report["system_info"] or "NEON" in report["system_info"] or "CPU" in report["system_info"]
    assert report["build"]["ok"] and "-DGGML_NATIVE=OFF" in report["build"]["cmake_args"]
    assert report["model"]["chat_template"].startswith("ChatML")
    assert report["gpu"]["layers"] == 0 or report["gpu"]["can_offload"]
    assert report["generation_tokens_per_second"] > 0 and report["prompt_tokens_per_second"] > 0
    assert report["sample"].strip()
    assert report["import_order_ok"] is True
    text = subprocess.run([str(BIN), "doctor"], env=_env(storyteller_home), capture_output=True, text=True,
                          timeout=300).stdout
    for label in ("engine", "build", "llama.cpp", "cpu", "gpu", "model", "template", "speed", "result       ok"):
        assert label in text


@pytest.mark.slow
@pytest.mark.parametrize("stage,words", [("load", "loading the model"), ("generate", "generating")])
def test_a_native_crash_becomes_one_line(storyteller_home: Path, stage: str, words: str) -> None:
    out = subprocess.run([str(BIN), "doctor", "--gpu-layers", "4"],
                         env=_env(storyteller_home, STORYTELLER_DOCTOR_FAULT=stage),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    assert "crashed (SIGSEGV)" in lines[0] and words in lines[0]
    assert "make run" in lines[0] and "STORYTELLER_ENGINE__N_GPU_LAYERS=0" in lines[0]
    assert "Traceback" not in out.stdout + out.stderr


def test_a_crash_is_told_on_the_next_start(tmp_path: Path) -> None:
    """A real segfault with the crash log armed; the next start finds it once."""
    cache = tmp_path / "cache"
    code = ("import sys; from storyteller import crashlog; crashlog.arm(sys.argv[1]); "
            "import faulthandler; faulthandler._sigsegv()")
    proc = subprocess.run([sys.executable, "-c", code, str(cache)], capture_output=True, timeout=60)
    assert proc.returncode < 0
    notice = crashlog.previous_crash(cache)
    assert notice is not None and "Segmentation fault" in notice and "make run" in notice
    assert crashlog.previous_crash(cache) is None  # told once
    assert (cache / "engine-crash.log.prev").exists()


async def test_the_app_shows_the_crash_notice(storyteller_home: Path) -> None:
    from tests.tui.conftest import make_app

    app = make_app()
    app.crash_notice = "The last session ended with Segmentation fault in the llama.cpp engine."
    async with app.run_test() as pilot:
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("Segmentation fault" in m for m in messages)


@pytest.mark.skipif(__import__("shutil").which("tmux") is None, reason="tmux is not installed")
def test_the_app_started_after_a_crash_says_so(storyteller_home: Path, tmp_path: Path) -> None:
    """The real path: a process with the crash log armed segfaults; the app started next tells the player."""
    import shlex
    import time

    from storyteller.paths import get_paths

    cache = get_paths().cache_dir
    code = ("import sys; from storyteller import crashlog; crashlog.arm(sys.argv[1]); "
            "import faulthandler; faulthandler._sigsegv()")
    assert subprocess.run([sys.executable, "-c", code, str(cache)], capture_output=True, timeout=60).returncode < 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYTELLER_", "TMUX"))}
    env.update(STORYTELLER_HOME=str(storyteller_home), STORYTELLER_ENGINE__KIND="fake", TERM="xterm-256color")
    sock = str(tmp_path / "tmux.sock")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True, env=env, timeout=20).stdout

    tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "40",
         f"exec {shlex.quote(sys.executable)} -m storyteller.tui --story after-crash")
    try:
        deadline, screen = time.monotonic() + 60, ""
        while "Segmentation fault" not in screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no crash notice; the screen was:\n{screen}")
            time.sleep(0.2)  # another process's screen: nothing to wait on instead
            screen = tmux("capture-pane", "-p", "-t", "t")
    finally:
        tmux("kill-server")
    assert crashlog.previous_crash(cache) is None  # told once, then set aside
