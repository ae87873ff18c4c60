"""Files: atomic writes (a crash or power cut leaves the old file or the new one), bounded reads.

:func:`read_limited` is how every importer reads an untrusted file: no symlinks, no FIFOs or
devices, never more than the limit into memory. :func:`check_json_budget` refuses JSON whose
small containers would cost far more memory than the file's size (50 MB of ``[],[],...`` is
about 17 million lists) before it is parsed.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from storyteller.errors import FormatError, LimitExceededError

__all__ = ["MAX_JSON_CONTAINERS", "atomic_write", "check_json_budget", "fsync_dir", "link_new", "read_limited"]

MAX_JSON_CONTAINERS = 1_000_000
"""Most JSON objects and arrays one imported file may hold (about 60-200 MB once parsed)."""


def read_limited(path: str | Path, limit: int, what: str = "file") -> bytes:
    """Read a regular file of at most ``limit`` bytes.

    Args:
        path: The file.
        limit: Largest size accepted, checked before and while reading (the file may grow).
        what: How messages name the file's kind ("card", "lorebook").

    Raises:
        FormatError: Missing, unreadable, a symbolic link, or not a regular file.
        LimitExceededError: Larger than ``limit``.
    """
    path = Path(path)
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(info.st_mode):
        raise FormatError(f"{path} is a symbolic link; pass the file it points to instead")
    if not stat.S_ISREG(info.st_mode):
        raise FormatError(f"{path} is not a regular file")
    if info.st_size > limit:
        raise LimitExceededError(f"{path.name} is {_size(info.st_size)}; the limit for a {what} is {_size(limit)}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise LimitExceededError(f"{path.name} grew past the limit of {_size(limit)} for a {what} while reading")
    return data


def _size(count: int) -> str:
    return f"{count / 1048576:.1f} MiB" if count >= 1048576 else f"{count} bytes"


def check_json_budget(data: bytes | str, what: str = "the file", limit: int = MAX_JSON_CONTAINERS) -> None:
    """Refuse JSON text that holds more than ``limit`` objects and arrays, before parsing it.

    Brackets inside strings are counted too, so this is an upper bound: a real card or lorebook
    has a few thousand containers, a memory bomb millions.

    Raises:
        LimitExceededError: Too many containers.
    """
    if isinstance(data, str):
        count = data.count("{") + data.count("[")
    else:
        count = data.count(b"{") + data.count(b"[")
    if count > limit:
        raise LimitExceededError(
            f"{what} holds about {count:,} JSON objects and lists; the limit is {limit:,} "
            "(parsing it would take gigabytes of memory)"
        )


def fsync_dir(folder: Path) -> None:
    """Make renames and new files in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data``: a temp file in the same folder, fsync, rename, fsync the folder.

    The folder is created when missing; the replaced file's permissions are kept (0644 for a
    new file). Only a regular file is ever renamed over: a symbolic link is followed (the file
    it points to is replaced and the link kept), and an existing target that is not a regular
    file (a device such as ``/dev/stdout``, a FIFO, a socket) is written in place.

    Returns:
        The path written (the link's target when ``path`` is a symbolic link).

    Raises:
        IsADirectoryError: ``path`` is a folder.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode  # follows links: what would a write reach?
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path} is a folder, not a file")
    if mode is not None and not stat.S_ISREG(mode):
        _write_in_place(path, data)  # opened through the link: /dev/stdout -> /proc/self/fd/1
        return path
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; keep the mode of the file we replace, else a normal 0644.
        os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def _write_in_place(path: Path, data: bytes) -> None:
    """Write to an existing device or FIFO as a shell redirection would: no rename, no create."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def link_new(directory: Path, stem: str, suffix: str, data: bytes, what: str = "files") -> Path:
    """Place ``data`` under the first free ``stem{suffix}`` / ``stem (n){suffix}`` name in ``directory``.

    The data is written to a temp file, fsynced, then hard-linked into place, which fails instead
    of replacing an existing file (or a symlink planted under that name): two processes importing
    at once both get a file of their own, complete from the first moment it is visible.

    Raises:
        FormatError: 10,000 names taken.
    """
    fd, tmp = tempfile.mkstemp(prefix=".import.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        for n in range(1, 10_000):
            target = directory / (f"{stem}{suffix}" if n == 1 else f"{stem} ({n}){suffix}")
            try:
                os.link(tmp, target)
                break
            except FileExistsError:
                continue
            except OSError:
                # No hard links on this file system: exclusive create is the fallback.
                try:
                    with open(target, "xb") as handle:
                        handle.write(data)
                        handle.flush()
                        os.fsync(handle.fileno())
                    break
                except FileExistsError:
                    continue
        else:
            raise FormatError(f"too many {what} named {stem!r} in {directory}; rename or remove some")
    finally:
        Path(tmp).unlink(missing_ok=True)
    fsync_dir(directory)
    return target
