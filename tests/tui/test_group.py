"""Group chats in the app, as a player plays them: a three-member group made in the library, a turn,
the speaker picker (reply now, mute), swipe / retry / continue / undo / edit / branch on a group
reply, the inspector, and the members' names and colours in the transcript. Scripted engine, and one
turn on the real SmolLM2 (marked slow)."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input, OptionList, Select, SelectionList, TextArea

from storyteller.engines.fake import ScriptedBackend
from storyteller.paths import get_paths
from storyteller.tui.screens.group import NewGroupDialog, SpeakerPicker, group_status
from storyteller.tui.screens.library import LibraryScreen
from storyteller.tui.screens.story import StoryScreen
from storyteller.tui.widgets.transcript import MEMBER_COLOURS, member_colours
from tests.tui.conftest import make_app, make_settings, settle, wait_story

NAMES = ["Halden Voss", "Wren Calloway", "Ink & Margin"]


async def _make_group(pilot, *, order: str = "natural", mode: str = "join") -> StoryScreen:
    """From the open story: F6, ctrl+g, tick the three bundled characters, name the group, start."""
    app = pilot.app
    await pilot.press("f6")
    await settle(pilot)
    assert isinstance(app.screen, LibraryScreen)
    await pilot.press("ctrl+g")
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, NewGroupDialog)
    ticks = dialog.query_one("#group-cards", SelectionList)
    labels = [str(ticks.get_option_at_index(i).prompt) for i in range(ticks.option_count)]
    # the character highlighted in the library (the first, Halden Voss) comes ticked
    assert [labels[i] for i in range(len(labels)) if ticks.get_option_at_index(i).value in ticks.selected] \
        == [labels[0]] and labels[0].startswith(NAMES[0])
    for name in NAMES[1:]:  # tick in this order: the members' list order
        ticks.highlighted = next(i for i, label in enumerate(labels) if label.startswith(name + "  ("))
        await pilot.press("space")
    await pilot.pause()
    story_name = dialog.query_one("#group-story", Input)
    story_name.value = ""
    story_name.focus()
    await pilot.press(*"the-inn")
    dialog.query_one("#group-name", Input).focus()
    await pilot.press(*"The [b]Inn[/b] crew")  # markup in a name stays text
    dialog.query_one("#group-scenario", Input).value = "A storm keeps everyone at the inn tonight."
    dialog.query_one("#group-order", Select).value = order
    dialog.query_one("#group-mode", Select).value = mode
    await pilot.press("ctrl+s")
    return await wait_story(pilot)


def _authors(screen: StoryScreen) -> list[str]:
    return [v.author for v in screen.transcript.views]


async def test_a_three_member_group_made_in_the_library_plays_with_names_colours_and_the_picker() -> None:
    app = make_app(["Aye, the ledger is short.", "Ink blots the page.", "Halden grunts.", "A fourth thought.",
                    "A fifth thought.", " And more.", "Sixth."])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_story(pilot)
        screen = await _make_group(pilot)
        session = screen.session
        assert session.story.name == "the-inn"
        group = session.group
        assert group is not None and session.members == NAMES and group.name == "The [b]Inn[/b] crew"
        assert "The [b]Inn[/b] crew" in str(screen.query_one("#story-title").render())
        # every member greets, under its own name, each in its own colour
        assert _authors(screen) == NAMES
        colours = [v.colour for v in screen.transcript.views]
        assert len(set(colours)) == 3 and all(c in MEMBER_COLOURS for c in colours)
        assert colours == [member_colours(NAMES)[n.casefold()] for n in NAMES]
        assert "natural order" in screen.status.line

        # natural order: the member the player names answers first
        await pilot.click("#prompt-input")
        await pilot.press(*"Wren, what do you make of the ledger?", "enter")
        await settle(pilot)
        replies = [v for v in screen.transcript.views if v.message.head.kind == "generation"]
        assert replies and replies[0].author == "Wren Calloway"
        assert all(v.author in NAMES and v.colour == member_colours(NAMES)[v.author.casefold()] for v in replies)
        assert all(v.message.head.author == v.author for v in replies)
        player = screen.transcript.views[3]
        assert player.player and player.colour is None

        # the picker: Ink & Margin replies now
        await pilot.press("ctrl+g")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, SpeakerPicker)
        members = picker.query_one("#members", OptionList)
        assert [str(members.get_option_at_index(i).prompt) for i in range(3)] == NAMES
        members.highlighted = 2
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        last = screen.transcript.views[-1]
        assert last.author == "Ink & Margin" and last.message.head.author == "Ink & Margin"

        # mute Halden Voss in the picker: saved with the story, shown in the picker and the status bar
        await pilot.press("ctrl+g")
        await pilot.pause()
        picker = app.screen
        picker.query_one("#members", OptionList).highlighted = 0
        await pilot.press("m")
        await pilot.pause()
        assert "(muted)" in str(picker.query_one("#members", OptionList).get_option_at_index(0).prompt)
        await pilot.press("escape")
        await pilot.pause()
        assert session.group.member("Halden Voss").muted
        assert "muted: Halden Voss" in screen.status.line

        # swipe past the last alternative: a new reply by the same member
        await pilot.press("alt+right")
        await settle(pilot)
        last = screen.transcript.views[-1]
        assert last.author == "Ink & Margin" and last.counter == "2/2"
        await pilot.press("alt+left")
        await settle(pilot)
        assert screen.transcript.views[-1].counter == "1/2"
        assert screen.transcript.views[-1].author == "Ink & Margin"
        # retry keeps the speaker too; continue goes on in the same member's voice
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert screen.transcript.views[-1].author == "Ink & Margin"
        assert screen.transcript.views[-1].counter == "3/3"
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert screen.transcript.views[-1].author == "Ink & Margin"
        assert len(screen.transcript.views[-1].message.nodes) == 2

        # edit a group reply: the author stays
        await pilot.press("f2")
        await pilot.pause()
        app.screen.query_one("TextArea").text = "Ink & Margin, edited [OOC: as written]."
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert screen.transcript.views[-1].text == "Ink & Margin, edited [OOC: as written]."
        assert screen.transcript.views[-1].author == "Ink & Margin"

        # undo steps back over the group reply; redo brings it back
        before = _authors(screen)
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert _authors(screen) == before[:-1]
        await pilot.press("ctrl+y")
        await settle(pilot)
        assert _authors(screen) == before

        # the inspector shows the group turn's prompt, which names the speaker after the history
        await pilot.press("f3")
        await pilot.pause()
        assert type(app.screen).__name__ == "PromptInspector"
        prompt = session.last_prompt.text
        assert "Ink & Margin" in prompt
        # join mode: the unmuted members' cards (Halden Voss is muted now, so his is left out)
        assert "keeper of Gannet Light" in prompt and "quartermaster of the Magpie's Luck" not in prompt
        assert session.group.scenario == "A storm keeps everyone at the inn tonight." and session.group.scenario in prompt
        await pilot.press("escape")
        await pilot.pause()

        # a branch is a group story too
        await pilot.press("alt+b")
        await pilot.pause()
        await pilot.press("enter")
        screen = await wait_story(pilot)
        await settle(pilot)
        assert screen.session.story.name == "the-inn-branch"
        assert screen.session.members == NAMES and screen.session.group.member("Halden Voss").muted
        assert _authors(screen) == before
        await pilot.press("ctrl+q")


async def test_manual_order_nobody_answers_until_the_picker_chooses() -> None:
    app = make_app(["Wren speaks.", "Ink speaks."])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_story(pilot)
        screen = await _make_group(pilot, order="manual", mode="swap")
        assert screen.session.group.order == "manual" and screen.session.group.cards == "swap"
        assert "manual: ctrl+g picks" in screen.status.line
        await pilot.click("#prompt-input")
        await pilot.press(*"Anyone there?", "enter")
        await settle(pilot)
        assert screen.transcript.views[-1].player  # nobody answered
        await pilot.press("ctrl+g")
        await pilot.pause()
        app.screen.query_one("#members", OptionList).highlighted = 1
        await pilot.press("o")  # the order cycles: manual -> natural, saved at once
        await pilot.pause()
        assert screen.session.group.order == "natural"
        await pilot.press("enter")
        await settle(pilot)
        assert screen.transcript.views[-1].author == "Wren Calloway"
        # swap mode: the prompt holds only the speaker's card
        prompt = screen.session.last_prompt.text
        assert "quartermaster of the Magpie's Luck" not in prompt  # Halden Voss's description
        assert prompt.rstrip().endswith("Wren Calloway:")
        # F7 opens the card of the member who spoke last
        await pilot.press("f7")
        await settle(pilot)
        character = app.screen
        assert type(character).__name__ == "CharacterScreen" and character.path.stem == "wren_calloway"
        # saving the bundled card makes a copy in the characters folder (the same library name): the
        # group reads its members' cards again, and the next reply uses the copy
        character.query_one("#f-description", TextArea).text = "{{char}} keeps a lamp of [blue] glass."
        await pilot.press("ctrl+s")
        await settle(pilot)
        session = screen.session
        assert character.path.parent == get_paths().characters_dir
        assert session.story.settings.cards[1] == session.group.member("Wren Calloway").card
        assert session.parts.members["Wren Calloway"].description.endswith("keeps a lamp of [blue] glass.")
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()
        app.screen.query_one("#members", OptionList).highlighted = 1
        await pilot.press("enter")
        await settle(pilot)
        assert "Wren Calloway keeps a lamp of [blue] glass." in session.last_prompt.text
        await pilot.press("ctrl+q")


async def test_the_speaker_key_is_only_offered_in_a_group() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await wait_story(pilot)
        assert screen.session.group is None
        assert screen.check_action("speakers", ()) is False
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.screen is screen
        assert "speaking" not in screen.status.line
        screen.action_speakers()  # as the command palette would
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("ctrl+q")


def test_member_colours_are_stable_per_name_and_distinct_in_a_group() -> None:
    one = member_colours(["Alice", "Bob", "Carol"])
    two = member_colours(["Carol", "Dora", "Alice"])
    assert len(set(one.values())) == 3
    assert one["alice"] in MEMBER_COLOURS
    # a name keeps its colour from group to group (unless an earlier member of the group took it)
    assert one["alice"] == member_colours(["Alice"])["alice"] == member_colours(["alice", "Zed"])["alice"]
    assert two["carol"] == member_colours(["Carol"])["carol"]
    assert two["alice"] == one["alice"] or one["alice"] in (two["carol"], two["dora"])
    many = member_colours([f"M{i}" for i in range(len(MEMBER_COLOURS))])
    assert len(set(many.values())) == len(MEMBER_COLOURS)


def test_member_colours_read_on_every_built_in_theme() -> None:
    """Each colour has at least 3:1 contrast (WCAG, bold text) on every built-in theme's background."""
    from textual.color import Color
    from textual.design import DEFAULT_DARK_BACKGROUND, DEFAULT_LIGHT_BACKGROUND
    from textual.theme import BUILTIN_THEMES

    def luminance(colour: Color) -> float:
        def channel(value: int) -> float:
            v = value / 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(colour.r) + 0.7152 * channel(colour.g) + 0.0722 * channel(colour.b)

    checked = 0
    for name, theme in BUILTIN_THEMES.items():
        background = theme.background or (DEFAULT_DARK_BACKGROUND if theme.dark else DEFAULT_LIGHT_BACKGROUND)
        if background.startswith("ansi"):
            continue  # the terminal's own colours: unknown here
        back = luminance(Color.parse(background))
        for colour in MEMBER_COLOURS:
            fore = luminance(Color.parse(colour))
            high, low = max(fore, back), min(fore, back)
            assert (high + 0.05) / (low + 0.05) >= 3.0, (name, colour)
        checked += 1
    assert checked >= 10


