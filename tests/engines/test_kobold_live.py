"""KoboldBackend against the generating fake koboldcpp: cancel, abort, recovery, faults."""

from __future__ import annotations

import asyncio

import pytest

from storyteller.config import RemoteSettings
from storyteller.engines.base import Finished, GenerationRequest, Sampling, TextChunk, collect
from storyteller.engines.kobold import KoboldBackend
from storyteller.errors import (
    ConfigError,
    EngineAuthError,
    EngineConnectionError,
    EngineResponseError,
    EngineTimeoutError,
)
from tests.engines._servers import serve_asgi
from tests.engines.fake_kobold import FakeKobold


def _settings(url: str, **extra: object) -> RemoteSettings:
    values: dict = {"retries": 1, "first_token_timeout": 2, "between_tokens_timeout": 0.5, **extra}
    return RemoteSettings(url=url, **values)


def _gen_posts(fake: FakeKobold) -> list[dict]:
    return [r.json for r in fake.requests if r.path.endswith(("/generate/stream", "/api/v1/generate"))]


async def test_stream_multi_token_events_and_perf(fake_kobold: FakeKobold, kobold_url: str) -> None:
    fake_kobold.token_delay = 0.004  # several tokens per 20 ms poll, as recorded
    backend = await KoboldBackend.open(_settings(kobold_url))
    result = await collect(backend, GenerationRequest(prompt="Once", sampling=Sampling(max_tokens=40)))
    await backend.aclose()
    assert result.text == fake_kobold.current.text and result.finish_reason == "length"
    assert result.stats.completion_tokens == 40 and result.stats.seconds_to_first_token is not None
    assert not [r for r in fake_kobold.requests if r.path.endswith("/abort")]  # finished cleanly: no abort


async def test_stop_string_cut_and_reported(fake_kobold: FakeKobold, kobold_url: str) -> None:
    backend = await KoboldBackend.open(_settings(kobold_url))
    result = await collect(backend, GenerationRequest(prompt="Once", sampling=Sampling(stop=["tower", "zzz"])))
    await backend.aclose()
    assert result.text == " there was a sorcerer named Elwes. He lived in a "
    assert result.finish_reason == "stop" and result.stop_string == "tower"
    assert _gen_posts(fake_kobold)[0]["stop_sequence"] == ["tower", "zzz"]


async def test_cancel_event_aborts_with_our_genkey(fake_kobold: FakeKobold, kobold_url: str) -> None:
    fake_kobold.token_delay = 0.02
    backend = await KoboldBackend.open(_settings(kobold_url))
    request = GenerationRequest(prompt="Once", sampling=Sampling(max_tokens=500))
    chunks = []
    async for chunk in backend.stream(request):
        chunks.append(chunk)
        if len(chunks) == 2:
            request.cancel.set()
    await backend.aclose()
    assert isinstance(chunks[-1], Finished) and chunks[-1].finish_reason == "cancelled"
    assert sum(isinstance(c, Finished) for c in chunks) == 1
    aborts = [r.json for r in fake_kobold.requests if r.path.endswith("/abort")]
    assert aborts and aborts[0]["genkey"] == _gen_posts(fake_kobold)[0]["genkey"]
    assert fake_kobold.current.aborted and fake_kobold.current.tokens < 100


async def test_consumer_stopping_aborts(fake_kobold: FakeKobold, kobold_url: str) -> None:
    fake_kobold.token_delay = 0.02
    backend = await KoboldBackend.open(_settings(kobold_url))
    stream = backend.stream(GenerationRequest(prompt="Once", sampling=Sampling(max_tokens=500)))
    assert isinstance(await anext(stream), TextChunk)
    await stream.aclose()
    await backend.aclose()
    assert [r.json["genkey"] for r in fake_kobold.requests if r.path.endswith("/abort")] == [
        _gen_posts(fake_kobold)[0]["genkey"]]


async def test_blocking_cancel_keeps_partial_text_via_check(fake_kobold: FakeKobold, kobold_url: str) -> None:
    fake_kobold.token_delay = 0.01
    backend = await KoboldBackend.open(_settings(kobold_url), streaming=False)
    request = GenerationRequest(prompt="Once", sampling=Sampling(max_tokens=500))
    asyncio.get_running_loop().call_later(0.15, request.cancel.set)
    result = await collect(backend, request)
    await backend.aclose()
    assert result.finish_reason == "cancelled" and result.text
    assert fake_kobold.current.text.startswith(result.text)
    assert any(r.path.endswith("/generate/check") for r in fake_kobold.requests)


async def test_dropped_stream_recovered_with_check(fake_kobold: FakeKobold, kobold_url: str) -> None:
    fake_kobold.drop_stream_after = 2  # a proxy drops the connection; koboldcpp keeps generating
    fake_kobold.token_delay = 0.004
    backend = await KoboldBackend.open(_settings(kobold_url))
    result = await collect(backend, GenerationRequest(prompt="Once", sampling=Sampling(max_tokens=60)))
    await backend.aclose()
    assert result.text == fake_kobold.current.text and result.finish_reason == "length"
    assert any(r.path.endswith("/generate/check") for r in fake_kobold.requests)


