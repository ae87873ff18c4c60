"""Writing benchmark results: JSON under bench/results/, a table in docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

from storyteller.fileio import atomic_write

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
OUT_ENV = "STORYTELLER_BENCH_OUT"
"""When set, results and the doc go to this folder instead (tests use it, to leave the published ones alone)."""


def _targets() -> tuple[Path, Path]:
    out = os.environ.get(OUT_ENV)
    if out:
        return Path(out) / "results", Path(out) / "benchmarks.md"
    return RESULTS, DOC
HEADER = "# Benchmarks\n\nWritten by `make bench` (`python -m bench`); each section by its own benchmark.\n"


def machine() -> str:
    """One line describing where the numbers come from."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def _atomic_write(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


def write_json(name: str, data: dict) -> Path:
    """Write ``bench/results/<name>.json``."""
    path = _targets()[0] / f"{name}.json"
    _atomic_write(path, json.dumps(data, indent=2) + "\n")
    return path


def write_section(name: str, markdown: str) -> None:
    """Replace (or add) the ``## <name>`` section of docs/benchmarks.md."""
    doc = _targets()[1]
    text = doc.read_text(encoding="utf-8") if doc.exists() else HEADER
    block = f"## {name}\n\n{markdown.strip()}\n\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    _atomic_write(doc, text.rstrip() + "\n")
