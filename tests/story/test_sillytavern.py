"""SillyTavern chat JSONL: the fixture chat and chats built here, both directions."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from storyteller.errors import FormatError
from storyteller.story import StoryStore
from storyteller.story.convert import export_story, import_story
from storyteller.story.sillytavern import import_sillytavern


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def test_fixture_chat_round_trips_exactly(shared_fixtures: Path, tmp_path: Path) -> None:
    src = shared_fixtures / "chats" / "Aqua_1673181146000.jsonl"
    store = StoryStore()
    story, report = import_story(store, src)
    assert report.source_format == "sillytavern-jsonl"
    assert any("chat_metadata" in d for d in report.defaulted)
    assert story.settings.persona.name == "You"
    [greeting] = story.current_path()
    assert greeting.kind == "greeting" and greeting.author == "Aqua"
    assert greeting.created == pytest.approx(1674563371.558)
    story.close()
    reopened = store.open(story.name, read_only=True)  # through the journal and a snapshot
    out = export_story(reopened, tmp_path / "out.jsonl")
    assert _lines(out) == _lines(src.read_text(encoding="utf-8"))
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == out


def _built_chat() -> list[dict]:
    return [
        {"user_name": "Sam", "character_name": "Aria", "create_date": "2023-5-14 @21h 10m 00s 000ms",
         "chat_metadata": {"note_prompt": "Keep it short.", "note_interval": "2", "note_depth": "3",
                           "note_role": 1, "variables": {"gold": "5"}, "world_info": "Eldoria",
                           "tainted": True, "chat_id_hash": 12345}},
        {"name": "Aria", "is_user": "false", "is_system": "false", "send_date": 1684098600000,
         "mes": "Welcome!", "swipes": ["Welcome!", "Hello, traveller."], "swipe_id": "0",
         "extra": {}, "is_name": True},
        {"name": "Sam", "is_user": "true", "send_date": "2023-5-14 @21h 12m 50s 500ms", "mes": "Hi.",
         "extra": {"token_count": "3"}},
        {"name": "Aria", "is_user": False, "send_date": "June 19, 2023 2:20pm", "mes": "Second try",
         "swipes": ["First try", "Second try", "Third try"], "swipe_id": 1,
         "swipe_info": [{"send_date": "June 19, 2023 2:19pm", "extra": {"model": "m1"}},
                        {"send_date": "June 19, 2023 2:20pm", "extra": {"model": "m2"}},
                        {"send_date": "June 19, 2023 2:21pm", "extra": {"model": "m3"}}],
         "extra": {"api": "koboldcpp", "model": "m2"}, "gen_started": "2023-06-19T14:19:58.000Z"},
    ]


def test_built_chat_swipes_dates_and_strings(tmp_path: Path) -> None:
    imported = import_sillytavern(_write(tmp_path / "c.jsonl", _built_chat()).read_bytes())
    report = imported.report
    assert any("swipe_id" in r for r in report.repaired)
    assert any("is_user" in r for r in report.repaired)
    assert any("note_interval" in r for r in report.repaired)
    s = imported.settings
    assert (s.persona.name, s.authors_note.text, s.authors_note.interval, s.authors_note.depth,
            s.authors_note.role, s.variables, s.worlds) == ("Sam", "Keep it short.", 2, 3, "user", {"gold": "5"}, ["Eldoria"])
    greeting_a, greeting_b, user, t1, t2, t3 = imported.nodes
    assert [n.kind for n in imported.nodes] == ["greeting", "greeting", "say", "generation", "generation", "generation"]
    assert greeting_a.parent is greeting_b.parent is None and user.parent == greeting_a.id
    assert t1.parent == t2.parent == t3.parent == user.id and imported.current == t2.id
    assert user.author == "user" and t2.author == "Aria"
    assert greeting_a.created == pytest.approx(1684098600.0)
    assert user.created == pytest.approx(datetime(2023, 5, 14, 21, 12, 50, 500000).timestamp())
    assert t2.created == pytest.approx(datetime(2023, 6, 19, 14, 20).timestamp())
    assert t3.created == pytest.approx(datetime(2023, 6, 19, 14, 21).timestamp())


def test_built_chat_round_trips_with_swipes(tmp_path: Path) -> None:
    src = _write(tmp_path / "c.jsonl", _built_chat())
    store = StoryStore()
    story, _ = import_story(store, src, name="built")
    out = _lines(export_story(story, fmt="st"))
    original = _built_chat()
    assert out[0]["chat_metadata"]["tainted"] is True and out[0]["chat_metadata"]["note_prompt"] == "Keep it short."
    assert out[0]["chat_metadata"]["note_interval"] == 2 and out[0]["chat_metadata"]["note_role"] == 1
    for got, want in zip(out[1:], original[1:], strict=True):
        assert got["mes"] == want["mes"] and got["name"] == want["name"]
        assert got.get("swipes") == want.get("swipes")
        if "swipes" in got:
            assert got["swipes"][got["swipe_id"]] == got["mes"]
        assert got["send_date"] == want["send_date"]
    assert out[3]["swipe_info"] == original[3]["swipe_info"] and out[3]["gen_started"] == original[3]["gen_started"]
    # Swipe in storyteller, then export: the chosen swipe and mes follow.
    third = [n for n in story.nodes.values() if n.text == "Third try"][0]
    story.swipe(third.id, index=2)
    again = _lines(export_story(story, fmt="st"))
    assert again[3]["mes"] == "Third try" and again[3]["swipe_id"] == 2
    reimported = import_sillytavern("\n".join(json.dumps(r) for r in again))
    assert sorted(n.text for n in reimported.nodes) == sorted(n.text for n in story.nodes.values())


def test_group_chat_without_header(tmp_path: Path) -> None:
    rows = [
        {"name": "Aria", "is_user": False, "send_date": "June 1, 2024 9:00am", "mes": "Hello all."},
        {"name": "Bram", "is_user": False, "send_date": "June 1, 2024 9:01am", "mes": "Morning.",
         "force_avatar": "bram.png", "original_avatar": "bram.png"},
        {"name": "Kim", "is_user": True, "send_date": "June 1, 2024 9:02am", "mes": "Hi both."},
    ]
    imported = import_sillytavern(_write(tmp_path / "g.jsonl", rows).read_bytes())
    assert any("group chat" in d for d in imported.report.defaulted)
    assert [n.author for n in imported.nodes] == ["Aria", "Bram", "user"]
    assert imported.settings.persona.name == "Kim"
    story, _ = import_story(StoryStore(), tmp_path / "g.jsonl")
    out = _lines(export_story(story, fmt="st"))
    assert out == rows  # no header written back, avatars kept


def test_shown_text_missing_from_swipes_is_kept(tmp_path: Path) -> None:
    rows = [{"user_name": "U", "character_name": "C"},
            {"name": "C", "is_user": False, "mes": "edited text", "swipes": ["a", "b"], "swipe_id": 0}]
    imported = import_sillytavern("\n".join(json.dumps(r) for r in rows))
    assert [n.text for n in imported.nodes] == ["a", "b", "edited text"]
    assert imported.nodes[-1].id == imported.current
    assert any("swipe_id" in r for r in imported.report.repaired)


def test_continue_nodes_export_as_one_message() -> None:
    story = StoryStore().create("c")
    story.add_node("Hi", author="user", kind="say")
    story.add_node("The door", author="Aria", kind="generation")
    story.add_node(" opens.", author="Aria", kind="continue")
    out = _lines(export_story(story, fmt="st"))
    assert out[0]["character_name"] == "Aria" and out[0]["user_name"] == "User"
    assert [m["mes"] for m in out[1:]] == ["Hi", "The door opens."]
    assert out[1]["is_user"] is True and out[2]["is_user"] is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no JSON lines"),
        (b"not json at all\n", "no JSON lines"),
        (b"\xff\xfe\x00binary", "not UTF-8"),
        (b'{"user_name": "U", "character_name": "C"}\n', "no messages"),
    ],
)
def test_bad_input_raises_format_error(content: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        import_sillytavern(content)


def test_unparsable_lines_are_reported_not_fatal() -> None:
    text = '{"user_name": "U", "character_name": "C"}\n{broken\n{"name": "C", "is_user": false, "mes": "ok"}'
    imported = import_sillytavern(text)
    assert [n.text for n in imported.nodes] == ["ok"]
    assert imported.report.dropped == ["line 2: not JSON"]
