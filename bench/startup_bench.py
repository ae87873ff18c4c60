"""Startup benchmark: cold start to interactive, and memory (RSS), without and with the model.

Each case runs in a fresh Python process, several times; the figures are the median wall time
of the whole process (interpreter start included) and its peak resident memory (from
``wait4``). "Interactive" without the TUI means a session is open and ready for input:
``open_session`` has returned, with the scripted fake engine (no model) or the embedded engine
on the default model (SmolLM2-135M, default settings).

Run: ``python -m bench startup``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, write_json, write_section

ROOT = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).with_name("storyteller")  # the installed entry point
_OPEN = """
import asyncio, sys
from storyteller.config import Settings
from storyteller.paths import get_paths
from storyteller.session_setup import open_session

async def main():
    settings = Settings()
    settings.engine.kind = sys.argv[1]
    settings.engine.kv_state = "off"
    paths = get_paths().ensure()
    from storyteller.engines.factory import open_backend
    backend = await open_backend(settings, paths)
    session = await open_session("startup", settings=settings, paths=paths, backend=backend)
    print(backend.info().context_length)
    await session.close()
    await backend.aclose()

asyncio.run(main())
"""
CASES: dict[str, list[str]] = {
    "python -c pass (the interpreter alone)": [sys.executable, "-c", "pass"],
    "storyteller --version": [str(_SCRIPT) if _SCRIPT.exists() else sys.executable, *([] if _SCRIPT.exists() else ["-m", "storyteller.cli"]), "--version"],
    "import storyteller.session": [sys.executable, "-c", "import storyteller.session, storyteller.session_setup"],
    "open_session, fake engine (no model)": [sys.executable, "-c", _OPEN, "fake"],
    "open_session, embedded engine, default model": [sys.executable, "-c", _OPEN, "embedded"],
}


def _measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of one process."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed with {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024, text  # ru_maxrss is in KiB on Linux


def run(rounds: int = 5, publish: bool = True) -> dict[str, Any]:
    """Run every case ``rounds`` times (after one unmeasured run that warms the disk cache)."""
    home = Path(tempfile.mkdtemp(prefix="storyteller-startup-"))
    env = {**os.environ, "STORYTELLER_HOME": str(home), "PYTHONPATH": str(ROOT)}
    rows = []
    try:
        for name, argv in CASES.items():
            _measure(argv, env)
            samples = [_measure(argv, env) for _ in range(rounds)]
            rows.append({
                "case": name,
                "seconds": round(statistics.median(s[0] for s in samples), 4),
                "rss_mib": round(statistics.median(s[1] for s in samples), 1),
                "output": samples[0][2].strip()[:80],
            })
    finally:
        shutil.rmtree(home, ignore_errors=True)
    result = {"machine": machine(), "rounds": rounds, "cases": rows}
    if publish:
        write_json("startup", result)
        write_section("startup", _markdown(result))
    return result


def _markdown(r: dict[str, Any]) -> str:
    lines = "\n".join(f"| {row['case']} | {row['seconds']:.3f} | {row['rss_mib']:.0f} |" for row in r["cases"])
    context = next((row["output"] for row in r["cases"] if "embedded" in row["case"]), "?")
    return f"""
`python -m bench startup`: each case in a fresh process, median of {r['rounds']} runs after one warm-up run
(files in the page cache); wall time of the whole process, interpreter start included, and its peak
resident memory. "open_session" is the point where a story is open and ready for input (the TUI adds
its own start-up; see its section). The default model runs with its default {context}-token context.
{r['machine']}.

| case | seconds | peak RSS, MiB |
|---|---|---|
{lines}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench startup")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared with ``python -m bench startup``)."""
    parser.add_argument("--rounds", type=int, default=5, help="runs of each case (default 5)")


def run_from_args(args: argparse.Namespace) -> int:
    result = run(args.rounds)
    print(json.dumps(result, indent=None if getattr(args, "json", False) else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
