"""Pure parts of the remote engines: SSE framing, stop scanning, URLs, request bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storyteller.engines._http_stream import StopScanner, estimate_tokens
from storyteller.engines._sse import SSEParser
from storyteller.engines.base import GenerationRequest, Message, Sampling
from storyteller.engines.kobold import kobold_base_url, kobold_payload
from storyteller.engines.openai import openai_payload, openai_urls


def _feed_all(parser: SSEParser, pieces: list[bytes]) -> list[tuple[str, str]]:
    events = []
    for piece in pieces:
        events += parser.feed(piece)
    events += parser.close()
    return [(e.event, e.data) for e in events]


def test_sse_kobold_framing_split_across_reads() -> None:
    # koboldcpp writes "event: message\n" and the data line in separate socket reads
    pieces = [b"event: message\n", b'data: {"token": " a"}\n\n', b"event: message\ndata: {\"token\"", b': "b"}\n\n']
    assert _feed_all(SSEParser(), pieces) == [("message", '{"token": " a"}'), ("message", '{"token": "b"}')]


def test_sse_done_without_final_blank_line_and_crlf() -> None:
    body = b'data: {"x": 1}\r\n\r\n: keep-alive\r\ndata: [DONE]'
    assert _feed_all(SSEParser(), [body]) == [("message", '{"x": 1}'), ("message", "[DONE]")]


def test_sse_multiline_data_and_lone_cr_split() -> None:
    assert _feed_all(SSEParser(), [b"data: one\r", b"\ndata: two\r\r"]) == [("message", "one\ntwo")]


def test_sse_utf8_split_inside_a_character() -> None:
    raw = 'data: {"token": "é✓"}\n\n'.encode()
    pieces = [raw[i : i + 1] for i in range(len(raw))]
    assert _feed_all(SSEParser(), pieces) == [("message", '{"token": "é✓"}')]


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=6), st.integers(min_value=1, max_value=7))
def test_sse_any_split_gives_the_same_events(tokens: list[str], size: int) -> None:
    clean = [t.replace("\r", "").replace("\n", "") or "x" for t in tokens]
    raw = "".join(f"event: message\ndata: {t}\n\n" for t in clean).encode()
    pieces = [raw[i : i + size] for i in range(0, len(raw), size)]
    assert [data for _, data in _feed_all(SSEParser(), pieces)] == clean


def test_stop_scanner_holds_back_a_possible_stop_and_cuts_at_the_first() -> None:
    scanner = StopScanner(["\nUser:", "THE END"])
    assert scanner.feed("Hello\nUs") == "Hello"
    assert scanner.feed("ual") == "\nUsual"
    assert scanner.feed(" day.\nUser: hi") == " day."
    assert scanner.matched == "\nUser:"
    assert scanner.feed("more") == "" and scanner.flush() == ""


@given(st.text(alphabet="ab\n", max_size=40), st.integers(min_value=1, max_value=5))
def test_stop_scanner_equals_cutting_the_whole_text(text: str, size: int) -> None:
    stops = ["ab\n", "bb"]
    scanner = StopScanner(stops)
    shown = "".join(scanner.feed(text[i : i + size]) for i in range(0, len(text), size)) + scanner.flush()
    cuts = [text.find(s) for s in stops if s in text]
    assert shown == (text[: min(cuts)] if cuts else text)


def test_estimate_errs_high() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("Hello world") >= 3  # cl100k gives 2; the margin rounds up


@pytest.mark.parametrize(("url", "root", "api"), [
    ("http://h:8000", "http://h:8000", "v1/"),
    ("http://h:8000/v1/", "http://h:8000", "v1/"),
    ("https://openrouter.ai/api/v1", "https://openrouter.ai/api", "v1/"),
    ("https://g.example/v1beta/openai", "https://g.example/v1beta/openai", ""),
])
def test_openai_urls(url: str, root: str, api: str) -> None:
    assert openai_urls(url) == (root, api)


@pytest.mark.parametrize("url", ["http://k:5001", "http://k:5001/", "http://k:5001/api", "http://k:5001/api/v1/"])
def test_kobold_base_url(url: str) -> None:
    assert kobold_base_url(url) == "http://k:5001"


def test_kobold_payload_maps_every_sampler_and_sends_trim_stop() -> None:
    sampling = Sampling(max_tokens=33, seed=7, stop=["\n", ""], repeat_last_n=-1, dry_multiplier=0.8,
                       xtc_probability=0.5, grammar="root ::= \"a\"", logit_bias={5: -100.0})
    body = kobold_payload(GenerationRequest(prompt="Hi", sampling=sampling), genkey="KCPP1", context_length=2048)
    assert body["trim_stop"] is False and body["genkey"] == "KCPP1"
    assert body["stop_sequence"] == ["\n"] and body["max_length"] == 33 and body["max_context_length"] == 2048
    assert body["rep_pen"] == 1.1 and body["rep_pen_range"] == 2048 and body["typical"] == 1.0
    assert body["sampler_seed"] == 7 and body["mirostat"] == 0 and body["logit_bias"] == {"5": -100.0}
    assert body["dry_multiplier"] == 0.8 and body["xtc_probability"] == 0.5
    assert body["dry_penalty_last_n"] == 2048  # -1 (the whole context) spelled out for koboldcpp
    assert "frequency_penalty" not in body and "nsigma" not in body  # unknown to koboldcpp / unset
    with pytest.raises(Exception, match="text prompts only"):
        kobold_payload(GenerationRequest(messages=[Message("user", "hi")]), genkey="k", context_length=10)


def test_openai_payload_sends_extras_only_to_known_servers() -> None:
    sampling = Sampling(stop=["1", "2", "3", "4", "5"], logit_bias={1: 2.0}, grammar="g")
    text = GenerationRequest(prompt="p", sampling=sampling)
    strict = openai_payload(text, model="m", server="unknown", stream=True)
    assert set(strict) <= {"model", "prompt", "max_tokens", "stream", "temperature", "top_p", "presence_penalty",
                           "frequency_penalty", "seed", "stop"}
    assert strict["stop"] == ["1", "2", "3", "4"]
    lcp = openai_payload(text, model="m", server="llama-cpp-python", stream=False)
    assert lcp["top_k"] == 40 and lcp["repeat_penalty"] == 1.1 and lcp["mirostat_mode"] == 0
    assert lcp["grammar"] == "g" and lcp["logit_bias"] == {"1": 2.0} and len(lcp["stop"]) == 5
    assert "typical_p" not in lcp and "stream_options" not in lcp
    vllm = openai_payload(GenerationRequest(messages=[Message("user", "hi", name="Ann")]), model="m", server="vllm",
                          stream=True)
    assert vllm["repetition_penalty"] == 1.1 and "repeat_penalty" not in vllm
    assert vllm["messages"] == [{"role": "user", "content": "hi", "name": "Ann"}]
    assert vllm["stream_options"] == {"include_usage": True}
    server = openai_payload(text, model="m", server="llama.cpp", stream=True)
    assert server["mirostat"] == 0 and server["repeat_last_n"] == 64 and server["typical_p"] == 1.0
