"""Kobold Lite saves against Kobold Lite itself (koboldcpp 1.76's klite.embd).

- Our exports, in every mode, loaded by Lite's own loader (``kai_json_load``) in headless
  Chromium: Lite ends up with the chunks, memory, author's note and its settings, world info,
  mode, player name and character name that we wrote.
- Lite's own saves (made by its ``generate_savefile()`` in the browser) imported here and
  exported back: Lite loads both to the same state, and the files agree key for key except the
  one key we add.
- Without Chromium: the same facts checked statically against Lite's source.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from storyteller.lite_export import lite_context
from storyteller.paths import get_paths
from storyteller.story import StoryStore
from storyteller.story.convert import export_story
from storyteller.story.kobold import OUR_KEY, anote_strength, import_kobold
from storyteller.story.model import StorySettings
from tests.clients.klite import lite_function, lite_object_keys, load_in_lite, needs_klite, run_in_lite

ADDED_KEYS = {OUR_KEY}
"""Keys our export adds that Lite does not write (Lite ignores them and drops them on save)."""

# (mode, card, worlds, nodes as (author, kind, text))
STORIES = {
    "chat": ("wren_calloway.json", ["saltglass-harbour"], [
        ("Wren Calloway", "greeting", "The harbour bell rings.\r\nYou made it."),
        ("user", "say", "Is the ferry late?"),
        ("Wren Calloway", "generation", "Late as the tide, *as always*."),
    ]),
    "adventure": ("narrator_of_hollowmere.json", ["hollowmere"], [
        ("Narrator of Hollowmere", "greeting", "Fog lies on the mere."),
        ("user", "do", "light the lantern"),
        ("Narrator of Hollowmere", "generation", "The flame catches."),
    ]),
    "story": ("ink_and_margin.json", [], [
        ("user", "story", "The archive opened at dusk."),
        ("narrator", "generation", " Nobody came for an hour."),
    ]),
    "instruct": ("halden_voss.json", [], [
        ("user", "say", "Tell me about the mill."),
        ("Halden Voss", "generation", "It grinds at night."),
    ]),
}


def _make(mode: str) -> str:
    card, worlds, nodes = STORIES[mode]
    with StoryStore().create(f"lite-{mode}", StorySettings(cards=[card], worlds=worlds, mode=mode)) as story:
        story.set_settings(memory="The town remembers the flood.", persona={"name": "Sam", "description": ""},
                           authors_note={"text": "Keep it tense.", "depth": 2})
        parent = None
        for author, kind, text in nodes:
            parent = story.add_node(text, author=author, kind=kind, parent=parent).id
    return f"lite-{mode}"


def _export(name: str) -> str:
    with StoryStore().open(name, read_only=True) as story:
        lite, _notes = lite_context(story.settings, get_paths())
        return export_story(story, None, "kobold", lite=lite)


def _expected_state(save: dict[str, Any]) -> dict[str, Any]:
    """What Lite's loader must end up with for one of our saves, from Lite's source rules."""
    return {
        "gametext": ([save["prompt"]] if save["prompt"] else []) + save["actions"],
        "memory": save["memory"],
        "anote": save["authorsnote"],
        "anotetemplate": save["anotetemplate"],
        # kai_json_load skips a falsy anotestr: Lite cannot load "Immediate" (0) and keeps 320.
        "anotestr": save["anotestr"] or 320,
        "wi": save["worldinfo"],
        "opmode": save["savedsettings"]["opmode"],
        "chatname": save["savedsettings"]["chatname"],
        "chatopponent": save["savedsettings"]["chatopponent"],
        "wisearchdepth": save["wisearchdepth"],
        "wiinsertlocation": save["wiinsertlocation"],
        "extrastopseq": save.get("extrastopseq", ""),
    }


@pytest.mark.parametrize("mode", sorted(STORIES))
def test_export_reads_back_the_same_here(mode: str) -> None:
    name = _make(mode)
    save = json.loads(_export(name))
    back = import_kobold(json.dumps(save))
    with StoryStore().open(name, read_only=True) as story:
        st = story.settings
        assert back.settings.mode == mode
        assert back.settings.persona.name == "Sam"
        assert back.settings.memory == st.memory  # the card text in Lite's memory is taken off again
        assert back.settings.authors_note.text == st.authors_note.text
        assert back.settings.authors_note.depth == st.authors_note.depth
        path = [(n.text, n.author, n.kind) for n in story.current_path()]
    assert [(n.text, n.author, n.kind) for n in back.nodes] == path
    card = STORIES[mode][0]
    assert save["savedsettings"]["chatopponent"] != "KoboldAI"
    assert save["memory"].endswith("***\nThe town remembers the flood.")
    assert save["anotestr"] == anote_strength(2) == 160
    if STORIES[mode][1] or card in ("wren_calloway.json", "halden_voss.json"):
        assert save["worldinfo"], "world info from the story's worlds and the card's book"


@pytest.mark.parametrize("mode", sorted(STORIES))
def test_lite_loads_our_export(mode: str) -> None:
    text = _export(_make(mode))
    save = json.loads(text)
    [loaded] = load_in_lite([text])
    assert loaded["state"] == _expected_state(save)
    assert loaded["state"]["chatopponent"] == save["savedsettings"]["chatopponent"] != "KoboldAI"
    # Lite's own save of what it loaded carries the same story, and drops only our key.
    resaved = loaded["saved"]
    for key in ("prompt", "actions", "memory", "authorsnote", "anotetemplate", "worldinfo"):
        assert resaved[key] == save[key], key
    assert not ADDED_KEYS & set(resaved)


def test_cli_export_is_what_lite_loads(tmp_path: Path) -> None:
    name = _make("chat")
    out = tmp_path / "wren.json"
    done = subprocess.run([sys.executable, "-m", "storyteller.cli", "story", "export", name, str(out)],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    save = json.loads(out.read_text(encoding="utf-8"))
    assert save["savedsettings"]["chatopponent"] == "Wren Calloway"
    [loaded] = load_in_lite([out.read_text(encoding="utf-8")])
    assert loaded["state"] == _expected_state(save)


# Lite's own saves: made by Lite from a state set the way its UI would.
MAKE_SAVES = """function (stories) {
  return stories.map(function (s) {
    restart_new_game(false);
    localsettings.opmode = s.opmode; localsettings.chatname = s.chatname;
    localsettings.chatopponent = s.chatopponent;
    gametext_arr = s.gametext.slice();
    current_memory = s.memory; current_anote = s.anote; current_anotetemplate = s.anotetemplate;
    anote_strength = s.anotestr; current_wi = s.wi; wi_insertlocation = s.wiinsertlocation;
    return JSON.stringify(generate_savefile(true, true, false));
  });
}"""

LITE_WI = [{"key": "mill, wheel", "keysecondary": "", "keyanti": "", "content": "The mill never stops.",
            "comment": "mill", "folder": None, "selective": False, "constant": False, "probability": 100},
           {"key": "river", "keysecondary": "flood", "keyanti": "", "content": "The river rose in spring.",
            "comment": "", "folder": None, "selective": True, "constant": False, "probability": 50},
           {"key": "", "keysecondary": "", "keyanti": "", "content": "It is always raining.",
            "comment": "weather", "folder": None, "selective": False, "constant": True, "probability": 100}]
LITE_STATES = [
    {"opmode": 3, "chatname": "Ann", "chatopponent": "Miller", "memory": "[Miller is gruff.]\n***",
     "anote": "Short replies.", "anotetemplate": "[Author's note: <|>]", "anotestr": 160,
     "wi": LITE_WI, "wiinsertlocation": 0,
     "gametext": ["\nMiller: What do you want?", "\nAnn: Flour.", "\nMiller: Fine.\r\nTake it."]},
    {"opmode": 2, "chatname": "User", "chatopponent": "KoboldAI", "memory": "A dark forest.",
     "anote": "", "anotetemplate": "[Author's note: <|>]", "anotestr": 320, "wi": [],
     "wiinsertlocation": 1, "gametext": ["You stand at a gate.", "\n\n> open the gate\n\n", "It creaks."]},
    {"opmode": 1, "chatname": "User", "chatopponent": "KoboldAI", "memory": "", "anote": "Gothic.",
     "anotetemplate": "[Style: <|>]", "anotestr": 480, "wi": LITE_WI[:1], "wiinsertlocation": 0,
     "gametext": ["It was a dark night.", " The wind howled."]},
    {"opmode": 4, "chatname": "User", "chatopponent": "Bot", "memory": "", "anote": "",
     "anotetemplate": "[Author's note: <|>]", "anotestr": 320, "wi": [], "wiinsertlocation": 0,
     "gametext": ["{{[INPUT]}}Tell a joke{{[OUTPUT]}}", "Why did the owl..."]},
]


def test_lite_own_saves_import_and_export_back_unchanged() -> None:
    saves = run_in_lite(MAKE_SAVES, LITE_STATES)
    ours = []
    for index, text in enumerate(saves):
        imported = import_kobold(text)
        with StoryStore().create(f"from-lite-{index}", imported.settings) as story:
            story.add_nodes(imported.nodes, select=imported.current)
            ours.append(export_story(story, None, "kobold"))
    for original, exported in zip(saves, ours, strict=True):
        a, b = json.loads(original), json.loads(exported)
        added = set(b) - set(a)
        assert added <= ADDED_KEYS, added
        assert {k: b[k] for k in a} == a  # every key Lite wrote, value and type, unchanged
    loaded = load_in_lite(saves + ours)
    half = len(saves)
    for before, after in zip(loaded[:half], loaded[half:], strict=True):
        assert after["state"] == before["state"]


# -- static checks against Lite's source (no browser needed) ---------------------------------

def test_export_fills_what_lite_loader_reads() -> None:
    needs_klite()
    read = set(re.findall(r"storyobj\.(\w+)", lite_function("kai_json_load")))
    v1_fields = {"prompt", "actions", "anotetemplate", "authorsnote", "memory", "worldinfo", "anotestr",
                 "wisearchdepth", "wiinsertlocation", "savedsettings"}
    assert v1_fields <= read, "kai_json_load no longer reads these"
    for mode in STORIES:
        save = json.loads(_export(_make(mode)))
        assert v1_fields <= set(save), mode
        assert "file_version" not in save  # the old-UI branch, the one Lite's own saves take
        assert set(save["savedsettings"]) <= lite_object_keys("var localsettings = {")
        entry_keys = lite_object_keys("var ne = {")
        assert all(set(entry) == entry_keys for entry in save["worldinfo"]), "Lite's world-info entry shape"
    # import_props_into_object copies every key of savedsettings into Lite's settings.
    assert re.search(r"for \(var k in objToImport\)\s*\{\s*existingObj\[k\] = objToImport\[k\];",
                     lite_function("import_props_into_object"))
    # and a chat-mode chunk is "\n<name>: <text>", the names being localsettings.chatname/chatopponent
    assert "chatopponent" in lite_object_keys("var localsettings = {")
