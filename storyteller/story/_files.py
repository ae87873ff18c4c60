"""Durable file primitives for story storage: atomic writes, the journal, the writer lock.

Why each step is there:

* ``atomic_write``: a reader (or a power cut) sees either the old file or the new one, never a
  mix: temp file in the same folder, fsync, rename over, fsync the folder so the rename itself
  survives.
* ``Journal.append``: one ``write`` of one whole line on an ``O_APPEND`` descriptor, then fsync;
  only then is the event acknowledged. A kill during the write leaves at most one torn last line.
* ``read_journal``: splits on newlines and keeps every line that parses; a bad *last* line is a
  torn write (reported and set aside), a bad line elsewhere is corruption (reported, skipped).
* ``WriterLock``: ``flock`` on a lock file that is never deleted (deleting it would let two
  processes lock two different files); the kernel drops the lock when its holder dies.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyteller.fileio import atomic_write, fsync_dir

__all__ = ["Journal", "JournalRead", "WriterLock", "atomic_write", "fsync_dir", "read_journal"]


def encode_event(event: dict[str, Any]) -> bytes:
    """One journal line: compact JSON, UTF-8, newline-terminated."""
    return (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


@dataclass
class JournalRead:
    """What reading a journal found.

    Attributes:
        events: Every event that parsed, in file order.
        good_length: Bytes up to the end of the last good line (where appending may resume).
        torn: The bytes of a torn last line (incomplete or unreadable), or ``b""``.
        corrupt_lines: 1-based numbers of unreadable lines that were not the last one.
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    good_length: int = 0
    torn: bytes = b""
    corrupt_lines: list[int] = field(default_factory=list)


def _parse_line(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("t"), str) else None


def read_journal(path: Path) -> JournalRead:
    """Read a journal file; a missing file reads as empty."""
    result = JournalRead()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return result
    lines = data.split(b"\n")
    # After the last newline comes either nothing or a line whose write never finished.
    tail = lines.pop()
    offset = 0
    pending_bad: list[tuple[int, int]] = []  # (line number, offset) of bad lines not yet known to be last
    for number, line in enumerate(lines, start=1):
        end = offset + len(line) + 1
        if not line.strip():
            offset = end
            continue
        event = _parse_line(line)
        if event is None:
            pending_bad.append((number, offset))
        else:
            result.corrupt_lines.extend(n for n, _ in pending_bad)
            pending_bad = []
            result.events.append(event)
            result.good_length = end
        offset = end
    if pending_bad or tail:
        # Everything after the last good line is the torn tail (power cuts can leave NUL runs
        # or a half-written line); it may span a newline if the cut fell in the middle.
        result.torn = data[result.good_length:]
    return result


class Journal:
    """An append-only JSONL file opened for writing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, event: dict[str, Any]) -> None:
        """Write one event and fsync it; when this returns the event is on disk."""
        if self._fd is None:
            raise ValueError("journal is closed")
        data = memoryview(encode_event(event))
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
            os.fsync(self._fd)
        except OSError:
            # A full disk can take half a line: cut it off, so the next append starts a clean line.
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass  # the reader sets a torn tail aside anyway
            raise

    def close(self) -> None:
        """Close the file (appends made so far are already durable)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def set_aside_torn(path: Path, good_length: int, torn: bytes) -> Path:
    """Move a torn tail out of a journal into ``<journal>.<n>.torn`` and cut the journal.

    The torn bytes are saved durably before the journal is shortened, so nothing is lost even if
    this is interrupted.
    """
    n = 1
    while (target := path.with_name(f"{path.name}.{n}.torn")).exists():
        n += 1
    atomic_write(target, torn)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, good_length)
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


class WriterLock:
    """The one-writer-per-story lock.

    Attributes:
        acquired: True when this process holds the lock.
        holder_pid: The pid written by the holder when someone else holds it (best effort).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.holder_pid: int | None = None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(self._fd)
                raise
            self.acquired = False
            try:
                self.holder_pid = int(os.pread(self._fd, 32, 0).decode().strip() or 0) or None
            except (ValueError, OSError):
                self.holder_pid = None
            os.close(self._fd)
            self._fd = None
            return
        self.acquired = True
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Give the lock up (the file stays, so the next writer locks the same inode)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            self.acquired = False
