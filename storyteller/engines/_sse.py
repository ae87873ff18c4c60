"""A small, forgiving Server-Sent Events parser.

Servers differ in how they frame SSE: koboldcpp 1.76 ends its OpenAI streams with
``data: [DONE]`` and no blank line, its native stream ends by closing the connection, and lines
may end with ``\\n``, ``\\r\\n`` or ``\\r``. :class:`SSEParser` is fed raw bytes in whatever
pieces the socket delivers and returns complete events; :meth:`SSEParser.close` flushes an event
that the server never terminated with a blank line.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SSEEvent", "SSEParser", "SSEProtocolError"]

MAX_EVENT_BYTES = 4 * 1024 * 1024
"""An event larger than this is treated as a broken stream rather than buffered forever."""


class SSEProtocolError(ValueError):
    """The byte stream is not Server-Sent Events."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event.

    Attributes:
        event: The ``event:`` field, ``message`` when absent.
        data: The ``data:`` lines joined with ``\\n``.
    """

    event: str
    data: str


class SSEParser:
    """Incremental SSE parser (the WHATWG event-stream rules, minus ``id`` and ``retry``)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []
        self._pending = 0
        self._saw_field = False

    @property
    def saw_any_field(self) -> bool:
        """Whether any ``data:``/``event:`` line has been seen (tells SSE from other bodies)."""
        return self._saw_field

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes from the socket; return the events they completed."""
        self._buffer += self._decoder.decode(chunk)
        return self._drain(final=False)

    def close(self) -> list[SSEEvent]:
        """The stream ended: return the last event even without its closing blank line."""
        self._buffer += self._decoder.decode(b"", final=True)
        events = self._drain(final=True)
        if self._data:
            events.append(self._dispatch())
        return events

    def _drain(self, *, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer, final=final)
            if cut is None:
                break
            line, self._buffer = self._buffer[: cut[0]], self._buffer[cut[1] :]
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._pending > MAX_EVENT_BYTES:
            raise SSEProtocolError(f"an event is larger than {MAX_EVENT_BYTES} bytes")
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            return self._dispatch() if (self._data or self._event) else None
        if line.startswith(":"):
            return None  # a comment, used by some servers as a keep-alive ping
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._saw_field = True
            self._data.append(value)
            self._pending += len(value)
        elif name == "event":
            self._saw_field = True
            self._event = value
        # id, retry and unknown fields are ignored, as the spec says
        return None

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent(self._event or "message", "\n".join(self._data))
        self._event, self._data, self._pending = "", [], 0
        return event


def _line_end(buffer: str, *, final: bool) -> tuple[int, int] | None:
    """Where the first line ends: (end of text, start of next line), or None if incomplete."""
    lf, cr = buffer.find("\n"), buffer.find("\r")
    if cr == -1 or (lf != -1 and lf < cr):
        if lf != -1:
            return lf, lf + 1
        return (len(buffer), len(buffer)) if final and buffer else None
    if cr + 1 < len(buffer):
        return cr, cr + (2 if buffer[cr + 1] == "\n" else 1)
    # a lone CR at the end may be the first half of CRLF: wait for more bytes
    return (cr, cr + 1) if final else None