async def test_dropped_stream_after_server_abort_keeps_partial(fake_kobold: FakeKobold, kobold_url: str) -> None:
    fake_kobold.drop_stream_after = 2
    fake_kobold.drop_aborts = True
    fake_kobold.token_delay = 0.004
    backend = await KoboldBackend.open(_settings(kobold_url))
    request = GenerationRequest(prompt="Once", sampling=Sampling(max_tokens=60))
    stream = backend.stream(request)
    first = await anext(stream)
    with pytest.raises(EngineConnectionError, match="dropped the connection") as caught:
        async for _ in stream:
            pass
    await backend.aclose()
    assert caught.value.partial_text.startswith(first.text)
    assert fake_kobold.current.text.startswith(caught.value.partial_text)


async def test_stall_between_tokens_times_out_keeps_text_and_aborts(fake_kobold: FakeKobold, kobold_url: str) -> None:
    fake_kobold.stall_after = 1
    fake_kobold.token_delay = 0.05
    backend = await KoboldBackend.open(_settings(kobold_url))
    with pytest.raises(EngineTimeoutError, match="between_tokens_timeout") as caught:
        await collect(backend, GenerationRequest(prompt="Once", sampling=Sampling(max_tokens=300)))
    await backend.aclose()
    assert caught.value.partial_text and kobold_url in str(caught.value)
    assert any(r.path.endswith("/abort") for r in fake_kobold.requests)


async def test_garbage_event_is_a_malformed_stream(fake_kobold: FakeKobold, kobold_url: str) -> None:
    fake_kobold.garbage_event = b"<html>oops"
    fake_kobold.token_delay = 0.01
    backend = await KoboldBackend.open(_settings(kobold_url))
    with pytest.raises(EngineResponseError, match="malformed event stream") as caught:
        await collect(backend, GenerationRequest(prompt="Once", sampling=Sampling(max_tokens=300)))
    await backend.aclose()
    assert caught.value.partial_text  # the first event's text is kept


async def test_failed_predict_empty_text_is_an_error(fake_kobold: FakeKobold, kobold_url: str) -> None:
    fake_kobold.fail_next = True
    backend = await KoboldBackend.open(_settings(kobold_url))
    with pytest.raises(EngineResponseError, match="empty reply"):
        await collect(backend, GenerationRequest(prompt="Once"))
    await backend.aclose()


async def test_password_from_env_never_shown(transcripts, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKobold(transcripts, password="s3cret-pw")
    monkeypatch.setenv("KOBOLD_PW", "s3cret-pw")
    async with serve_asgi(fake) as url:
        anonymous = await KoboldBackend.open(_settings(url))
        assert any("password-protected" in w for w in anonymous.info().warnings)
        with pytest.raises(EngineAuthError, match="api-key-env"):
            await collect(anonymous, GenerationRequest(prompt="Hi"))
        await anonymous.aclose()
        backend = await KoboldBackend.open(_settings(url, api_key_env="KOBOLD_PW"))
        assert (await collect(backend, GenerationRequest(prompt="Hi", sampling=Sampling(max_tokens=4)))).text
        assert "s3cret" not in repr(backend)
        await backend.aclose()
        fake.password = "other"
        backend = await KoboldBackend.open(_settings(url, api_key_env="KOBOLD_PW"))
        with pytest.raises(EngineAuthError) as caught:
            await collect(backend, GenerationRequest(prompt="Hi"))
        await backend.aclose()
    assert "s3cret" not in str(caught.value) and "refused" in str(caught.value)
    assert fake.requests[-1].headers["authorization"] == "Bearer s3cret-pw"
    with pytest.raises(ConfigError, match="NOT_SET_VAR"):
        KoboldBackend(_settings(url, api_key_env="NOT_SET_VAR"))


async def test_busy_server_is_retried_before_streaming(transcripts) -> None:
    fake = FakeKobold(transcripts, multiuser=False, token_delay=0.01)
    async with serve_asgi(fake) as url:
        first = await KoboldBackend.open(_settings(url, retries=4), retry_backoff=0.05)
        second = await KoboldBackend.open(_settings(url, retries=4), retry_backoff=0.05)
        a, b = await asyncio.gather(
            collect(first, GenerationRequest(prompt="A", sampling=Sampling(max_tokens=8))),
            collect(second, GenerationRequest(prompt="B", sampling=Sampling(max_tokens=8))),
        )
        await first.aclose()
        await second.aclose()
    assert a.text and b.text
    assert len(_gen_posts(fake)) >= 3  # at least one 503 answered and retried


async def test_tokencount_is_exact_from_the_server(fake_kobold: FakeKobold, kobold_url: str) -> None:
    backend = await KoboldBackend.open(_settings(kobold_url))
    assert await backend.count_tokens("") == 0
    assert await backend.count_tokens("Hello world, this is a test.") == 8  # 9 ids recorded with BOS; special=false drops it
    await backend.aclose()
    assert fake_kobold.requests[-1].json == {"prompt": "Hello world, this is a test.", "special": False}
