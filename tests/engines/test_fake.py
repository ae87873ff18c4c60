"""The scripted backend behaves like an engine: stops, limits, cancellation, stats."""

from __future__ import annotations

from storyteller.engines.base import Backend, Finished, GenerationRequest, Sampling, TextChunk, collect
from storyteller.engines.fake import ScriptedBackend


async def test_replies_in_turn_and_records_requests() -> None:
    fake = ScriptedBackend(["One reply.", "Two reply."])
    assert isinstance(fake, Backend)
    first = await collect(fake, GenerationRequest(prompt="a"))
    second = await collect(fake, GenerationRequest(prompt="b"))
    third = await collect(fake, GenerationRequest(prompt="c"))
    assert (first.text, second.text, third.text) == ("One reply.", "Two reply.", "One reply.")
    assert [r.prompt for r in fake.requests] == ["a", "b", "c"]


async def test_stop_and_length() -> None:
    fake = ScriptedBackend(["You walk north.\n> You open the door"])
    stopped = await collect(fake, GenerationRequest(prompt="x", sampling=Sampling(stop=["\n>"])))
    assert stopped.text == "You walk north." and stopped.finish_reason == "stop" and stopped.stop_string == "\n>"
    short = await collect(fake, GenerationRequest(prompt="x", sampling=Sampling(max_tokens=2)))
    assert short.text == "You walk" and short.finish_reason == "length"


async def test_cancel() -> None:
    fake = ScriptedBackend(["a b c d e f g"])
    request = GenerationRequest(prompt="x")
    got = []
    async for chunk in fake.stream(request):
        if isinstance(chunk, TextChunk):
            got.append(chunk.text)
            request.cancel.set()
        elif isinstance(chunk, Finished):
            assert chunk.finish_reason == "cancelled"
    assert got == ["a"]
