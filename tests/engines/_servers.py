"""Tiny real servers on 127.0.0.1 for engine tests.

:func:`serve_asgi` runs an ASGI app behind a minimal HTTP/1.0 server that frames replies the way
koboldcpp does (status line ``HTTP/1.0``, headers as the app gives them, no chunked encoding,
connection closed after each reply) and reports a client disconnect to the app.
:func:`serve_raw` hands the raw socket to a handler, for servers that misbehave on purpose.
Both run in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, list[tuple[bytes, bytes]], bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: list[tuple[bytes, bytes]] = []
    length = 0
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip().lower().encode(), value.strip().encode()))
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


@contextlib.asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` on a free port; yields the base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            parsed = await _read_request(reader)
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            writer.close()
            return
        assert parsed is not None
        method, target, headers, body = parsed
        path, _, query = target.partition("?")
        disconnected = asyncio.Event()

        async def watch() -> None:
            with contextlib.suppress(Exception):
                while await reader.read(1024):
                    pass
            disconnected.set()

        watcher = asyncio.create_task(watch())
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if disconnected.is_set():
                raise ConnectionResetError("client went away")
            if message["type"] == "http.response.start":
                status = message["status"]
                phrase = message.get("reason") or http.HTTPStatus(status).phrase
                out = f"HTTP/1.0 {status} {phrase}\r\n".encode()
                for name, value in message.get("headers", []):
                    out += name + b": " + value + b"\r\n"
                writer.write(out + b"\r\n")
            elif message["type"] == "http.response.body":
                writer.write(message.get("body", b""))
            try:
                await writer.drain()
            except ConnectionError:
                disconnected.set()
                raise

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.0", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
            "root_path": "", "headers": headers, "client": writer.get_extra_info("peername"),
            "server": writer.get_extra_info("sockname"), "state": {"disconnected": disconnected},
        }
        try:
            await app(scope, receive, send)
        except ConnectionError:
            pass
        finally:
            watcher.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async with serve_raw(handle) as url:
        yield url


@contextlib.asynccontextmanager
async def serve_raw(handler: RawHandler) -> AsyncIterator[str]:
    """Serve a raw socket handler on a free port; yields the base URL."""
    tasks: set[asyncio.Task[None]] = set()

    async def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            tasks.discard(task)
            writer.close()

    server = await asyncio.start_server(track, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


@contextlib.asynccontextmanager
async def serve_replay(routes: dict[tuple[str, str], list[bytes]]) -> AsyncIterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """Answer ``(method, path)`` with recorded response bytes, in order, one per connection.

    Yields the base URL and the list of requests received as ``(method, path, body)``. The last
    answer of a route repeats when it is asked more often.
    """
    seen: list[tuple[str, str, bytes]] = []
    counts: dict[tuple[str, str], int] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, target, _headers, body = await _read_request(reader)  # type: ignore[misc]
        seen.append((method, target, body))
        answers = routes.get((method, target))
        if not answers:
            writer.write(b"HTTP/1.0 404 Not Found\r\ncontent-type: text/html\r\n\r\nno such route in the replay")
        else:
            index = counts.get((method, target), 0)
            counts[(method, target)] = index + 1
            writer.write(answers[min(index, len(answers) - 1)])
        await writer.drain()

    async with serve_raw(handle) as url:
        yield url, seen
