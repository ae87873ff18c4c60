"""The terminal app keeps up with a fast engine and opens a long story at once.

1. Streaming: a scripted engine sends 500 tokens at 500 tokens/s. The stream's own time is
   measured without the app (the engine read as fast as it gives); then the app plays the same
   reply at 80x24 and we time from pressing Enter to the finished reply on screen.
   Target: within 10% of the stream's own time.
2. Opening: a 5,000-message story is opened in the app (story read, session set up, screen
   mounted and drawn). Target: under one second.

``python -m bench tui`` or ``python bench/tui_bench.py``; writes ``bench/results/tui.json`` and the
``## tui`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TOKENS = 500
RATE = 500.0
MESSAGES = 5000
RUNS = 3


def _settings():
    from storyteller.config import Settings

    settings = Settings()
    settings.engine.kind = "fake"
    settings.engine.kv_state = "off"
    return settings


def _reply() -> str:
    return " ".join(f"w{i}" for i in range(TOKENS))


def _paced_backend():
    """A scripted engine that produces tokens on a clock, as a real engine in its own thread does.

    (``ScriptedBackend(delay=...)`` sleeps after each token, so any pause of the event loop adds
    up token by token; a real engine keeps generating while the UI draws.)
    """
    from storyteller.engines.base import Finished, GenerationStats, PromptProgress, TextChunk
    from storyteller.engines.fake import ScriptedBackend

    class PacedBackend(ScriptedBackend):
        async def stream(self, request):
            self.requests.append(request)
            words = _reply().split(" ")
            yield PromptProgress(1, 1)
            start = time.perf_counter()
            for i, word in enumerate(words):
                if request.cancel.is_set():
                    break
                wait = start + (i + 1) / RATE - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                yield TextChunk(word if i == 0 else " " + word)
            total = time.perf_counter() - start
            yield Finished("stop", GenerationStats(completion_tokens=len(words), seconds_total=total,
                                                   tokens_per_second=len(words) / total))

    return PacedBackend()


async def _stream_alone() -> float:
    from storyteller.engines.base import GenerationRequest, Sampling

    backend = _paced_backend()
    request = GenerationRequest(prompt="x", sampling=Sampling(max_tokens=TOKENS + 10))
    started = time.perf_counter()
    async for _chunk in backend.stream(request):
        pass
    return time.perf_counter() - started


async def _stream_in_app() -> tuple[float, int]:
    from storyteller.paths import get_paths
    from storyteller.session import GenerationFinished, PromptBuilt
    from storyteller.tui.app import StorytellerApp
    from storyteller.tui.messages import SessionEventReceived
    from storyteller.tui.screens.story import StoryScreen

    settings = _settings()
    settings.sampling.max_tokens = TOKENS + 10
    backend = _paced_backend()
    app = StorytellerApp(settings, get_paths().ensure(), story=f"bench-{time.monotonic_ns()}", backend=backend)
    done = asyncio.Event()
    finished_at: list[float] = []

    built_at: list[float] = []

    def hook(message) -> None:
        if isinstance(message, SessionEventReceived) and isinstance(message.event, PromptBuilt):
            built_at.append(time.perf_counter())
        if isinstance(message, SessionEventReceived) and isinstance(message.event, GenerationFinished):
            finished_at.append(time.perf_counter())
            done.set()

    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        while not isinstance(app.screen, StoryScreen):
            await pilot.pause(0.01)
        screen = app.screen
        await pilot.pause()
        screen.query_one("#prompt-input").value = "wait"
        started = time.perf_counter()
        await pilot.press("enter")
        await asyncio.wait_for(done.wait(), 60)
        await pilot.pause()  # the finished reply is drawn
        drawn = time.perf_counter()
        view = screen.transcript.views[-1]
        assert not view.streaming and view.text.endswith(f"w{TOKENS - 1}"), "the reply did not arrive whole"
        flushes = screen.flushes
        await pilot.press("ctrl+q")
    return drawn - built_at[0], drawn - started, flushes


def _make_long_story(name: str) -> None:
    from storyteller.paths import get_paths
    from storyteller.story import StorySettings, StoryStore
    from storyteller.story.model import Node

    store = StoryStore(get_paths().ensure().stories_dir)
    story = store.create(name, StorySettings(mode="adventure", cards=["narrator_of_hollowmere"],
                                             worlds=["hollowmere"]))
    nodes, parent = [], None
    for i in range(MESSAGES):
        if i % 2:
            node = Node.make(f"Reply {i}: the fog *shifts* and the lanterns sway. " * 3, author="Narrator of Hollowmere",
                             kind="generation", parent=parent)
        else:
            node = Node.make(f"look around {i}", author="user", kind="do", parent=parent)
        nodes.append(node)
        parent = node.id
    story.add_nodes(nodes, select=parent)
    story.close()


async def _open_long_story(name: str) -> tuple[float, int]:
    from storyteller.engines.fake import ScriptedBackend
    from storyteller.paths import get_paths
    from storyteller.tui.app import StorytellerApp
    from storyteller.tui.screens.story import StoryScreen

    app = StorytellerApp(_settings(), get_paths().ensure(), story=name, backend=ScriptedBackend())
    started = time.perf_counter()
    async with app.run_test(size=(80, 24)) as pilot:
        while not isinstance(app.screen, StoryScreen) or not app.screen.transcript.views:
            await pilot.pause(0.005)
        await pilot.pause()  # mounted and drawn
        elapsed = time.perf_counter() - started
        mounted = len(app.screen.transcript.views)
        assert app.screen.transcript.first_mounted + mounted == MESSAGES
        await pilot.press("ctrl+q")
    return elapsed, mounted


async def _run() -> dict:
    alone = [await _stream_alone() for _ in range(RUNS)]
    in_app = [await _stream_in_app() for _ in range(RUNS)]
    _make_long_story("long")
    opens = [await _open_long_story("long") for _ in range(RUNS)]
    stream_alone = statistics.median(alone)
    stream_app = statistics.median(t for t, _e, _f in in_app)
    end_to_end = statistics.median(e for _t, e, _f in in_app)
    open_s = statistics.median(t for t, _ in opens)
    return {
        "tokens": TOKENS,
        "rate_tokens_per_s": RATE,
        "stream_alone_s": round(stream_alone, 4),
        "stream_in_app_s": round(stream_app, 4),
        "stream_ratio": round(stream_app / stream_alone, 4),
        "stream_target_ratio": 1.10,
        "enter_to_drawn_s": round(end_to_end, 4),
        "flushes_per_reply": statistics.median(f for _t, _e, f in in_app),
        "story_messages": MESSAGES,
        "open_story_s": round(open_s, 4),
        "open_target_s": 1.0,
        "messages_mounted": opens[0][1],
        "machine": None,
    }


def run() -> dict:
    """Run the benchmark in a temporary STORYTELLER_HOME and write the results."""
    from bench._report import machine, write_json, write_section

    old = os.environ.get("STORYTELLER_HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["STORYTELLER_HOME"] = home
        try:
            result = asyncio.run(_run())
        finally:
            if old is None:
                os.environ.pop("STORYTELLER_HOME", None)
            else:
                os.environ["STORYTELLER_HOME"] = old
    result["machine"] = machine()
    write_json("tui", result)
    ok_stream = result["stream_ratio"] <= result["stream_target_ratio"]
    ok_open = result["open_story_s"] < result["open_target_s"]
    write_section("tui", f"""
`python bench/tui_bench.py`: the Textual app at 80x24 with the scripted engine ({result['machine']};
median of {RUNS} runs). Raw figures: `bench/results/tui.json`.

| measure | result | target | |
|---|---|---|---|
| {TOKENS} tokens streamed at {RATE:.0f} tokens/s: the stream alone | {result['stream_alone_s']:.3f} s | | |
| the same reply streamed and drawn in the app (prompt sent to last word drawn) | {result['stream_in_app_s']:.3f} s ({result['stream_ratio']:.3f}x) | within 10% | {'met' if ok_stream else 'MISSED'} |
| from Enter to the last word drawn (adds saving the input, world info, the prompt) | {result['enter_to_drawn_s']:.3f} s | | |
| screen updates during that reply (batched ~30 ms) | {result['flushes_per_reply']:.0f} | | |
| open a {MESSAGES:,}-message story (read, set up, mount, draw) | {result['open_story_s']:.3f} s | under 1 s | {'met' if ok_open else 'MISSED'} |
| messages mounted at open (the rest on scrolling up) | {result['messages_mounted']} | | |
""")
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import json

    print(json.dumps(run(), indent=2))
