"""Servers that never stop: streams past max_tokens, endless bodies, dribbled bytes, silence.

Each server here is a real socket on 127.0.0.1 that misbehaves on purpose. The client must stop
at ``max_tokens`` itself, cap every body it buffers, keep an overall deadline per request, and
report a silent server within ``remote.answer_timeout`` (30 s by default).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from storyteller.config import RemoteSettings
from storyteller.engines.base import GenerationRequest, Sampling, collect
from storyteller.engines.kobold import KoboldBackend
from storyteller.engines.openai import OpenAIBackend
from storyteller.errors import EngineResponseError, EngineTimeoutError
from tests.engines._servers import serve_raw

MODELS = b'{"object":"list","data":[{"id":"m","owned_by":"x"}]}'
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
OPENAI_TOKEN = b'data: {"choices":[{"text":"x","finish_reason":null}]}\n\n'
KOBOLD_TOKEN = b'event: message\ndata: {"token": "x", "finish_reason": "null"}\n\n'


def _json(body: bytes) -> bytes:
    return b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


async def _request_line(reader: asyncio.StreamReader) -> tuple[str, str]:
    head = await reader.readuntil(b"\r\n\r\n")
    method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    if length:
        await reader.readexactly(length)
    return method, path


def _kobold_answers(path: str) -> bytes | None:
    return {
        "/api/v1/model": _json(b'{"result": "koboldcpp/test"}'),
        "/api/extra/version": _json(b'{"result": "KoboldCpp", "version": "1.76"}'),
        "/api/extra/true_max_context_length": _json(b'{"value": 4096}'),
        "/api/extra/abort": _json(b'{"success": "true"}'),
        "/api/extra/perf": _json(b'{"idle": 1, "queue": 0, "stop_reason": 0, "last_token_count": 8}'),
        "/api/extra/tokencount": _json(b'{"value": 3}'),
    }.get(path)


async def _forever(writer: asyncio.StreamWriter, piece: bytes, sent: list[int]) -> None:
    while True:
        writer.write(piece * 8)
        sent[0] += 8
        await writer.drain()
        await asyncio.sleep(0.001)


async def test_openai_stream_that_ignores_max_tokens_is_cut_by_the_client() -> None:
    sent = [0]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, path = await _request_line(reader)
        if path == "/v1/models":
            writer.write(_json(MODELS))
            return
        if path != "/v1/completions":
            writer.write(b"HTTP/1.0 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            return
        writer.write(SSE_HEAD)
        await _forever(writer, OPENAI_TOKEN, sent)

    async with serve_raw(handler) as url:
        backend = await OpenAIBackend.open(RemoteSettings(url=url))
        started = time.monotonic()
        result = await collect(backend, GenerationRequest(prompt="p", sampling=Sampling(max_tokens=8)))
        await backend.aclose()
    assert result.text == "x" * 8
    assert result.finish_reason == "length"
    assert time.monotonic() - started < 5


async def test_kobold_stream_that_ignores_max_tokens_is_cut_and_aborted() -> None:
    seen: list[str] = []
    sent = [0]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, path = await _request_line(reader)
        seen.append(path)
        answer = _kobold_answers(path)
        if answer is not None:
            writer.write(answer)
            return
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
        await _forever(writer, KOBOLD_TOKEN, sent)

    async with serve_raw(handler) as url:
        backend = await KoboldBackend.open(RemoteSettings(url=url))
        result = await collect(backend, GenerationRequest(prompt="p", sampling=Sampling(max_tokens=8)))
        await backend.aclose()
    assert result.text == "x" * 8
    assert result.finish_reason == "length"
    assert "/api/extra/abort" in seen  # the server was told to stop, not just hung up on


async def test_one_huge_piece_is_cut_at_the_character_limit() -> None:
    huge = b'data: {"choices":[{"text":"' + b"y" * 300_000 + b'","finish_reason":null}]}\n\n'

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, path = await _request_line(reader)
        if path == "/v1/models":
            writer.write(_json(MODELS))
            return
        if path != "/v1/completions":
            writer.write(b"HTTP/1.0 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            return
        writer.write(SSE_HEAD + huge + b"data: [DONE]\n\n")

    async with serve_raw(handler) as url:
        backend = await OpenAIBackend.open(RemoteSettings(url=url))
        result = await collect(backend, GenerationRequest(prompt="p", sampling=Sampling(max_tokens=4)))
        await backend.aclose()
    assert result.text == "y" * 4 * 64  # MAX_CHARS_PER_TOKEN per requested token
    assert result.finish_reason == "length"


@pytest.mark.parametrize(("engine", "path"), [(OpenAIBackend, "/v1/models"), (KoboldBackend, "/api/v1/model")])
async def test_endless_body_on_the_info_endpoint_is_capped(engine: type, path: str) -> None:
    sent = [0]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_line(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n[")
        await _forever(writer, b"{}," * 4096, sent)

    async with serve_raw(handler) as url:
        started = time.monotonic()
        with pytest.raises(EngineResponseError, match="more than 16 MiB"):
            await engine.open(RemoteSettings(url=url))
    assert time.monotonic() - started < 20
    assert sent[0] * 3 * 4096 < 200 * 1024 * 1024  # we stopped reading long before a memory problem


async def test_body_dribbled_one_byte_at_a_time_hits_the_overall_deadline() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_line(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n")
        for byte in MODELS * 100:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    async with serve_raw(handler) as url:
        started = time.monotonic()
        with pytest.raises(EngineTimeoutError, match="within 1 s .remote.answer_timeout"):
            await OpenAIBackend.open(RemoteSettings(url=url, answer_timeout=1, between_tokens_timeout=60))
    assert time.monotonic() - started < 4


async def test_reply_dribbled_token_by_token_hits_the_generation_deadline() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, path = await _request_line(reader)
        if path == "/v1/models":
            writer.write(_json(MODELS))
            return
        if path != "/v1/completions":
            writer.write(b"HTTP/1.0 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            return
        writer.write(SSE_HEAD)
        while True:
            writer.write(OPENAI_TOKEN)
            await writer.drain()
            await asyncio.sleep(0.1)

    async with serve_raw(handler) as url:
        backend = await OpenAIBackend.open(RemoteSettings(url=url, generation_timeout=1.5, between_tokens_timeout=60))
        started = time.monotonic()
        with pytest.raises(EngineTimeoutError, match="in all .remote.generation_timeout") as caught:
            await collect(backend, GenerationRequest(prompt="p", sampling=Sampling(max_tokens=10_000)))
        await backend.aclose()
    assert 1.4 < time.monotonic() - started < 4
    assert caught.value.partial_text.startswith("xxx")  # what arrived is kept


def test_default_settings_report_a_silent_server_within_30_seconds() -> None:
    defaults = RemoteSettings()
    assert defaults.answer_timeout <= 30  # the limit the next test shows is honoured


@pytest.mark.slow
async def test_silent_server_with_default_settings_is_reported_in_about_30_seconds() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_line(reader)
        await asyncio.sleep(3600)  # accept, read the request, say nothing

    async with serve_raw(handler) as url:
        started = time.monotonic()
        with pytest.raises(EngineTimeoutError, match="remote.answer_timeout"):
            await OpenAIBackend.open(RemoteSettings(url=url))
    assert time.monotonic() - started < 32


async def test_kobold_nonsense_numbers_are_one_line_errors() -> None:
    answers = {"ctx": b'{"value": "abc"}', "count": b'{"value": 3}'}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, path = await _request_line(reader)
        if path == "/api/extra/true_max_context_length":
            writer.write(_json(answers["ctx"]))
        elif path == "/api/extra/tokencount":
            writer.write(_json(answers["count"]))
        else:
            writer.write(_kobold_answers(path) or b"HTTP/1.0 404 Not Found\r\ncontent-length: 0\r\n\r\n")

    async with serve_raw(handler) as url:
        for bad in (b'{"value": "abc"}', b'{"value": 1e400}', b'{"value": null}', b'{"value": -5}'):
            answers["ctx"] = bad
            with pytest.raises(EngineResponseError, match="not a whole number") as caught:
                await KoboldBackend.open(RemoteSettings(url=url))
            assert "\n" not in str(caught.value)
        answers["ctx"] = b'{"value": 4096}'
        backend = await KoboldBackend.open(RemoteSettings(url=url))
        answers["count"] = b'{"value": "many"}'
        with pytest.raises(EngineResponseError, match="not a whole number"):
            await backend.count_tokens("hello there")
        await backend.aclose()
    assert json.loads(b'{"value": 1e400}')["value"] == float("inf")  # what the server really sent
