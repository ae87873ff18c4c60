"""KoboldBackend against replayed koboldcpp 1.76 bytes: every recorded answer parses as it should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storyteller.config import RemoteSettings
from storyteller.engines.base import GenerationRequest, Sampling, TextChunk, collect
from storyteller.engines.capabilities import Capabilities
from storyteller.engines.kobold import KoboldBackend
from storyteller.errors import EngineAuthError, EngineBusyError, EngineResponseError
from tests.engines._servers import serve_replay
from tests.engines.fake_kobold import recorded_tokens


def _info_routes(t: Path) -> dict[tuple[str, str], list[bytes]]:
    return {
        ("GET", "/api/v1/model"): [(t / "01-GET_api_v1_model.resp").read_bytes()],
        ("GET", "/api/extra/version"): [(t / "03-GET_api_extra_version.resp").read_bytes()],
        ("GET", "/api/extra/true_max_context_length"): [(t / "06-GET_api_extra_true_max_context_length.resp").read_bytes()],
        ("GET", "/api/extra/perf"): [(t / "17-perf_after_generate.resp").read_bytes()],
    }


async def _open(url: str, **options: object) -> KoboldBackend:
    return await KoboldBackend.open(RemoteSettings(url=url, retries=1), retry_backoff=0.01, **options)  # type: ignore[arg-type]


async def test_discovery_from_recorded_info(transcripts: Path) -> None:
    async with serve_replay(_info_routes(transcripts)) as (url, seen):
        backend = await _open(url + "/api/v1")  # a pasted API URL still finds the server root
        info = backend.info()
        await backend.aclose()
    assert info.engine == "kobold" and info.model == "SmolLM2-135M-Instruct.Q4_1"
    assert info.context_length == 2048 and info.details["version"] == "1.76"
    assert {"exact_tokens", "text"} <= info.capabilities and "chat" not in info.capabilities
    assert info.capabilities == KoboldBackend.CAPABILITIES  # koboldcpp: everything it declares
    assert [(m, p) for m, p, _ in seen] == [("GET", "/api/v1/model"), ("GET", "/api/extra/version"),
                                            ("GET", "/api/extra/true_max_context_length")]


async def test_a_server_without_koboldcpp_extras_reports_text_and_logit_bias_only(transcripts: Path) -> None:
    routes = {
        ("GET", "/api/v1/model"): [(transcripts / "01-GET_api_v1_model.resp").read_bytes()],
        ("GET", "/api/v1/config/max_context_length"): [
            b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{\"value\": 2048}"],
    }
    async with serve_replay(routes) as (url, _seen):
        backend = await _open(url)
        info = backend.info()
        await backend.aclose()
    assert info.context_length == 2048
    assert info.capabilities == KoboldBackend.CAPABILITIES.without(*KoboldBackend.EXTRA_ONLY)
    assert info.capabilities == Capabilities(text=True, logit_bias=True)
    assert any("/api/extra" in warning for warning in info.warnings)


async def test_recorded_sse_streams_parse_to_the_recorded_text(transcripts: Path) -> None:
    for name in ("21-stream_sse", "37-stream_sse_long"):
        routes = _info_routes(transcripts)
        routes[("POST", "/api/extra/generate/stream")] = [(transcripts / f"{name}.resp").read_bytes()]
        async with serve_replay(routes) as (url, seen):
            backend = await _open(url)
            chunks = [c async for c in backend.stream(GenerationRequest(prompt="Once upon a time, in a small village,",
                                                                        sampling=Sampling(max_tokens=200, seed=7)))]
            await backend.aclose()
        text = "".join(c.text for c in chunks if isinstance(c, TextChunk))
        assert text == "".join(recorded_tokens(transcripts / f"{name}.resp"))
        assert chunks[-1].finish_reason == "length"  # perf stop_reason 0: ran out of tokens
        assert chunks[-1].stats.completion_tokens == 40  # from the recorded perf
        sent = json.loads(next(body for m, p, body in seen if p == "/api/extra/generate/stream"))
        recorded = json.loads((transcripts / f"{name}.req").read_bytes().partition(b"\r\n\r\n")[2])
        assert set(recorded) - {"ban_eos_token"} <= set(sent)  # every field the recording used, same names
        assert sent["trim_stop"] is False and sent["genkey"].startswith("KCPP")


async def test_recorded_blocking_generate_and_stop_kept_by_trim_stop_false(transcripts: Path) -> None:
    routes = _info_routes(transcripts)
    routes[("POST", "/api/v1/generate")] = [(transcripts / "18-generate_memory_stop_notrim.resp").read_bytes()]
    routes[("GET", "/api/extra/perf")] = [(transcripts / "19-perf_after_stopseq.resp").read_bytes()]
    async with serve_replay(routes) as (url, _):
        backend = await _open(url, streaming=False)
        result = await collect(backend, GenerationRequest(prompt="User: Say hi.\nAssistant:",
                                                          sampling=Sampling(max_tokens=30, stop=["User:", "\n"])))
        await backend.aclose()
    assert result.text == " Hello, I'm a writer."  # the recorded "\n" is the stop string, cut by us
    assert result.finish_reason == "stop" and result.stop_string == "\n"


async def test_empty_200_is_an_error(transcripts: Path) -> None:
    routes = _info_routes(transcripts)
    head, _, body = (transcripts / "53-password_ok.resp").read_bytes().partition(b"\r\n\r\n")
    failed = json.dumps({"results": [{"text": "", "finish_reason": "length"}]}).encode()
    empty = head.replace(b"content-length: %d" % len(body), b"content-length: %d" % len(failed)) + b"\r\n\r\n" + failed
    routes[("POST", "/api/v1/generate")] = [empty]
    async with serve_replay(routes) as (url, _):
        backend = await _open(url, streaming=False)
        with pytest.raises(EngineResponseError, match="empty reply"):
            await collect(backend, GenerationRequest(prompt="Hi"))
        await backend.aclose()


@pytest.mark.parametrize(("resp", "error", "words"), [
    ("20-generate_badjson", EngineResponseError, "Error parsing input"),
    ("38-multiuser0_busy_503", EngineBusyError, "busy"),
    ("51-password_missing_401", EngineAuthError, "no API key was sent"),
    ("10-GET_api_extra_does_not_exist", EngineResponseError, "does not exist"),
])
async def test_recorded_error_answers(transcripts: Path, resp: str, error: type, words: str) -> None:
    routes = _info_routes(transcripts)
    routes[("POST", "/api/extra/generate/stream")] = [(transcripts / f"{resp}.resp").read_bytes()]
    async with serve_replay(routes) as (url, seen):
        backend = await _open(url)
        with pytest.raises(error, match=words) as caught:
            await collect(backend, GenerationRequest(prompt="Hi"))
        await backend.aclose()
    assert url in str(caught.value)  # the message names the server
    attempts = sum(1 for _, p, _ in seen if p == "/api/extra/generate/stream")
    assert attempts == (2 if error is EngineBusyError else 1)  # busy is retried (retries=1), nothing else


async def test_abort_and_check_replies_are_strings(transcripts: Path) -> None:
    routes = _info_routes(transcripts)
    routes[("POST", "/api/extra/abort")] = [(transcripts / "28-abort_genkey.resp").read_bytes(),
                                            (transcripts / "26-abort_wrong_genkey.resp").read_bytes()]
    routes[("POST", "/api/extra/generate/check")] = [(transcripts / "22-check_with_genkey.resp").read_bytes()]
    async with serve_replay(routes) as (url, seen):
        backend = await _open(url)
        assert await backend.abort("KCPP1234") is True  # {"success": "true"}
        assert await backend.abort("WRONGKEY") is False  # {"success": "false"}: a string, still false
        assert (await backend.check("KCPP1234")).startswith("  The story of the dragon")
        await backend.aclose()
    assert json.loads(seen[-1][2]) == {"genkey": "KCPP1234"}


async def test_tokencount_recorded_shape(transcripts: Path) -> None:
    routes = _info_routes(transcripts)
    routes[("POST", "/api/extra/tokencount")] = [(transcripts / "12-tokencount_nospecial.resp").read_bytes()]
    async with serve_replay(routes) as (url, seen):
        backend = await _open(url)
        assert await backend.count_tokens("Hello world") == 2
        assert await backend.count_tokens("Hello world") == 2  # cached: one request only
        await backend.aclose()
    sent = [json.loads(body) for _, p, body in seen if p == "/api/extra/tokencount"]
    assert sent == [json.loads((transcripts / "12-tokencount_nospecial.req").read_bytes().partition(b"\r\n\r\n")[2])]
