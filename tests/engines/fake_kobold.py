"""A faithful fake koboldcpp 1.76, as an ASGI app built from the recorded wire transcripts.

Status lines, headers (``Server: ConcedoLlamaForKoboldServer `` with its trailing space, the CORS
set, ``cache-control``) and JSON shapes are taken from the ``.resp`` files byte for byte; only the
values that depend on the generation (text, perf numbers) are filled in. The "model" emits the
token pieces recorded in ``37-stream_sse_long.resp``. Generation runs as a task the way the real
server's worker does, and the SSE handler polls it every ``poll`` seconds, sending everything new
in one event: several tokens per event, ``finish_reason`` the string ``"null"`` until the last
event, ``event: message`` written separately from its ``data:`` line, and no ``[DONE]``.
Serve it with :func:`tests.engines._servers.serve_asgi` (HTTP/1.0, one request per connection).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRANSCRIPTS = "koboldcpp-1.76-transcripts"


@dataclass
class Recorded:
    """A recorded response: status, reason phrase, raw headers, body."""

    status: int
    reason: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


def load_response(path: Path) -> Recorded:
    """Parse a ``.resp`` file, keeping header bytes as recorded (minus ``Date``)."""
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    _version, status, reason = lines[0].decode().split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b": ")
        if name.lower() != b"date":
            headers.append((name, value))
    return Recorded(int(status), reason, headers, body)


def recorded_tokens(path: Path) -> list[str]:
    """The token pieces of a recorded koboldcpp SSE stream, in order."""
    body = path.read_bytes().partition(b"\r\n\r\n")[2].decode()
    return [json.loads(m)["token"] for m in re.findall(r"^data: (.*)$", body, flags=re.M)]


@dataclass
class Generation:
    """One generation in progress or finished."""

    genkey: str
    max_length: int
    stops: list[str]
    trim_stop: bool
    text: str = ""
    done: bool = False
    aborted: bool = False
    stop_reason: int = -1
    tokens: int = 0
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finish_reason(self) -> str:
        # koboldcpp: "stop" only when EOS ended it; stop strings and max_length both say "length"
        return "stop" if self.stop_reason == 1 else "length"


@dataclass
class Request:
    """A request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class FakeKobold:
    """The fake server.

    Args:
        folder: ``fixtures/koboldcpp-1.76-transcripts``.
        token_delay: Seconds per generated token.
        poll: SSE poll interval (koboldcpp: 0.02 s).
        first_delay: Delay before the first SSE poll (koboldcpp: 0.35 s).
        password: Like ``--password``: protected routes answer 401 without it.
        multiuser: False behaves like ``--multiuser 0`` (503 while busy).
    """

    def __init__(self, folder: Path, *, token_delay: float = 0.002, poll: float = 0.02, first_delay: float = 0.03,
                 password: str | None = None, multiuser: bool = True) -> None:
        self.folder = folder
        self.token_delay = token_delay
        self.poll = poll
        self.first_delay = first_delay
        self.password = password
        self.multiuser = multiuser
        self.tokens = recorded_tokens(folder / "37-stream_sse_long.resp")
        self.requests: list[Request] = []
        self.current: Generation | None = None
        self.total_gens = 0
        self.fail_next = False
        """Answer the next generation like a failed predict: 200 with empty text."""
        self.drop_stream_after: int | None = None
        """Close the SSE connection after this many events (a proxy or network drop)."""
        self.drop_aborts = False
        """Whether a dropped stream also stops the generation (koboldcpp does when it notices)."""
        self.stall_after: int | None = None
        """Stop sending SSE events after this many (the connection stays open)."""
        self.garbage_event: bytes | None = None
        """Send these bytes as the second SSE event."""
        self._tasks: set[asyncio.Task[None]] = set()

    def resp(self, name: str) -> Recorded:
        return load_response(next(self.folder.glob(f"{name}*.resp")))

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        message = await receive()
        raw = message.get("body", b"")
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["path"].rstrip("/")  # koboldcpp strips a trailing slash
        method = scope["method"]
        self.requests.append(Request(method, path, headers, raw))
        if method in ("OPTIONS", "HEAD"):
            return await self._send(send, self.resp("36-"))
        authorised = self.password is None or headers.get("authorization") == f"Bearer {self.password}"
        if method == "GET":
            return await self._get(path, send)
        if not authorised and path.endswith(("/generate", "/generate/stream", "/tokencount", "/abort", "/check")):
            return await self._send(send, self.resp("51-"))
        if path.endswith("/api/extra/tokencount"):
            return await self._tokencount(raw, send)
        if path.endswith("/api/extra/abort"):
            return await self._abort(raw, send)
        if path.endswith("/api/extra/generate/check"):
            return await self._check(raw, send)
        if path.endswith(("/api/v1/generate", "/api/latest/generate", "/api/extra/generate/stream")):
            return await self._generate(raw, send, receive, stream=path.endswith("/stream"))
        return await self._send(send, self.resp("14-"))  # unknown POST: 404, empty body

    async def _send(self, send: Any, rec: Recorded, body: bytes | None = None) -> None:
        body = rec.body if body is None else body
        headers = [(k, str(len(body)).encode()) if k.lower() == b"content-length" else (k, v) for k, v in rec.headers]
        await send({"type": "http.response.start", "status": rec.status, "reason": rec.reason, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _json(self, send: Any, template: str, value: Any) -> None:
        await self._send(send, self.resp(template), json.dumps(value).encode())

    async def _get(self, path: str, send: Any) -> None:
        if path.endswith("/api/v1/model"):
            return await self._send(send, self.resp("52-" if self.password else "01-"))
        if path.endswith("/api/extra/version"):
            version = json.loads(self.resp("03-").body)
            version["protected"] = self.password is not None
            return await self._json(send, "03-", version)
        if path.endswith("/api/extra/perf"):
            return await self._json(send, "07-", self.perf())
        if path.endswith("/api/extra/generate/check"):
            return await self._send(send, self.resp("24-"))
        for suffix, name in (("/api/v1/info/version", "02-"), ("/api/v1/config/max_context_length", "04-"),
                             ("/api/v1/config/max_length", "05-"), ("/api/extra/true_max_context_length", "06-"),
                             ("/v1/models", "08-"), ("/api/extra/preloadstory", "09-")):
            if path.endswith(suffix):
                return await self._send(send, self.resp(name))
        return await self._send(send, self.resp("10-"))

    def perf(self) -> dict[str, Any]:
        perf = json.loads(self.resp("07-").body)
        gen = self.current
        busy = gen is not None and not gen.done
        perf.update(total_gens=self.total_gens, idle=0 if busy else 1,
                    stop_reason=gen.stop_reason if gen and gen.done else perf["stop_reason"],
                    last_token_count=gen.tokens if gen else perf["last_token_count"])
        return perf

    async def _tokencount(self, raw: bytes, send: Any) -> None:
        try:
            body = json.loads(raw)
            text = body["prompt"]
        except (ValueError, KeyError, TypeError):
            return await self._send(send, self.resp("13-"))
        ids = [1] if body.get("special", True) else []
        ids += [abs(hash(piece)) % 49000 + 2 for piece in re.findall(r" ?\w+| ?[^\w\s]|\s+", text)]
        if text == "Hello world, this is a test.":
            ids = json.loads(self.resp("11-").body)["ids"][0 if body.get("special", True) else 1 :]
        return await self._json(send, "11-", {"value": len(ids), "ids": ids})

    async def _abort(self, raw: bytes, send: Any) -> None:
        genkey = json.loads(raw or b"{}").get("genkey", "")
        gen = self.current
        if gen is not None and not gen.done and genkey == gen.genkey:
            gen.aborted = True
            return await self._send(send, self.resp("28-"))
        return await self._send(send, self.resp("26-"))

    async def _check(self, raw: bytes, send: Any) -> None:
        genkey = json.loads(raw or b"{}").get("genkey", "")
        gen = self.current
        text = gen.text if gen is not None and genkey == gen.genkey else ""
        return await self._json(send, "23-", {"results": [{"text": text}]})

    # -- generation -----------------------------------------------------------------------------

    async def _generate(self, raw: bytes, send: Any, receive: Any, *, stream: bool) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            return await self._send(send, self.resp("20-"))
        if not self.multiuser and self.current is not None and not self.current.done:
            return await self._send(send, self.resp("38-"))
        while self.current is not None and not self.current.done:  # --multiuser: queue on the lock
            await self.current.finished.wait()
        gen = Generation(str(body.get("genkey", "")), int(body.get("max_length", 180)),
                         [s for s in body.get("stop_sequence", []) if s][:32], bool(body.get("trim_stop", False)))
        self.current = gen
        self.total_gens += 1
        task = asyncio.create_task(self._run(gen))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if stream:
            return await self._stream(gen, send, receive)
        disconnect = asyncio.create_task(receive())
        await asyncio.wait({disconnect, asyncio.ensure_future(gen.finished.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if disconnect.done():
            gen.aborted = True
            return
        disconnect.cancel()
        await self._json(send, "16-", {"results": [{"text": gen.text, "finish_reason": gen.finish_reason}]})

    async def _run(self, gen: Generation) -> None:
        try:
            if self.fail_next:
                self.fail_next = False
                return
            for piece in self.tokens:
                await asyncio.sleep(self.token_delay)
                if gen.aborted:
                    gen.stop_reason = 0
                    return
                gen.text += piece
                gen.tokens += 1
                for stop in gen.stops:
                    at = gen.text.find(stop)
                    if at != -1:
                        gen.text = gen.text[:at] if gen.trim_stop else gen.text[: at + len(stop)]
                        gen.stop_reason = 2
                        return
                if gen.tokens >= gen.max_length:
                    gen.stop_reason = 0
                    return
            gen.stop_reason = 1  # the recorded pieces ran out: treat it as EOS
        finally:
            gen.done = True
            gen.finished.set()

    async def _stream(self, gen: Generation, send: Any, receive: Any) -> None:
        rec = self.resp("21-")
        await send({"type": "http.response.start", "status": rec.status, "reason": rec.reason, "headers": rec.headers})
        await asyncio.sleep(self.first_delay)
        sent = 0
        events = 0
        try:
            while True:
                done = gen.done
                new = gen.text[sent:]
                if new or done:
                    if self.drop_stream_after is not None and events >= self.drop_stream_after:
                        gen.aborted = gen.aborted or self.drop_aborts
                        raise _Drop
                    if self.stall_after is not None and events >= self.stall_after:
                        await asyncio.sleep(3600)
                    sent += len(new)
                    reason = gen.finish_reason if done else "null"
                    data = json.dumps({"token": new, "finish_reason": reason}).encode()
                    if self.garbage_event is not None and events == 1:
                        data = self.garbage_event
                    await send({"type": "http.response.body", "body": b"event: message\n", "more_body": True})
                    await send({"type": "http.response.body", "body": b"data: " + data + b"\n\n", "more_body": True})
                    events += 1
                    if done:
                        break
                await asyncio.sleep(self.poll)
        except _Drop:
            return  # the connection closes; unless drop_aborts, generation goes on
        except ConnectionError:
            gen.aborted = True  # koboldcpp aborts when the client disconnects
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Drop(Exception):
    pass
