"""Benchmark: one activation against books of 100-1,000 entries and chats of 200-2,000 messages.

Run with ``python -m tests.lore.bench_activation``; numbers are published in docs/world-info.md.
"""

from __future__ import annotations

import random
import statistics
import time

from storyteller.lore import Lorebook, WorldEntry, WorldInfoSettings, activate

VOCAB = [f"w{n}" for n in range(5000)]


def make_book(entries: int, seed: int = 1) -> Lorebook:
    rng = random.Random(seed)
    items = []
    for uid in range(entries):
        keys = rng.sample(VOCAB, 3)
        if uid % 20 == 0:
            keys[0] = f"/\\b{keys[0]}s?\\b/i"
        items.append(WorldEntry(uid=uid, keys=keys, content=" ".join(rng.sample(VOCAB, 30)), order=rng.randint(1, 200)))
    return Lorebook(name="bench", entries=items)


def make_chat(messages: int, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    return [f"Speaker: {' '.join(rng.sample(VOCAB, 40))}" for _ in range(messages)]


def time_one(book: Lorebook, chat: list[str], settings: WorldInfoSettings, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        activate([book], chat, settings=settings, max_context=8192, rng=random.Random(0))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    print("entries  messages  depth  recursion  median ms")
    for entries in (100, 1000):
        book = make_book(entries)
        for messages in (200, 2000):
            chat = make_chat(messages)
            for depth in (2, 10, 100):
                for recursive in (False, True):
                    ms = time_one(book, chat, WorldInfoSettings(scan_depth=depth, recursive=recursive))
                    print(f"{entries:>7}  {messages:>8}  {depth:>5}  {recursive!s:>9}  {ms:9.1f}")


if __name__ == "__main__":
    main()
