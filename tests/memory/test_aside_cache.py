"""A side road (a summary, a recap) leaves the story's KV cache as it found it, on the bundled model.

``Session.aside`` marks its request ``keep_cache``; the embedded engine copies its main sequence
before the aside and puts it back afterwards, also when the aside is stopped during its prompt or
its answer. The next reply then reads only its own new tokens, and the story tree never changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from storyteller.config import Settings
from storyteller.engines import _llama_private as private
from storyteller.engines.base import Chunk, GenerationRequest, PromptProgress, TextChunk
from storyteller.errors import EngineError
from storyteller.paths import get_paths
from storyteller.session import open_session

INSTRUCTION = "Summarize the story so far in one sentence."


def _settings() -> Settings:
    settings = Settings()
    settings.sampling = settings.sampling.model_copy(update={"max_tokens": 24, "seed": 11})
    return settings


def _cached(backend: Any) -> list[int]:
    llm = backend._llm
    return [int(t) for t in llm.input_ids[: llm.n_tokens]]


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class _StopsAside:
    """The real engine, with the session's ``stop_aside`` pressed when the first chunk of a kind arrives."""

    def __init__(self, backend: Any, session: Any, kind: type) -> None:
        self.backend, self.session, self.kind = backend, session, kind
        self.requests: list[GenerationRequest] = []
        self.pressed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        async for chunk in self.backend.stream(request):
            if isinstance(chunk, self.kind) and not self.pressed:
                self.pressed = True
                self.session.stop_aside()
            yield chunk


def _assert_reads_only_new(session: Any, backend: Any, before: list[int]) -> None:
    """The last turn evaluated only what a cache holding ``before`` (the last turn) could not give."""
    report = session.last_report
    assert report is not None and report.tokens_evaluated is not None and report.prompt_tokens
    assert session.last_prompt.text, "the story is sent as text completion"
    prompt = backend.tokenize(session.last_prompt.text, add_bos=private.add_bos(backend._llm))
    assert len(prompt) == report.prompt_tokens
    kept = _common(before, prompt)
    assert kept > len(prompt) // 2, "the turn's prompt should mostly repeat the last one"
    # Only the new tokens are read (plus at most the one token whose logits must be fresh).
    assert report.tokens_evaluated <= len(prompt) - kept + 1, (report.tokens_evaluated, kept, report.cache_note)
    assert report.tokens_reused >= kept - 1, report.cache_note


async def _play(session: Any, turns: int) -> None:
    for step in range(turns):
        reply = await session.submit(f"I walk down the lane and look at house number {step + 3}.", "do")
        assert reply is not None


async def test_the_turn_after_an_aside_reads_only_its_new_tokens(embedded_backend) -> None:
    session = await open_session("aside-cache", settings=_settings(), paths=get_paths().ensure(),
                                 backend=embedded_backend)
    try:
        await _play(session, 2)
        nodes, path = dict(session.story.nodes), [n.id for n in session.path()]
        before = _cached(embedded_backend)
        stale = embedded_backend.staleness.stale_tokens()
        assert len(before) > 100

        answer = await session.aside(INSTRUCTION, max_tokens=24)

        assert answer.strip(), "the aside answered nothing"
        assert _cached(embedded_backend) == before, "the aside left its own tokens in the story's cache"
        assert embedded_backend.staleness.stale_tokens() == stale
        assert dict(session.story.nodes) == nodes and [n.id for n in session.path()] == path
        assert all(answer not in n.text and INSTRUCTION not in n.text for n in session.story.nodes.values())

        await _play(session, 1)
        _assert_reads_only_new(session, embedded_backend, before)
    finally:
        await session.close()


async def test_an_aside_stopped_in_its_answer_or_its_prompt_leaves_the_cache(embedded_backend) -> None:
    session = await open_session("aside-cancel", settings=_settings(), paths=get_paths().ensure(),
                                 backend=embedded_backend)
    try:
        await _play(session, 2)
        before = _cached(embedded_backend)
        # Stopped while the answer streams: the aside returns nothing and the cache is the story's.
        proxy = _StopsAside(embedded_backend, session, TextChunk)
        session.backend = proxy
        assert await session.aside(INSTRUCTION, max_tokens=200) == ""
        assert proxy.pressed and proxy.requests and all(r.keep_cache for r in proxy.requests)
        assert _cached(embedded_backend) == before

        # Stopped while its prompt is read (a long instruction, read in slices).
        long = INSTRUCTION + " " + " ".join(f"Remember item {i}, the brass key of door {i}." for i in range(60))
        proxy = _StopsAside(embedded_backend, session, PromptProgress)
        session.backend = proxy
        assert await session.aside(long, max_tokens=24) == ""
        assert proxy.pressed
        assert _cached(embedded_backend) == before

        session.backend = embedded_backend
        await _play(session, 1)
        _assert_reads_only_new(session, embedded_backend, before)
    finally:
        session.backend = embedded_backend
        await session.close()


async def test_keep_cache_at_the_engine_also_when_the_request_fails(embedded_backend) -> None:
    """The control first: without ``keep_cache`` the engine keeps what it evaluated last."""
    from storyteller.engines.base import collect

    first = GenerationRequest(prompt="The lighthouse keeper climbed the stairs and", )
    first.sampling = first.sampling.model_copy(update={"max_tokens": 8, "seed": 3})
    await collect(embedded_backend, first)
    before = _cached(embedded_backend)
    other = GenerationRequest(prompt="A recipe for bread: flour, water,", keep_cache=False)
    other.sampling = other.sampling.model_copy(update={"max_tokens": 8, "seed": 3})
    await collect(embedded_backend, other)
    assert _cached(embedded_backend) != before
    side = GenerationRequest(prompt="The lighthouse keeper climbed the stairs and", keep_cache=True)
    side.sampling = side.sampling.model_copy(update={"max_tokens": 8, "seed": 3})
    moved = _cached(embedded_backend)
    result = await collect(embedded_backend, side)
    assert result.stats.tokens_evaluated and result.finish_reason in ("stop", "length")
    assert _cached(embedded_backend) == moved
    # A side road that fails after reading its prompt (a grammar llama.cpp refuses) leaves it too.
    broken = GenerationRequest(prompt="The harbour master counted the boats and", keep_cache=True)
    broken.sampling = broken.sampling.model_copy(update={"max_tokens": 8, "grammar": "root ::= ("})
    with pytest.raises(EngineError, match="grammar"):
        await collect(embedded_backend, broken)
    assert _cached(embedded_backend) == moved
