"""Reuse policies on the real SmolLM2 model: predictions compared with a fresh evaluation.

A world-info line appears near the top of a long prompt. ``fast`` keeps every cached line after
it, stale; ``exact`` evaluates everything after the edit again, so its next-token distribution
matches a fresh context's; ``balanced`` recomputes the tokens right after the edit (no promise
of a closer prediction on its own), the stale ones among the last before the new text (closer),
and everything from the first stale token once staleness piles up (exact again).
"""

from __future__ import annotations

import math
import re

import pytest

pytest.importorskip("llama_cpp")

from storyteller.config import EngineSettings
from storyteller.engines import _staleness
from storyteller.engines.base import GenerationRequest, Sampling, collect
from storyteller.engines.llamacpp import LlamaCppBackend

HEADER = "A story of the desert road.\n"
LORE = "[The caravan master is a tall woman named Orrin Vale, who never removes her blue scarf.]\n"
TAIL = "Question: who leads the caravan? Answer: the caravan is led by"


def _lines(n: int) -> str:
    return "".join(f"Line {i}: the caravan reached the {i}th well and the travellers rested in the shade.\n"
                   for i in range(n))


def _one(prompt: str) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, sampling=Sampling(max_tokens=1, temperature=0.0, top_k=1, seed=1,
                                                             repeat_penalty=1.0))


def _logits(backend: LlamaCppBackend):
    """The prompt's last logits: a one-token reply is drawn from them and never evaluated."""
    import llama_cpp
    import numpy as np

    from storyteller.engines import _llama_private as private

    llm = backend._llm
    ptr = llama_cpp.llama_get_logits_ith(private.ctx(llm), -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float64)


def _kl(p_logits, q_logits) -> float:
    import numpy as np

    def log_softmax(x):
        x = x - x.max()
        return x - math.log(float(np.exp(x).sum()))

    lp, lq = log_softmax(p_logits), log_softmax(q_logits)
    return float((np.exp(lp) * (lp - lq)).sum())


async def _run(path, policy: str, prompts: list[str]):
    # One thread: on a busy machine two threads spend their time waiting for each other.
    backend = LlamaCppBackend.load(path, EngineSettings(n_ctx=1024, n_threads=1, cache_reuse=policy))
    try:
        results = []
        for prompt in prompts:
            result = await collect(backend, _one(prompt))
            results.append((result.stats, _logits(backend)))
        return results
    finally:
        await backend.aclose()


@pytest.fixture(scope="module")
def fresh(smollm2_path):
    """Evaluate a prompt in a fresh context (no reuse) and return its last logits."""
    import asyncio

    backend = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=1024, n_threads=1, prefix_reuse=False))

    async def evaluate(prompt: str):
        result = await collect(backend, _one(prompt))
        assert result.stats.tokens_reused == 0
        return _logits(backend)

    yield evaluate
    asyncio.run(backend.aclose())


WARM = HEADER + _lines(24)
EDITED = HEADER + LORE + _lines(24) + TAIL


async def test_exact_never_keeps_stale_tokens_and_matches_a_fresh_evaluation(smollm2_path, fresh) -> None:
    reference = await fresh(EDITED)
    (_, _), (exact_stats, exact_logits) = await _run(smollm2_path, "exact", [WARM, EDITED])
    (_, _), (fast_stats, fast_logits) = await _run(smollm2_path, "fast", [WARM, EDITED])
    assert "policy exact" in exact_stats.cache_note and "evaluated again from token" in exact_stats.cache_note
    assert "no cached token is stale" in exact_stats.cache_note
    assert exact_stats.tokens_evaluated > exact_stats.prompt_tokens - 20  # only the header was kept
    assert fast_stats.tokens_evaluated < 60 and "stale" in fast_stats.cache_note
    exact_kl, fast_kl = _kl(reference, exact_logits), _kl(reference, fast_logits)
    assert exact_kl < 1e-3, exact_kl  # batch splits alone differ by about 1e-4
    assert fast_kl > exact_kl  # the stale lines cost something


