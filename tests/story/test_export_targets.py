"""``storyteller story export NAME TARGET`` where TARGET is ``-``, a FIFO, a device or a symlink.

The real CLI runs in a subprocess. A target that exists and is not a regular file is written in
place and never renamed over (the bug: exporting to ``/dev/stdout`` as root replaced the
``/dev/stdout`` symlink with a regular file).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from storyteller.fileio import atomic_write
from storyteller.story import StoryStore
from storyteller.story.convert import export_story

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs need a POSIX system")


def _story() -> str:
    with StoryStore().create("targets") as story:
        first = story.add_node("The lamp gutters.\r\nA door opens.", author="Narrator", kind="greeting")
        story.add_node("I step through.", author="user", kind="say", parent=first.id)
    return "targets"


def _expected(fmt: str) -> str:
    with StoryStore().open("targets", read_only=True) as story:
        return export_story(story, None, fmt)


def _cli(*argv: str, **kwargs) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "storyteller.cli", *argv], capture_output=True, timeout=120,
                          env=os.environ.copy(), **kwargs)


def _drain(fifo: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(fifo, "rb") as handle:
            into.append(handle.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_dash_writes_the_export_to_standard_output() -> None:
    name = _story()
    for fmt in ("st", "kobold", "md", "txt"):
        done = _cli("story", "export", name, "-", "--format", fmt)
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout == _expected(fmt).encode("utf-8")
    assert not Path("-").exists()


@pytest.mark.parametrize("via_symlink", [False, True], ids=["fifo", "symlink-to-fifo"])
def test_fifo_is_written_in_place(tmp_path: Path, via_symlink: bool) -> None:
    name = _story()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = fifo
    if via_symlink:
        target = tmp_path / "link.jsonl"
        target.symlink_to(fifo)
    got: list[bytes] = []
    reader = _drain(fifo, got)
    done = _cli("story", "export", name, str(target), "--format", "st")
    reader.join(30)
    assert done.returncode == 0, done.stderr.decode()
    assert got == [_expected("st").encode("utf-8")]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    if via_symlink:
        assert target.is_symlink() and os.readlink(target) == str(fifo)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"pipe", target.name})  # no temp file left


def test_symlink_to_a_device_is_kept(tmp_path: Path) -> None:
    name = _story()
    link = tmp_path / "out.md"
    link.symlink_to("/dev/stdout")
    done = _cli("story", "export", name, str(link), "--format", "md")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(_expected("md").encode("utf-8"))
    assert link.is_symlink() and os.readlink(link) == "/dev/stdout"


def test_symlink_to_a_regular_file_replaces_the_file_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    assert atomic_write(link, b"new") == real.resolve()
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_devnull_is_never_replaced() -> None:
    before = os.stat("/dev/null")
    atomic_write("/dev/null", b"discarded")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path, b"x")
