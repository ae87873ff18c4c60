"""A writer process for the SIGKILL test, run as ``python -m tests.story._writer ROOT NAME``.

It is a fork server: it imports everything once, then for each ``fork`` line on stdin forks a
child that opens the story for writing and appends turns as fast as it can, writing
``ack <id>`` to stdout after each append returns. The server reports ``child <pid>`` when it
forks and ``dead <pid>`` once the child is gone, so every ack of a child comes before its
``dead`` line. Forking a warm process keeps each victim's start-up to a few milliseconds.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from storyteller.story import StoryStore


def _say(line: str) -> None:
    # One write() of a short line on a pipe is atomic, so a kill never splits an ack.
    os.write(1, (line + "\n").encode())


def _child(root: Path, name: str, big_every: int) -> None:
    store = StoryStore(root, snapshot_every=20, keep_snapshots=3)
    story = store.open(name)
    if story.read_only:
        _say(f"error read-only {story.warnings}")
        os._exit(3)
    torn = [w for w in story.warnings if "unfinished write" in w]
    _say(f"ready {len(story.nodes)} torn={len(torn)}")
    n = 0
    while True:
        n += 1
        # Now and then a large turn, so that a kill can land inside a long write().
        text = f"turn {n} of {os.getpid()}" + ("x" * 300_000 if big_every and n % big_every == 0 else "")
        node = story.add_node(text, author="user", kind="say")
        _say(f"ack {node.id}")


def main() -> None:
    root, name = Path(sys.argv[1]), sys.argv[2]
    big_every = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    store = StoryStore(root)
    if not store.exists(name):
        store.create(name).close()
    _say("server ready")
    for line in sys.stdin:
        if line.strip() != "fork":
            break
        pid = os.fork()
        if pid == 0:
            try:
                _child(root, name, big_every)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(1)
        _say(f"child {pid}")
        _, status = os.waitpid(pid, 0)
        _say(f"dead {pid} {status}")


if __name__ == "__main__":
    main()
