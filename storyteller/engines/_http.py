"""HTTP plumbing shared by the remote engines: one client per server, errors people can act on.

Every request goes to the configured base URL with a fixed, relative path; redirects are not
followed, so no answer can send us (and the API key) anywhere else. Transport failures and
HTTP error statuses become :mod:`storyteller.errors` engine errors naming the server and what
to check. Busy answers (429/503) and refused connections are retried with backoff, but only
before any reply text has been received, where retrying cannot duplicate anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
from typing import Any

import httpx

from storyteller.config import RemoteSettings
from storyteller.errors import (
    ConfigError,
    EngineAuthError,
    EngineBusyError,
    EngineConnectionError,
    EngineError,
    EngineResponseError,
    EngineTimeoutError,
)

__all__ = ["RemoteClient", "describe_body", "resolve_api_key"]

MAX_RETRY_AFTER = 30.0
"""Longest wait we accept from a Retry-After header before giving up instead."""
MAX_ERROR_BODY = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
"""Largest answer we buffer (model lists, token counts, a whole non-streamed reply)."""


def resolve_api_key(settings: RemoteSettings) -> str | None:
    """The API key from ``settings.api_key`` or the variable named by ``settings.api_key_env``.

    Raises:
        ConfigError: ``api_key_env`` names a variable that is not set.
    """
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return settings.api_key.get_secret_value()
    if settings.api_key_env:
        value = os.environ.get(settings.api_key_env)
        if not value:
            raise ConfigError(
                f"the environment variable {settings.api_key_env} (remote.api_key_env / --api-key-env) "
                "is not set or empty; export it with the server's API key, or unset api_key_env"
            )
        return value
    return None


def describe_body(raw: bytes | str, limit: int = 200) -> str:
    """A short, printable excerpt of an answer for an error message (never parsed as markup)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def server_message(raw: bytes) -> str:
    """The error message inside a koboldcpp / OpenAI / FastAPI error body, else an excerpt."""
    try:
        body = json.loads(raw)
    except ValueError:
        return describe_body(raw) if raw.strip() else "(empty body)"
    found: Any = body
    for path in (("detail", "msg"), ("error", "message"), ("detail",), ("error",), ("message",)):
        node: Any = body
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node:
            found = node
            break
    return describe_body(found if isinstance(found, str) else json.dumps(found))


