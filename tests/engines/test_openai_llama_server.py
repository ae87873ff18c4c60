"""OpenAIBackend against the real ``python -m llama_cpp.server`` running SmolLM2 (session fixture)."""

from __future__ import annotations

import time

import httpx
import pytest

from storyteller.config import RemoteSettings
from storyteller.engines.base import Finished, GenerationRequest, Message, Sampling, TextChunk, collect
from storyteller.engines.openai import OpenAIBackend

pytestmark = pytest.mark.slow


async def _open(url: str, **options: object) -> OpenAIBackend:
    settings = RemoteSettings(url=url, first_token_timeout=60, between_tokens_timeout=30)
    return await OpenAIBackend.open(settings, **options)  # type: ignore[arg-type]


def _greedy(max_tokens: int, stop: list[str] | None = None) -> Sampling:
    return Sampling(max_tokens=max_tokens, temperature=0, seed=1, stop=stop or [])


async def test_discovers_server_and_counts_tokens_exactly(llama_server: str) -> None:
    backend = await _open(llama_server + "/v1")
    info = backend.info()
    assert info.engine == "openai" and info.model.endswith(".gguf") and backend.server == "llama-cpp-python"
    assert {"exact_tokens", "chat", "text", "grammar"} <= info.capabilities
    text = "Once upon a time, a dragon slept."
    count = await backend.count_tokens(text)
    await backend.aclose()
    raw = httpx.post(f"{llama_server}/extras/tokenize", json={"input": text}).json()["tokens"]
    bos = httpx.post(f"{llama_server}/extras/tokenize", json={"input": ""}).json()["tokens"]
    assert count == len(raw) - len(bos) > 0


async def test_text_completion_streams_and_honours_stops(llama_server: str) -> None:
    backend = await _open(llama_server)
    request = GenerationRequest(prompt="The three primary colours are", sampling=_greedy(24))
    chunks = [c async for c in backend.stream(request)]
    texts = [c.text for c in chunks if isinstance(c, TextChunk)]
    assert len(texts) > 1 and isinstance(chunks[-1], Finished) and chunks[-1].finish_reason == "length"
    full = "".join(texts)
    words = full.split()
    assert len(words) >= 3
    stop = " " + words[2]
    stopped = await collect(backend, GenerationRequest(prompt="The three primary colours are",
                                                       sampling=_greedy(24, stop=[stop])))
    await backend.aclose()
    assert stopped.text == full[: full.index(stop)] and stopped.finish_reason == "stop"


async def test_chat_completion_streaming_and_blocking_agree(llama_server: str) -> None:
    messages = [Message("system", "You are terse."), Message("user", "Name a colour.")]
    streaming = await _open(llama_server)
    a = await collect(streaming, GenerationRequest(messages=messages, sampling=_greedy(16)))
    await streaming.aclose()
    blocking = await _open(llama_server, streaming=False)
    b = await collect(blocking, GenerationRequest(messages=messages, sampling=_greedy(16)))
    await blocking.aclose()
    assert a.text and a.text == b.text
    assert b.stats.completion_tokens is not None and b.stats.prompt_tokens is not None  # usage when not streaming


async def test_cancel_and_consumer_stop_free_the_server(llama_server: str) -> None:
    backend = await _open(llama_server)
    endless = Sampling(max_tokens=1500, seed=3, logit_bias={0: -100.0, 1: -100.0, 2: -100.0})  # SmolLM2's EOS ids banned
    request = GenerationRequest(prompt="Write a very long story about a dragon.", sampling=endless)
    got = []
    async for chunk in backend.stream(request):
        got.append(chunk)
        if len(got) == 3:
            request.cancel.set()
    assert isinstance(got[-1], Finished) and got[-1].finish_reason == "cancelled" and len(got) == 4
    stream = backend.stream(GenerationRequest(prompt="Write a very long story.", sampling=endless))
    assert isinstance(await anext(stream), TextChunk)
    await stream.aclose()
    started = time.monotonic()
    quick = await collect(backend, GenerationRequest(prompt="Hello", sampling=_greedy(4)))
    await backend.aclose()
    # The server serialises generations: had it kept writing 1500 tokens, this would wait for them.
    assert quick.text and time.monotonic() - started < 2.5
