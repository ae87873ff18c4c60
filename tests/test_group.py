"""Group chats as data: the speaker choice, the joined and swapped cards, greetings, stops, member
lorebooks, and the saved-group library."""

from __future__ import annotations

import json
import random

import pytest

from storyteller.cards import Card, load_card
from storyteller.config import Settings
from storyteller.content import find_card
from storyteller.engines.fake import ScriptedBackend
from storyteller.errors import FormatError, StoryError
from storyteller.groups import GroupLibrary
from storyteller.paths import get_paths
from storyteller.session import build_turn, open_session
from storyteller.session.group import (
    choose_speakers,
    group_character,
    group_greetings,
    group_stops,
    member_list,
    new_group,
)
from storyteller.story.model import GroupMember, GroupSettings, Node

NAMES = ["Halden Voss", "Wren Calloway", "Ink & Margin"]


def _group(**changes) -> GroupSettings:
    members = [GroupMember(card=f"{n}.json", name=n) for n in NAMES]
    return GroupSettings(name="Crew", members=members, **changes)


def _cards(**talk: float) -> dict[str, Card]:
    return {n: Card(name=n, extensions={"talkativeness": talk.get(n.split()[0].lower(), 0.5)}) for n in NAMES}


def _path(*lines: tuple[str, str]) -> list[Node]:
    nodes: list[Node] = []
    for author, text in lines:
        kind = "say" if author == "user" else "generation"
        nodes.append(Node.make(text, author=author, kind=kind, parent=nodes[-1].id if nodes else None))
    return nodes


def test_natural_order_picks_the_member_named_in_the_last_message_first() -> None:
    quiet = _cards(halden=0.0, wren=0.0, ink=0.0)
    for seed in range(20):
        group = _group(seed=seed)
        path = _path(("user", "So, Wren, and you too Halden: what now?"))
        # named members in the order they are named; nobody else is chatty
        assert choose_speakers(group, quiet, path, story_name="s") == ["Wren Calloway", "Halden Voss"]
        chosen = choose_speakers(group, _cards(), path, story_name="s")
        assert chosen[:2] == ["Wren Calloway", "Halden Voss"]


def test_natural_order_is_deterministic_under_a_seed_and_varies_between_seeds() -> None:
    path = _path(("user", "Hello."))
    picks = {tuple(choose_speakers(_group(seed=s), _cards(), path, story_name="s")) for s in range(30)}
    again = {tuple(choose_speakers(_group(seed=s), _cards(), path, story_name="s")) for s in range(30)}
    assert picks == again
    assert len(picks) > 2, "the draws differ from seed to seed"
    # without a seed, the story's name and the path's length decide
    assert choose_speakers(_group(), _cards(), path, story_name="a") == \
        choose_speakers(_group(), _cards(), path, story_name="a")


def test_natural_order_never_picks_the_muted_or_the_member_who_just_spoke() -> None:
    group = _group(seed=1)
    group.members[0].muted = True
    for seed in range(20):
        rng = random.Random(seed)
        path = _path(("user", "Halden?"), ("Wren Calloway", "Wren here. Ask Ink & Margin, or ask Wren."))
        chosen = choose_speakers(group, _cards(halden=1.0, wren=1.0, ink=1.0), path, story_name="s", rng=rng)
        assert "Halden Voss" not in chosen and "Wren Calloway" not in chosen and chosen
    group.allow_self_responses = True
    path = _path(("Wren Calloway", "Wren Calloway speaks again."))
    assert choose_speakers(group, _cards(wren=0.0, ink=0.0), path, story_name="s")[0] == "Wren Calloway"


def test_nobody_chatty_still_gets_one_random_answer() -> None:
    path = _path(("user", "Anyone?"))
    chosen = choose_speakers(_group(seed=4), _cards(halden=0.0, wren=0.0, ink=0.0), path, story_name="s")
    assert len(chosen) == 1 and chosen[0] in NAMES