def test_group_status_says_who_speaks_or_is_next() -> None:
    from storyteller.session import GroupSettings

    group = GroupSettings.model_validate({"name": "g", "order": "list", "members": [
        {"card": "a", "name": "Alice"}, {"card": "b", "name": "Bob", "muted": True}]})
    assert group_status(group, upcoming=["Alice"]) == "list · next: Alice · muted: Bob"
    assert group_status(group, speaking="Alice") == "Alice speaking · list · muted: Bob"
    assert group_status(group.model_copy(update={"order": "manual"})).startswith("manual: ctrl+g picks")


@pytest.mark.slow
async def test_a_group_plays_on_smollm2_in_the_app(smollm2_path) -> None:
    """The real model: a group made in the library answers the member named, under that name."""
    pytest.importorskip("llama_cpp")
    from storyteller.config import Settings
    from storyteller.paths import get_paths
    from storyteller.tui.app import StorytellerApp

    settings = Settings()
    settings.engine.kind = "embedded"
    settings.engine.model = str(smollm2_path)
    settings.engine.n_ctx = 2048
    settings.engine.n_threads = 2
    settings.engine.kv_state = "off"
    settings.sampling.max_tokens = 24
    settings.sampling.seed = 7
    app = StorytellerApp(settings, get_paths().ensure(), story="real tale")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_story(pilot)
        screen = await _make_group(pilot, order="list")
        session = screen.session
        await pilot.click("#prompt-input")
        await pilot.press(*"Good evening, all.", "enter")
        await settle(pilot)
        reply = session.path()[-1]
        # list order: the first member after the last greeter (Ink & Margin) is Halden Voss
        assert reply.kind == "generation" and reply.author == "Halden Voss" and reply.text.strip()
        assert screen.transcript.views[-1].author == "Halden Voss"
        assert "next: Wren Calloway" in screen.status.line
        await pilot.press("ctrl+g")
        await pilot.pause()
        app.screen.query_one("#members", OptionList).highlighted = 2
        await pilot.press("enter")
        await settle(pilot)
        assert session.path()[-1].author == "Ink & Margin" and session.path()[-1].text.strip()
        await pilot.press("ctrl+q")


