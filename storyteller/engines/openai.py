"""The OpenAI-compatible backend: llama.cpp server, llama-cpp-python, vLLM, koboldcpp, hosted APIs.

One class drives text completion (``/v1/completions``, our own template) and chat completion
(``/v1/chat/completions``, the server's template), streaming or not. :meth:`OpenAIBackend.connect`
learns what kind of server it talks to, because the extras differ: sampler fields beyond the
OpenAI standard are sent only to servers known to accept them (a strict server rejects unknown
fields), and token counts come from the server's own tokenizer endpoint when one answers
(llama-cpp-python ``/extras/tokenize``, llama.cpp ``/tokenize``, vLLM ``/tokenize``, koboldcpp
``/api/extra/tokencount``), else from tiktoken with a safety margin, reported as an estimate.
Stopping a stream closes the connection, which these servers take as "stop generating".
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx

from storyteller.config import RemoteSettings
from storyteller.engines._http import RemoteClient
from storyteller.engines._http_stream import (
    CancelRequested,
    Deadline,
    RunState,
    estimate_tokens,
    wait_cancellable,
)
from storyteller.engines._remote import RemoteBackend
from storyteller.engines.capabilities import Capabilities
from storyteller.engines.base import (
    BackendInfo,
    Chunk,
    Finished,
    GenerationRequest,
    GenerationStats,
    TextChunk,
)
from storyteller.errors import (
    EngineConnectionError,
    EngineError,
    EngineResponseError,
)

__all__ = ["OpenAIBackend", "openai_urls", "openai_payload"]

FALLBACK_CONTEXT = 2048
"""Context length assumed when the server does not say (llama-cpp-python, hosted APIs)."""
STANDARD_STOP_LIMIT = 4
"""OpenAI accepts at most four stop strings; we scan for the rest ourselves."""
_PROBE_TEXT = "Hello world"
_HINT = ("Check remote.url / --url (an OpenAI-compatible server, with or without /v1) and remote.model; "
         "for koboldcpp's native API use --engine kobold.")

# Sampling field -> request field, for servers known to accept them. Anything else is left out.
_EXTRAS: dict[str, dict[str, str]] = {
    "llama.cpp": {"top_k": "top_k", "min_p": "min_p", "typical_p": "typical_p", "repeat_penalty": "repeat_penalty",
                  "repeat_last_n": "repeat_last_n", "mirostat_mode": "mirostat", "mirostat_tau": "mirostat_tau",
                  "mirostat_eta": "mirostat_eta", "dry_multiplier": "dry_multiplier", "dry_base": "dry_base",
                  "dry_allowed_length": "dry_allowed_length", "xtc_probability": "xtc_probability",
                  "xtc_threshold": "xtc_threshold", "grammar": "grammar", "top_n_sigma": "top_n_sigma",
                  "dry_penalty_last_n": "dry_penalty_last_n", "dry_sequence_breakers": "dry_sequence_breakers"},
    "llama-cpp-python": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty",
                         "mirostat_mode": "mirostat_mode", "mirostat_tau": "mirostat_tau",
                         "mirostat_eta": "mirostat_eta", "grammar": "grammar"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
    "koboldcpp": {"top_k": "top_k", "min_p": "min_p", "typical_p": "typical", "repeat_penalty": "rep_pen",
                  "mirostat_mode": "mirostat", "mirostat_tau": "mirostat_tau", "mirostat_eta": "mirostat_eta",
                  "grammar": "grammar"},
}
_OWNED_BY = {"llamacpp": "llama.cpp", "vllm": "vllm", "koboldcpp": "koboldcpp"}
_USAGE_IN_STREAM = {"llama.cpp", "vllm", "openai"}


def openai_urls(url: str) -> tuple[str, str]:
    """Split a user's URL into (server root, API prefix relative to it).

    ``http://h:8000`` and ``http://h:8000/v1`` both give ``("http://h:8000", "v1/")``; a URL whose
    path already holds a version segment elsewhere (``.../v1beta/openai``) is used as it is.
    """
    base = url.strip().rstrip("/")
    if base.endswith("/v1"):
        return base[:-3], "v1/"
    path = httpx.URL(base).path
    if re.search(r"/v\d[^/]*(/|$)", path):
        return base, ""
    return base, "v1/"


@dataclass(frozen=True, slots=True)
class _Tokenizer:
    path: str
    body: Callable[[str, str], dict[str, Any]]
    kind: str


def _token_count(body: Any) -> int | None:
    if isinstance(body, dict):
        if isinstance(body.get("tokens"), list):
            return len(body["tokens"])
        for key in ("count", "value"):
            if isinstance(body.get(key), int):
                return body[key]
    return None


_TOKENIZERS = (
    _Tokenizer("extras/tokenize", lambda text, model: {"input": text}, "llama-cpp-python"),
    _Tokenizer("tokenize", lambda text, model: {"content": text}, "llama.cpp"),
    _Tokenizer("tokenize", lambda text, model: {"model": model, "prompt": text}, "vllm"),
    _Tokenizer("api/extra/tokencount", lambda text, model: {"prompt": text, "special": False}, "koboldcpp"),
)


def openai_payload(request: GenerationRequest, *, model: str, server: str, stream: bool) -> dict[str, Any]:
    """The request body: OpenAI's standard fields plus the extras ``server`` is known to take."""
    s = request.sampling
    body: dict[str, Any] = {"model": model, "max_tokens": s.max_tokens, "stream": stream}
    if request.messages is not None:
        body["messages"] = [
            {"role": m.role, "content": m.content, **({"name": m.name} if m.name else {})} for m in request.messages
        ]
    else:
        body["prompt"] = request.prompt
    standard = {"temperature": s.temperature, "top_p": s.top_p, "presence_penalty": s.presence_penalty,
                "frequency_penalty": s.frequency_penalty, "seed": s.seed}
    body.update({key: value for key, value in standard.items() if value is not None})
    stops = [stop for stop in s.stop if stop]
    if stops:
        body["stop"] = stops if server in _EXTRAS else stops[:STANDARD_STOP_LIMIT]
    extras = _EXTRAS.get(server, {})
    for ours, theirs in extras.items():
        value = getattr(s, ours)
        if value is None or (ours == "grammar" and server == "llama-cpp-python" and request.messages is not None):
            continue
        body[theirs] = value
    if s.logit_bias and server in _EXTRAS:  # token ids only mean something to a server running our model
        body["logit_bias"] = {str(token): bias for token, bias in s.logit_bias.items()}
    if stream and server in _USAGE_IN_STREAM:
        body["stream_options"] = {"include_usage": True}
    return body