class RemoteClient:
    """An :class:`httpx.AsyncClient` bound to one server.

    Args:
        settings: Where the server is and how long to wait.
        label: How messages name the server, e.g. ``koboldcpp server at http://host:5001``.
        base_url: Absolute URL every request path is joined to.
        hint: What to check when the server cannot be reached or refuses us.
        transport: A transport for tests; ``None`` uses the network.
        retry_backoff: First backoff delay in seconds; doubles on every retry.
    """

    def __init__(
        self,
        settings: RemoteSettings,
        *,
        label: str,
        base_url: str,
        hint: str,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_backoff: float = 0.5,
    ) -> None:
        self.settings = settings
        self.label = label
        self.hint = hint
        self.retry_backoff = retry_backoff
        api_key = resolve_api_key(settings)
        headers = {"Accept": "application/json", **settings.headers}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.sends_key = api_key is not None or any(k.lower() == "authorization" for k in settings.headers)
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            transport=transport,
            follow_redirects=False,
            timeout=self.control_timeout(),
            trust_env=False,  # a proxy from the environment must not see our key by surprise
        )

    def __repr__(self) -> str:
        return f"RemoteClient({self.label!r})"

    def control_timeout(self) -> httpx.Timeout:
        """Timeouts for short calls (info, counts, abort); :meth:`json` adds the overall deadline."""
        s = self.settings
        return httpx.Timeout(connect=s.connect_timeout, read=s.answer_timeout, write=s.connect_timeout, pool=s.connect_timeout)

    def generation_timeout(self) -> httpx.Timeout:
        """Timeouts for a generation: our own reader enforces the first-token / between-token limits."""
        s = self.settings
        read = max(s.first_token_timeout, s.between_tokens_timeout) + 1.0
        return httpx.Timeout(connect=s.connect_timeout, read=read, write=s.connect_timeout, pool=s.connect_timeout)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    @staticmethod
    def _path(path: str) -> str:
        # Paths are constants of this package; refuse anything that could leave the base URL.
        if "://" in path or path.startswith("//"):
            raise ValueError(f"refusing absolute URL {path!r}: requests go only to the configured server")
        return path.lstrip("/")

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        stream: bool = False,
        timeout: httpx.Timeout | None = None,
        retry: bool = True,
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send a request, retrying busy answers and refused connections, and check the status.

        Args:
            method: ``GET`` or ``POST``.
            path: Path relative to the base URL.
            body: JSON body for POST.
            stream: Return before reading the body (the caller must ``aclose()`` the response).
            timeout: Overrides :meth:`control_timeout`.
            retry: Whether busy/refused may be retried (only safe before generation starts).
            ok_statuses: Error statuses the caller handles itself (returned, not raised).

        Raises:
            EngineError: A subclass naming the server and what to check.
        """
        request = self._client.build_request(
            method, self._path(path), json=body, timeout=timeout or self.control_timeout()
        )
        attempts = (self.settings.retries if retry else 0) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._client.send(request, stream=stream)
            except httpx.ConnectError as exc:
                if not last and _is_refused(exc):
                    await asyncio.sleep(self._delay(attempt, None))
                    continue
                raise self.transport_error(exc, path) from exc
            except httpx.HTTPError as exc:
                raise self.transport_error(exc, path) from exc
            if response.status_code < 300 or response.status_code in ok_statuses:
                return response
            raw = await self._read_error_body(response)
            if response.status_code in (429, 503) and not last:
                await asyncio.sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            raise self.status_error(response.status_code, raw, path, response.headers.get("location"))
        raise AssertionError("unreachable")  # pragma: no cover

    async def json(self, method: str, path: str, *, body: Any = None, timeout: httpx.Timeout | None = None,
                   retry: bool = True, ok_statuses: tuple[int, ...] = ()) -> tuple[int, Any]:
        """Send a request and decode a JSON answer; returns ``(status, parsed body)``.

        The whole call, body included, must finish within ``remote.answer_timeout`` seconds and
        the body may not exceed :data:`MAX_BODY` bytes.

        Raises:
            EngineTimeoutError: No complete answer in time.
            EngineResponseError: The answer is too big or not JSON.
        """
        limit = self.settings.answer_timeout
        try:
            async with asyncio.timeout(limit):
                status, raw = await self.fetch(method, path, body=body, timeout=timeout, retry=retry,
                                               ok_statuses=ok_statuses)
        except TimeoutError:
            raise EngineTimeoutError(
                f"{self.label} gave no complete answer to {path} within {limit:g} s (remote.answer_timeout). "
                f"Is it overloaded or hung? Check the server's console. {self.hint}"
            ) from None
        if status in ok_statuses:
            return status, None
        return status, self.decode_json(raw, path)

    async def fetch(self, method: str, path: str, *, body: Any = None, timeout: httpx.Timeout | None = None,
                    retry: bool = True, ok_statuses: tuple[int, ...] = ()) -> tuple[int, bytes]:
        """Send a request and read its body, at most :data:`MAX_BODY` bytes; returns ``(status, body)``.

        No overall deadline of its own: callers wrap it in one.
        """
        response = await self.send(method, path, body=body, stream=True, timeout=timeout, retry=retry,
                                   ok_statuses=ok_statuses)
        try:
            if response.status_code in ok_statuses:
                return response.status_code, b""
            raw = bytearray()
            try:
                async for piece in response.aiter_bytes():
                    raw += piece
                    if len(raw) > MAX_BODY:
                        raise EngineResponseError(
                            f"{self.label} answered {path} with more than {MAX_BODY // 1048576} MiB; "
                            f"that is not a normal answer, so it was cut off. {self.hint}"
                        )
            except httpx.HTTPError as exc:
                raise self.transport_error(exc, path) from exc
            return response.status_code, bytes(raw)
        finally:
            await response.aclose()

    def decode_json(self, raw: bytes, path: str, partial_text: str = "") -> Any:
        """Parse a JSON body or raise :class:`EngineResponseError` with an excerpt."""
        try:
            return json.loads(raw)
        except ValueError:
            raise EngineResponseError(
                f"{self.label} answered {path} with something that is not JSON: {describe_body(raw)}. "
                f"{self.hint}",
                partial_text=partial_text,
            ) from None

    async def _read_error_body(self, response: httpx.Response) -> bytes:
        try:
            raw = b""
            async for piece in response.aiter_bytes():
                raw += piece
                if len(raw) > MAX_ERROR_BODY:
                    break
            return raw
        except httpx.HTTPError:
            return b""
        finally:
            await response.aclose()

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return self.retry_backoff * (2**attempt) * (1 + random.random() / 4)

    def status_error(self, status: int, raw: bytes, path: str, location: str | None = None,
                     partial_text: str = "") -> EngineError:
        """The engine error for an HTTP error status."""
        message = server_message(raw)
        where = f"{self.label} answered {path} with HTTP {status}"
        if status in (401, 403):
            sent = "the API key we sent was refused" if self.sends_key else "no API key was sent"
            return EngineAuthError(
                f"{where} ({message}): {sent}. Set the key with remote.api_key_env / --api-key-env "
                "(for koboldcpp, its --password).",
                partial_text=partial_text,
            )
        if status in (429, 503):
            return EngineBusyError(
                f"{where} ({message}): the server is busy; try again in a moment"
                f" (retried {self.settings.retries} times).",
                partial_text=partial_text,
            )
        if status == 404:
            return EngineResponseError(f"{where}: the endpoint does not exist. {self.hint}", partial_text=partial_text)
        if 300 <= status < 400:
            target = describe_body(location or "?")
            return EngineResponseError(
                f"{where}: a redirect to {target}, which we do not follow; put the final address in remote.url / --url.",
                partial_text=partial_text,
            )
        if status >= 500:
            return EngineResponseError(f"{where} ({message}): a server error; check the server's console.", partial_text=partial_text)
        return EngineResponseError(f"{where} ({message}). {self.hint}", partial_text=partial_text)

    def transport_error(self, exc: BaseException, path: str, partial_text: str = "") -> EngineError:
        """The engine error for an httpx transport failure."""
        s = self.settings
        if isinstance(exc, httpx.ConnectTimeout):
            return EngineTimeoutError(
                f"{self.label}: no connection within {s.connect_timeout:g} s (remote.connect_timeout). {self.hint}",
                partial_text=partial_text,
            )
        if isinstance(exc, httpx.TimeoutException):
            return EngineTimeoutError(
                f"{self.label} stopped answering {path} (timed out). Check the server's console; raise "
                "remote.first_token_timeout / remote.between_tokens_timeout if it is just slow.",
                partial_text=partial_text,
            )
        if isinstance(exc, httpx.ConnectError):
            if _is_dns(exc):
                return EngineConnectionError(
                    f"{self.label}: the host name cannot be resolved (DNS failure). Check the host in remote.url / --url.",
                    partial_text=partial_text,
                )
            if _is_refused(exc):
                return EngineConnectionError(
                    f"{self.label}: connection refused. Is the server running, and listening on that port? {self.hint}",
                    partial_text=partial_text,
                )
            return EngineConnectionError(f"{self.label}: cannot connect ({exc}). {self.hint}", partial_text=partial_text)
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return EngineConnectionError(
                f"{self.label} closed the connection during {path}"
                + (" after part of the reply; the text so far is kept" if partial_text else "")
                + ". Check the server's console (did it crash or restart?).",
                partial_text=partial_text,
            )
        return EngineConnectionError(f"{self.label}: request to {path} failed ({type(exc).__name__}).", partial_text=partial_text)


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in seen:
        seen.append(node)
        node = node.__cause__ or node.__context__
    return seen


def _is_dns(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return True
        text = str(cause).lower()
        if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text \
                or "name resolution" in text:
            return True
    return False


def _is_refused(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return True
        text = str(cause).lower()
        if "connection refused" in text or "errno 111" in text or "connect call failed" in text:
            return True
    return False

