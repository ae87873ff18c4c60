"""The embedded engine on the real SmolLM2 GGUF through real llama.cpp."""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("llama_cpp")

from storyteller.config import EngineSettings
from storyteller.engines import _staleness
from storyteller.engines.base import (
    Backend,
    Finished,
    GenerationRequest,
    Message,
    PromptProgress,
    Sampling,
    TextChunk,
    collect,
)
from storyteller.engines.llamacpp import LlamaCppBackend
from storyteller.errors import EngineError

CHAT = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"
BAN_EOS = {2: -100.0}  # SmolLM2's <|im_end|> / EOS: keeps replies long enough to cut


def _req(prompt: str, **sampling) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, sampling=Sampling(**sampling))


async def test_is_a_backend_and_describes_itself(embedded_backend) -> None:
    assert isinstance(embedded_backend, Backend)
    info = embedded_backend.info()
    assert info.engine == "embedded"
    assert info.context_length == 2048
    assert {"exact_tokens", "kv_reuse", "chat", "text"} <= info.capabilities
    assert info.capabilities == type(embedded_backend).CAPABILITIES  # SmolLM2's GGUF has a chat template
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert info.details["trained_context"] == 8192


async def test_streams_text_then_one_finished(embedded_backend) -> None:
    chunks = [c async for c in embedded_backend.stream(_req(CHAT.format(q="Describe the sea."), max_tokens=24, seed=1,
                                                            logit_bias=BAN_EOS))]
    texts = [c for c in chunks if isinstance(c, TextChunk)]
    finished = [c for c in chunks if isinstance(c, Finished)]
    assert len(texts) >= 10, "expected a token-by-token stream"
    assert len(finished) == 1 and chunks[-1] is finished[0]
    assert finished[0].finish_reason == "length"
    stats = finished[0].stats
    assert stats.completion_tokens == 24
    assert stats.prompt_tokens == await embedded_backend.count_tokens(CHAT.format(q="Describe the sea."))
    assert stats.seconds_to_first_token is not None and stats.tokens_per_second > 0


async def test_exact_counts_use_the_model_tokenizer(embedded_backend) -> None:
    # The chat markers are single special tokens in SmolLM2's vocabulary.
    assert await embedded_backend.count_tokens("<|im_start|>") == 1
    assert await embedded_backend.count_tokens("") == 0
    text = "The lighthouse keeper climbed the stairs."
    n = await embedded_backend.count_tokens(text)
    assert 5 <= n <= 12
    assert n == len(embedded_backend.tokenize(text))


async def test_seeded_generation_is_repeatable(embedded_backend) -> None:
    prompt = CHAT.format(q="Name three colours.")
    first = await collect(embedded_backend, _req(prompt, max_tokens=20, seed=42, temperature=1.0))
    second = await collect(embedded_backend, _req(prompt, max_tokens=20, seed=42, temperature=1.0))
    assert first.text == second.text
    others = {(await collect(embedded_backend, _req(prompt, max_tokens=20, seed=s, temperature=1.5))).text
              for s in (1, 2, 3)}
    assert len(others | {first.text}) > 1, "different seeds should not all give the same text"


async def test_stop_string_cuts_the_text_and_stops(embedded_backend) -> None:
    prompt = CHAT.format(q="Tell me about a forest.")
    free = await collect(embedded_backend, _req(prompt, max_tokens=40, seed=7, logit_bias=BAN_EOS))
    words = free.text.split()
    assert len(words) > 8
    stop = " " + words[6]
    expected = free.text[: free.text.index(stop)]
    cut = await collect(embedded_backend, _req(prompt, max_tokens=40, seed=7, logit_bias=BAN_EOS, stop=[stop]))
    assert cut.text == expected
    assert cut.finish_reason == "stop"
    assert cut.stats.completion_tokens < free.stats.completion_tokens


async def test_cancel_mid_stream_stops_within_one_token(embedded_backend) -> None:
    request = _req(CHAT.format(q="Write a long story."), max_tokens=200, seed=3, logit_bias=BAN_EOS)
    seen = 0
    finished = None
    async for chunk in embedded_backend.stream(request):
        if isinstance(chunk, TextChunk):
            seen += 1
            if seen == 5:
                request.cancel.set()
        elif isinstance(chunk, Finished):
            finished = chunk
    assert finished is not None and finished.finish_reason == "cancelled"
    assert seen <= 6, f"{seen} chunks arrived after asking to stop at 5"
    assert finished.stats.completion_tokens <= 6


async def test_abandoning_the_stream_frees_the_engine(embedded_backend) -> None:
    request = _req(CHAT.format(q="Count to fifty."), max_tokens=300, seed=3, logit_bias=BAN_EOS)
    stream = embedded_backend.stream(request)
    async for chunk in stream:
        if isinstance(chunk, TextChunk):
            break
    await stream.aclose()
    assert request.cancel.is_set()
    # The worker let go of the model: the next request runs at once.
    result = await asyncio.wait_for(collect(embedded_backend, _req("Hello", max_tokens=3, seed=1)), timeout=30)
    assert result.finish_reason in ("length", "stop")


