"""Stories name library and bundled cards and worlds, so a moved data folder or a re-clone keeps them.

Old stories that stored absolute paths into the install still open: a path that has gone falls
back to its file name in the library and the bundled content.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storyteller.config import Settings
from storyteller.content import BUNDLED_CHARACTERS, content_ref, find_card, find_world
from storyteller.engines.fake import ScriptedBackend
from storyteller.errors import FormatError
from storyteller.paths import get_paths
from storyteller.session_setup import open_session
from storyteller.story import StoryStore
from storyteller.story.model import StorySettings


def _settings() -> Settings:
    settings = Settings()
    settings.engine.kv_state = "off"
    return settings


async def test_a_new_story_names_its_bundled_card_and_world() -> None:
    paths = get_paths().ensure()
    session = await open_session("tale", settings=_settings(), paths=paths, backend=ScriptedBackend())
    try:
        st = session.story.settings
        assert st.cards == ["narrator_of_hollowmere.json"]
        assert [w.lower() for w in st.worlds] == ["hollowmere"]
        assert not any(Path(ref).is_absolute() for ref in [*st.cards, *st.worlds])
    finally:
        session.story.close()
    stored = "".join(p.read_text(errors="replace") for p in (paths.stories_dir / "tale").rglob("*") if p.is_file())
    assert str(BUNDLED_CHARACTERS) not in stored and "narrator_of_hollowmere.json" in stored


async def test_library_card_is_named_and_survives_a_copied_data_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = get_paths().ensure()
    paths.characters_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(BUNDLED_CHARACTERS / "wren_calloway.json", paths.characters_dir / "My Wren.json")
    given = str(paths.characters_dir / "My Wren.json")  # the user gave a full path
    session = await open_session("chat", settings=_settings(), paths=paths, backend=ScriptedBackend(), card=given)
    try:
        assert session.story.settings.cards == ["My Wren.json"]
    finally:
        session.story.close()

    moved = tmp_path / "elsewhere"
    shutil.copytree(paths.data_dir.parent, moved)
    shutil.rmtree(paths.data_dir.parent)
    monkeypatch.setenv("STORYTELLER_HOME", str(moved))
    new_paths = get_paths()
    session = await open_session("chat", settings=_settings(), paths=new_paths, backend=ScriptedBackend())
    try:
        assert session.parts.card is not None and session.parts.card.name == "Wren Calloway"
        assert find_card("My Wren.json", new_paths) == new_paths.characters_dir / "My Wren.json"
    finally:
        session.story.close()


async def test_an_old_story_with_absolute_paths_still_opens() -> None:
    paths = get_paths().ensure()
    gone = "/nonexistent/old-install/characters/narrator_of_hollowmere.json"
    with StoryStore(paths.stories_dir).create(
            "old", StorySettings(cards=[gone], worlds=["/nonexistent/old-install/worlds/hollowmere.json"],
                                 mode="adventure")):
        pass
    session = await open_session("old", settings=_settings(), paths=paths, backend=ScriptedBackend())
    try:
        assert session.parts.card is not None and session.parts.card.name == "Narrator of Hollowmere"
        assert session.parts.books and session.parts.books[0].name == "Hollowmere"
        assert session.story.settings.cards == [gone]  # opening never rewrites the story's settings
    finally:
        session.story.close()


def test_names_win_over_files_in_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = get_paths().ensure()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "narrator_of_hollowmere.json").write_text("{}")  # a stray file must not replace the card
    assert find_card("narrator_of_hollowmere.json", paths) == BUNDLED_CHARACTERS / "narrator_of_hollowmere.json"
    (tmp_path / "mine.json").write_text("{}")
    assert find_card("mine.json", paths) == (tmp_path / "mine.json").resolve()  # still found as a last resort
    with pytest.raises(FormatError, match="no world called"):
        find_world("/nonexistent/nowhere.json", paths)


def test_content_ref_names_only_library_and_bundled_files(tmp_path: Path) -> None:
    paths = get_paths().ensure()
    assert content_ref(BUNDLED_CHARACTERS / "halden_voss.png", paths) == "halden_voss.png"
    assert content_ref(paths.worlds_dir / "Eldoria.json", paths) == "Eldoria.json"
    outside = tmp_path / "card.png"
    assert content_ref(outside, paths) == str(outside.resolve())
