"""SillyTavern group chats as files: a group definition and its chat imported as a group story,
exported back as SillyTavern's own folder layout, and round-tripped.

The fixture (tests/fixtures/st_group) is SillyTavern 1.12's data layout with lines shaped as its
``group-chats.js`` / ``script.js`` write them (greetings from ``getFirstCharacterMessage``, replies
from ``saveReply`` with swipes and ``swipe_info``, user lines from ``sendMessageAsUser``); the
members are the real cards from the shared fixtures, put into ``characters/`` beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller.errors import FormatError
from storyteller.group_files import export_group_folder, import_group_files
from storyteller.paths import get_paths
from storyteller.story import StoryStore
from storyteller.story.model import GroupMember, GroupSettings, StorySettings
from storyteller.story.st_group import export_st_group, import_st_group, parse_st_group
from tests.clients.sillytavern import node, read_card, read_chat, run_node

FIXTURE = Path(__file__).parent / "fixtures" / "st_group"
GROUP_ID = "1718027531870"
CHAT_ID = "2024-6-10@14h02m11s"
AVATARS = ["default_Seraphina.png", "Aqua.png", "Default-chan.png"]
NAMES = ["Seraphina", "Aqua", "Default-chan"]


@pytest.fixture
def st_data(shared_fixtures: Path, tmp_path: Path) -> Path:
    """A SillyTavern user folder: groups/, group chats/ and the members in characters/."""
    root = tmp_path / "default-user"
    shutil.copytree(FIXTURE, root)
    (root / "characters").mkdir()
    for avatar in AVATARS:
        shutil.copy(shared_fixtures / "cards" / avatar, root / "characters" / avatar)
    return root


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storyteller.cli", *args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))


def _import(root: Path, **kwargs):
    story, report, lines = import_group_files(StoryStore(), root / "groups" / f"{GROUP_ID}.json", get_paths(), **kwargs)
    return story, report, lines


def _messages(story) -> list[tuple]:
    """Each message on the path: author, kind, text, its swipes, and SillyTavern's own fields."""
    out = []
    for message in story.messages():
        head = message.head
        swipes = [n.text for n in story.siblings(head.id)]
        st = dict(head.extra.get("st", {}).get("message", {}))
        st.pop("name", None)
        out.append((head.author, head.kind, message.text, swipes, st))
    return out