async def test_cancelling_the_consumer_task(embedded_backend) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async for chunk in embedded_backend.stream(_req(CHAT.format(q="Go on."), max_tokens=400, logit_bias=BAN_EOS)):
            if isinstance(chunk, TextChunk):
                started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await asyncio.wait_for(collect(embedded_backend, _req("Hi", max_tokens=2, seed=1)), timeout=30)
    assert result.stats.completion_tokens <= 2


async def test_prefix_reuse_evaluates_only_new_tokens(embedded_backend) -> None:
    base = CHAT.format(q="Tell me about ships and the harbour at dawn, in some detail.")
    first = await collect(embedded_backend, _req(base, max_tokens=4, seed=1))
    assert first.stats.tokens_evaluated == first.stats.prompt_tokens - first.stats.tokens_reused
    longer = base + first.text + " And then"
    second = await collect(embedded_backend, _req(longer, max_tokens=4, seed=1))
    shared = await embedded_backend.count_tokens(base)
    assert second.stats.tokens_reused >= shared - 1
    assert second.stats.tokens_evaluated == second.stats.prompt_tokens - second.stats.tokens_reused
    assert second.stats.tokens_evaluated < second.stats.prompt_tokens / 2
    assert "reused" in second.stats.cache_note
    other = await collect(embedded_backend, _req("A completely different question about cheese?", max_tokens=4))
    assert other.stats.tokens_reused == 0, "a different start cannot reuse anything"


async def test_long_prompt_reports_progress_and_can_be_cancelled(embedded_backend) -> None:
    prompt = "The old map showed roads and rivers. " * 80  # about 700 tokens
    progress = []
    async for chunk in embedded_backend.stream(_req("Fresh start. " + prompt, max_tokens=2)):
        if isinstance(chunk, PromptProgress):
            progress.append(chunk)
    assert len(progress) >= 3
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[-1].done == progress[-1].total - 1

    request = _req("Another start. " + prompt, max_tokens=50)
    chunks = []
    async for chunk in embedded_backend.stream(request):
        chunks.append(chunk)
        if isinstance(chunk, PromptProgress):
            request.cancel.set()
    assert isinstance(chunks[-1], Finished) and chunks[-1].finish_reason == "cancelled"
    assert not any(isinstance(c, TextChunk) for c in chunks)


async def test_prompt_longer_than_context_is_a_clear_error(embedded_backend) -> None:
    with pytest.raises(EngineError, match="context holds 2048"):
        await collect(embedded_backend, _req("word " * 3000, max_tokens=2))


async def test_chat_messages_use_the_model_template(embedded_backend) -> None:
    request = GenerationRequest(messages=[Message("user", "Say hello.")], sampling=Sampling(max_tokens=8, seed=1))
    result = await collect(embedded_backend, request)
    assert result.text.strip()
    # SmolLM2's template adds its default system prompt: about 30 tokens for this message.
    assert result.stats.prompt_tokens > 20


async def test_grammar_constrains_output(embedded_backend) -> None:
    result = await collect(embedded_backend, _req(CHAT.format(q="Is water wet?"), max_tokens=5, seed=1,
                                                  grammar='root ::= "yes" | "no"'))
    assert result.text in ("yes", "no")


async def test_bad_grammar_is_a_clear_error(embedded_backend) -> None:
    with pytest.raises(EngineError, match="grammar"):
        await collect(embedded_backend, _req("x", max_tokens=2, grammar="root ::= ("))


async def test_requests_from_two_tasks_are_serialised(embedded_backend) -> None:
    prompts = [CHAT.format(q="One."), CHAT.format(q="Two.")]
    results = await asyncio.gather(*(collect(embedded_backend, _req(p, max_tokens=6, seed=5)) for p in prompts))
    assert all(r.finish_reason in ("length", "stop") for r in results)
    assert threading.active_count() < 50


def test_gpu_layers_on_a_cpu_build_warn(smollm2_path) -> None:
    from storyteller.engines.llamacpp import LlamaCppBackend, gpu_support

    if gpu_support()[0]:
        pytest.skip("this llama.cpp build can offload to a GPU")
    backend = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=256, n_gpu_layers=-1))
    try:
        info = backend.info()
        assert info.gpu_layers == 0 and info.gpu_backend == "CPU"
        assert any("no GPU support" in w for w in info.warnings)
    finally:
        asyncio.run(backend.aclose())


