"""Storage: replay, snapshots, rolling backups, torn tails, the writer lock, never shorter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from storyteller.errors import StoryError, StoryLockedError
from storyteller.paths import get_paths
from storyteller.story import StoryStore
from storyteller.story._files import read_journal


def _fill(story, n: int, prefix: str = "t") -> list[str]:
    return [story.add_node(f"{prefix}{i}", author="user", kind="say").id for i in range(n)]


def test_stories_live_in_the_data_dir_and_replay_from_the_journal() -> None:
    store = StoryStore()
    assert store.root == get_paths().stories_dir
    story = store.create("tale")
    ids = _fill(story, 5)
    story.undo()
    journal = (story.folder / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in journal] == list(range(1, 7))
    # Read it back while the writer is still open (no snapshot yet): the journal alone suffices.
    reader = store.open("tale", read_only=True)
    assert list(reader.nodes) == ids
    assert reader.current is not None and reader.current.id == ids[3]
    assert reader.can_redo


def test_snapshots_are_periodic_atomic_and_rolling(tmp_path: Path) -> None:
    store = StoryStore(tmp_path, snapshot_every=10, keep_snapshots=3)
    story = store.create("tale")
    ids = _fill(story, 55)
    snaps = sorted(p.name for p in (story.folder / "snapshots").iterdir())
    assert snaps == ["snapshot-000000000030.json", "snapshot-000000000040.json", "snapshot-000000000050.json"]
    assert not list(story.folder.rglob(".*tmp*"))
    assert [json.loads(line)["seq"] for line in (story.folder / "journal.jsonl").read_text().splitlines()] == [51, 52, 53, 54, 55]
    story.close()
    assert "snapshot-000000000055.json" in os.listdir(story.folder / "snapshots")
    assert len(os.listdir(story.folder / "snapshots")) == 3
    again = store.open("tale")
    assert list(again.nodes) == ids and again.warnings == []


def test_a_damaged_snapshot_falls_back_to_an_older_one(tmp_path: Path) -> None:
    store = StoryStore(tmp_path, snapshot_every=10, keep_snapshots=3)
    story = store.create("tale")
    ids = _fill(story, 25)
    story.close()
    newest = sorted((story.folder / "snapshots").iterdir())[-1]
    raw = bytearray(newest.read_bytes())
    raw[-20] ^= 0xFF
    newest.write_bytes(bytes(raw))
    again = store.open("tale", read_only=True)
    assert list(again.nodes) == ids
    assert any("checksum" in w for w in again.warnings)


def test_a_torn_last_line_is_set_aside_and_reported(tmp_path: Path) -> None:
    store = StoryStore(tmp_path)
    story = store.create("tale")
    ids = _fill(story, 3)
    story._journal.close()  # simulate a power cut: no snapshot, no unlock
    story._journal = None
    journal = story.folder / "journal.jsonl"
    with open(journal, "ab") as fh:
        fh.write(b'{"seq":4,"t":"add","nodes":[{"id":"abc","te')
    story._lock.release()

    reader = store.open("tale", read_only=True)
    assert list(reader.nodes) == ids
    assert any("unfinished write" in w for w in reader.warnings)
    assert journal.read_bytes().endswith(b'"te')  # a reader never changes the files

    writer = store.open("tale")
    assert list(writer.nodes) == ids
    assert any("moved to journal.jsonl.1.torn" in w for w in writer.warnings)
    assert (story.folder / "journal.jsonl.1.torn").read_bytes() == b'{"seq":4,"t":"add","nodes":[{"id":"abc","te'
    more = writer.add_node("after the crash", author="user", kind="say")
    writer.close()
    final = store.open("tale", read_only=True)
    assert list(final.nodes) == [*ids, more.id] and final.warnings == []


def test_a_corrupt_middle_line_and_nul_tail_do_not_stop_opening(tmp_path: Path) -> None:
    store = StoryStore(tmp_path)
    story = store.create("tale")
    ids = _fill(story, 3)
    story._journal.close()
    story._journal = None
    story._lock.release()
    journal = story.folder / "journal.jsonl"
    lines = journal.read_bytes().split(b"\n")
    lines[1] = b"garbage"
    journal.write_bytes(b"\n".join(lines) + b"\x00" * 64)
    read = read_journal(journal)
    assert read.corrupt_lines == [2] and read.torn == b"\x00" * 64
    again = store.open("tale")
    assert list(again.nodes) == [ids[0]]
    # The unreadable line held node 2, so node 3 (its child) cannot be placed: both are reported.
    assert any("unreadable line(s) 2" in w for w in again.warnings)
    assert any("skipped event 3" in w and "unknown parent" in w for w in again.warnings)
    assert (again.folder / "journal.jsonl.1.torn").read_bytes() == b"\x00" * 64
    new = again.add_node("after repair", author="user", kind="say")
    assert json.loads((again.folder / "journal.jsonl").read_text().splitlines()[-1])["seq"] == 4
    assert list(store.open("tale", read_only=True).nodes) == [ids[0], new.id]


def test_one_writer_the_second_opener_is_read_only(tmp_path: Path) -> None:
    store = StoryStore(tmp_path)
    writer = store.create("tale")
    _fill(writer, 2)
    second = store.open("tale")
    assert second.read_only and second.locked_by == os.getpid()
    assert any("read-only" in w for w in second.warnings)
    with pytest.raises(StoryLockedError, match="another storyteller process"):
        second.add_node("lost?", author="user", kind="say")
    with pytest.raises(StoryLockedError):
        second.undo()
    assert (tmp_path / "tale" / "lock").read_text().strip() == str(os.getpid())
    writer.close()
    third = store.open("tale")
    assert not third.read_only
    third.add_node("now it works", author="user", kind="say")


def test_closed_and_read_only_stories_refuse_writes(tmp_path: Path) -> None:
    store = StoryStore(tmp_path)
    story = store.create("tale")
    story.close()
    with pytest.raises(StoryError, match="closed or was opened read-only"):
        story.add_node("x", author="user", kind="say")
    with store.open("tale", read_only=True) as reader, pytest.raises(StoryError):
        reader.set_settings(memory="m")


def test_never_replaced_by_a_shorter_story(tmp_path: Path) -> None:
    store = StoryStore(tmp_path)
    story = store.create("tale")
    _fill(story, 4)
    story.close()
    with pytest.raises(StoryError, match="already exists"):
        store.create("tale")
    writer = store.open("tale")
    writer.tree.nodes.popitem()  # a bug that loses a node in memory...
    writer.tree.seq += 1
    with pytest.raises(StoryError, match="refusing to write a snapshot with 3 nodes over one with 4"):
        writer.snapshot()  # ...cannot reach the disk
    writer._journal.close()
    writer._journal = None
    writer._lock.release()
    assert len(store.open("tale", read_only=True).nodes) == 4


def test_delete_is_explicit_and_respects_the_lock(tmp_path: Path) -> None:
    store = StoryStore(tmp_path)
    story = store.create("tale")
    with pytest.raises(StoryLockedError):
        store.delete("tale")
    story.close()
    store.delete("tale")
    assert not store.exists("tale") and store.list() == []


def test_names_are_checked_and_made_unique(tmp_path: Path) -> None:
    store = StoryStore(tmp_path)
    for bad in ("", "..", ".hidden", "a/b", "x\x00y"):
        with pytest.raises(StoryError):
            store.create(bad)
    store.create("tale").close()
    assert store.unique_name("tale") == "tale-2"
    with pytest.raises(StoryError, match="no story named 'nope'"):
        store.open("nope")