async def test_member_names_that_look_like_markup_show_as_written() -> None:
    from storyteller.session import open_session

    paths = get_paths().ensure()
    paths.characters_dir.mkdir(parents=True, exist_ok=True)
    for stem, name in (("bo", "[b]Bo[/b]"), ("cy", "Cy [link='x']C[/link]")):
        card = {"spec": "chara_card_v2", "spec_version": "2.0",
                "data": {"name": name, "description": "A test character.", "first_mes": f"Hello from {name}."}}
        (paths.characters_dir / f"{stem}.json").write_text(json.dumps(card), encoding="utf-8")
    backend = ScriptedBackend(["[i]Plain[/i] words."])
    session = await open_session("marked", settings=make_settings(), paths=paths, backend=backend,
                                 cards=["bo", "cy"])
    await session.close()
    app = make_app(story="marked", backend=backend)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await wait_story(pilot)
        assert _authors(screen) == ["[b]Bo[/b]", "Cy [link='x']C[/link]"]
        assert "[b]Bo[/b]" in str(screen.transcript.views[0].render().renderables[0])
        await pilot.press("ctrl+g")
        await pilot.pause()
        members = app.screen.query_one("#members", OptionList)
        members.highlighted = 0
        await pilot.press("m")
        await pilot.pause()
        assert str(members.get_option_at_index(0).prompt) == "[b]Bo[/b]  (muted)"
        await pilot.press("enter")  # a muted member may still be asked to reply
        await settle(pilot)
        assert screen.transcript.views[-1].author == "[b]Bo[/b]"
        assert screen.transcript.views[-1].text == "[i]Plain[/i] words."
        assert "muted: [b]Bo[/b]" in screen.status.line
        await pilot.press("ctrl+q")