@pytest.mark.gpu
def test_all_layers_on_the_gpu(smollm2_path) -> None:
    from storyteller.engines.llamacpp import LlamaCppBackend, gpu_support

    if not gpu_support()[0]:
        pytest.skip("this llama.cpp build has no GPU support")
    backend = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=1024, n_gpu_layers=-1))
    try:
        info = backend.info()
        assert info.gpu_layers == 31 and info.gpu_backend != "CPU" and not info.warnings
        result = asyncio.run(collect(backend, _req("Hello", max_tokens=8, seed=1)))
        assert result.stats.completion_tokens > 0
    finally:
        asyncio.run(backend.aclose())


def _greedy(prompt: str, **extra) -> GenerationRequest:
    # DRY off: these prompts repeat one line on purpose, and the test wants the plain continuation.
    return GenerationRequest(prompt=prompt, sampling=Sampling(max_tokens=6, temperature=0.0, top_k=1, seed=1,
                                                             repeat_penalty=1.0, dry_multiplier=0.0, **extra))


def _story(lines: int, start: int = 0) -> list[str]:
    return [f"Line {i}: the caravan reached the {i}th well and the travellers rested in the shade.\n"
            for i in range(start, start + lines)]


async def test_context_shift_reuses_the_tail_after_a_trimmed_span(embedded_backend, smollm2_path) -> None:
    header = "A story of the desert road.\n"
    full = header + "".join(_story(30))
    await collect(embedded_backend, _greedy(full))
    # Old history trimmed (lines 0-9), one new line at the end: the rest of the cache is kept.
    new_line = "Line 30: the caravan reached the 30th well and the travellers rested in the"
    trimmed = header + "".join(_story(20, 10)) + new_line
    shifted = await collect(embedded_backend, _greedy(trimmed))
    new_tokens = await embedded_backend.count_tokens(new_line)
    stats = shifted.stats
    assert "removed cached tokens" in stats.cache_note  # a context shift
    assert stats.tokens_shifted > 300 - _staleness.RECENT_WINDOW  # (the last lines are read again)
    # The default policy (balanced) evaluates again the tokens right after the removed span,
    # and the stale ones among the last before the new text.
    assert "recomputed" in stats.cache_note
    assert stats.tokens_evaluated <= new_tokens + 2 + _staleness.RECOMPUTE_WINDOW + _staleness.RECENT_WINDOW
    assert stats.tokens_reused == stats.prompt_tokens - stats.tokens_evaluated

    # A full re-read of the same prompt predicts the same next tokens.
    fresh = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=2048, n_threads=2, prefix_reuse=False))
    try:
        reread = await collect(fresh, _greedy(trimmed))
    finally:
        await fresh.aclose()
    assert reread.stats.tokens_reused == 0
    assert shifted.text.split()[:1] == reread.text.split()[:1] == ["shade."]


async def test_context_shift_can_be_turned_off(smollm2_path) -> None:
    backend = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=2048, n_threads=2, context_shift=False))
    try:
        await collect(backend, _greedy("Header.\n" + "".join(_story(20))))
        result = await collect(backend, _greedy("Header.\n" + "".join(_story(10, 10)) + "More."))
    finally:
        await backend.aclose()
    assert result.stats.tokens_shifted == 0
    assert result.stats.tokens_reused <= 5
    assert "context shift is off" in result.stats.cache_note


async def test_saved_state_resumes_exactly_like_a_warm_engine(embedded_backend, smollm2_path, tmp_path) -> None:
    story = "A story of the desert road.\n" + "".join(_story(25))
    turn = story + "Line 25: the caravan"
    sampling = dict(max_tokens=12, seed=11, temperature=0.9)
    await collect(embedded_backend, _req(story, max_tokens=1, seed=1))
    state = tmp_path / "story.kv"
    size = await embedded_backend.save_state(state)
    assert size > 0 and (tmp_path / "story.kv.json").is_file()
    warm = await collect(embedded_backend, _req(turn, **sampling))

    cold = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=2048, n_threads=2))
    try:
        assert await cold.load_state(state)
        resumed = await collect(cold, _req(turn, **sampling))
    finally:
        await cold.aclose()
    assert resumed.stats.tokens_reused >= warm.stats.tokens_reused - 1
    assert resumed.stats.tokens_evaluated <= 8
    assert resumed.text == warm.text


async def test_state_from_other_settings_is_refused(embedded_backend, smollm2_path, tmp_path) -> None:
    await collect(embedded_backend, _req("Some words to cache.", max_tokens=1))
    state = tmp_path / "s.kv"
    await embedded_backend.save_state(state)
    other = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=1024, n_threads=2))
    try:
        assert other.fingerprint() != embedded_backend.fingerprint()
        assert not await other.load_state(state)
        assert not await other.load_state(tmp_path / "missing.kv")
        result = await collect(other, _req("Some words to cache.", max_tokens=1))
        assert result.stats.tokens_reused == 0
    finally:
        await other.aclose()
