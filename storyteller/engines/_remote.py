"""What the koboldcpp and OpenAI-compatible backends share: opening, info, closing, count cache,
and reading a streamed reply (a template method; the servers differ only in the hooks).

:meth:`RemoteBackend._produce_stream` sends the request, reads Server-Sent Events under the
first-token, between-token and overall deadlines, honours ``request.cancel``, cuts at stop
strings, stops at ``max_tokens`` itself for servers that ignore it, and turns malformed streams
and deadlines into :mod:`storyteller.errors` engine errors that keep the text so far. Subclasses
say how an event reads (:meth:`_parse_event`), what a dropped or closed stream means
(:meth:`_stream_dropped`, :meth:`_stream_closed`), and how a reply ends (:meth:`_stream_ended`,
:meth:`_cancelled`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar, Self

import httpx

from storyteller.config import RemoteSettings
from storyteller.engines._http import RemoteClient
from storyteller.engines._http_stream import (
    CancelRequested,
    Deadline,
    RunState,
    StopScanner,
    TimedReader,
    wait_cancellable,
)
from storyteller.engines._sse import SSEParser, SSEProtocolError
from storyteller.engines.base import BackendInfo, Chunk, Finished, GenerationRequest, TextChunk
from storyteller.errors import EngineResponseError, EngineTimeoutError

__all__ = ["RemoteBackend"]

_COUNT_CACHE_LIMIT = 2048


class RemoteBackend:
    """Base of the server backends. Subclasses set ``_client`` and implement :meth:`connect`."""

    _client: RemoteClient
    _settings: RemoteSettings
    _hint: ClassVar[str] = ""
    """What to check, appended to errors about malformed answers."""

    def __init__(self) -> None:
        self._info: BackendInfo | None = None
        self._count_cache: dict[str, int] = {}

    @classmethod
    async def open(cls, settings: RemoteSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                   **options: Any) -> Self:
        """Connect, discover what the server runs, and return a ready backend."""
        backend = cls(settings, transport=transport, **options)  # type: ignore[call-arg]
        try:
            await backend.connect()
        except BaseException:
            await backend.aclose()
            raise
        return backend

    async def connect(self) -> None:
        """Ask the server what it runs; :meth:`info` works afterwards."""
        raise NotImplementedError

    def info(self) -> BackendInfo:
        """What the server runs (after :meth:`open` / :meth:`connect`)."""
        if self._info is None:
            name = type(self).__name__
            raise RuntimeError(f"{name}.info() before connect(); create it with {name}.open()")
        return self._info

    async def aclose(self) -> None:
        """Close connections."""
        await self._client.aclose()

    def _cached_count(self, text: str) -> int | None:
        return self._count_cache.get(text)

    def _remember_count(self, text: str, count: int) -> int:
        if len(self._count_cache) > _COUNT_CACHE_LIMIT:
            self._count_cache.clear()
        self._count_cache[text] = count
        return count

    # -- streaming: the template and its hooks ------------------------------------------------

    def _new_run(self, request: GenerationRequest, genkey: str = "") -> RunState:
        return RunState(request, genkey, StopScanner(request.sampling.stop), timeout=self._settings.generation_timeout)

    async def _produce_stream(self, run: RunState, path: str, payload: dict[str, Any]) -> AsyncIterator[Chunk]:
        """Stream one reply from ``path``; see the module docstring."""
        s = self._settings
        try:
            response = await wait_cancellable(
                self._client.send("POST", path, body=payload, stream=True, timeout=self._client.generation_timeout()),
                cancel=run.request.cancel, timeout=min(s.first_token_timeout, run.seconds_left()))
        except CancelRequested:
            run.sent = True
            yield await self._cancelled(run)
            return
        except Deadline as exc:
            run.sent = True
            raise self._deadline_error(run, exc) from None
        run.sent = True
        reader = TimedReader(response, run.request.cancel, s.first_token_timeout, s.between_tokens_timeout,
                             overall=run.deadline)
        parser = SSEParser()
        ended = cut = False
        try:
            while not ended:
                try:
                    data = await reader.read()
                except httpx.HTTPError as exc:
                    self._stream_dropped(run, exc, path)
                    cut = True
                    break
                try:
                    events = parser.close() if data is None else parser.feed(data)
                except SSEProtocolError as exc:
                    raise self._bad_stream(run, str(exc)) from None
                for event in events:
                    text, ended = self._parse_event(run, event.data)
                    if text:
                        reader.text_arrived()
                        shown = run.take(text)
                        if shown:
                            yield TextChunk(shown)
                            if run.request.cancel.is_set():
                                raise CancelRequested  # set while the consumer held this chunk
                    if run.scanner.matched is not None or run.exhausted:
                        ended = True  # a stop we found, or more than max_tokens: closing stops the server
                    if ended:
                        break
                if data is None and not ended:
                    if not parser.saw_any_field:
                        raise self._bad_stream(run, "the answer is not an event stream")
                    cut = self._stream_closed(run)
                    break
        except CancelRequested:
            await response.aclose()
            yield await self._cancelled(run)
            return
        except Deadline as exc:
            raise self._deadline_error(run, exc) from None
        finally:
            await response.aclose()  # before the server's end, this drops the connection: it stops
        async for chunk in self._stream_ended(run, cut):
            yield chunk

    def _parse_event(self, run: RunState, data: str) -> tuple[str, bool]:
        """Text of one event and whether it ends the reply; sets ``run.reason`` / ``run.extra``."""
        raise NotImplementedError

    def _stream_dropped(self, run: RunState, exc: httpx.HTTPError, path: str) -> None:
        """The connection failed mid-stream: raise, or return to recover in :meth:`_stream_ended`."""
        raise self._client.transport_error(exc, path, partial_text=run.shown) from None

    def _stream_closed(self, run: RunState) -> bool:
        """The server closed the stream before an end event; True means "recover what is left"."""
        raise NotImplementedError

    def _stream_ended(self, run: RunState, cut: bool) -> AsyncIterator[Chunk]:
        """The last chunks: held-back text and :class:`Finished` (or recovery when ``cut``)."""
        raise NotImplementedError

    async def _cancelled(self, run: RunState) -> Finished:
        """The consumer stopped the reply: the final chunk."""
        raise NotImplementedError

    def _bad_stream(self, run: RunState, what: str) -> EngineResponseError:
        return EngineResponseError(
            f"{self._client.label} sent a malformed event stream ({what}); the text so far is kept. {self._hint}",
            partial_text=run.shown,
        )

    def _deadline_error(self, run: RunState, exc: Deadline) -> EngineTimeoutError:
        if exc.overall:
            what = (f"the reply took longer than {exc.seconds:g} s in all (remote.generation_timeout); "
                    "the text so far is kept")
        elif exc.first:
            what = (f"no reply within {exc.seconds:g} s (remote.first_token_timeout); the prompt may be "
                    "too long for this server, or it is busy with another request")
        else:
            what = f"no new text for {exc.seconds:g} s (remote.between_tokens_timeout); the text so far is kept"
        return EngineTimeoutError(f"{self._client.label}: {what}.", partial_text=run.shown)
