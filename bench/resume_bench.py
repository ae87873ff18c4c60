"""Resume benchmark: reopen the cache benchmark's story in a new process and time the first reply.

The cache benchmark (``python -m bench cache``) leaves its story, with the engine's KV state
saved after the last turn, in ``$TMPDIR/storyteller-bench/resume-base``, and times the next turn
in the same process: the warm time. Here two fresh processes each open a copy of that story and
play the same next turn: one loads the saved KV state, the other has it deleted and reads the
whole prompt again. Target: with the state, the first reply comes at most 1.2x the warm time.
With the same seed the resumed reply must also be the warm one, word for word.

When the cache benchmark has not run, a shorter story (40 turns, already past the context) is
played first.

Run: ``python -m bench resume``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _story
from bench._report import machine, write_json, write_section

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.2
FALLBACK_TURNS = 40


async def _child(home: Path) -> dict[str, Any]:
    """In a fresh process: open the story, play the next turn, report."""
    os.environ["STORYTELLER_HOME"] = str(home)
    from storyteller.engines.factory import open_backend
    from storyteller.paths import get_paths
    from storyteller.session_setup import open_session

    meta = json.loads((home.parent / "meta.json").read_text())
    paths = get_paths().ensure()
    settings = _story.settings_for("embedded", None)
    t0 = time.perf_counter()
    backend = await open_backend(settings, paths)
    t1 = time.perf_counter()
    recorder = _story.RecordingBackend(backend)
    session = await open_session(_story.STORY, settings=settings, paths=paths, backend=recorder)  # type: ignore[arg-type]
    t2 = time.perf_counter()
    kind, text = meta["input"]
    reply = await session.submit(text, kind)
    stats = recorder.finished[0]
    out = {
        "model_load_s": t1 - t0,
        "open_story_s": t2 - t1,
        "ttft_s": stats.seconds_to_first_token,
        "evaluated": stats.tokens_evaluated,
        "reused": stats.tokens_reused,
        "prompt_tokens": stats.prompt_tokens,
        "cache_note": stats.cache_note,
        "same_reply_as_warm": (reply.text if reply else "") == meta["reply"],
    }
    session.parts.settings.engine.kv_state = "off"  # leave the copy as it was
    await session.close()
    await backend.aclose()
    return out


def _ensure_base() -> tuple[Path, dict[str, Any]]:
    base = _story.bench_home() / "resume-base"
    meta_path = _story.bench_home() / "resume-base.json"
    if not (base.is_dir() and meta_path.is_file()):
        from bench import cache_bench

        asyncio.run(cache_bench.run_story("embedded", None, FALLBACK_TURNS, reuse=True, calibrate_too=False))
    return base, json.loads(meta_path.read_text())


def _run_child(base: Path, meta: dict[str, Any], with_state: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="storyteller-resume-"))
    try:
        home = work / "home"
        shutil.copytree(base, home)
        (work / "meta.json").write_text(json.dumps(meta))
        if not with_state:
            for state in home.rglob("engine.kv*"):
                state.unlink()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "bench.resume_bench", "--child", str(home)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the resume child failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(rounds: int = 3, publish: bool = True) -> dict[str, Any]:
    """Run the benchmark (median of ``rounds`` child processes each way)."""
    import statistics

    base, meta = _ensure_base()
    with_state = [_run_child(base, meta, True) for _ in range(rounds)]
    without = [_run_child(base, meta, False) for _ in range(rounds)]

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 4)

    warm = meta["warm_ttft_s"]
    result = {
        "machine": machine(),
        "story_turns": meta["turns"],
        "rounds": rounds,
        "warm_ttft_s": round(warm, 4),
        "warm_evaluated": meta["warm_evaluated"],
        "with_state_ttft_s": med(with_state, "ttft_s"),
        "with_state_evaluated": with_state[0]["evaluated"],
        "with_state_open_story_s": med(with_state, "open_story_s"),
        "without_state_ttft_s": med(without, "ttft_s"),
        "without_state_evaluated": without[0]["evaluated"],
        "model_load_s": med(with_state + without, "model_load_s"),
        "with_state_over_warm": round(med(with_state, "ttft_s") / warm, 4),
        "without_over_with_state": round(med(without, "ttft_s") / med(with_state, "ttft_s"), 4),
        "same_reply_as_warm": all(r["same_reply_as_warm"] for r in with_state),
        "target": f"with_state_over_warm <= {TARGET}",
        "with_state_runs": with_state,
        "without_state_runs": without,
    }
    if publish:
        write_json("resume", result)
        write_section("resume", _markdown(result))
    return result


def _markdown(r: dict[str, Any]) -> str:
    met = "met" if r["with_state_over_warm"] <= TARGET else "missed"
    return f"""
`python -m bench resume`: the cache benchmark's {r['story_turns']}-turn story, reopened in a new process
(median of {r['rounds']} processes each way); the next turn's time to first token. "Warm" is the same turn
played in the original process. The story and its prompt do not change between the three. {r['machine']}.

| | time to first token, s | prompt tokens evaluated |
|---|---|---|
| warm (same process) | {r['warm_ttft_s']:.3f} | {r['warm_evaluated']} |
| new process, KV state loaded | {r['with_state_ttft_s']:.3f} | {r['with_state_evaluated']} |
| new process, no saved state | {r['without_state_ttft_s']:.3f} | {r['without_state_evaluated']} |

With the state: {r['with_state_over_warm']:.2f}x the warm time (target <= {TARGET}: {met}); opening the
story, state included, took {r['with_state_open_story_s']:.3f} s after the model's {r['model_load_s']:.3f} s load.
Without it: {r['without_over_with_state']:.1f}x slower. Same reply as warm, word for word (same seed):
{'yes' if r['same_reply_as_warm'] else 'no'}.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench resume")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child))))
        return 0
    return run_from_args(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared with ``python -m bench resume``)."""
    parser.add_argument("--rounds", type=int, default=3, help="processes each way (default 3)")


def run_from_args(args: argparse.Namespace) -> int:
    result = run(args.rounds)
    summary = {k: v for k, v in result.items() if not k.endswith("_runs")}
    print(json.dumps(summary, indent=None if getattr(args, "json", False) else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