def test_list_everyone_and_manual() -> None:
    path = _path(("user", "Hi."), ("Wren Calloway", "Hello."), ("user", "And?"))
    assert choose_speakers(_group(order="list"), _cards(), path, story_name="s") == ["Ink & Margin"]
    muted = _group(order="list")
    muted.members[2].muted = True
    assert choose_speakers(muted, _cards(), path, story_name="s") == ["Halden Voss"]
    assert choose_speakers(muted, _cards(), _path(("user", "Hi.")), story_name="s") == ["Halden Voss"]
    assert choose_speakers(muted.model_copy(update={"order": "everyone"}), _cards(), path,
                           story_name="s") == ["Halden Voss", "Wren Calloway"]
    assert choose_speakers(_group(order="manual"), _cards(), path, story_name="s") == []


def test_join_expands_char_per_member_and_wraps_each_field() -> None:
    cards = {n: Card(name=n, description=f"{{{{char}}}} is {n.split()[0].lower()}.", personality="calm",
                     mes_example="<START>\n{{char}}: hi") for n in NAMES}
    group = _group(join_prefix="<{{char}} <FIELDNAME>>", join_suffix="</{{char}}>")
    group.members[1].join_prefix = ""
    info = group_character(group, cards, "Wren Calloway", user="Ada")
    assert info.name == "Halden Voss, Wren Calloway and Ink & Margin" == member_list(NAMES)
    assert info.description.split("\n") == [
        "<Halden Voss Description>", "Halden Voss is halden.", "</Halden Voss>",
        "Wren Calloway is wren.", "</Wren Calloway>",
        "<Ink & Margin Description>", "Ink & Margin is ink.", "</Ink & Margin>",
    ]
    assert "Wren Calloway: hi" in info.mes_example and "Ink & Margin: hi" in info.mes_example
    assert "[Write the next reply only as Wren Calloway.]" in info.post_history_instructions
    assert "[Write" not in group_character(group, cards, "Wren Calloway", user="Ada", nudge=False).post_history_instructions
    # the same head whoever speaks (only the post-history nudge differs)
    other = group_character(group, cards, "Ink & Margin", user="Ada")
    assert (other.name, other.description, other.personality, other.scenario, other.mes_example) == \
        (info.name, info.description, info.personality, info.scenario, info.mes_example)
    group.members[2].muted = True
    assert "Ink & Margin" not in group_character(group, cards, "Wren Calloway", user="Ada").description
    assert "Ink & Margin is ink." in group_character(group, cards, "Ink & Margin", user="Ada").description, \
        "a muted member asked to speak (/as) is joined in for that reply"
    assert "Ink & Margin" in group_character(group.model_copy(update={"cards": "join_muted"}), cards,
                                             "Wren Calloway", user="Ada").description
    swap = group_character(group.model_copy(update={"cards": "swap", "scenario": "A storm."}), cards,
                           "Wren Calloway", user="Ada")
    assert swap.name == "Wren Calloway" and swap.description == "{{char}} is wren." and swap.scenario == "A storm."


def test_stops_greetings_and_new_groups() -> None:
    assert group_stops(_group(), "Wren Calloway") == ["\nHalden Voss:", "\nHalden:", "\nInk & Margin:", "\nInk:"]
    cards = [Card(name="Ann", first_mes="Hi {{user}}.", group_only_greetings=["Hello, all of you."]),
             Card(name="Ann", first_mes="Hey, I am {{char}}."), Card(name="Cy")]
    group = new_group(cards, ["a.json", "b.json", "c.json"])
    assert [m.name for m in group.members] == ["Ann", "Ann 2", "Cy"] and group.name == "Group: Ann, Ann 2, Cy"
    nodes = group_greetings(group, dict(zip(["Ann", "Ann 2", "Cy"], cards, strict=True)), "Ada")
    assert [(n.author, n.text) for n in nodes] == [("Ann", "Hello, all of you."), ("Ann 2", "Hey, I am Ann 2.")]
    assert nodes[0].parent is None and nodes[1].parent == nodes[0].id
    with pytest.raises(ValueError):
        new_group(cards, ["a.json"])


