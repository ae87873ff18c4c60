"""Finding cards and worlds by name: the user's library first, then the bundled content.

Bundled content lives in ``characters/`` and ``worlds/`` at the top of the project (installed
with the project's editable install). A story refers to its card and worlds by a name or path
string; this module turns such a string back into a file.
"""

from __future__ import annotations

from pathlib import Path

from storyteller.errors import FormatError
from storyteller.paths import Paths

__all__ = [
    "BUNDLED_CHARACTERS",
    "BUNDLED_WORLDS",
    "DEFAULT_ADVENTURE_CARD",
    "DEFAULT_ADVENTURE_WORLD",
    "find_card",
    "find_world",
]

_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_CHARACTERS = _ROOT / "characters"
BUNDLED_WORLDS = _ROOT / "worlds"
DEFAULT_ADVENTURE_CARD = "narrator_of_hollowmere"
DEFAULT_ADVENTURE_WORLD = "hollowmere"

_CARD_EXTS = (".png", ".json", ".charx", ".yaml", ".yml")
_WORLD_EXTS = (".json", ".lorebook")


def _find(ref: str, folders: list[Path], exts: tuple[str, ...], what: str) -> Path:
    candidate = Path(ref).expanduser()
    if candidate.is_file():
        return candidate.resolve()
    wanted = ref.lower()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in exts:
                continue
            if wanted in (path.name.lower(), path.stem.lower(), path.stem.lower().replace("_", " ")):
                return path
    where = ", ".join(str(f) for f in folders)
    raise FormatError(f"no {what} called {ref!r} (looked for a file, and in {where}); "
                      f"give a path, or import it first with `storyteller {'card' if what == 'card' else 'lore'} import`.")


def find_card(ref: str, paths: Paths) -> Path:
    """A card file from a path, a library name, or a bundled card's name.

    Raises:
        FormatError: Nothing matches; the message says where it looked.
    """
    return _find(ref, [paths.characters_dir, BUNDLED_CHARACTERS], _CARD_EXTS, "card")


def find_world(ref: str, paths: Paths) -> Path:
    """A lorebook file from a path, a library name, or a bundled world's name.

    Raises:
        FormatError: Nothing matches; the message says where it looked.
    """
    return _find(ref, [paths.worlds_dir, BUNDLED_WORLDS], _WORLD_EXTS, "world")
