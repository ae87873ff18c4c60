"""The layers of DESIGN.md hold: nothing below ``tui/`` imports the UI toolkit, and the
import-linter contracts in pyproject.toml are kept by the tree and broken by a violation.
"""

from __future__ import annotations

import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import storyteller

ROOT = Path(__file__).resolve().parents[1]
UI_SIDE = ("storyteller.tui", "storyteller.kiosk.__main__")


def _core_modules() -> list[str]:
    names = ["storyteller"]
    for info in pkgutil.walk_packages(storyteller.__path__, "storyteller."):
        if not info.name.startswith(UI_SIDE) and not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


def test_no_core_module_imports_textual_or_rich() -> None:
    # One fresh interpreter imports the core module by module and notes the first one after
    # which textual (or rich, beyond what httpx brings itself) is loaded.
    code = (
        "import importlib, json, sys\n"
        "import httpx\n"
        "baseline = {m for m in sys.modules if m.split('.')[0] == 'rich'}\n"
        "ui = lambda: sorted(m for m in sys.modules if m.split('.')[0] == 'textual'\n"
        "                    or (m.split('.')[0] == 'rich' and m not in baseline))\n"
        "bad = {}\n"
        f"for name in {_core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "    if ui():\n"
        "        bad[name] = ui()[:3]\n"
        "        break\n"
        "print(json.dumps(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {}, f"a core module pulls in the UI: {done.stdout}"


def test_the_walk_sees_the_core() -> None:
    modules = _core_modules()
    assert {"storyteller.session.core", "storyteller.kiosk.controller", "storyteller.engines.base",
            "storyteller.sampling"} <= set(modules)
    assert not any(m.startswith("storyteller.tui") for m in modules)


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(exe), "--config", str(cwd / "pyproject.toml")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_import_contracts_are_kept_and_fail_on_a_violation(tmp_path) -> None:
    shutil.copytree(ROOT / "storyteller", tmp_path / "storyteller",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    kept = _lint_imports(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    # An engine reaching up into the session breaks the layers.
    (tmp_path / "storyteller" / "engines" / "_upward.py").write_text(
        "from storyteller.session import Session\n", encoding="utf-8")
    # A screen reading a card itself goes around the session layer's editing service.
    (tmp_path / "storyteller" / "tui" / "screens" / "_around.py").write_text(
        "from storyteller.cards import load_card\n", encoding="utf-8")
    broken = _lint_imports(tmp_path)
    assert broken.returncode != 0
    assert "storyteller.engines is not allowed to import storyteller.session" in broken.stdout
    assert "The UI reads stories, prompts, cards and worlds through the session layer BROKEN" in broken.stdout
    assert "storyteller.tui.screens._around -> storyteller.cards" in broken.stdout