def test_the_player_imports_a_group_chat_shows_it_and_exports_it(st_data: Path, tmp_path: Path) -> None:
    done = _cli("story", "import", str(st_data / "groups" / f"{GROUP_ID}.json"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "Forest Trio" and "(sillytavern-group): 9 nodes" in lines[0]
    assert f"chat: {st_data / 'group chats' / (CHAT_ID + '.jsonl')}" in lines
    assert any(line.startswith("member default_Seraphina.png: card ") and "imported into the library" in line
               for line in lines)

    shown = _cli("story", "show", "Forest Trio")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "group: Forest Trio  members: Seraphina, Aqua, Default-chan  order: natural  cards: join" in out
    for name in NAMES:
        assert f"greeting] {name}:" in out
    assert "generation 2/2] Aqua:\n*Aqua puffs out her chest.*" in out
    assert "generation] Seraphina:\n*Seraphina smiles softly.*" in out
    assert "say] User:\nDefault-chan, say hello." in out

    folder = tmp_path / "out"
    exported = _cli("story", "export", "Forest Trio", str(folder), "--format", "st-group")
    assert exported.returncode == 0, exported.stderr
    assert f"wrote {folder / 'groups' / (GROUP_ID + '.json')}" in exported.stdout
    chat = read_chat(folder / "group chats" / f"{CHAT_ID}.jsonl")
    assert [m["name"] for m in chat] == [*NAMES, "User", "Aqua", "Seraphina", "User", "Default-chan"]
    assert sorted(p.name for p in (folder / "characters").iterdir()) == sorted(AVATARS)

    refused = _cli("story", "export", "Forest Trio", "-", "--format", "st-group")
    assert refused.returncode != 0 and "give a folder" in refused.stderr


def test_import_maps_the_settings_greetings_swipes_and_keeps_unknown_fields(st_data: Path) -> None:
    story, report, lines = _import(st_data)
    with story:
        settings = story.settings
        group = settings.group
        assert group is not None and group.name == "Forest Trio"
        assert [m.name for m in group.members] == NAMES
        assert settings.cards == [m.card for m in group.members] == ["Seraphina.png", "Aqua.png", "Default-chan.png"]
        assert (group.order, group.cards, group.allow_self_responses) == ("natural", "join", False)
        assert group.join_prefix == "[{{char}}'s <FIELDNAME>]" and group.join_suffix == ""
        assert settings.mode == "chat" and settings.authors_note.text == "Keep the forest calm."
        assert group.imported["sillytavern"]["definition"]["hideMutedSprites"] is False
        assert group.imported["sillytavern"]["definition"]["chat_metadata"]["tainted"] is True
        messages = _messages(story)
        assert [(a, k) for a, k, *_ in messages] == [
            ("Seraphina", "greeting"), ("Aqua", "greeting"), ("Default-chan", "greeting"), ("user", "say"),
            ("Aqua", "generation"), ("Seraphina", "generation"), ("user", "say"), ("Default-chan", "generation")]
        aqua = messages[4]
        assert aqua[2].startswith("*Aqua puffs out her chest.*") and len(aqua[3]) == 2
        assert aqua[4]["original_avatar"] == "Aqua.png" and aqua[4]["gen_started"] == "2024-06-10T14:03:11.000Z"
        assert messages[0][4]["is_group"] is True
        assert report.source_format == "sillytavern-group" and not report.dropped


def test_round_trip_import_export_import(st_data: Path, tmp_path: Path) -> None:
    story, _report, _lines = _import(st_data)
    with story:
        before, settings_before = _messages(story), story.settings
        written = export_group_folder(story, tmp_path / "out", get_paths())
    assert len(written) == 5
    out = tmp_path / "out"
    # The files say what the originals said, field for field.
    original = json.loads((st_data / "groups" / f"{GROUP_ID}.json").read_text())
    assert json.loads((out / "groups" / f"{GROUP_ID}.json").read_text()) == original
    assert read_chat(out / "group chats" / f"{CHAT_ID}.jsonl") == read_chat(st_data / "group chats" / f"{CHAT_ID}.jsonl")

    again, _report, _lines = import_group_files(StoryStore(), out / "groups" / f"{GROUP_ID}.json", get_paths(),
                                                name="again")
    with again:
        assert _messages(again) == before
        assert again.settings.group == settings_before.group
        assert again.settings.authors_note == settings_before.authors_note


def test_sillytavern_reads_the_export(st_data: Path, tmp_path: Path) -> None:
    """What SillyTavern 1.12.6 does with the folder: its chat reader, its card reader, and
    ``validateGroup`` (a member whose avatar is no character is dropped)."""
    story, _report, _lines = _import(st_data)
    with story:
        story.set_settings(group=story.settings.group.model_copy(update={"order": "everyone"}))
        export_group_folder(story, tmp_path / "out", get_paths())
    out = tmp_path / "out"
    definition = json.loads((out / "groups" / f"{GROUP_ID}.json").read_text())
    assert definition["activation_strategy"] == 1  # ST's "list order": everyone in turn
    characters = {p.name: read_card(p)["char"]["name"] for p in (out / "characters").iterdir()}
    assert [characters.get(a) for a in definition["members"]] == NAMES
    chat_file = out / "group chats" / f"{definition['chat_id']}.jsonl"
    chat = read_chat(chat_file)
    for message in chat:
        assert isinstance(message["mes"], str) and isinstance(message["is_user"], bool)
        if not message["is_user"]:
            assert characters[message["original_avatar"]] == message["name"]
    if node() is not None:  # the same through JavaScript's own JSON.parse
        assert run_node("chat", [str(chat_file)])[0] == chat


def test_activation_strategies_generation_modes_and_muted_members() -> None:
    members = [("a.png", "a.png", "Ann"), ("b.png", "b.png", "Bo")]
    from storyteller.story.st_group import MemberRef

    refs = [MemberRef(*m) for m in members]
    for strategy, order in ((0, "natural"), (1, "everyone"), (2, "manual"), (3, "list")):
        for mode_number, mode in ((0, "swap"), (1, "join"), (2, "join_muted")):
            definition = {"id": "1", "name": "G", "members": ["a.png", "b.png"], "disabled_members": ["b.png"],
                          "activation_strategy": strategy, "generation_mode": mode_number, "chat_id": "1",
                          "chat_metadata": {"scenario": "A storm."}, "allow_self_responses": True}
            imported = import_st_group(parse_st_group(json.dumps(definition)), None, refs)
            group = imported.settings.group
            assert (group.order, group.cards, group.scenario, group.allow_self_responses) == (order, mode, "A storm.", True)
            assert [m.muted for m in group.members] == [False, True]
            assert imported.nodes == [] and any("no group chat file" in line for line in imported.report.defaulted)
            with StoryStore().create(f"g{strategy}{mode_number}", imported.settings) as story:
                written, chat = export_st_group(story.tree)
            assert (written["activation_strategy"], written["generation_mode"]) == (strategy, mode_number)
            assert written["disabled_members"] == ["b.png"] and chat == ""
            assert written["chat_metadata"]["scenario"] == "A storm."


def test_a_group_made_here_exports_for_sillytavern(tmp_path: Path) -> None:
    group = GroupSettings(name="Crew", members=[GroupMember(card="halden_voss.json", name="Halden Voss"),
                                                GroupMember(card="wren_calloway.json", name="Wren Calloway", muted=True)],
                          order="list", cards="swap")
    settings = StorySettings(cards=["halden_voss.json", "wren_calloway.json"], group=group)
    with StoryStore().create("crew", settings) as story:
        story.set_settings(persona={"name": "Sam", "description": ""})
        first = story.add_node("The lamp is lit.", author="Halden Voss", kind="greeting", parent=None)
        said = story.add_node("Hello, Wren.", author="user", kind="say", parent=first.id)
        story.add_node("Evening.", author="Wren Calloway", kind="generation", parent=said.id)
        story.add_node("Evening, Sam.", author="Wren Calloway", kind="generation", parent=said.id)
        written = export_group_folder(story, tmp_path / "st", get_paths())
    definition = json.loads(written[0].read_text())
    assert definition["members"] == ["halden_voss.png", "wren_calloway.png"]
    assert definition["disabled_members"] == ["wren_calloway.png"]
    assert (definition["activation_strategy"], definition["generation_mode"]) == (3, 0)
    assert definition["chat_id"] in definition["chats"] and definition["name"] == "Crew"
    chat = read_chat(written[1])
    assert [(m["name"], m["is_user"]) for m in chat] == [("Halden Voss", False), ("Sam", True), ("Wren Calloway", False)]
    assert chat[2]["original_avatar"] == "wren_calloway.png" and chat[2]["swipes"] == ["Evening.", "Evening, Sam."]
    assert chat[2]["force_avatar"] == "/thumbnail?type=avatar&file=wren_calloway.png" and chat[2]["extra"] == {}
    assert read_card(tmp_path / "st" / "characters" / "halden_voss.png")["char"]["name"] == "Halden Voss"

    # and it comes back as the same group (the cards found in the library by file name)
    again, _report, _lines = import_group_files(StoryStore(), written[0], get_paths(), name="crew-again")
    with again:
        assert [m.name for m in again.settings.group.members] == ["Halden Voss", "Wren Calloway"]
        assert [(n.author, n.kind, n.text) for n in again.current_path()] == [
            ("Halden Voss", "greeting", "The lamp is lit."), ("user", "say", "Hello, Wren."),
            ("Wren Calloway", "generation", "Evening, Sam.")]
        assert (again.settings.group.order, again.settings.group.cards) == ("list", "swap")


def test_a_missing_member_card_is_a_clear_error_and_nothing_is_made(st_data: Path) -> None:
    (st_data / "characters" / "Aqua.png").unlink()
    with pytest.raises(FormatError, match=r"member card 'Aqua.png' was not found .* --card FILE"):
        _import(st_data)
    assert StoryStore().list() == []
    done = _cli("story", "import", str(st_data / "groups" / f"{GROUP_ID}.json"))
    assert done.returncode != 0 and "'Aqua.png' was not found" in done.stderr and "Traceback" not in done.stderr


def test_cards_and_chat_given_on_the_command_line(st_data: Path, shared_fixtures: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    definition = elsewhere / "trio.json"
    shutil.copy(st_data / "groups" / f"{GROUP_ID}.json", definition)
    chat = st_data / "group chats" / f"{CHAT_ID}.jsonl"
    cards = [str(shared_fixtures / "cards" / a) for a in AVATARS]
    args = ["story", "import", str(definition), "--chat", str(chat), "--name", "given"]
    for card in cards:
        args += ["--card", card]
    done = _cli(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "given" and "9 nodes" in done.stdout
    # without the chat the group still comes in, empty, and says how to give the chat
    done = _cli("story", "import", str(definition), "--name", "empty", *sum((["--card", c] for c in cards), []))
    assert done.returncode == 0, done.stderr
    assert f"no chat '{CHAT_ID}' found beside the group file; give it with --chat FILE" in done.stdout
    bad = _cli("story", "import", str(chat), "--chat", str(chat))
    assert bad.returncode != 0 and "--chat is for SillyTavern groups" in bad.stderr


def test_an_imported_group_chat_plays_on_in_the_line_mode(st_data: Path, tmp_path: Path, smollm2_path) -> None:
    """The player's road: import SillyTavern's group, play it on (the real bundled model), export it
    back for SillyTavern with the new turns under the members' avatars."""
    pytest.importorskip("llama_cpp")
    assert _cli("story", "import", str(st_data / "groups" / f"{GROUP_ID}.json")).returncode == 0
    done = subprocess.run(
        [sys.executable, "-m", "storyteller.cli", "play", "--plain", "--context", "2048", "--story", "Forest Trio"],
        input="Aqua, what do you say?\n/as Seraphina\n/quit\n", capture_output=True, text=True, timeout=600,
        env={**os.environ, "STORYTELLER_SAMPLING__MAX_TOKENS": "20", "STORYTELLER_SAMPLING__SEED": "5"})
    assert done.returncode == 0, done.stderr
    with StoryStore().open("Forest Trio", read_only=True) as story:
        path = story.current_path()
        asked = next(i for i, n in enumerate(path) if n.text == "Aqua, what do you say?")
        assert [n.kind for n in path[:asked]].count("greeting") == 3 and len(path[:asked]) == 8
        replies = [n for n in path[asked + 1:] if n.kind == "generation"]
        assert replies[0].author == "Aqua"  # natural order: the member named answers first
        assert replies[-1].author == "Seraphina"  # /as Seraphina
        for reply in replies:
            assert f"{reply.author}: {reply.text}" in done.stdout
    assert _cli("story", "export", "Forest Trio", str(tmp_path / "st"), "--format", "st-group").returncode == 0
    chat = read_chat(tmp_path / "st" / "group chats" / f"{CHAT_ID}.jsonl")
    new = chat[8:]  # the fixture has 8 messages
    assert new[0]["is_user"] and new[0]["mes"] == "Aqua, what do you say?"
    avatars = dict(zip(NAMES, AVATARS, strict=True))
    for message in new[1:]:
        assert message["original_avatar"] == avatars[message["name"]] and message["extra"]["api"]


def test_the_library_import_takes_a_group_file_and_st_export_writes_the_group_chat(st_data: Path) -> None:
    """The app's import (and `storyteller play FILE`) reads a group definition as a story; a group's
    plain SillyTavern export is its group chat, with no header line (as SillyTavern writes them)."""
    from storyteller.session.importing import guess_kind, import_path
    from storyteller.story.convert import export_story

    definition = st_data / "groups" / f"{GROUP_ID}.json"
    assert guess_kind(definition) == "story"
    result = import_path(str(definition), get_paths())
    assert (result.kind, result.name, result.source_format) == ("story", "Forest Trio", "sillytavern-group")
    assert any(line.startswith("member Aqua.png: card") for line in result.lines)
    with StoryStore().open("Forest Trio", read_only=True) as story:
        text = export_story(story, None, "st")
        assert text == export_st_group(story.tree)[1]
    assert [json.loads(line)["name"] for line in text.split("\n")][:3] == NAMES


def test_authors_follow_original_avatar_and_a_header_line_is_read() -> None:
    """A member renamed since the chat was written is still that member (by ``original_avatar``);
    a chat with a header line (newer SillyTavern) takes its metadata from there."""
    from storyteller.story.st_group import MemberRef

    definition = parse_st_group(json.dumps({"id": "7", "name": "Duo", "members": ["a.png", "b.png"], "chat_id": "7",
                                            "chat_metadata": {"note_prompt": "from the group"}}))
    lines = [{"user_name": "Sam", "character_name": "unused", "chat_metadata": {"note_prompt": "from the chat"}},
             {"name": "Old Ann", "is_user": False, "mes": "Hi.", "original_avatar": "a.png", "send_date": 1},
             {"name": "Sam", "is_user": True, "mes": "Hello both.", "send_date": 2},
             {"name": "Bo", "is_user": False, "mes": "Yo.", "original_avatar": "b.png", "send_date": 3}]
    refs = [MemberRef("a.png", "a.png", "Ann"), MemberRef("b.png", "b.png", "Bo")]
    imported = import_st_group(definition, "\n".join(json.dumps(x) for x in lines), refs)
    assert [(n.author, n.kind) for n in imported.nodes] == [("Ann", "greeting"), ("user", "say"), ("Bo", "generation")]
    assert imported.settings.authors_note.text == "from the chat" and imported.settings.persona.name == "Sam"
    headerless = import_st_group(definition, "\n".join(json.dumps(x) for x in lines[1:]), refs)
    assert headerless.settings.authors_note.text == "from the group" and headerless.settings.persona.name == "Sam"
    with StoryStore().create("duo", imported.settings) as story:
        story.add_nodes(imported.nodes, select=imported.current)
        _definition, chat = export_st_group(story.tree)
    written = [json.loads(line) for line in chat.split("\n")]
    assert written[0]["user_name"] == "Sam" and written[0]["chat_metadata"]["note_prompt"] == "from the chat"
    assert [m["name"] for m in written[1:]] == ["Ann", "Sam", "Bo"] and written[1]["original_avatar"] == "a.png"


@pytest.mark.parametrize("change", [{"members": ["../../secret.png"]}, {"members": ["/etc/passwd"]},
                                    {"chat_id": "../escape"}, {"members": []}, {"members": [3]}])
def test_hostile_group_files_are_refused_with_a_clear_line(st_data: Path, change: dict) -> None:
    definition = st_data / "groups" / f"{GROUP_ID}.json"
    data = json.loads(definition.read_text())
    data.update(change)
    definition.write_text(json.dumps(data))
    done = _cli("story", "import", str(definition))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "member" in done.stderr or "chat_id" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert StoryStore().list() == []


def test_a_lite_name_that_is_a_path_reaches_no_file(tmp_path: Path, shared_fixtures: Path) -> None:
    card = shared_fixtures / "cards" / "Aqua.png"
    save = {"prompt": "\nAqua: Hi.", "actions": [], "savedsettings": {"opmode": 3, "chatname": "User",
                                                                       "chatopponent": f"{card}||$||Bob"}}
    path = tmp_path / "save.json"
    path.write_text(json.dumps(save))
    done = _cli("story", "import", str(path))
    assert done.returncode == 0, done.stderr
    assert f"no card for '{card}'" in done.stdout
    assert not get_paths().characters_dir.is_dir() or not list(get_paths().characters_dir.iterdir())


def test_a_group_chat_on_its_own_imports_as_a_group_when_its_cards_are_at_hand(st_data: Path) -> None:
    """SillyTavern's "Export chat" in a group gives only the .jsonl; its members come from the
    messages' ``original_avatar``, their cards from SillyTavern's folder beside it."""
    chat = st_data / "group chats" / f"{CHAT_ID}.jsonl"
    done = _cli("story", "import", str(chat), "--name", "alone")
    assert done.returncode == 0, done.stderr
    assert "a group chat of Seraphina, Aqua, Default-chan (no group file" in done.stdout
    with StoryStore().open("alone", read_only=True) as story:
        group = story.settings.group
        assert [m.name for m in group.members] == NAMES and (group.order, group.cards) == ("natural", "join")
        assert [(a, k) for a, k, *_ in _messages(story)][:5] == [
            ("Seraphina", "greeting"), ("Aqua", "greeting"), ("Default-chan", "greeting"), ("user", "say"),
            ("Aqua", "generation")]
    shutil.rmtree(st_data / "characters")
    plain = _cli("story", "import", str(chat), "--name", "plain")
    assert plain.returncode == 0, plain.stderr
    assert "a group chat of 3 characters, read as a plain chat: the group's member card" in plain.stdout
    with StoryStore().open("plain", read_only=True) as story:
        assert story.settings.group is None
