"""Plain text and Markdown exports of the current path."""

from __future__ import annotations

from pathlib import Path

import pytest

from storyteller.errors import FormatError
from storyteller.story import StoryStore
from storyteller.story.convert import export_story


def test_chat_exports_name_each_speaker_and_leave_out_hidden(tmp_path: Path) -> None:
    story = StoryStore().create("Chat night")
    story.set_settings(persona={"name": "Sam"})
    story.add_node("Hello.", author="Aria", kind="greeting")
    story.add_node("Hi!", author="user", kind="say")
    bad = story.add_node("something moderated", author="Aria", kind="generation")
    story.hide(bad.id)
    story.add_node("How are", author="Aria", kind="generation", parent=bad.parent)
    story.add_node(" you?", author="Aria", kind="continue")
    txt = export_story(story, tmp_path / "c.txt")
    assert txt == "Aria: Hello.\n\nSam: Hi!\n\nAria: How are you?\n"
    assert (tmp_path / "c.txt").read_text() == txt
    md = export_story(story, tmp_path / "c.md")
    assert md == "# Chat night\n\n**Aria:** Hello.\n\n**Sam:** Hi!\n\n**Aria:** How are you?\n"
    assert "moderated" not in txt + md


def test_story_and_adventure_modes_read_as_prose() -> None:
    story = StoryStore().create("a")
    story.set_settings(mode="adventure")
    story.add_node("You wake in a cave.", author="narrator", kind="story")
    story.add_node("light a torch", author="user", kind="do")
    story.add_node("Shadows dance.", author="narrator", kind="generation")
    assert export_story(story, fmt="txt") == "You wake in a cave.\n\n> light a torch\n\nShadows dance.\n"
    story.set_settings(mode="story")
    assert export_story(story, fmt="md").startswith("# a\n\nYou wake in a cave.")


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    story = StoryStore().create("a")
    with pytest.raises(FormatError, match="say which format"):
        export_story(story, tmp_path / "out.xyz")
    with pytest.raises(FormatError, match="unknown export format"):
        export_story(story, fmt="pdf")