async def test_exact_keeps_a_context_shift_at_the_front(smollm2_path) -> None:
    trimmed = HEADER + _lines(24).split("\n", 6)[6] + TAIL  # the six oldest lines trimmed
    (_, _), (stats, _) = await _run(smollm2_path, "exact", [WARM, trimmed])
    assert "context shift" in stats.cache_note
    assert stats.tokens_shifted > 300 and stats.tokens_evaluated < 40


async def test_balanced_recomputes_the_tokens_after_each_edit(smollm2_path, fresh, monkeypatch) -> None:
    monkeypatch.setattr(_staleness, "RECOMPUTE_WINDOW", 16)
    monkeypatch.setattr(_staleness, "RECENT_WINDOW", 0)  # the window alone (the next test: the recent tokens)
    reference = await fresh(EDITED)
    (_, _), (stats, logits) = await _run(smollm2_path, "balanced", [WARM, EDITED])
    (_, _), (fast_stats, fast_logits) = await _run(smollm2_path, "fast", [WARM, EDITED])
    window = _staleness.RECOMPUTE_WINDOW
    assert f"recomputed {window} tokens right after edits" in stats.cache_note
    assert stats.tokens_reused + stats.tokens_evaluated == stats.prompt_tokens
    assert stats.tokens_evaluated == fast_stats.tokens_evaluated + window
    # The recomputed tokens are no longer stale; the rest still is, and the report says so.
    assert _stale(stats.cache_note) == _stale(fast_stats.cache_note) - window > 300
    # Recomputing a few tokens is no guarantee of a closer prediction (on this model it can
    # be further off than keeping them stale: bench cache_quality); both stay small here.
    assert _kl(reference, logits) < 0.05 and _kl(reference, fast_logits) < 0.05


async def test_balanced_reads_the_last_stale_tokens_again(smollm2_path, fresh) -> None:
    reference = await fresh(EDITED)
    (_, _), (stats, logits) = await _run(smollm2_path, "balanced", [WARM, EDITED])
    (_, _), (fast_stats, fast_logits) = await _run(smollm2_path, "fast", [WARM, EDITED])
    recent = _staleness.RECENT_WINDOW
    assert recent > 0 and f"stale tokens among the last {recent}" in stats.cache_note
    # The lines just before the question are read again; the older ones stay stale.
    assert stats.tokens_evaluated >= fast_stats.tokens_evaluated + recent
    assert 0 < _stale(stats.cache_note) <= _stale(fast_stats.cache_note) - recent
    # On this short toy prompt both stay close to a fresh evaluation, and which is closer varies;
    # on a real story the recent tokens are what matters most (bench cache_quality).
    assert _kl(reference, logits) < 0.05 and _kl(reference, fast_logits) < 0.05


def _stale(note: str) -> int:
    match = re.search(r"(\d+) of \d+ cached tokens stale", note)
    assert match, note
    return int(match.group(1))


async def test_balanced_reevaluates_once_staleness_piles_up(smollm2_path, fresh, monkeypatch) -> None:
    monkeypatch.setattr(_staleness, "EDIT_LIMIT", 3)  # a token that missed three edits
    monkeypatch.setattr(_staleness, "STALE_SHARE", 10.0)  # (the mean alone never triggers here)
    monkeypatch.setattr(_staleness, "RECENT_WINDOW", 0)  # (nor the recent tokens: the edit count alone)
    prompts = [WARM + TAIL, EDITED, WARM + TAIL, EDITED]  # the entry fires, stops, fires again
    runs = await _run(smollm2_path, "balanced", prompts)
    notes = [stats.cache_note for stats, _ in runs]
    assert not any("evaluated again" in n for n in notes[:2]), notes
    assert "evaluated again from token" in notes[-1] and "missed" in notes[-1], notes[-1]
    assert "no cached token is stale" in notes[-1]
    assert _kl(await fresh(EDITED), runs[-1][1]) < 1e-3
