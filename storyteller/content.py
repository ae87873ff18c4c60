"""Finding cards and worlds by name: the user's library first, then the bundled content.

Bundled content lives in ``characters/`` and ``worlds/`` at the top of the project (installed
with the project's editable install). A story refers to its card and worlds by name: the file
name of a library or bundled file (see :func:`content_ref`), so that a data folder copied to
another machine, or a re-cloned project, still finds them. Anything else is named by its path,
and an old story's absolute path that no longer exists falls back to its file name in the
library and the bundled content. This module turns such a string back into a file.
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
    "card_candidates",
    "content_ref",
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


def _in_folders(name: str, folders: list[Path], exts: tuple[str, ...]) -> Path | None:
    wanted = name.lower()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in exts:
                continue
            if wanted in (path.name.lower(), path.stem.lower(), path.stem.lower().replace("_", " ")):
                return path
    return None


def _find(ref: str, folders: list[Path], exts: tuple[str, ...], what: str) -> Path:
    candidate = Path(ref).expanduser()
    bare = candidate.name == ref and ref not in ("", ".", "..")
    if bare:  # a name: the library and the bundled content first, then a file in the working folder
        found = _in_folders(ref, folders, exts)
        if found is not None:
            return found
    if candidate.is_file():
        return candidate.resolve()
    if not bare and candidate.name:  # a path that has gone (an old story, a moved install): its file name
        found = _in_folders(candidate.name, folders, exts)
        if found is not None:
            return found
    where = ", ".join(str(f) for f in folders)
    raise FormatError(f"no {what} called {ref!r} (looked for a file, and in {where}); "
                      f"give a path, or import it first with `storyteller {'card' if what == 'card' else 'lore'} import`.")


def find_card(ref: str, paths: Paths) -> Path:
    """A card file from a path, a library name, or a bundled card's name.

    Raises:
        FormatError: Nothing matches; the message says where it looked.
    """
    return _find(ref, [paths.characters_dir, BUNDLED_CHARACTERS], _CARD_EXTS, "card")


def card_candidates(ref: str, paths: Paths) -> list[Path]:
    """Every library or bundled card that ``ref`` could mean: the same name, and the numbered
    copies the library makes for cards of the same name (``Seraphina (2).png``). The first is the
    one :func:`find_card` picks."""
    import re

    if Path(ref).expanduser().is_file():
        return [Path(ref).expanduser().resolve()]
    wanted = ref.lower()
    numbered = re.compile(rf"^{re.escape(wanted)} \(\d+\)$")
    found: list[Path] = []
    for folder in (paths.characters_dir, BUNDLED_CHARACTERS):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in _CARD_EXTS:
                continue
            stem = path.stem.lower()
            if wanted in (path.name.lower(), stem, stem.replace("_", " ")) or numbered.match(stem):
                found.append(path)
    try:
        first = find_card(ref, paths)
    except FormatError:
        return found
    return [first] + [p for p in found if p != first]


def content_ref(path: str | Path, paths: Paths) -> str:
    """How a story should name a card or world file.

    The file name when the file sits in the user's library (``characters/``, ``worlds/`` under
    the data folder) or in the bundled content, so the name keeps working when the data folder
    or the project moves; else the absolute path.
    """
    resolved = Path(path).expanduser().resolve()
    for folder in (paths.characters_dir, paths.worlds_dir, BUNDLED_CHARACTERS, BUNDLED_WORLDS):
        if resolved.parent == folder.expanduser().resolve():
            return resolved.name
    return str(resolved)


def find_world(ref: str, paths: Paths) -> Path:
    """A lorebook file from a path, a library name, or a bundled world's name.

    Raises:
        FormatError: Nothing matches; the message says where it looked.
    """
    return _find(ref, [paths.worlds_dir, BUNDLED_WORLDS], _WORLD_EXTS, "world")


def chat_character(settings, file_name: str) -> str | None:
    """The character an imported chat belongs to: SillyTavern's header ``character_name``, else
    its file naming (``Aqua_1673181146000.jsonl``, ``Aqua - 2023-1-24@12h30m00s.jsonl``)."""
    import re

    imported = getattr(settings, "imported", None) or {}
    header = (imported.get("sillytavern") or {}).get("header") or {}
    name = header.get("character_name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    stem = Path(file_name).stem
    match = re.match(r"^(.+?)(?: - \d{4}-\d{1,2}-\d{1,2}@.*|_\d{10,})$", stem)
    return match.group(1).strip() if match else None


def link_chat_card(story, paths: Paths, file_name: str, card: str | None = None) -> list[str]:
    """Attach an imported chat to its character's card, so it goes on as that character.

    ``card`` (a path or library name) wins; otherwise the card is looked up by the chat's
    character name. Returns lines for the import report: what was linked, or what to do when the
    card is missing or ambiguous (the story then keeps the character's name from the chat).
    """
    if story.settings.cards:
        return []
    name = card or chat_character(story.settings, file_name)
    if not name:
        return ["the chat does not name its character: attach a card with `storyteller play --story NAME --card CARD`"]
    found = card_candidates(name, paths)
    if not found:
        return [f"no card called {name!r} in the library: import the card (storyteller card import FILE), then "
                f"attach it with `storyteller play --story {story.name!r} --card {name!r}`"]
    chosen = found[0]
    ref = chosen.name if chosen.parent in (paths.characters_dir, BUNDLED_CHARACTERS) else str(chosen)
    story.set_settings(cards=[ref], mode="chat")
    lines = [f"linked to the card {chosen.name} (the chat's character, {name!r})"]
    if len(found) > 1:
        lines.append(f"{len(found)} cards match {name!r} ({', '.join(p.name for p in found[:5])}); "
                     f"linked the first; use --card to choose another")
    return lines
