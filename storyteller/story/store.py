"""Stories on disk: :class:`StoryStore` finds and creates them, :class:`Story` changes one.

Every change goes through one path: build an event, check it against the tree, append it to the
journal (fsync), then apply it in memory. So a change either is on disk and in memory, or in
neither, and whatever was acknowledged survives a crash.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyteller.errors import StoryError, StoryLockedError, describe_os_error
from storyteller.paths import get_paths
from storyteller.story import _storage
from storyteller.story._files import Journal, WriterLock, atomic_write, set_aside_torn
from storyteller.story.model import Generation, Node, StorySettings
from storyteller.story.tree import Message, StoryTree

__all__ = ["CURRENT", "Story", "StoryInfo", "StoryStore", "check_name"]

CURRENT: Any = object()
"""Default ``parent`` of :meth:`Story.add_node`: the node the story currently ends at."""

_BAD_NAME_CHARS = set('/\\:*?"<>|') | {chr(c) for c in range(32)} | {"\x7f"}


def check_name(name: str) -> str:
    """Return ``name`` stripped if it can be a story (folder) name.

    Raises:
        StoryError: The name is empty, too long, or has characters a folder name cannot have.
    """
    clean = name.strip()
    if not clean or clean in (".", "..") or clean.startswith(".") or len(clean) > 120:
        raise StoryError(f"{name!r} cannot be a story name: use 1-120 characters, not starting with '.'")
    bad = sorted(set(clean) & _BAD_NAME_CHARS)
    if bad:
        raise StoryError(f"{name!r} cannot be a story name: remove the characters {bad!r}")
    return clean


@dataclass(frozen=True, slots=True)
class StoryInfo:
    """A story as listed, without replaying it.

    Attributes:
        name: The story's name (its folder name).
        path: Its folder.
        modified: When its journal or newest snapshot last changed (seconds since the epoch).
        branched_from: ``{"story": name, "node": id}`` when it was branched from another story.
    """

    name: str
    path: Path
    modified: float
    branched_from: dict[str, Any] | None


_CREATE_RETRIES = 20
"""Tries (50 ms apart) to take the writer lock of a story being created."""


class Story:
    """One open story. Get one from :class:`StoryStore`; close it when done (or use ``with``).

    Attributes:
        name: The story's name.
        folder: Its folder.
        read_only: True when another process holds the writer lock (or it was opened to read).
        locked_by: The pid of the other writer, when known.
        warnings: What opening found and repaired (torn tail set aside, damaged snapshot...).
    """

    def __init__(self, store: StoryStore, name: str, *, read_only: bool) -> None:
        self.name = name
        self.folder = store.root / name
        self._store = store
        self._lock: WriterLock | None = None
        self._journal: Journal | None = None
        self.locked_by: int | None = None
        self.warnings: list[str] = []
        self._locked_out = False
        if not read_only:
            lock = WriterLock(self.folder / _storage.LOCK)
            if lock.acquired:
                self._lock = lock
            else:
                self._locked_out = True
                self.locked_by = lock.holder_pid
                who = f" (pid {lock.holder_pid})" if lock.holder_pid else ""
                self.warnings.append(f"another storyteller process{who} is writing this story; opened read-only")
        self.read_only = self._lock is None
        try:
            loaded = _storage.load_story(self.folder)
        except BaseException:
            self.close()
            raise
        self.tree: StoryTree = loaded.tree
        self.warnings.extend(loaded.warnings)
        self._snapshot_nodes = loaded.snapshot_nodes
        self._snapshot_seq = loaded.snapshot_seq
        self._since_snapshot = loaded.events_since_snapshot
        if self._lock is not None:
            _storage.clean_temp_files(self.folder)
            if loaded.journal.torn:
                kept = set_aside_torn(self.folder / _storage.JOURNAL, loaded.journal.good_length, loaded.journal.torn)
                self.warnings.append(f"the unfinished write was moved to {kept.name}")
            self._journal = Journal(self.folder / _storage.JOURNAL)

    # -- reading -----------------------------------------------------------------------------

    @property
    def settings(self) -> StorySettings:
        """The story settings (a copy; change them with :meth:`set_settings`)."""
        return self.tree.settings.model_copy(deep=True)

    @property
    def nodes(self) -> dict[str, Node]:
        """Every node by id, in the order added."""
        return self.tree.nodes

    @property
    def current(self) -> Node | None:
        """The node the story currently ends at (``None``: empty, or undone to the start)."""
        return None if self.tree.current is None else self.tree.nodes[self.tree.current]

    def node(self, node_id: str) -> Node:
        """The node with this id (``KeyError`` when there is none)."""
        return self.tree.node(node_id)

    def children(self, node_id: str | None) -> list[Node]:
        """The children of a node, oldest first (``None``: the first messages)."""
        return self.tree.children(node_id)

    def siblings(self, node_id: str) -> list[Node]:
        """A node and its alternatives (swipes), oldest first."""
        return self.tree.siblings(node_id)

    def current_path(self, *, include_hidden: bool = False) -> list[Node]:
        """The nodes from the first message to the current one (hidden ones left out)."""
        return self.tree.current_path(include_hidden=include_hidden)

    def messages(self) -> list[Message]:
        """The current path with each ``continue`` folded into the message it extends."""
        return self.tree.messages()

    def is_hidden(self, node_id: str) -> bool:
        """True when the node was hidden (moderated)."""
        return node_id in self.tree.hidden

    @property
    def can_undo(self) -> bool:
        """True when :meth:`undo` would move."""
        return self.tree.current is not None

    @property
    def can_redo(self) -> bool:
        """True when :meth:`redo` would move."""
        return self.tree.chosen_child(self.tree.current) is not None

    # -- writing -----------------------------------------------------------------------------

    def add_node(
        self,
        text: str,
        *,
        author: str,
        kind: str,
        parent: str | None = CURRENT,
        generation: Generation | None = None,
        extra: dict[str, Any] | None = None,
        select: bool = True,
    ) -> Node:
        """Add a turn. It is on disk when this returns.

        Args:
            text: The text (for ``kind="continue"``, only the added text).
            author: ``user``, ``narrator``, a character's name, or ``kiosk:<visitor>``.
            kind: ``say``, ``do``, ``story``, ``generation``, ``continue``, ``greeting``, ``system``.
            parent: The node it follows; by default the current node. A regenerated reply
                passes the parent of the reply it replaces, which makes it a swipe.
            generation: How the text was generated.
            extra: Plain data to keep with the node.
            select: Move the current path to the new node.
        """
        if parent is CURRENT:
            parent = self.tree.current
        try:
            node = Node.make(text, author=author, kind=kind, parent=parent, generation=generation, extra=extra)
        except ValueError as exc:
            raise StoryError(str(exc)) from None
        self._commit({"t": "add", "nodes": [node.to_dict()], "select": node.id if select else None})
        return self.tree.nodes[node.id]

    def add_nodes(self, nodes: list[Node], *, select: str | None = None) -> None:
        """Add many nodes in one journal event (imports, branches): all of them or none."""
        if nodes:
            self._commit({"t": "add", "nodes": [n.to_dict() for n in nodes], "select": select})

    def edit(self, node_id: str, text: str, *, replaces: int = 0) -> Node:
        """Save an edited version of a node as a new sibling and move the path to it.

        The original stays as a swipe. If the node had turns after it on its chosen path, they are
        copied after the edited version so that editing an early passage keeps the later ones
        (hidden ones are not copied; they stay on the original branch).

        Args:
            node_id: The node to edit.
            text: Its new text.
            replaces: How many of the nodes after it the new text also stands for (a reply and
                the parts Continue added to it, edited as one text); those are not copied.

        Returns:
            The edited node.
        """
        original = self._existing(node_id)
        edited = Node.make(text, author=original.author, kind=original.kind, parent=original.parent,
                           edited_from=original.id, extra=dict(original.extra))
        new_nodes = [edited]
        below = self.tree.path_to(self.tree.chosen_leaf(original.id))[len(self.tree.path_to(original.id)) + replaces:]
        for old in below:
            if old.id in self.tree.hidden:
                continue  # a hidden passage stays hidden: it is kept on the old branch, not copied
            new_nodes.append(Node.make(old.text, author=old.author, kind=old.kind, parent=new_nodes[-1].id,
                                       generation=old.generation, edited_from=old.id, extra=dict(old.extra),
                                       created=old.created))
        self._commit({"t": "add", "nodes": [n.to_dict() for n in new_nodes], "select": new_nodes[-1].id})
        return self.tree.nodes[edited.id]

    def select(self, node_id: str | None) -> None:
        """Move the current path to end at ``node_id`` (``None``: before the first message)."""
        if node_id is not None:
            self._existing(node_id)
        self._commit({"t": "select", "node": node_id})

    def swipe(self, node_id: str, step: int = 1, *, index: int | None = None) -> Node | None:
        """Show another alternative of a node (hidden alternatives are skipped).

        Args:
            node_id: The node whose alternatives to move through.
            step: How far to move: ``1`` the next (newer) one, ``-1`` the previous one.
            index: Go to this alternative instead (0 = oldest).

        Returns:
            The alternative now shown, or ``None`` when ``step`` runs past either end (nothing
            moves; at the right end a play loop would generate a new one).

        Raises:
            StoryError: ``index`` is out of range.
        """
        node = self._existing(node_id)
        options = [n for n in self.tree.siblings(node.id) if n.id == node.id or n.id not in self.tree.hidden]
        if index is None:
            position = options.index(node) + step
            if not 0 <= position < len(options):
                return None
        else:
            if not 0 <= index < len(options):
                raise StoryError(f"there is no alternative {index}; this turn has {len(options)} (0-{len(options) - 1})")
            position = index
        target = options[position]
        self._commit({"t": "select", "node": self.tree.chosen_leaf(target.id)})
        return target

    def undo(self) -> Node | None:
        """Step the current path back one node; returns the new current node. Nothing is lost."""
        if self.tree.current is not None:
            self._commit({"t": "select", "node": self.tree.nodes[self.tree.current].parent})
        return self.current

    def redo(self) -> Node | None:
        """Step forward along the child chosen last; returns the new current node."""
        nxt = self.tree.chosen_child(self.tree.current)
        if nxt is not None:
            self._commit({"t": "select", "node": nxt})
        return self.current

    def hide(self, node_id: str, hidden: bool = True) -> None:
        """Hide a node from the current path and prompts (kiosk moderation), or show it again."""
        self._existing(node_id)
        self._commit({"t": "hide", "node": node_id, "hidden": hidden})

    def set_settings(self, **changes: Any) -> StorySettings:
        """Change story settings (journaled like any turn); returns the new settings.

        Raises:
            StoryError: A field is unknown or a value is invalid.
        """
        try:
            merged = StorySettings.model_validate({**self.tree.settings.model_dump(), **changes})
        except ValueError as exc:
            raise StoryError(f"invalid story settings: {exc}") from None
        dumped = merged.model_dump(mode="json")
        self._commit({"t": "settings", "changes": {key: dumped[key] for key in changes}})
        return self.settings

    def snapshot(self) -> Path | None:
        """Write a snapshot now (done automatically every ``snapshot_every`` events and on close)."""
        self._require_writer()
        if self.tree.seq == self._snapshot_seq:
            return None
        try:
            path = _storage.write_snapshot(self.folder, self.tree, min_nodes=self._snapshot_nodes)
        except ValueError as exc:
            raise StoryError(f"story {self.name!r} was not saved over its snapshot: {exc}") from None
        self._snapshot_nodes, self._snapshot_seq, self._since_snapshot = len(self.tree.nodes), self.tree.seq, 0
        assert self._journal is not None
        self._journal.close()
        _storage.rotate_journal(self.folder, self.tree.seq)
        self._journal = Journal(self.folder / _storage.JOURNAL)
        _storage.prune(self.folder, self._store.keep_snapshots)
        return path

    def close(self) -> None:
        """Write a final snapshot (if anything changed) and release the writer lock."""
        try:
            if self._journal is not None and self._since_snapshot:
                try:
                    self.snapshot()
                except (OSError, StoryError) as exc:
                    # The journal already holds every event; a missing snapshot only slows opening.
                    self.warnings.append(f"final snapshot not written: {exc}")
        finally:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            self.read_only = True

    def __enter__(self) -> Story:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _existing(self, node_id: str) -> Node:
        try:
            return self.tree.nodes[node_id]
        except KeyError:
            raise StoryError(f"story {self.name!r} has no node {node_id!r}") from None

    def _require_writer(self) -> None:
        if self._journal is not None:
            return
        if self._locked_out:
            who = f" (pid {self.locked_by})" if self.locked_by else ""
            raise StoryLockedError(
                f"story {self.name!r} is being written by another storyteller process{who}, so it was "
                "opened read-only and this change was not saved; close the other one, or branch the "
                "story to go on under a new name"
            )
        raise StoryError(f"story {self.name!r} is closed or was opened read-only; open it again to change it")

    def _commit(self, event: dict[str, Any]) -> None:
        self._require_writer()
        event = {"seq": self.tree.seq + 1, **event}
        try:
            self.tree.check(event)
        except ValueError as exc:
            raise StoryError(f"story {self.name!r}: {exc}") from None
        assert self._journal is not None
        try:
            self._journal.append(event)
        except OSError as exc:
            raise StoryError(f"story {self.name!r}: this change was not saved; "
                             + describe_os_error(exc, "saving it")) from None
        self.tree.apply(event)
        self._since_snapshot += 1
        if self._since_snapshot >= self._store.snapshot_every:
            try:
                self.snapshot()
            except (OSError, StoryError) as exc:
                self.warnings.append(f"periodic snapshot not written: {exc}")


class StoryStore:
    """The stories folder.

    Args:
        root: Where stories live (default: ``get_paths().stories_dir``).
        snapshot_every: Write a snapshot after this many journal events.
        keep_snapshots: How many snapshots to keep as rolling backups.
    """

    def __init__(self, root: Path | None = None, *, snapshot_every: int = 500, keep_snapshots: int = 10) -> None:
        self.root = Path(root) if root is not None else get_paths().stories_dir
        self.snapshot_every = max(1, snapshot_every)
        self.keep_snapshots = max(1, keep_snapshots)

    def exists(self, name: str) -> bool:
        """True when a story of this name has a folder."""
        return (self.root / check_name(name)).is_dir()

    def list(self) -> list[StoryInfo]:
        """Every story, most recently changed first."""
        if not self.root.is_dir():
            return []
        infos = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            meta = _read_meta(folder)
            stamps = [p.stat().st_mtime for p in (folder / _storage.JOURNAL, folder / _storage.META) if p.exists()]
            stamps += [p.stat().st_mtime for _, p in _storage.list_snapshots(folder)[-1:]]
            infos.append(StoryInfo(folder.name, folder, max(stamps, default=0.0), meta.get("branched_from")))
        return sorted(infos, key=lambda i: (-i.modified, i.name))

    def unique_name(self, base: str) -> str:
        """``base``, or ``base-2``, ``base-3``... whichever is not taken yet."""
        base = check_name(base)
        name, n = base, 1
        while (self.root / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    def create(self, name: str, settings: StorySettings | None = None, *, origin: dict[str, Any] | None = None) -> Story:
        """Start a new, empty story, open for writing.

        Raises:
            StoryError: A story of that name already exists (it is never replaced).
        """
        name = check_name(name)
        folder = self.root / name
        exists = StoryError(f"a story named {name!r} already exists; open it, or pick another name")
        if (folder / _storage.META).exists():
            raise exists
        folder.mkdir(parents=True, exist_ok=True)
        # The writer lock is taken before anything is written, and the meta file (which makes
        # the folder a story for everyone else) is written together with the settings under it:
        # a process opening the name meanwhile sees no story, never one without its settings.
        story = Story(self, name, read_only=False)
        for _ in range(_CREATE_RETRIES):
            if not story.read_only or (folder / _storage.META).exists():
                break
            time.sleep(0.05)  # maybe an opener that found no story yet and is letting go
            story.close()
            story = Story(self, name, read_only=False)
        if story.read_only:
            story.close()
            raise StoryLockedError(f"story {name!r} was created by another process at the same moment; open it, "
                                   "or pick another name")
        if (folder / _storage.META).exists():
            story.close()
            raise exists
        try:
            if settings is not None:
                story.set_settings(**settings.model_dump())
            meta = {"name": name, "created": time.time(), **(origin or {})}
            atomic_write(folder / _storage.META, json.dumps(meta, ensure_ascii=False, indent=1).encode())
        except BaseException:
            story.close()
            raise
        return story

    def open(self, name: str, *, read_only: bool = False) -> Story:
        """Open a story: for writing when no other process writes it, else read-only.

        Raises:
            StoryError: There is no story of that name.
        """
        name = check_name(name)
        if not (self.root / name).is_dir():
            known = ", ".join(i.name for i in self.list()[:10]) or "none yet"
            raise StoryError(f"there is no story named {name!r} (stories: {known})")
        story = Story(self, name, read_only=read_only)
        if not (story.folder / _storage.META).exists() and not story.nodes:
            story.close()
            raise StoryError(f"story {name!r} is still being created by another process, or its creation was "
                             "interrupted; try again in a moment, or remove its empty folder")
        return story

    def branch(self, story: Story, node_id: str, new_name: str) -> Story:
        """Start a new story with the history of ``story`` up to ``node_id``.

        The path to the node is copied with every alternative (swipe) along it, so a branch keeps
        them; the original story is not changed.
        """
        path = story.tree.path_to(story._existing(node_id).id)
        copied: list[Node] = []
        for node in path:
            copied.extend(story.tree.siblings(node.id))
        new = self.create(new_name, story.settings, origin={"branched_from": {"story": story.name, "node": node_id}})
        new.add_nodes(copied, select=node_id)
        for node in copied:
            if story.is_hidden(node.id):
                new.hide(node.id)
        for name in _storage.BRANCH_SIDECARS:
            source = story.folder / name
            if source.is_file() and not source.is_symlink():
                atomic_write(new.folder / name, source.read_bytes())  # a copy: the branch's own from now on
        return new

    def delete(self, name: str) -> None:
        """Delete a story and all its backups. Only ever called on an explicit user request.

        Raises:
            StoryLockedError: Another process is writing it.
        """
        folder = self.root / check_name(name)
        if not folder.is_dir():
            raise StoryError(f"there is no story named {name!r}")
        lock = WriterLock(folder / _storage.LOCK)
        if not lock.acquired:
            raise StoryLockedError(f"story {name!r} is open in another process; close it before deleting")
        try:
            shutil.rmtree(folder)
        finally:
            lock.release()


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / _storage.META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
