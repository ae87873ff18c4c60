"""``python -m storyteller.kiosk``: the PIN helper and clear errors, in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from storyteller.kiosk.settings import verify_pin

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, STORYTELLER_ENGINE__KIND="fake")
    return subprocess.run([sys.executable, "-m", "storyteller.kiosk", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)


def test_hash_pin_prints_a_settings_line() -> None:
    done = _run("--hash-pin", stdin="8642\n")
    assert done.returncode == 0
    key, _, value = done.stdout.strip().partition(" = ")
    assert key == "pin_hash" and verify_pin("8642", value.strip('"'))
    assert "8642" not in done.stdout


def test_missing_settings_is_a_clear_error() -> None:
    done = _run("--story", "lobby")
    assert done.returncode == 1
    assert "storyteller kiosk: no kiosk settings at" in done.stderr and "--hash-pin" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_story_name_is_a_clear_error(tmp_path: Path) -> None:
    done = _run("--config", str(tmp_path / "k.toml"))
    assert done.returncode == 1 and "--story NAME" in done.stderr


def test_register_adds_the_kiosk_command() -> None:
    import argparse

    from storyteller.tui.kiosk.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["kiosk", "--story", "lobby", "--world", "a", "--world", "b", "--config", "k.toml"])
    assert (args.story, args.world, args.config, args.card) == ("lobby", ["a", "b"], "k.toml", None)
    assert callable(args.func)


def test_the_rules_and_the_command_do_not_import_textual() -> None:
    modules = ["storyteller.kiosk", "storyteller.kiosk.__main__", "storyteller.tui.kiosk.cli",
               "storyteller.kiosk.controller", "storyteller.kiosk.settings", "storyteller.kiosk.moderation", "storyteller.kiosk.archive",
               "storyteller.tui.kiosk.run"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"