async def test_a_members_lore_only_when_speaking() -> None:
    settings = Settings()
    settings.engine.kv_state = "off"
    session = await open_session("lore", settings=settings, paths=get_paths().ensure(), backend=ScriptedBackend(),
                                 cards=["halden_voss", "wren_calloway"])
    try:
        members = [m.model_copy(update={"lore_only_when_speaking": m.name == "Wren Calloway"})
                   for m in session.group.members]
        session.update_group(members=members)
        session.story.add_node("Tell me about the lighthouse lamp and the ship.", author="user", kind="say")
        messages = session.story.messages()

        async def prompt_for(name: str) -> str:
            prompt, _lore = await build_turn(session.parts, session.story.name, session.story.settings, messages,
                                             continuing=False, speaker=name)
            return prompt.text

        wren_entry, halden_entry = "Gannet Light is a white tower", "The Magpie's Luck is a forty-year-old"
        as_halden, as_wren = await prompt_for("Halden Voss"), await prompt_for("Wren Calloway")
        assert halden_entry in as_halden and halden_entry in as_wren, "Halden's book is always in play"
        assert wren_entry in as_wren and wren_entry not in as_halden, "Wren's only on her turns"
    finally:
        await session.close()


def test_group_library_saves_loads_and_lists() -> None:
    paths = get_paths().ensure()
    library = GroupLibrary(paths)
    assert library.names() == []
    cards = [load_card(find_card(ref, paths))[0] for ref in ("halden_voss", "wren_calloway")]
    group = new_group(cards, ["halden_voss.json", "wren_calloway.json"], name="Crew: the night/shift", order="list")
    path = library.save(group)
    assert path.parent == paths.data_dir / "groups" and "/" not in path.name
    assert library.names() == ["Crew: the night/shift"]
    assert library.load("crew: THE night/shift") == group
    library.save(group.model_copy(update={"order": "everyone"}))
    assert len(list((paths.data_dir / "groups").glob("*.json"))) == 1, "the same name replaces its file"
    assert library.load("Crew: the night/shift").order == "everyone"
    with pytest.raises(StoryError, match="no saved group called 'nobody'.*Crew: the night/shift"):
        library.load("nobody")
    with pytest.raises(StoryError, match="needs a name"):
        library.save(group.model_copy(update={"name": " "}))
    bad = paths.data_dir / "groups" / "broken.json"
    bad.write_text(json.dumps({"name": "Broken", "order": "shouting"}))
    assert library.names() == ["Crew: the night/shift"], "an unreadable file is left out of the list"
    with pytest.raises(FormatError, match="not a storyteller group"):
        library.load("broken")


def test_the_app_path_creates_the_group_story_with_its_greetings() -> None:
    import argparse

    from storyteller.group_cli import group_from_args, start_group_for_app
    from storyteller.story.store import StoryStore

    paths = get_paths().ensure()
    args = argparse.Namespace(group=None, group_name="Night shift", order="list", group_cards="swap", story=None,
                              world=None, mode=None)
    cards = ["halden_voss", "wren_calloway"]
    group = group_from_args(args, paths, cards)
    name = start_group_for_app(args, paths, cards, group)
    assert name.startswith("Night shift ")
    with StoryStore(paths.stories_dir).open(name, read_only=True) as story:
        assert story.settings.group.name == "Night shift"
        assert (story.settings.group.order, story.settings.group.cards) == ("list", "swap")
        assert [n.author for n in story.current_path()] == ["Halden Voss", "Wren Calloway"]
    args.story = name  # an existing story is opened as it is
    assert start_group_for_app(args, paths, cards, group) == name


def test_play_options_change_a_saved_groups_copy_not_the_saved_group() -> None:
    import argparse

    from storyteller.group_cli import group_from_args

    paths = get_paths().ensure()
    cards = [load_card(find_card(ref, paths))[0] for ref in ("halden_voss", "wren_calloway")]
    GroupLibrary(paths).save(new_group(cards, ["halden_voss.json", "wren_calloway.json"], name="Lighthouse crew"))
    args = argparse.Namespace(group="lighthouse crew", group_name=None, order="everyone", group_cards=None)
    group = group_from_args(args, paths, [])
    assert (group.name, group.order, group.cards) == ("Lighthouse crew", "everyone", "join")
    assert GroupLibrary(paths).load("Lighthouse crew").order == "natural"
    with pytest.raises(StoryError, match="--group plays a saved group's own cards"):
        group_from_args(args, paths, ["halden_voss", "wren_calloway"])
