"""Kobold Lite save JSON, both directions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storyteller.errors import FormatError
from storyteller.story import StoryStore
from storyteller.story.convert import export_story, import_story
from storyteller.story.kobold import import_kobold

WORLD = [{"key": "castle,keep", "keysecondary": "", "keyanti": "", "content": "The castle is old.",
          "comment": "", "folder": None, "selective": False, "constant": False, "probability": 100, "wigroup": ""}]


def _chat_save() -> dict:
    return {
        "gamestarted": True,
        "prompt": "\nAria: Welcome to the keep.",
        "actions": ["\nSam: Is it safe?", "\nAria: Mostly.", "\nSam: Good."],
        "actions_metadata": {"0": {"Selected Text": "\nSam: Is it safe?", "Alternative Text": []},
                             "1": {"Selected Text": "\nAria: Mostly.", "Alternative Text": ["\nAria: No!"]},
                             "2": {"Selected Text": "\nSam: Good.", "Alternative Text": []}},
        "memory": "Aria guards the castle.",
        "authorsnote": "Tense mood.",
        "anotetemplate": "[Author's note: <|>]",
        "worldinfo": WORLD,
        "wifolders_d": {}, "wifolders_l": [], "extrastopseq": "", "anotestr": 320, "wisearchdepth": 0,
        "savedsettings": {"opmode": 3, "chatname": "Sam", "chatopponent": "Aria", "temperature": 0.7},
        "savedaestheticsettings": None,
    }


def test_chat_save_imports_speakers_alternatives_and_settings() -> None:
    imported = import_kobold(json.dumps(_chat_save()))
    assert imported.report.source_format == "kobold-lite-json"
    s = imported.settings
    assert (s.mode, s.persona.name, s.memory, s.authors_note.text) == ("chat", "Sam", "Aria guards the castle.", "Tense mood.")
    assert s.imported["kobold"]["save"]["worldinfo"] == WORLD
    texts = [(n.author, n.kind, n.text) for n in imported.nodes]
    assert texts == [("Aria", "greeting", "Welcome to the keep."), ("user", "say", "Is it safe?"),
                     ("Aria", "generation", "Mostly."), ("Aria", "generation", "No!"), ("user", "say", "Good.")]
    mostly, no = imported.nodes[2], imported.nodes[3]
    assert mostly.parent == no.parent and imported.nodes[4].parent == mostly.id


def test_kobold_round_trip_is_exact(tmp_path: Path) -> None:
    src = tmp_path / "save.json"
    src.write_text(json.dumps(_chat_save()), encoding="utf-8")
    store = StoryStore()
    story, _ = import_story(store, src)
    story.close()
    out = json.loads(export_story(store.open(story.name, read_only=True), tmp_path / "out.json"))
    original = _chat_save()
    for key in ("prompt", "actions", "actions_metadata", "memory", "authorsnote", "worldinfo", "anotestr"):
        assert out[key] == original[key], key
    assert out["savedsettings"] == original["savedsettings"]


def test_adventure_and_instruct_chunks() -> None:
    adventure = import_kobold(json.dumps({
        "prompt": "You stand at a gate.", "actions": ["\n\n> open the gate\n\n", "It creaks."],
        "savedsettings": {"opmode": 2}}))
    assert [(n.kind, n.text) for n in adventure.nodes] == [
        ("story", "You stand at a gate."), ("do", "open the gate"), ("generation", "It creaks.")]
    instruct = import_kobold(json.dumps({
        "prompt": "", "actions": ["{{[INPUT]}}Tell a joke{{[OUTPUT]}}", "Why did..."],
        "savedsettings": {"opmode": 4, "chatopponent": "Bot"}}))
    assert [(n.author, n.kind, n.text) for n in instruct.nodes] == [
        ("user", "say", "Tell a joke"), ("Bot", "generation", "Why did...")]
    story = StoryStore().create("i")
    story.set_settings(**instruct.settings.model_dump())
    story.add_nodes(instruct.nodes, select=instruct.current)
    out = json.loads(export_story(story, fmt="kobold"))
    assert out["prompt"] == "{{[INPUT]}}Tell a joke{{[OUTPUT]}}" and out["actions"] == ["Why did..."]


def test_koboldai_united_v2_save() -> None:
    imported = import_kobold(json.dumps({
        "file_version": 2, "prompt": "Start.", "authornote": "Dark.", "memory": "M",
        "actions": {"action_count": 1, "actions": {"0": {"Selected Text": " Next.", "Options": [{"text": " Other."}]}}},
        "worldinfo_v2": {"entries": {}}}))
    assert imported.report.source_format == "koboldai-v2-json"
    assert [n.text for n in imported.nodes] == ["Start.", " Next.", " Other."]
    assert imported.settings.authors_note.text == "Dark." and imported.settings.memory == "M"
    assert any("opmode" in d for d in imported.report.defaulted)


def test_story_made_here_exports_to_kobold_and_back() -> None:
    story = StoryStore().create("s")
    story.set_settings(mode="story", memory="A quiet town.")
    story.add_node("The bell rang.", author="user", kind="story")
    first = story.add_node(" Nobody came.", author="narrator", kind="generation")
    story.add_node(" Everyone came.", author="narrator", kind="generation", parent=first.parent)
    story.add_node(" At noon.", author="narrator", kind="continue")
    out = json.loads(export_story(story, fmt="kobold"))
    assert out["prompt"] == "The bell rang." and out["actions"] == [" Everyone came.", " At noon."]
    assert out["actions_metadata"] == {"0": {"Selected Text": " Everyone came.", "Alternative Text": [" Nobody came."]},
                                       "1": {"Selected Text": " At noon.", "Alternative Text": []}}
    back = import_kobold(json.dumps(out))
    assert back.settings.mode == "story" and back.settings.memory == "A quiet town."
    assert sorted(n.text for n in back.nodes) == sorted(n.text for n in story.nodes.values())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"ga": "x", "cm": 1}', "share link"),
        ('{"memory": "m"}', "not a Kobold Lite save"),
        ('{"prompt": "p", "actions": "oops"}', "must be a list"),
    ],
)
def test_bad_saves_raise_format_error(content: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        import_kobold(content)
