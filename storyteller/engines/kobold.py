"""The KoboldAI API backend (koboldcpp).

koboldcpp speaks HTTP/1.0, one request per connection, and has quirks this module absorbs
(see ``reference/koboldcpp-api.md``): its SSE stream ends by closing without ``[DONE]``, an
event may carry several tokens, ``finish_reason`` is the *string* ``"null"`` until the end,
``"length"`` is reported for stop-sequence hits (``/api/extra/perf`` tells the real reason), a
failed generation is a 200 with empty text, and abort replies are the strings ``"true"`` /
``"false"``. Every request carries a fresh ``genkey`` so that abort and
``/api/extra/generate/check`` only ever touch our own generation.

We send ``trim_stop: false`` explicitly (its default flipped between versions): the stop string
then arrives in the text and our own scanner cuts it, which also tells us which one matched.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from storyteller.config import RemoteSettings
from storyteller.engines._http import RemoteClient, describe_body
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
    EngineTimeoutError,
)

__all__ = ["KoboldBackend", "kobold_base_url", "kobold_payload"]

MAX_STOPS = 32
"""koboldcpp 1.76 keeps the first 32 stop strings and drops the rest silently; we scan for all."""
RECOVERY_POLL = 0.25
CONTROL_WAIT = 5.0
"""Seconds we give abort / perf / check calls: they are lock-free on the server and answer fast."""

_HINT = (
    "Check that remote.url / --url points at a koboldcpp server (default port 5001); "
    "for an OpenAI-compatible server use --engine openai."
)


def kobold_base_url(url: str) -> str:
    """The server root from what a user may paste (``.../api``, ``.../api/v1``, ``.../v1``)."""
    base = url.strip().rstrip("/")
    for suffix in ("/api/v1", "/api/latest", "/api", "/v1"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def kobold_payload(request: GenerationRequest, *, genkey: str, context_length: int) -> dict[str, Any]:
    """The ``/api/v1/generate`` body for a request: every sampler koboldcpp knows, no others.

    ``frequency_penalty`` has no native koboldcpp field and is left out.
    """
    if request.prompt is None:
        raise EngineError(
            "the koboldcpp backend takes text prompts only (its native API has no chat messages); "
            "use text mode, or --engine openai with use_chat"
        )
    s = request.sampling
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "max_context_length": context_length,
        "max_length": s.max_tokens,
        "genkey": genkey,
        "trim_stop": False,
        "stop_sequence": [stop for stop in s.stop if stop][:MAX_STOPS],
    }
    optional = {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k,
        "min_p": s.min_p,
        "typical": s.typical_p,
        "rep_pen": s.repeat_penalty,
        "rep_pen_range": context_length if s.repeat_last_n == -1 else s.repeat_last_n,
        "presence_penalty": s.presence_penalty,
        "mirostat": s.mirostat_mode,
        "mirostat_tau": s.mirostat_tau,
        "mirostat_eta": s.mirostat_eta,
        "dry_multiplier": s.dry_multiplier,
        "dry_base": s.dry_base,
        "dry_allowed_length": s.dry_allowed_length,
        "dry_penalty_last_n": context_length if s.dry_penalty_last_n == -1 else s.dry_penalty_last_n,
        "dry_sequence_breakers": s.dry_sequence_breakers,
        "nsigma": s.top_n_sigma,
        "xtc_probability": s.xtc_probability,
        "xtc_threshold": s.xtc_threshold,
        "grammar": s.grammar,
        "sampler_seed": s.seed,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if s.logit_bias:
        body["logit_bias"] = {str(token): bias for token, bias in s.logit_bias.items()}
    return body


class KoboldBackend(RemoteBackend):
    """A koboldcpp server driven through the KoboldAI API.

    Args:
        settings: Where the server is, timeouts, retries, API key (koboldcpp's ``--password``).
        transport: An httpx transport for tests; ``None`` uses the network.
        streaming: Stream with SSE (default) or wait for the whole reply (``/api/v1/generate``).
        retry_backoff: First delay before retrying a busy server, in seconds.
    """

    CAPABILITIES = Capabilities(text=True, logit_bias=True, exact_tokens=True, grammar=True, kv_reuse=True,
                                context_shift=True, abort=True)
    """What koboldcpp can do; a KoboldAI API server without koboldcpp's ``/api/extra`` endpoints
    has text and logit bias only (see :data:`EXTRA_ONLY`)."""
    EXTRA_ONLY = ("exact_tokens", "grammar", "kv_reuse", "context_shift", "abort")
    """The capabilities that come with koboldcpp's ``/api/extra`` endpoints."""

    def __init__(self, settings: RemoteSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 streaming: bool = True, retry_backoff: float = 0.5) -> None:
        super().__init__()
        self.base_url = kobold_base_url(settings.url)
        self.streaming = streaming
        self._settings = settings
        self._client = RemoteClient(
            settings, label=f"koboldcpp server at {self.base_url}", base_url=self.base_url, hint=_HINT,
            transport=transport, retry_backoff=retry_backoff,
        )
        self._has_extra = True

    _hint = _HINT

    def __repr__(self) -> str:
        return f"KoboldBackend(url={self.base_url!r})"

    async def connect(self) -> None:
        """Ask the server what it runs; :meth:`info` works afterwards."""
        _, model = await self._client.json("GET", "api/v1/model")
        name = str(_field(model, "result", self._client, "api/v1/model"))
        status, version = await self._client.json("GET", "api/extra/version", ok_statuses=(404,))
        self._has_extra = status != 404 and isinstance(version, dict)
        version = version if isinstance(version, dict) else {}
        status, ctx = await self._client.json("GET", "api/extra/true_max_context_length", ok_statuses=(404,))
        if status == 404:  # KoboldAI United and very old koboldcpp; capped at 4096 on 1.76
            _, ctx = await self._client.json("GET", "api/v1/config/max_context_length")
        context_length = _whole_number(ctx, "value", self._client, "max_context_length", minimum=1)
        capabilities = self.CAPABILITIES
        warnings: list[str] = []
        if not self._has_extra:
            capabilities = capabilities.without(*self.EXTRA_ONLY)
            warnings.append("this server lacks koboldcpp's /api/extra endpoints: token counts are estimates, "
                            "and stop / abort only take effect when the reply ends")
            self.streaming = False
        if version.get("protected") and not self._client.sends_key:
            warnings.append("the server is password-protected; set remote.api_key_env / --api-key-env")
        self._info = BackendInfo(
            engine="kobold",
            model=name.removeprefix("koboldcpp/"),
            context_length=context_length,
            capabilities=capabilities,
            warnings=tuple(warnings),
            details={"url": self.base_url, "server": str(version.get("result", "KoboldAI API")),
                     "version": str(version.get("version", "unknown")), "streaming": self.streaming},
        )

    async def count_tokens(self, text: str) -> int:
        """Exact count from ``/api/extra/tokencount`` (without BOS); an estimate on other servers."""
        if not text:
            return 0
        cached = self._cached_count(text)
        if cached is not None:
            return cached
        if not self._has_extra:
            return estimate_tokens(text)
        _, body = await self._client.json("POST", "api/extra/tokencount", body={"prompt": text, "special": False})
        count = _whole_number(body, "value", self._client, "api/extra/tokencount", minimum=0)
        return self._remember_count(text, count)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Generate; see :class:`storyteller.engines.base.Backend`.

        Raises:
            EngineError: A subclass; ``partial_text`` is the text already yielded.
        """
        info = self.info()
        payload = kobold_payload(request, genkey=_new_genkey(), context_length=info.context_length)
        run = self._new_run(request, payload["genkey"])
        produce = (self._produce_stream(run, "api/extra/generate/stream", payload) if self.streaming
                   else self._produce_blocking(run, payload))
        try:
            async with aclosing(produce) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            if run.sent and not run.done:
                # The consumer stopped, or something failed: free the server for the next turn.
                await self.abort(run.genkey)

    async def abort(self, genkey: str) -> bool:
        """Ask the server to stop the generation with this ``genkey``; True if it did."""
        if not self._has_extra:
            return False
        try:
            _, body = await asyncio.wait_for(
                self._client.json("POST", "api/extra/abort", body={"genkey": genkey}, retry=False), CONTROL_WAIT)
        except (EngineError, asyncio.TimeoutError):
            return False
        return isinstance(body, dict) and _truthy(body.get("success"))

    async def check(self, genkey: str) -> str:
        """The text generated so far for ``genkey`` (``""`` when it is not ours or unknown)."""
        _, body = await asyncio.wait_for(
            self._client.json("POST", "api/extra/generate/check", body={"genkey": genkey}, retry=False), CONTROL_WAIT)
        text = _result_text(body, self._client, "api/extra/generate/check")
        return text

    async def perf(self) -> dict[str, Any] | None:
        """``/api/extra/perf`` (stop reason, speeds), or None when unavailable."""
        if not self._has_extra:
            return None
        try:
            _, body = await asyncio.wait_for(self._client.json("GET", "api/extra/perf", retry=False), CONTROL_WAIT)
        except (EngineError, asyncio.TimeoutError):
            return None
        return body if isinstance(body, dict) else None

    # -- generation -------------------------------------------------------------------------

    def _stream_dropped(self, run: RunState, exc: httpx.HTTPError, path: str) -> None:
        """koboldcpp keeps generating when the connection drops: recover the rest with ``check``."""

    def _stream_closed(self, run: RunState) -> bool:
        return run.reason is None  # koboldcpp ends a finished stream by closing: no reason means cut

    async def _stream_ended(self, run: RunState, cut: bool) -> AsyncIterator[Chunk]:
        if cut:
            async for chunk in self._recover(run):
                yield chunk
            return
        final = "stop" if run.scanner.matched is not None else (run.reason or "length")
        for chunk in await self._finish(run, final):
            yield chunk

    async def _produce_blocking(self, run: RunState, payload: dict[str, Any]) -> AsyncIterator[Chunk]:
        s = self._settings
        path = "api/v1/generate"
        run.sent = True
        try:
            _, raw = await wait_cancellable(
                self._client.fetch("POST", path, body=payload, timeout=self._client.generation_timeout()),
                cancel=run.request.cancel,
                timeout=min(s.first_token_timeout + s.between_tokens_timeout, run.seconds_left()))
        except CancelRequested:
            await self.abort(run.genkey)
            text = await self._safe_check(run.genkey)
            shown = run.take(text)
            if shown:
                yield TextChunk(shown)
            yield await self._cancelled(run)
            return
        except Deadline as exc:
            raise self._deadline_error(run, exc) from None
        except EngineConnectionError as exc:
            if isinstance(exc.__cause__, httpx.ConnectError):
                raise  # never reached the server: nothing to recover
            async for chunk in self._recover(run):
                yield chunk
            return
        body = self._client.decode_json(raw, path)
        text = _result_text(body, self._client, path)
        shown = run.take(text)
        if shown:
            yield TextChunk(shown)
        results = body.get("results") if isinstance(body, dict) else None
        first = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else {}
        for chunk in await self._finish(run, str(first.get("finish_reason") or "length"), first):
            yield chunk

    async def _recover(self, run: RunState) -> AsyncIterator[Chunk]:
        """The stream dropped: fetch the rest with ``generate/check`` while the server still works."""
        label = self._client.label
        lost = EngineConnectionError(
            f"{label} dropped the connection mid-reply and the text could not be recovered; "
            "the text so far is kept. Check the server's console and the network.",
            partial_text=run.shown,
        )
        if not self._has_extra:
            raise lost
        quiet_until = time.monotonic() + self._settings.between_tokens_timeout
        while True:
            text = await self._safe_check(run.genkey)
            if not text.startswith(run.raw) or (not text and not run.raw):
                raise lost  # not our generation any more (or the server restarted)
            if len(text) > len(run.raw):
                quiet_until = time.monotonic() + self._settings.between_tokens_timeout
                shown = run.take(text[len(run.raw):])
                if shown:
                    yield TextChunk(shown)
                if run.scanner.matched is not None or run.exhausted:
                    for chunk in await self._finish(run, "stop"):
                        yield chunk
                    return
            perf = await self.perf()
            if perf is None:
                raise lost
            if perf.get("idle") == 1 and int(perf.get("queue", 0) or 0) == 0:
                break
            if run.seconds_left() <= 0:
                raise self._deadline_error(run, Deadline(False, run.timeout, overall=True))
            if time.monotonic() > quiet_until:
                raise EngineTimeoutError(f"{label}: no new text for {self._settings.between_tokens_timeout:g} s "
                                         "after the stream dropped.", partial_text=run.shown)
            if run.request.cancel.is_set():
                yield await self._cancelled(run)
                return
            await asyncio.sleep(RECOVERY_POLL)
        perf = await self.perf() or {}
        reason = perf.get("stop_reason")
        ran_out = reason == 0 and int(perf.get("last_token_count", 0) or 0) >= run.request.sampling.max_tokens
        if reason in (1, 2) or ran_out:
            for chunk in await self._finish(run, "stop" if reason in (1, 2) else "length", perf=perf):
                yield chunk
            return
        raise EngineConnectionError(
            f"{label} dropped the connection mid-reply and stopped generating; the {len(run.shown)} "
            "characters received are kept. Check the server's console and the network, then continue.",
            partial_text=run.shown,
        )

    async def _safe_check(self, genkey: str) -> str:
        try:
            return await self.check(genkey)
        except (EngineError, asyncio.TimeoutError):
            return ""

    def _parse_event(self, run: RunState, data: str) -> tuple[str, bool]:
        body = _json_or_none(data)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise self._bad_stream(run, f"an event without a text token: {data[:120]!r}")
        reason = body.get("finish_reason")
        # koboldcpp 1.76 sends the *string* "null" until the last event; newer ones send null
        if isinstance(reason, str) and reason not in ("null", ""):
            run.reason = reason
        return token, run.reason is not None

    async def _finish(self, run: RunState, final: str, result: dict[str, Any] | None = None,
                      perf: dict[str, Any] | None = None) -> list[Chunk]:
        """The last chunks of a reply that ended on the server: held-back text, then Finished."""
        if run.scanner.matched is not None or run.exhausted:
            await self.abort(run.genkey)  # it may still be generating past a stop or max_tokens we enforced
        perf = perf if perf is not None else await self.perf()
        stop_reason = perf.get("stop_reason") if perf else None
        chunks: list[Chunk] = []
        tail = run.scanner.flush()
        if tail:
            run.shown += tail
            chunks.append(TextChunk(tail))
        if not run.raw and stop_reason not in (1, 2) and not run.request.cancel.is_set():
            run.done = True
            raise EngineResponseError(
                f"{self._client.label} returned an empty reply, which koboldcpp does when generation fails "
                "(for example 'Failed to predict' after a context shift). Check the server's console and "
                "try again, perhaps with a shorter prompt."
            )
        if run.scanner.matched is not None:
            reason, stop = "stop", run.scanner.matched
        elif run.exhausted:
            reason, stop = "length", None
        elif stop_reason in (1, 2) or (stop_reason is None and final == "stop"):
            reason, stop = "stop", None
        else:
            reason, stop = "length", None
        run.done = True
        chunks.append(Finished(reason, self._stats(run, perf, result), stop))  # type: ignore[arg-type]
        return chunks

    async def _cancelled(self, run: RunState) -> Finished:
        await self.abort(run.genkey)
        run.done = True
        return Finished("cancelled", self._stats(run, None, None))

    def _stats(self, run: RunState, perf: dict[str, Any] | None, result: dict[str, Any] | None) -> GenerationStats:
        now = time.monotonic()
        stats = GenerationStats(
            seconds_total=now - run.started,
            seconds_to_first_token=(run.first_text_at - run.started) if run.first_text_at else None,
        )
        result = result or {}
        if isinstance(result.get("prompt_tokens"), int):
            stats.prompt_tokens = result["prompt_tokens"]
        if isinstance(result.get("completion_tokens"), int):
            stats.completion_tokens = result["completion_tokens"]
        if perf:
            if stats.completion_tokens is None and isinstance(perf.get("last_token_count"), int):
                stats.completion_tokens = perf["last_token_count"]
            if isinstance(perf.get("last_input_count"), int) and stats.prompt_tokens is None:
                stats.prompt_tokens = perf["last_input_count"]
            speed = perf.get("last_eval_speed")
            per_token_ms = perf.get("last_eval")
            if isinstance(speed, (int, float)) and speed > 0:
                stats.tokens_per_second = float(speed)
            elif isinstance(per_token_ms, (int, float)) and per_token_ms > 0:
                stats.tokens_per_second = 1000.0 / per_token_ms
            if isinstance(perf.get("last_process_time"), (int, float)):
                stats.prompt_seconds = float(perf["last_process_time"])
        return stats


def _new_genkey() -> str:
    return "KCPP" + secrets.token_hex(6).upper()


def _truthy(value: object) -> bool:
    # koboldcpp answers abort with the strings "true"/"false", not JSON booleans
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _json_or_none(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _field(body: Any, key: str, client: RemoteClient, path: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise EngineResponseError(f"{client.label} answered {path} without {key!r}. {_HINT}")
    return body[key]


def _whole_number(body: Any, key: str, client: RemoteClient, path: str, *, minimum: int) -> int:
    """``body[key]`` as an int of at least ``minimum``; anything else is the server's error, in one line."""
    value = _field(body, key, client, path)
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < minimum:
        raise EngineResponseError(
            f"{client.label} answered {path} with {key} = {describe_body(json.dumps(value))[:60]}, which is not "
            f"a whole number of at least {minimum}. Is this really koboldcpp? {_HINT}"
        )
    return number


def _result_text(body: Any, client: RemoteClient, path: str) -> str:
    results = body.get("results") if isinstance(body, dict) else None
    if not (isinstance(results, list) and results and isinstance(results[0], dict)
            and isinstance(results[0].get("text"), str)):
        raise EngineResponseError(f"{client.label} answered {path} without results[0].text. {_HINT}")
    return results[0]["text"]