class OpenAIBackend(RemoteBackend):
    """Any OpenAI-compatible server.

    Args:
        settings: URL (with or without ``/v1``), model, API key, headers, timeouts, retries.
        transport: An httpx transport for tests; ``None`` uses the network.
        streaming: Stream with SSE (default) or wait for the whole reply.
        retry_backoff: First delay before retrying a busy server, in seconds.
        context_length: Overrides what the server reports (or the 2048 fallback).
    """

    CAPABILITIES = Capabilities(text=True, chat=True, exact_tokens=True, logit_bias=True, kv_reuse=True,
                                grammar=True)
    """What an OpenAI-compatible server can do at best (llama.cpp's server); a server without a
    tokenizer endpoint has no exact counts, one storyteller has no extras for (an unknown or hosted
    server) no logit bias, prompt cache or grammar."""

    def __init__(self, settings: RemoteSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 streaming: bool = True, retry_backoff: float = 0.5, context_length: int | None = None) -> None:
        super().__init__()
        self.root_url, self._api = openai_urls(settings.url)
        self.streaming = streaming
        self.server = "unknown"
        self._settings = settings
        self._context_override = context_length
        self._client = RemoteClient(
            settings, label=f"OpenAI-compatible server at {self.root_url}", base_url=self.root_url, hint=_HINT,
            transport=transport, retry_backoff=retry_backoff,
        )
        self._model = settings.model or ""
        self._tokenizer: _Tokenizer | None = None
        self._token_overhead = 0

    _hint = _HINT

    def __repr__(self) -> str:
        return f"OpenAIBackend(url={self.root_url!r}, server={self.server!r})"

    async def connect(self) -> None:
        """Ask the server what it runs; :meth:`info` works afterwards."""
        _, listing = await self._client.json("GET", self._api + "models")
        models = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(models, list):
            raise EngineResponseError(f"{self._client.label} answered {self._api}models without a model list. {_HINT}")
        entry: dict[str, Any] = {}
        for item in models:
            if isinstance(item, dict) and (not self._model or item.get("id") == self._model):
                entry = item
                break
        if not self._model:
            if not entry:
                raise EngineResponseError(f"{self._client.label} lists no models; load one, or set remote.model.")
            self._model = str(entry.get("id"))
        self.server = _OWNED_BY.get(str(entry.get("owned_by", "")), "unknown")
        if self.server == "unknown" and "api.openai.com" in self.root_url:
            self.server = "openai"
        context = await self._discover_context(entry)
        await self._probe_tokenizer()
        warnings: list[str] = []
        if self._context_override:
            context = self._context_override
        elif context is None:
            context = FALLBACK_CONTEXT
            warnings.append(f"the server does not report its context length; assuming {FALLBACK_CONTEXT} tokens")
        capabilities = self.CAPABILITIES
        if self._tokenizer is None:
            capabilities = capabilities.without("exact_tokens")
            warnings.append("the server has no tokenizer endpoint: token counts are estimates (tiktoken + 15 %)")
        if self.server not in _EXTRAS:
            capabilities = capabilities.without("logit_bias", "kv_reuse", "grammar")
        elif "grammar" not in _EXTRAS[self.server]:
            capabilities = capabilities.without("grammar")
        self._info = BackendInfo(
            engine="openai", model=self._model, context_length=context, capabilities=capabilities,
            warnings=tuple(warnings),
            details={"url": self.root_url, "server": self.server, "streaming": self.streaming,
                     "token_counts": "exact" if self._tokenizer else "estimate",
                     "tokenizer": self._tokenizer.path if self._tokenizer else None},
        )

    async def _discover_context(self, entry: dict[str, Any]) -> int | None:
        if isinstance(entry.get("max_model_len"), int):  # vLLM
            return entry["max_model_len"]
        if self.server == "llama.cpp":
            try:
                _, props = await self._client.json("GET", "props", retry=False)
            except EngineError:
                props = None
            if isinstance(props, dict):
                settings = props.get("default_generation_settings")
                for node in (props, settings if isinstance(settings, dict) else {}):
                    if isinstance(node.get("n_ctx"), int) and node["n_ctx"] > 0:
                        return node["n_ctx"]
            meta = entry.get("meta")
            if isinstance(meta, dict) and isinstance(meta.get("n_ctx_train"), int):
                return meta["n_ctx_train"]
        if self.server == "koboldcpp":
            try:
                _, body = await self._client.json("GET", "api/extra/true_max_context_length", retry=False)
                if isinstance(body, dict) and isinstance(body.get("value"), int):
                    return body["value"]
            except EngineError:
                pass
        return None

    async def _probe_tokenizer(self) -> None:
        order = sorted(_TOKENIZERS, key=lambda t: t.kind != self.server)
        if self.server == "openai":
            return
        for tokenizer in order:
            try:
                _, body = await self._client.json("POST", tokenizer.path, body=tokenizer.body(_PROBE_TEXT, self._model),
                                                  retry=False)
                _, empty = await self._client.json("POST", tokenizer.path, body=tokenizer.body("", self._model),
                                                   retry=False)
            except EngineError:
                continue
            count, overhead = _token_count(body), _token_count(empty)
            if count is None or count <= 0 or overhead is None or overhead >= count:
                continue  # e.g. llama.cpp answers a vLLM-shaped body with an empty list
            self._tokenizer, self._token_overhead = tokenizer, overhead
            if self.server == "unknown":
                self.server = tokenizer.kind
            return

    async def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` without BOS: exact from the server's tokenizer, else an estimate."""
        if not text:
            return 0
        if self._tokenizer is None:
            return estimate_tokens(text)
        cached = self._cached_count(text)
        if cached is not None:
            return cached
        tok = self._tokenizer
        _, body = await self._client.json("POST", tok.path, body=tok.body(text, self._model))
        count = _token_count(body)
        if count is None:
            raise EngineResponseError(f"{self._client.label} answered {tok.path} without a token list.")
        return self._remember_count(text, max(count - self._token_overhead, 0))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Generate; see :class:`storyteller.engines.base.Backend`.

        Raises:
            EngineError: A subclass; ``partial_text`` is the text already yielded.
        """
        self.info()
        path = self._api + ("chat/completions" if request.messages is not None else "completions")
        payload = openai_payload(request, model=self._model, server=self.server, stream=self.streaming)
        run = self._new_run(request)
        produce = self._produce_stream(run, path, payload) if self.streaming else self._produce_blocking(run, path, payload)
        async with aclosing(produce) as chunks:
            async for chunk in chunks:
                yield chunk

    def _parse_event(self, run: RunState, data: str) -> tuple[str, bool]:
        if data.strip() == "[DONE]":
            return "", True
        text, reason = self._parse_chunk(run, data, run.extra)
        run.reason = reason or run.reason
        return text, False  # after finish_reason a usage chunk may follow: read on to [DONE] or the end

    def _stream_closed(self, run: RunState) -> bool:
        if run.reason is None:
            raise EngineConnectionError(
                f"{self._client.label} ended the stream mid-reply (no finish reason, no [DONE]); "
                "the text so far is kept. Check the server's console.", partial_text=run.shown)
        return False

    async def _stream_ended(self, run: RunState, cut: bool) -> AsyncIterator[Chunk]:
        tail = run.scanner.flush()
        if tail:
            run.shown += tail
            yield TextChunk(tail)
        yield self._finished(run, run.reason or "stop", run.extra)

    async def _cancelled(self, run: RunState) -> Finished:
        return self._finished(run, "cancelled", run.extra)

    async def _produce_blocking(self, run: RunState, path: str, payload: dict[str, Any]) -> AsyncIterator[Chunk]:
        s = self._settings
        try:
            _, raw = await wait_cancellable(
                self._client.fetch("POST", path, body=payload, timeout=self._client.generation_timeout()),
                cancel=run.request.cancel,
                timeout=min(s.first_token_timeout + s.between_tokens_timeout, run.seconds_left()))
        except CancelRequested:
            yield self._finished(run, "cancelled", {})
            return
        except Deadline as exc:
            raise self._deadline_error(run, exc) from None
        extra: dict[str, Any] = {}
        body = self._client.decode_json(raw, path)
        text, reason = self._parse_chunk(run, raw.decode("utf-8", "replace"), extra, body=body)
        if not isinstance(body, dict) or not body.get("choices"):
            raise EngineResponseError(f"{self._client.label} answered {path} without choices. {_HINT}")
        shown = run.take(text)
        tail = run.scanner.flush()
        run.shown += tail
        shown += tail
        if shown:
            yield TextChunk(shown)
        yield self._finished(run, reason or "stop", extra)

    def _parse_chunk(self, run: RunState, data: str, extra: dict[str, Any], body: Any = None) -> tuple[str, str | None]:
        """Text and finish reason of one chunk (or whole reply); usage and timings go to ``extra``."""
        if body is None:
            body = self._client_json(run, data)
        if not isinstance(body, dict):
            raise self._bad_stream(run, f"not a JSON object: {data[:120]!r}")
        if "error" in body and not body.get("choices"):
            error = body["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise EngineResponseError(f"{self._client.label} reported an error mid-reply: {str(message)[:300]!r}",
                                      partial_text=run.shown)
        for key in ("usage", "timings"):
            if isinstance(body.get(key), dict):
                extra[key] = body[key]
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise self._bad_stream(run, f"a chunk without choices: {data[:120]!r}")
        if not choices:
            return "", None  # the usage-only chunk at the end of a stream
        choice = choices[0] if isinstance(choices[0], dict) else {}
        text = choice.get("text")
        for holder in ("delta", "message"):
            if text is None and isinstance(choice.get(holder), dict):
                text = choice[holder].get("content")
        reason = choice.get("finish_reason")
        # koboldcpp sends the *string* "null" until the last chunk
        reason = reason if isinstance(reason, str) and reason not in ("null", "") else None
        return (text if isinstance(text, str) else ""), reason

    def _client_json(self, run: RunState, data: str) -> Any:
        import json

        try:
            return json.loads(data)
        except ValueError:
            raise self._bad_stream(run, f"an event that is not JSON: {data[:120]!r}") from None

    def _finished(self, run: RunState, reason: str, extra: dict[str, Any]) -> Finished:
        now = time.monotonic()
        stats = GenerationStats(seconds_total=now - run.started,
                                seconds_to_first_token=(run.first_text_at - run.started) if run.first_text_at else None)
        usage = extra.get("usage") or {}
        timings = extra.get("timings") or {}
        if isinstance(usage.get("prompt_tokens"), int):
            stats.prompt_tokens = usage["prompt_tokens"]
        if isinstance(usage.get("completion_tokens"), int):
            stats.completion_tokens = usage["completion_tokens"]
        if isinstance(timings.get("prompt_n"), int):
            stats.tokens_evaluated = timings["prompt_n"]
        if isinstance(timings.get("cache_n"), int):
            stats.tokens_reused = timings["cache_n"]
        if isinstance(timings.get("prompt_ms"), (int, float)):
            stats.prompt_seconds = timings["prompt_ms"] / 1000
        if isinstance(timings.get("predicted_per_second"), (int, float)):
            stats.tokens_per_second = float(timings["predicted_per_second"])
        elif self.streaming and stats.completion_tokens and run.first_text_at and now - run.first_text_at > 0.01:
            stats.tokens_per_second = stats.completion_tokens / (now - run.first_text_at)
        if reason == "cancelled":
            return Finished("cancelled", stats)
        if run.scanner.matched is not None:
            return Finished("stop", stats, run.scanner.matched)
        return Finished("length" if reason == "length" or run.exhausted else "stop", stats)
