"""OpenAIBackend against recorded koboldcpp OpenAI traffic and servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest

from storyteller.config import RemoteSettings
from storyteller.engines.base import GenerationRequest, Message, Sampling, collect
from storyteller.engines.openai import OpenAIBackend
from storyteller.errors import (
    EngineAuthError,
    EngineBusyError,
    EngineConnectionError,
    EngineResponseError,
    EngineTimeoutError,
)
from tests.engines._servers import free_port, serve_raw, serve_replay



def _settings(url: str, **extra: object) -> RemoteSettings:
    values: dict = {"retries": 1, "first_token_timeout": 1, "between_tokens_timeout": 0.4, **extra}
    return RemoteSettings(url=url, **values)


def _reply(status: str, body: bytes, ctype: bytes = b"application/json", extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + ctype + b"\r\n" + extra
            + b"content-length: %d\r\n\r\n" % len(body) + body)


def _routes(**posts: list[bytes]) -> dict[tuple[str, str], list[bytes]]:
    routes = {("GET", "/v1/models"): [_reply("200 OK", b'{"object":"list","data":[{"id":"m","owned_by":"x"}]}')]}
    for name, answers in posts.items():
        routes[("POST", "/v1/" + name.replace("_", "/"))] = answers
    return routes


async def test_koboldcpp_recorded_openai_streams(transcripts: Path) -> None:
    routes = {("GET", "/v1/models"): [(transcripts / "08-GET_v1_models.resp").read_bytes()],
              ("POST", "/v1/chat/completions"): [(transcripts / "33-oai_chat_stream.resp").read_bytes()],
              ("POST", "/v1/completions"): [(transcripts / "35-oai_completions_stream.resp").read_bytes()]}
    async with serve_replay(routes) as (url, seen):
        backend = await OpenAIBackend.open(_settings(url + "/v1"))
        assert backend.server == "koboldcpp" and backend.info().model == "koboldcpp/SmolLM2-135M-Instruct.Q4_1"
        chat = await collect(backend, GenerationRequest(messages=[Message("user", "Name three colors.")]))
        text = await collect(backend, GenerationRequest(prompt="The capital of France is"))
        await backend.aclose()
    expected = [json.loads(line[6:])["choices"][0]["delta"]["content"]
                for line in (transcripts / "33-oai_chat_stream.resp").read_text().splitlines()
                if line.startswith("data: {")]
    assert chat.text == "".join(expected) and chat.finish_reason == "length"  # "null" strings ignored
    assert text.text.startswith(" The\u00e9rogoque.") and text.finish_reason == "length"  # [DONE] had no blank line
    sent = json.loads(next(body for m, p, body in seen if p == "/v1/chat/completions"))
    assert sent["stream"] is True and sent["rep_pen"] == 1.1 and sent["model"] == "koboldcpp/SmolLM2-135M-Instruct.Q4_1"


async def test_recorded_non_streaming_replies(transcripts: Path) -> None:
    routes = {("GET", "/v1/models"): [(transcripts / "08-GET_v1_models.resp").read_bytes()],
              ("POST", "/v1/completions"): [(transcripts / "34-oai_completions.resp").read_bytes()]}
    async with serve_replay(routes) as (url, _):
        backend = await OpenAIBackend.open(_settings(url), streaming=False)
        result = await collect(backend, GenerationRequest(prompt="The capital of France is",
                                                          sampling=Sampling(stop=["\n"])))
        await backend.aclose()
    assert result.text == " The\u00e9rogoque." and result.stop_string == "\n"
    assert result.stats.prompt_tokens == 100  # koboldcpp 1.76's fake usage, reported as given


async def test_refused_connection_names_the_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EngineConnectionError, match="connection refused") as caught:
        await OpenAIBackend.open(_settings(url), retry_backoff=0.01)
    assert url in str(caught.value)


async def test_dns_failure() -> None:
    def fail(request: httpx.Request) -> httpx.Response:  # no DNS in a sandbox: provoke it with a transport
        raise httpx.ConnectError("[Errno -2] Name or service not known") from socket.gaierror(-2, "unknown")

    with pytest.raises(EngineConnectionError, match="DNS"):
        await OpenAIBackend.open(_settings("http://no-such-host.invalid"), transport=httpx.MockTransport(fail))


async def test_connect_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out")

    with pytest.raises(EngineTimeoutError, match="connect_timeout"):
        await OpenAIBackend.open(_settings("http://10.0.0.1:9"), transport=httpx.MockTransport(slow))


@pytest.mark.parametrize(("status", "error", "words"), [
    ("401 Unauthorized", EngineAuthError, "api-key-env"),
    ("403 Forbidden", EngineAuthError, "no API key was sent"),
    ("404 Not Found", EngineResponseError, "does not exist"),
    ("500 Internal Server Error", EngineResponseError, "server error"),
    ("503 Service Unavailable", EngineBusyError, "busy"),
    ("302 Found", EngineResponseError, "do not follow"),
])
async def test_error_statuses(status: str, error: type, words: str) -> None:
    answer = _reply(status, b'{"error": {"message": "nope"}}', extra=b"location: http://evil.example/\r\n")
    async with serve_replay({("GET", "/v1/models"): [answer]}) as (url, seen):
        with pytest.raises(error, match=words):
            await OpenAIBackend.open(_settings(url), retry_backoff=0.01)
    assert all(p == "/v1/models" for _, p, _ in seen)  # never anywhere else


async def test_429_then_ok_is_retried_with_retry_after() -> None:
    routes = _routes(completions=[_reply("429 Too Many Requests", b"{}", extra=b"retry-after: 0\r\n"),
                                  _reply("200 OK", b'{"choices":[{"text":"ok","finish_reason":"stop"}]}')])
    async with serve_replay(routes) as (url, seen):
        backend = await OpenAIBackend.open(_settings(url), streaming=False)
        assert (await collect(backend, GenerationRequest(prompt="p"))).text == "ok"
        await backend.aclose()
    assert [p for _, p, _ in seen].count("/v1/completions") == 2


async def test_malformed_json_and_sse() -> None:
    routes = _routes(completions=[_reply("200 OK", b"data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {oops\n\n",
                                         b"text/event-stream")],
                     chat_completions=[_reply("200 OK", b"<html>not json</html>", b"text/html")])
    async with serve_replay(routes) as (url, _):
        backend = await OpenAIBackend.open(_settings(url))
        with pytest.raises(EngineResponseError, match="not JSON") as caught:
            await collect(backend, GenerationRequest(prompt="p"))
        assert caught.value.partial_text == "a"
        with pytest.raises(EngineResponseError, match="not an event stream"):
            await collect(backend, GenerationRequest(messages=[Message("user", "hi")]))
        backend.streaming = False
        with pytest.raises(EngineResponseError, match="not JSON"):
            await collect(backend, GenerationRequest(messages=[Message("user", "hi")]))
        await backend.aclose()


async def _stream_then(writer: asyncio.StreamWriter, pieces: list[bytes], then: str) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    for piece in pieces:
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
    if then == "stall":
        await asyncio.sleep(30)
    # "cut": return without the terminating chunk; the server closes the socket mid-body


def _misbehaving(then: str, pieces: list[bytes]):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next((l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")), b"0"))
        await reader.readexactly(length)
        if head.startswith(b"GET /v1/models"):
            writer.write(_reply("200 OK", b'{"data":[{"id":"m"}]}'))
        elif head.startswith(b"POST /v1/completions"):
            await _stream_then(writer, pieces, then)
        else:
            writer.write(_reply("404 Not Found", b"{}"))
        await writer.drain()

    return handle


CHUNK = b'data: {"choices":[{"text":"Hello","finish_reason":null}]}\n\n'


@pytest.mark.parametrize(("then", "pieces", "error", "words"), [
    ("cut", [CHUNK], EngineConnectionError, "closed the connection"),
    ("stall", [CHUNK], EngineTimeoutError, "between_tokens_timeout"),
    ("stall", [b": ping\n\n"], EngineTimeoutError, "first_token_timeout"),
])
async def test_stream_cut_or_stalled(then: str, pieces: list[bytes], error: type, words: str) -> None:
    async with serve_raw(_misbehaving(then, pieces)) as url:
        backend = await OpenAIBackend.open(_settings(url))
        with pytest.raises(error, match=words) as caught:
            await collect(backend, GenerationRequest(prompt="p"))
        await backend.aclose()
    assert caught.value.partial_text == ("Hello" if pieces == [CHUNK] else "")


async def test_stream_ending_without_done_or_reason_is_interrupted() -> None:
    body = CHUNK + b'data: {"choices":[{"text":" there","finish_reason":null}]}\n\n'
    async with serve_replay(_routes(completions=[_reply("200 OK", body, b"text/event-stream")])) as (url, _):
        backend = await OpenAIBackend.open(_settings(url))
        with pytest.raises(EngineConnectionError, match="mid-reply") as caught:
            await collect(backend, GenerationRequest(prompt="p"))
        await backend.aclose()
    assert caught.value.partial_text == "Hello there"


async def test_api_key_from_env_sent_but_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-very-secret")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m"}]})
        return httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}})

    settings = _settings("https://api.example.test/v1", api_key_env="MY_KEY", headers={"X-Org": "o1"})
    backend = await OpenAIBackend.open(settings, transport=httpx.MockTransport(handler))
    with pytest.raises(EngineAuthError) as caught:
        await collect(backend, GenerationRequest(prompt="p"))
    await backend.aclose()
    assert seen[0].headers["authorization"] == "Bearer sk-very-secret" and seen[0].headers["x-org"] == "o1"
    assert "sk-very" not in str(caught.value) and "sk-very" not in repr(backend)
    assert {r.url.host for r in seen} == {"api.example.test"}
    info = backend.info()
    assert "exact_tokens" not in info.capabilities and info.details["token_counts"] == "estimate"
    # An unknown hosted server: chat and text from what the engine declares, none of the extras.
    assert info.capabilities == OpenAIBackend.CAPABILITIES.without("exact_tokens", "logit_bias", "kv_reuse", "grammar")
    assert info.capabilities.names == {"text", "chat"}
    assert await backend.count_tokens("Hello world") >= 3  # tiktoken estimate with a margin
