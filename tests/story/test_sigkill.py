"""The hard way: kill writers with SIGKILL at random moments and check nothing acknowledged is lost."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from storyteller.story import StoryStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KILLS_PER_SERVER = 110
SERVERS = 2


class _Server:
    """A running fork server (tests/story/_writer.py) and a queue of its output lines."""

    def __init__(self, root: Path, name: str, big_every: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.story._writer", str(root), name, str(big_every)],
            cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        assert self.next_line() == "server ready"

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("<eof>")

    def next_line(self) -> str:
        line = self.lines.get(timeout=20)
        assert line != "<eof>", "the writer server died"
        return line

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=20)


def _one_kill(server: _Server, rng: random.Random, acked: list[str], stats: dict[str, int]) -> None:
    assert server.proc.stdin is not None
    server.proc.stdin.write("fork\n")
    server.proc.stdin.flush()
    pid = None
    early = rng.random() < 0.2  # some kills land while the child is still opening the story
    while pid is None:
        line = server.next_line()
        if line.startswith("child "):
            pid = int(line.split()[1])
        elif line.startswith("ack "):
            acked.append(line.split()[1])
        elif line.startswith("ready "):
            stats["torn_seen"] += int(line.rsplit("torn=", 1)[1])
    if not early:
        while not (line := server.next_line()).startswith("ready "):
            assert not line.startswith("error"), line
        stats["torn_seen"] += int(line.rsplit("torn=", 1)[1])
    time.sleep(rng.uniform(0.0, 0.02) if early else rng.uniform(0.005, 0.05))
    os.kill(pid, signal.SIGKILL)
    while not (line := server.next_line()).startswith(f"dead {pid}"):
        if line.startswith("ack "):
            acked.append(line.split()[1])
        elif line.startswith("ready "):
            stats["torn_seen"] += int(line.rsplit("torn=", 1)[1])
        else:
            assert not line.startswith("error"), line
    status = int(line.split()[2])
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"child ended otherwise: {status}"
    stats["kills"] += 1


def _check(store: StoryStore, name: str, acked: list[str]) -> None:
    story = store.open(name, read_only=True)
    missing = [a for a in acked if a not in story.nodes]
    assert not missing, f"{len(missing)} acknowledged turns lost, e.g. {missing[:3]}"
    if acked:
        # Every writer appends along the current path, so the last acknowledged turn is on it.
        assert acked[-1] in {n.id for n in story.current_path()}
    story.close()


def test_sigkill_never_loses_an_acknowledged_turn(tmp_path: Path) -> None:
    rng = random.Random(20240607)
    root, name = tmp_path / "stories", "shared"
    store = StoryStore(root)
    acked: list[str] = []
    stats = {"kills": 0, "torn_seen": 0}
    started = time.monotonic()
    for round_ in range(SERVERS):
        server = _Server(root, name, big_every=7 if round_ % 2 else 0)
        try:
            for _ in range(KILLS_PER_SERVER):
                _one_kill(server, rng, acked, stats)
                _check(store, name, acked)
        finally:
            server.stop()
    assert stats["kills"] >= 200
    assert len(acked) > 200, "the writers hardly wrote anything; the kills prove little"
    final = store.open(name)
    assert not final.read_only, "the kernel should have released every killed writer's lock"
    assert all(a in final.nodes for a in acked)
    final.close()
    reopened = store.open(name, read_only=True)
    assert not reopened.warnings, reopened.warnings
    assert len(reopened.nodes) >= len(acked)
    print(f"{stats['kills']} kills, {len(acked)} acknowledged turns, {stats['torn_seen']} torn tails set aside, "
          f"{time.monotonic() - started:.1f}s")
