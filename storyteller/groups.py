"""Saved group definitions, to start new group stories from (``storyteller play --group NAME``).

A group story keeps its own copy of the group in its settings; the library here holds groups by
name so a player can start another story with the same members, order and card mode. Each group
is one JSON file, ``<data dir>/groups/<name>.json``, written atomically (a crash leaves the old
file or the new one, never half of one).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ValidationError

from storyteller.errors import FormatError, StoryError
from storyteller.fileio import atomic_write, read_limited
from storyteller.paths import Paths
from storyteller.story.model import GroupSettings

__all__ = ["GroupLibrary"]

_MAX_BYTES = 1 << 20
_UNSAFE = re.compile(r"[^\w .,&'()+-]+")


def _file_stem(name: str) -> str:
    """A file name for a group's name: unsafe characters become ``_``, no leading dot, short."""
    stem = _UNSAFE.sub("_", name.strip()).strip(" .")
    return stem[:80] or "group"


class GroupLibrary:
    """The saved groups.

    Args:
        paths: Storyteller's folders (groups live in ``paths.data_dir / "groups"``).
    """

    def __init__(self, paths: Paths) -> None:
        self.folder = paths.data_dir / "groups"

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("*.json") if p.is_file() and not p.is_symlink())

    def _read(self, path: Path) -> GroupSettings:
        try:
            data = json.loads(read_limited(path, _MAX_BYTES, "group").decode("utf-8"))
            return GroupSettings.model_validate(data)
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise FormatError(f"{path}: not a storyteller group ({first}); save the group again.") from None

    def save(self, group: GroupSettings) -> Path:
        """Save ``group`` under its name (replacing a saved group of the same name).

        Raises:
            StoryError: The group has no name or no members.
        """
        if not group.name.strip():
            raise StoryError("a saved group needs a name: give one with --group-name or `group save NAME`.")
        if not group.members:
            raise StoryError("a group needs members: give --card twice or more.")
        target = self.folder / f"{_file_stem(group.name)}.json"
        for path in self._files():  # the same name (any case) in another file is replaced there
            try:
                if self._read(path).name.casefold() == group.name.strip().casefold():
                    target = path
                    break
            except FormatError:
                continue
        data = json.dumps(group.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
        return atomic_write(target, data.encode("utf-8"))

    def names(self) -> list[str]:
        """The saved groups' names, sorted (files that cannot be read are left out)."""
        found = []
        for path in self._files():
            try:
                found.append(self._read(path).name)
            except FormatError:
                continue
        return sorted(found, key=str.casefold)

    def load(self, name: str) -> GroupSettings:
        """The saved group called ``name`` (case-insensitive).

        Raises:
            StoryError: No group has that name.
            FormatError: The group's file cannot be read.
        """
        wanted = name.strip().casefold()
        stem = self.folder / f"{_file_stem(name)}.json"
        if stem.is_file() and not stem.is_symlink():
            group = self._read(stem)
            if group.name.casefold() == wanted:
                return group
        for path in self._files():
            try:
                group = self._read(path)
            except FormatError:
                continue
            if group.name.casefold() == wanted:
                return group
        raise self._unknown(name)

    def _unknown(self, name: str) -> StoryError:
        known = ", ".join(self.names()) or "none yet"
        return StoryError(f"no saved group called {name.strip()!r} (saved: {known}); "
                          "save one with `storyteller group save NAME --card A --card B`.")

    def delete(self, name: str) -> tuple[str, Path]:
        """Delete the saved group called ``name`` (case-insensitive); returns its name and the file
        that was removed. A file that cannot be read as a group is deleted by its file name
        (``broken`` for ``broken.json``). Stories started from the group keep their own copy.

        Raises:
            StoryError: No group has that name, or its file is not a regular file in the groups folder.
        """
        wanted = name.strip().casefold()
        found: tuple[str, Path] | None = None
        for path in self._files():
            try:
                group_name = self._read(path).name
            except FormatError:
                if path.stem.casefold() == wanted and found is None:
                    found = (path.stem, path)
                continue
            if group_name.casefold() == wanted:
                found = (group_name, path)
                break
        if found is None:
            raise self._unknown(name)
        group_name, path = found
        folder = self.folder.resolve()
        if path.is_symlink() or not path.is_file() or path.resolve().parent != folder:
            raise StoryError(f"{path} is not a regular file in {folder}; nothing was deleted.")
        path.unlink()
        return group_name, path
