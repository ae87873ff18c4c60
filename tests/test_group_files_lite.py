"""A group story as a Kobold Lite multi-character chat, and back.

Lite's chat mode takes several AI names in ``chatopponent``, joined by ``||$||``; it picks who
answers among them and stops at every name. Our export writes the members there and each line as
``\\nName: text``; a Lite save with several names imports as a group. Where Chromium is installed
Lite's own loader (koboldcpp 1.76's ``klite.embd``) reads the export, and its re-save comes back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller.cards import Card, save_card
from storyteller.paths import get_paths
from storyteller.story import StoryStore
from storyteller.story.convert import export_story
from storyteller.story.kobold import OUR_KEY, import_kobold
from tests.clients.klite import run_in_lite

FIXTURE = Path(__file__).parent / "fixtures" / "st_group"
AVATARS = ["default_Seraphina.png", "Aqua.png", "Default-chan.png"]
NAMES = ["Seraphina", "Aqua", "Default-chan"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storyteller.cli", *args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))


@pytest.fixture
def trio(shared_fixtures: Path, tmp_path: Path) -> str:
    """The SillyTavern fixture group imported as the story "Forest Trio"."""
    root = tmp_path / "default-user"
    shutil.copytree(FIXTURE, root)
    (root / "characters").mkdir()
    for avatar in AVATARS:
        shutil.copy(shared_fixtures / "cards" / avatar, root / "characters" / avatar)
    done = _cli("story", "import", str(root / "groups" / "1718027531870.json"))
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def _path(name: str) -> list[tuple[str, str, str]]:
    with StoryStore().open(name, read_only=True) as story:
        return [(n.author, n.kind, n.text) for n in story.current_path()]


def test_group_exports_as_lite_multi_character_chat_and_imports_back(trio: str, tmp_path: Path) -> None:
    out = tmp_path / "trio.json"
    done = _cli("story", "export", trio, str(out), "--format", "kobold")
    assert done.returncode == 0, done.stderr
    save = json.loads(out.read_text(encoding="utf-8"))
    assert save["savedsettings"]["opmode"] == 3
    assert save["savedsettings"]["chatopponent"] == "Seraphina||$||Aqua||$||Default-chan"
    chunks = [save["prompt"], *save["actions"]]
    assert [c.split(":", 1)[0] for c in chunks] == [f"\n{n}" for n in [*NAMES, "User", "Aqua", "Seraphina", "User",
                                                                        "Default-chan"]]
    assert chunks[4] == "\nAqua: *Aqua puffs out her chest.* A scraped knee is nothing for the goddess of water! Heal!"
    assert save["actions_metadata"]["3"]["Alternative Text"][0].startswith("\nAqua: Heal? Of course I can!")
    # every member's card is in memory, each with {{char}} written out as that member
    assert "{{char}}" not in save["memory"].replace("{{user}}", "")
    assert save["memory"].count("\n***") == 3

    back = _cli("story", "import", str(out), "--name", "from-lite")
    assert back.returncode == 0, back.stderr
    assert _path("from-lite") == _path(trio)
    with StoryStore().open("from-lite", read_only=True) as story, StoryStore().open(trio, read_only=True) as original:
        assert story.settings.group.model_dump(exclude={"imported"}) == original.settings.group.model_dump(
            exclude={"imported"})
        assert story.settings.cards == original.settings.cards


LITE_GROUP_SAVE = {
    "gamestarted": True,
    "prompt": "\nBob: So, did anyone want to order a pizza?",
    "memory": "[A class reunion.]",
    "authorsnote": "",
    "actions": ["\nUser: Count me in.", "\nAlice: Pineapple, Bob. Don't argue.", "\nMike: I'm starving."],
    "actions_metadata": {"1": {"Selected Text": "\nAlice: Pineapple, Bob. Don't argue.",
                               "Alternative Text": ["\nAlice: Anything but anchovies."]}},
    "worldinfo": [],
    "savedsettings": {"opmode": 3, "chatname": "User", "chatopponent": "Bob||$||Alice||$||Mike"},
}


def test_a_lite_multi_character_save_becomes_a_group(tmp_path: Path) -> None:
    imported = import_kobold(json.dumps(LITE_GROUP_SAVE))
    group = imported.settings.group
    assert group is not None and [m.name for m in group.members] == ["Bob", "Alice", "Mike"]
    assert imported.settings.cards == ["Bob", "Alice", "Mike"] and group.order == "natural"
    path_nodes = {n.id: n for n in imported.nodes}
    chosen = []
    node = path_nodes[imported.current]
    while node is not None:
        chosen.append((node.author, node.kind, node.text))
        node = path_nodes.get(node.parent)
    assert chosen[::-1] == [("Bob", "greeting", "So, did anyone want to order a pizza?"), ("user", "say", "Count me in."),
                            ("Alice", "generation", "Pineapple, Bob. Don't argue."), ("Mike", "generation", "I'm starving.")]
    assert any(n.text == "Anything but anchovies." and n.author == "Alice" for n in imported.nodes)

    # through the CLI: members without a card in the library are named, with what to do
    save = tmp_path / "reunion.json"
    save.write_text(json.dumps(LITE_GROUP_SAVE), encoding="utf-8")
    done = _cli("story", "import", str(save))
    assert done.returncode == 0, done.stderr
    assert "no card for 'Bob': import it (storyteller card import FILE)" in done.stdout
    # a member whose card is in the library is linked to it
    save_card(Card(name="Alice", description="{{char}} ordered the pizza last time."),
              get_paths().characters_dir / "alice.json")
    linked = _cli("story", "import", str(save), "--name", "linked")
    assert linked.returncode == 0, linked.stderr
    assert "member Alice: card alice.json" in linked.stdout and "no card for 'Mike'" in linked.stdout
    with StoryStore().open("linked", read_only=True) as story:
        assert story.settings.cards == ["Bob", "alice.json", "Mike"]
        assert story.settings.group.member("Alice").card == "alice.json"


def test_lite_loads_the_group_export_and_its_resave_comes_back(trio: str) -> None:
    with StoryStore().open(trio, read_only=True) as story:
        from storyteller.lite_export import lite_context

        lite, notes = lite_context(story.settings, get_paths())
        text = export_story(story, None, "kobold", lite=lite)
    assert notes == []
    task = """function (text) {
      storytellerLoad(text);
      return {state: storytellerState(), stops: get_stop_sequences(), saved: generate_savefile(true, true, false)};
    }"""
    result = run_in_lite(task, text)
    save = json.loads(text)
    state = result["state"]
    assert state["chatopponent"] == "Seraphina||$||Aqua||$||Default-chan"
    assert state["gametext"] == [save["prompt"], *save["actions"]]
    assert state["memory"] == save["memory"]
    for name in NAMES:  # Lite stops at every member's name, so one never writes another's line
        assert f"{name}:" in result["stops"]
    resaved = result["saved"]
    assert OUR_KEY not in resaved
    again = import_kobold(json.dumps(resaved))
    assert [m.name for m in again.settings.group.members] == NAMES
    by_id = {n.id: n for n in again.nodes}
    path, node = [], by_id[again.current]
    while node is not None:
        path.append((node.author, node.text))
        node = by_id.get(node.parent)
    assert path[::-1] == [(a, t) for a, _k, t in _path(trio)]


def test_a_muted_member_is_in_lites_list_and_stays_muted_on_the_way_back() -> None:
    from storyteller.story.model import GroupMember, GroupSettings, StorySettings

    group = GroupSettings(name="Duo", members=[GroupMember(card="a.json", name="Ann"),
                                               GroupMember(card="b.json", name="Bo", muted=True)], order="list")
    with StoryStore().create("duo", StorySettings(cards=["a.json", "b.json"], group=group)) as story:
        first = story.add_node("Hi.", author="Ann", kind="greeting", parent=None)
        story.add_node("Hello.", author="user", kind="say", parent=first.id)
        text = export_story(story, None, "kobold")
    save = json.loads(text)
    assert save["savedsettings"]["chatopponent"] == "Ann||$||Bo"
    back = import_kobold(text).settings.group
    assert back == group
