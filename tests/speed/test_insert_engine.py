"""Inserting new tokens in the middle of the KV cache, on the real SmolLM2 model.

A world-info line appears near the top and an author's note four lines from the end, while the
oldest lines are trimmed: the engine evaluates only the inserted and new tokens, and predicts
what a full re-read of the same prompt predicts.
"""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from storyteller.config import EngineSettings
from storyteller.engines import _staleness
from storyteller.engines.base import GenerationRequest, Sampling, collect
from storyteller.engines.llamacpp import LlamaCppBackend

HEADER = "A story of the desert road.\n"
LORE = "[The caravan master is a tall woman named Orrin Vale, who never removes her blue scarf.]\n"
NOTE = "[Author's note: the wind is rising from the east.]\n"


def _lines(start: int, stop: int) -> list[str]:
    return [f"Line {i}: the caravan reached the {i}th well and the travellers rested in the shade.\n"
            for i in range(start, stop)]


def _greedy(prompt: str) -> GenerationRequest:
    # DRY off (it is on by default): these prompts repeat one line on purpose.
    return GenerationRequest(prompt=prompt, sampling=Sampling(max_tokens=4, temperature=0.0, top_k=1, seed=1,
                                                             repeat_penalty=1.0, dry_multiplier=0.0))


async def _reread(path, prompt: str):
    fresh = LlamaCppBackend.load(path, EngineSettings(n_ctx=2048, n_threads=2, prefix_reuse=False))
    try:
        return await collect(fresh, _greedy(prompt))
    finally:
        await fresh.aclose()


async def test_inserted_lore_and_note_cost_only_their_tokens(embedded_backend, smollm2_path) -> None:
    await collect(embedded_backend, _greedy(HEADER + "".join(_lines(0, 30))))
    tail = "Line 30: the caravan reached the 30th well and the travellers rested in the"
    lines = _lines(4, 30)  # the four oldest lines were trimmed
    prompt = HEADER + LORE + "".join(lines[:-4]) + NOTE + "".join(lines[-4:]) + tail
    edited = await collect(embedded_backend, _greedy(prompt))
    stats = edited.stats
    count = embedded_backend.count_tokens
    new = await count(LORE) + await count(NOTE) + await count(tail)
    assert "in place" in stats.cache_note and "removed cached tokens" in stats.cache_note
    # The default policy (balanced) also evaluates again the tokens right after both edits, and
    # the stale ones among the last before the new text.
    assert "recomputed" in stats.cache_note
    assert stats.tokens_evaluated <= new + 6 + 2 * _staleness.RECOMPUTE_WINDOW + _staleness.RECENT_WINDOW, \
        stats.cache_note
    assert stats.tokens_reused + stats.tokens_evaluated == stats.prompt_tokens
    assert stats.tokens_shifted > 500 - _staleness.RECENT_WINDOW  # the recent lines are read again

    reread = await _reread(smollm2_path, prompt)
    assert reread.stats.tokens_reused == 0
    assert edited.text.split()[:1] == reread.text.split()[:1] == ["shade."]


async def test_later_tokens_see_the_inserted_text(embedded_backend, smollm2_path) -> None:
    await collect(embedded_backend, _greedy(HEADER + "".join(_lines(0, 20))))
    question = "Question: what is the name of the caravan master? Answer: her name is"
    prompt = HEADER + LORE + "".join(_lines(0, 20)) + question
    edited = await collect(embedded_backend, _greedy(prompt))
    assert "in place" in edited.stats.cache_note
    assert edited.stats.tokens_evaluated <= await embedded_backend.count_tokens(LORE + question) + 4 \
        + _staleness.RECOMPUTE_WINDOW + _staleness.RECENT_WINDOW
    reread = await _reread(smollm2_path, prompt)
    assert edited.text.split()[:1] == reread.text.split()[:1] == ["Orrin"]


async def test_without_context_shift_an_insertion_means_reading_on(smollm2_path) -> None:
    backend = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=2048, n_threads=2, context_shift=False))
    try:
        await collect(backend, _greedy(HEADER + "".join(_lines(0, 12))))
        result = await collect(backend, _greedy(HEADER + LORE + "".join(_lines(0, 12)) + "Line 12:"))
    finally:
        await backend.aclose()
    assert result.stats.tokens_shifted == 0
    assert result.stats.tokens_reused <= 12
    assert "context shift is off" in result.stats.cache_note
