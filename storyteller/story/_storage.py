"""The layout of a story folder, snapshots, and replaying a story from disk.

::

    <stories_dir>/<name>/
        story.json                      name, creation time, where it was branched from
        lock                            the writer lock (pid inside; never deleted)
        journal.jsonl                   events since the last snapshot (append-only)
        journal.jsonl.<n>.torn          torn tails set aside after a crash
        snapshots/snapshot-<seq>.json   full state after event <seq> (the last N are kept)
        journals/journal-<seq>.jsonl    older journal segments, events up to <seq>

A snapshot file is two lines: a header ``{"format", "version", "seq", "nodes", "sha256"}`` and
the state, whose bytes the SHA-256 covers, so a damaged snapshot is noticed and an older one
(plus the journal segments after it) is used instead.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from storyteller.story._files import JournalRead, atomic_write, fsync_dir, read_journal
from storyteller.story.tree import StoryTree

__all__ = ["LoadResult", "load_story", "prune", "rotate_journal", "write_snapshot"]

META = "story.json"
LOCK = "lock"
JOURNAL = "journal.jsonl"
SNAPSHOTS = "snapshots"
BRANCH_SIDECARS = ("memory.json",)
"""Files kept next to a story that a branch starts with a copy of (summaries and pins)."""
ARCHIVE = "journals"
SNAPSHOT_FORMAT = "storyteller-story-snapshot"
_SNAP_RE = re.compile(r"^snapshot-(\d+)\.json$")
_SEG_RE = re.compile(r"^journal-(\d+)\.jsonl$")


@dataclass
class LoadResult:
    """A story read back from its folder.

    Attributes:
        tree: The replayed tree.
        journal: What reading the live journal found (its torn tail, if any).
        warnings: Everything a person should know (damaged snapshots, torn or corrupt lines).
        snapshot_seq: The sequence number of the snapshot used (0: none).
        snapshot_nodes: The node count of the newest snapshot header seen.
        events_since_snapshot: Events replayed on top of the snapshot.
    """

    tree: StoryTree
    journal: JournalRead
    warnings: list[str] = field(default_factory=list)
    snapshot_seq: int = 0
    snapshot_nodes: int = 0
    events_since_snapshot: int = 0


def _numbered(folder: Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        m = pattern.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def list_snapshots(folder: Path) -> list[tuple[int, Path]]:
    """The snapshots of a story folder as ``(seq, path)``, oldest first."""
    return _numbered(folder / SNAPSHOTS, _SNAP_RE)


def read_snapshot_header(path: Path) -> dict:
    """The header line of a snapshot (cheap: the state is not parsed)."""
    with open(path, "rb") as fh:
        return json.loads(fh.readline())


def load_snapshot(path: Path) -> tuple[StoryTree, dict]:
    """Read and verify one snapshot.

    Raises:
        ValueError: The file is damaged, from an unknown format, or inconsistent.
    """
    data = path.read_bytes()
    head, sep, body = data.partition(b"\n")
    try:
        header = json.loads(head)
    except ValueError:
        raise ValueError("its header is not JSON") from None
    if not sep or not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
        raise ValueError("it is not a storyteller snapshot")
    body = body.rstrip(b"\n")
    if hashlib.sha256(body).hexdigest() != header.get("sha256"):
        raise ValueError("its checksum does not match (the file is damaged)")
    tree = StoryTree.from_state(json.loads(body))
    return tree, header


def write_snapshot(folder: Path, tree: StoryTree, *, min_nodes: int) -> Path:
    """Write the tree as a new snapshot, atomically.

    Args:
        folder: The story folder.
        tree: The tree to save.
        min_nodes: The node count of the newest snapshot; a tree with fewer nodes is refused,
            because a snapshot must never make a story shorter.

    Raises:
        ValueError: The tree has fewer nodes than ``min_nodes``.
    """
    if len(tree.nodes) < min_nodes:
        raise ValueError(
            f"refusing to write a snapshot with {len(tree.nodes)} nodes over one with {min_nodes}"
        )
    body = json.dumps(tree.to_state(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    header = {
        "format": SNAPSHOT_FORMAT, "version": 1, "seq": tree.seq, "nodes": len(tree.nodes),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    snapdir = folder / SNAPSHOTS
    snapdir.mkdir(exist_ok=True)
    path = snapdir / f"snapshot-{tree.seq:012d}.json"
    atomic_write(path, json.dumps(header).encode() + b"\n" + body + b"\n")
    return path


def rotate_journal(folder: Path, seq: int) -> None:
    """Move the live journal (all of whose events are in snapshot ``seq``) to the archive."""
    archive = folder / ARCHIVE
    archive.mkdir(exist_ok=True)
    live = folder / JOURNAL
    if live.exists():
        live.replace(archive / f"journal-{seq:012d}.jsonl")
        fsync_dir(archive)
        fsync_dir(folder)


def prune(folder: Path, keep: int) -> None:
    """Keep the newest ``keep`` snapshots and the journal segments still needed after them."""
    snaps = list_snapshots(folder)
    if len(snaps) <= keep:
        return
    for _, path in snaps[:-keep]:
        path.unlink(missing_ok=True)
    oldest_kept = snaps[-keep][0]
    for seq, path in _numbered(folder / ARCHIVE, _SEG_RE):
        if seq <= oldest_kept:
            path.unlink(missing_ok=True)


def clean_temp_files(folder: Path) -> None:
    """Remove temp files left by an interrupted atomic write (only the writer may call this)."""
    for where in (folder, folder / SNAPSHOTS):
        if where.is_dir():
            for path in where.glob(".*.tmp-*"):
                path.unlink(missing_ok=True)


def load_story(folder: Path) -> LoadResult:
    """Replay a story: the newest good snapshot, then every journal event after it."""
    warnings: list[str] = []
    tree = StoryTree()
    snaps = list_snapshots(folder)
    newest_nodes = 0
    if snaps:
        try:
            newest_nodes = int(read_snapshot_header(snaps[-1][1]).get("nodes") or 0)
        except (OSError, ValueError, AttributeError):
            newest_nodes = 0
    for seq, path in reversed(snaps):
        try:
            tree, _ = load_snapshot(path)
            break
        except (OSError, ValueError) as exc:
            warnings.append(f"snapshot {path.name} could not be used ({exc}); trying an older one")
    base_seq = tree.seq

    segments = [p for seq, p in _numbered(folder / ARCHIVE, _SEG_RE) if seq > base_seq]
    live = read_journal(folder / JOURNAL)
    replayed = 0
    highest = tree.seq
    for path in [*segments, None]:
        read = live if path is None else read_journal(path)
        name = JOURNAL if path is None else f"{ARCHIVE}/{path.name}"
        if read.corrupt_lines:
            lines = ", ".join(map(str, read.corrupt_lines[:10]))
            warnings.append(f"{name}: skipped unreadable line(s) {lines}")
        if read.torn:
            warnings.append(
                f"{name}: the last {len(read.torn)} bytes were an unfinished write (a crash or power "
                "cut); everything before them was kept"
            )
        for event in read.events:
            seq = event.get("seq")
            if not isinstance(seq, int) or seq <= tree.seq:
                continue
            highest = max(highest, seq)
            try:
                tree.apply(event)
            except (ValueError, TypeError) as exc:
                warnings.append(f"{name}: skipped event {seq} ({exc})")
                continue
            replayed += 1
    # Events that could not be applied still used their numbers; new events must come after
    # them, or a later replay could apply an old, skipped event in place of a new one.
    tree.seq = max(tree.seq, highest)
    if len(tree.nodes) < newest_nodes:
        warnings.append(
            f"only {len(tree.nodes)} of the {newest_nodes} turns in the newest snapshot could be read; "
            f"older copies are in {folder / SNAPSHOTS}"
        )
    return LoadResult(tree, live, warnings, base_seq, newest_nodes, replayed)
