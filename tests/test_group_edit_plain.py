"""Editing a group as a player does: `storyteller play --plain` with /add, /remove, /talk and /group,
then `storyteller prompt` and a reopened story show what was saved; `storyteller group save` with the
join prefix/suffix and self responses, and `storyteller group delete`. The real CLI in a subprocess,
on the fake engine (its reply is always "The fog parts.")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from storyteller.paths import get_paths
from storyteller.story.store import StoryStore

PAIR = ["--card", "halden_voss", "--card", "wren_calloway"]


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storyteller.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "STORYTELLER_ENGINE__KIND": "fake"})


def play(stdin: str, *args: str) -> subprocess.CompletedProcess:
    done = _cli("play", "--plain", *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done


def answers(out: str) -> dict[str, str]:
    """What each input line of a piped script printed, by the line (the transcript shows ``>>> LINE``)."""
    found = {}
    for chunk in out.split("\n>>> ")[1:]:
        line, _, printed = chunk.partition("\n")
        found[line] = printed.strip()
    return found


def group_of(story_name: str) -> dict:
    with StoryStore(get_paths().stories_dir).open(story_name, read_only=True) as story:
        return story.settings.model_dump(mode="json")


def test_a_group_is_edited_in_the_line_mode_and_the_changes_are_saved() -> None:
    script = ("/add narrator_of_hollowmere\n"
              "/as Narrator of Hollowmere\n"
              "/remove Halden Voss\n"
              "/talk wren calloway 0.9\n"
              "/group scenario A storm is coming over the bay.\n"
              "/group cards swap\n"
              "/group prefix [{{char}}]\\n\n"
              "/group suffix [end]\n"
              "/group self on\n"
              "/group name Night crew\n"
              "/group\n")
    out = play(script, *PAIR, "--story", "crew").stdout
    said = answers(out)
    assert said["/add narrator_of_hollowmere"] == "[Narrator of Hollowmere joins the group]"
    assert said["/as Narrator of Hollowmere"] == "Narrator of Hollowmere: The fog parts."
    assert said["/remove Halden Voss"] == "[Halden Voss leaves the group; what they said stays in the story]"
    assert said["/talk wren calloway 0.9"] == "[Wren Calloway's talkativeness: 0.90]"
    assert said["/group cards swap"] == "[cards: swap]"
    assert said["/group prefix [{{char}}]\\n"] == "[join prefix: '[{{char}}]\\n']"
    assert said["/group self on"] == "[self responses: on]"
    listing = said["/group"]
    assert listing.startswith("[group 'Night crew']")
    for line in ("order: natural", "cards: swap", "scenario: 'A storm is coming over the bay.'",
                 "join prefix: '[{{char}}]\\n'", "join suffix: '[end]'", "self responses: on",
                 "members: Wren Calloway, Narrator of Hollowmere"):
        assert f"\n  {line}" in listing

    settings = group_of("crew")
    group = settings["group"]
    assert [m["name"] for m in group["members"]] == ["Wren Calloway", "Narrator of Hollowmere"]
    assert settings["cards"] == [m["card"] for m in group["members"]], "the story's cards follow the members"
    assert group["members"][0]["talkativeness"] == 0.9
    assert (group["name"], group["cards"], group["scenario"]) == ("Night crew", "swap", "A storm is coming over the bay.")
    assert (group["join_prefix"], group["join_suffix"], group["allow_self_responses"]) == ("[{{char}}]\n", "[end]", True)
    with StoryStore(get_paths().stories_dir).open("crew", read_only=True) as story:
        authors = [(n.author, n.kind) for n in story.current_path()]
    assert authors[0] == ("Halden Voss", "greeting"), "who left keeps their lines"
    assert ("Narrator of Hollowmere", "generation") in authors
    assert ("Narrator of Hollowmere", "greeting") not in authors, "a new member joins without a greeting"

    # the next prompt: the group's scenario, swap mode (one card), Halden's card and lorebook gone
    shown = _cli("prompt", "--story", "crew", "--json")
    assert shown.returncode == 0, shown.stderr
    text = json.loads(shown.stdout)["text"]
    assert "A storm is coming over the bay." in text
    assert "is deciding what to make of them" not in text, "the group's scenario replaces Wren's"
    assert "quartermaster of the Magpie's Luck" not in text and "forty-year-old salvage tug" not in text
    assert ("a fog-bound town built on stilts" in text) != ("is the keeper of Gannet Light" in text), \
        "swap mode: only the speaker's card"

    # reopened, the story shows the same group; /talk NAME card goes back to the card's value
    again = answers(play("/members\n/talk Wren Calloway card\n/group\n", "--story", "crew").stdout)
    assert again["/members"].splitlines()[1:] == ["  1. Wren Calloway, talkativeness 0.90 (set in the group)",
                                                  "  2. Narrator of Hollowmere, talkativeness 0.50"]
    assert again["/talk Wren Calloway card"] == "[Wren Calloway's talkativeness is the card's again: 0.60]"
    assert "scenario: 'A storm is coming over the bay.'" in again["/group"]
    assert group_of("crew")["group"]["members"][0]["talkativeness"] is None


def test_clearing_group_texts_and_the_members_listing() -> None:
    play("/group scenario Fog.\n/group prefix <{{char}}>\n", *PAIR, "--story", "clear")
    assert (group_of("clear")["group"]["scenario"], group_of("clear")["group"]["join_prefix"]) == ("Fog.", "<{{char}}>")
    said = answers(play("/group scenario\n/group prefix\n/members\n", "--story", "clear").stdout)
    assert said["/group scenario"] == "[group scenario cleared: each member's own scenario is used]"
    assert said["/group prefix"] == "[join prefix cleared]"
    group = group_of("clear")["group"]
    assert (group["scenario"], group["join_prefix"]) == ("", "")

    # a member's own prefix/suffix and lore setting (set through the session) show in /members
    import asyncio

    from storyteller.config import Settings
    from storyteller.engines.fake import ScriptedBackend
    from storyteller.session import open_session

    async def set_own() -> None:
        session = await open_session("clear", settings=Settings(engine={"kind": "fake"}), paths=get_paths(),
                                     backend=ScriptedBackend())
        try:
            session.set_member("Wren Calloway", join_prefix="<w>", lore_only_when_speaking=True)
        finally:
            await session.close()

    asyncio.run(set_own())
    listing = answers(play("/members\n", "--story", "clear").stdout)["/members"]
    assert "  2. Wren Calloway, talkativeness 0.60, own prefix '<w>', lorebook only when speaking" in listing
    assert "  1. Halden Voss, talkativeness 0.50\n" in listing + "\n"


def test_bad_group_edits_get_one_line_and_change_nothing() -> None:
    play("", *PAIR, "--story", "steady")
    before = group_of("steady")
    bad = ["/add nobody_at_all", "/remove Bob", "/remove", "/talk", "/talk Bob 0.5", "/talk Wren Calloway 1.5",
           "/talk Wren Calloway lots", "/talk Wren Calloway nan", "/talk Wren Calloway", "/group cards mixed",
           "/group self maybe", "/group name", "/group bogus 1", "/group order shouting", "/order shouting"]
    said = answers(play("\n".join(bad) + "\n", "--story", "steady").stdout)
    assert set(said) == set(bad)
    for line, printed in said.items():
        assert "\n" not in printed and printed.startswith("[") and printed.endswith("]"), (line, printed)
    assert "no card called 'nobody_at_all'" in said["/add nobody_at_all"]
    assert said["/remove Bob"].startswith("[no member called 'Bob'")
    assert "the members are Halden Voss, Wren Calloway" in said["/talk Bob 0.5"]
    assert said["/talk Wren Calloway 1.5"].startswith("[talkativeness is a number from 0 to 1, not '1.5'")
    assert "not 'nan'" in said["/talk Wren Calloway nan"]
    assert said["/group cards mixed"] == "[the cards mode is join; use /group cards join|swap|join_muted]"
    assert said["/group self maybe"].startswith("[use /group self on|off")
    assert said["/group bogus 1"].startswith("[no group setting 'bogus'")
    assert said["/order shouting"] == "[the order is natural; use /order natural|list|manual|everyone]"
    assert group_of("steady") == before, "nothing was changed"

    # the last member stays
    said = answers(play("/remove Halden Voss\n/remove Wren Calloway\n", "--story", "steady").stdout)
    assert said["/remove Wren Calloway"].startswith("[Wren Calloway is the group's only member")
    assert [m["name"] for m in group_of("steady")["group"]["members"]] == ["Wren Calloway"]


def test_group_edits_in_a_one_card_story_say_it_is_not_a_group() -> None:
    play("", "--card", "halden_voss", "--story", "solo")
    before = group_of("solo")
    commands = ["/add wren_calloway", "/remove Halden Voss", "/talk Halden Voss 1", "/group", "/group cards swap"]
    said = answers(play("\n".join(commands) + "\n", "--story", "solo").stdout)
    for command in commands:
        assert said[command] == "[this story is not a group chat; start one with: storyteller play --card A --card B]"
    after = group_of("solo")
    assert after == before and after["group"] is None


def test_group_save_with_join_texts_show_play_and_delete() -> None:
    saved = _cli("group", "save", "Night crew", *PAIR, "--join-prefix", "<{{char}}>", "--join-suffix",
                 "</{{char}}>", "--allow-self-responses")
    assert saved.returncode == 0, saved.stderr
    shown = _cli("group", "show", "night crew")
    assert shown.returncode == 0, shown.stderr
    group = json.loads(shown.stdout)
    assert (group["join_prefix"], group["join_suffix"], group["allow_self_responses"]) == \
        ("<{{char}}>", "</{{char}}>", True)

    # a story started from it has the join texts in its prompt, and keeps its copy after the delete
    play("", "--group", "Night crew", "--story", "from saved")
    # editing the story's group changes the story's copy only
    said = answers(play("/talk Ink & Margin 0.2\n/add ink_and_margin\n/talk Ink & Margin 0.2\n/group name Renamed\n",
                        "--story", "from saved").stdout)
    assert said["/talk Ink & Margin 0.2"] == "[Ink & Margin's talkativeness: 0.20]", "a name with spaces, unquoted"
    assert json.loads(_cli("group", "show", "Night crew").stdout) == group
    assert group_of("from saved")["group"]["name"] == "Renamed"
    deleted = _cli("group", "delete", "NIGHT CREW")
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted the saved group 'Night crew'" in deleted.stdout
    assert not list((get_paths().data_dir / "groups").glob("*.json"))
    assert "no saved groups" in _cli("group", "list").stdout
    assert group_of("from saved")["group"]["join_prefix"] == "<{{char}}>"
    prompt = _cli("prompt", "--story", "from saved", "--json")
    text = json.loads(prompt.stdout)["text"]
    assert "<Halden Voss>\nHalden Voss is the quartermaster" in text and "</Wren Calloway>" in text

    again = _cli("group", "delete", "Night crew")
    assert again.returncode == 1 and "no saved group called 'Night crew' (saved: none yet)" in again.stderr
    unknown = _cli("group", "delete", "nobody")
    assert unknown.returncode != 0 and "storyteller: no saved group called 'nobody'" in unknown.stderr


def test_delete_leaves_other_groups_and_refuses_what_is_not_a_group_file(tmp_path) -> None:
    assert _cli("group", "save", "Keep me", *PAIR).returncode == 0
    folder = get_paths().data_dir / "groups"
    elsewhere = tmp_path / "precious.json"
    elsewhere.write_text(json.dumps({"name": "Linked", "members": [{"card": "x.json", "name": "X"}]}))
    (folder / "linked.json").symlink_to(elsewhere)
    (folder / "broken.json").write_text("{not json")
    done = _cli("group", "delete", "Linked")
    assert done.returncode == 1 and "no saved group called 'Linked'" in done.stderr
    assert elsewhere.exists() and (folder / "linked.json").is_symlink()
    assert _cli("group", "delete", "broken").returncode == 0, "an unreadable group file goes by its file name"
    assert not (folder / "broken.json").exists()
    assert _cli("group", "list").stdout.startswith("Keep me: Halden Voss, Wren Calloway")


def test_play_takes_the_join_texts_for_a_new_group() -> None:
    play("", *PAIR, "--story", "joined", "--join-prefix", "## {{char}}: <FIELDNAME>", "--join-suffix", "##")
    group = group_of("joined")["group"]
    assert (group["join_prefix"], group["join_suffix"]) == ("## {{char}}: <FIELDNAME>", "##")
    text = json.loads(_cli("prompt", "--story", "joined", "--json").stdout)["text"]
    assert "## Halden Voss: Description\n" in text and "## Wren Calloway: Description\n" in text
    done = _cli("play", "--plain", "--card", "halden_voss", "--join-prefix", "x")
    assert done.returncode == 1 and "--join-prefix needs a group" in done.stderr
