"""Changing a group after it is made, in the app, as a player does it: ctrl+g opens the speaker
picker; ``a`` adds a character from the library, ``x`` / Delete takes a member out after a yes/no,
``e`` opens the group's settings (ctrl+s saves, a bad value is refused with nothing saved). The
changes reach the next reply's prompt and the saved story; a member who left keeps their name and a
colour on their old messages. Scripted engine, the bundled cards."""

from __future__ import annotations

from textual.widgets import Checkbox, Input, OptionList, Select, TextArea

from storyteller.engines.fake import ScriptedBackend
from storyteller.paths import get_paths
from storyteller.session import GroupSettings, open_session
from storyteller.tui.screens.dialogs import Confirm
from storyteller.tui.screens.group import SpeakerPicker
from storyteller.tui.screens.group_settings import AddMemberDialog, GroupSettingsDialog, escape_line, unescape_line
from storyteller.tui.widgets.transcript import MEMBER_COLOURS
from tests.tui.conftest import make_app, make_settings, settle, wait_story

CARDS = ["halden_voss", "wren_calloway", "ink_and_margin"]
NAMES = ["Halden Voss", "Wren Calloway", "Ink & Margin"]


async def _group_story(name: str, **group) -> None:
    """A saved three-member group story (the greetings only)."""
    session = await open_session(name, settings=make_settings(), paths=get_paths().ensure(),
                                 backend=ScriptedBackend(), cards=CARDS, group=GroupSettings(**group))
    await session.close()


async def _picker(pilot) -> SpeakerPicker:
    await pilot.press("ctrl+g")
    await pilot.pause()
    picker = pilot.app.screen
    assert isinstance(picker, SpeakerPicker)
    return picker


def _listed(options: OptionList) -> list[str]:
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


def _toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_add_and_remove_members_from_the_picker_saved_with_the_story() -> None:
    await _group_story("crew", order="manual")
    backend = ScriptedBackend(["Hollowmere sleeps.", "Aye."])
    app = make_app(story="crew", backend=backend)
    async with app.run_test(size=(100, 34)) as pilot:
        screen = await wait_story(pilot)
        session = screen.session
        assert session.members == NAMES
        picker = await _picker(pilot)
        assert "a: add" in str(picker.query_one(".hint").render())

        # a: the library's characters; Enter adds the highlighted one
        await pilot.press("a")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, AddMemberDialog)
        cards = dialog.query_one("#add-cards", OptionList)
        listed = _listed(cards)
        assert any(label.startswith("Narrator of Hollowmere  (") for label in listed)
        # the members' own cards are marked
        assert any(label.startswith("Wren Calloway  (") and "in the group" in label for label in listed)
        cards.highlighted = next(i for i, label in enumerate(listed) if label.startswith("Narrator of Hollowmere"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is picker
        assert session.members == [*NAMES, "Narrator of Hollowmere"]
        assert _listed(picker.members)[-1] == "Narrator of Hollowmere"
        assert picker.members.highlighted == 3

        # the new member replies now (Enter), under their name, in their own colour
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        last = screen.transcript.views[-1]
        assert last.author == "Narrator of Hollowmere" and last.text == "Hollowmere sleeps."
        assert last.colour in MEMBER_COLOURS
        assert "Narrator of Hollowmere" in session.last_prompt.text

        # mute Halden Voss: the status bar says so
        picker = await _picker(pilot)
        picker.members.highlighted = 0
        await pilot.press("m", "escape")
        await pilot.pause()
        assert "muted: Halden Voss" in screen.status.line
        # x asks first; "n" keeps the member
        picker = await _picker(pilot)
        picker.members.highlighted = 0
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is picker and session.members[0] == "Halden Voss"
        # Delete, then yes: Halden Voss leaves; his greeting stays his
        halden_colour = screen.transcript.views[0].colour
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause()
        assert app.screen is picker
        assert session.members == ["Wren Calloway", "Ink & Margin", "Narrator of Hollowmere"]
        assert _listed(picker.members) == session.members
        assert any("Halden Voss left the group" in t for t in _toasts(app))
        await pilot.press("escape")
        await pilot.pause()
        assert "muted" not in screen.status.line, "the status bar follows the members"
        assert screen.transcript.views[0].author == "Halden Voss"
        assert screen.transcript.views[0].colour == halden_colour

        # the next reply's prompt keeps his greeting under his name; his card is gone from the head
        await pilot.press("ctrl+g")
        await pilot.pause()
        app.screen.query_one("#members", OptionList).highlighted = 0
        await pilot.press("enter")
        await settle(pilot)
        assert screen.transcript.views[-1].author == "Wren Calloway"
        prompt = backend.requests[-1].prompt
        assert "Halden Voss:" in prompt and "quartermaster of the Magpie's Luck" not in prompt
        await pilot.press("ctrl+q")

    # saved with the story: reopened, the members are the same, and the leaver's greeting renders
    # with his name and a colour of his own
    app = make_app(story="crew")
    async with app.run_test(size=(100, 34)) as pilot:
        screen = await wait_story(pilot)
        assert screen.session.members == ["Wren Calloway", "Ink & Margin", "Narrator of Hollowmere"]
        assert screen.session.story.settings.cards[-1].startswith("narrator_of_hollowmere")
        view = screen.transcript.views[0]
        members = {v.colour for v in screen.transcript.views if v.author in screen.session.members}
        assert len(members) == 3 and members <= set(MEMBER_COLOURS)
        assert view.author == "Halden Voss" and view.colour in MEMBER_COLOURS and view.colour not in members
        header = view.render().renderables[0]
        assert header.plain == "Halden Voss" and header.style.color.name == view.colour
        await pilot.press("ctrl+q")


async def test_the_last_member_cannot_be_removed() -> None:
    session = await open_session("pair", settings=make_settings(), paths=get_paths().ensure(),
                                 backend=ScriptedBackend(), cards=CARDS[:2])
    session.remove_member("Halden Voss")
    await session.close()
    app = make_app(story="pair")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await wait_story(pilot)
        assert screen.session.members == ["Wren Calloway"]
        await _picker(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, SpeakerPicker), "no confirm for what cannot be done"
        assert "only member" in _toasts(app)[-1]
        assert screen.session.members == ["Wren Calloway"]
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def _settings_dialog(pilot) -> GroupSettingsDialog:
    await _picker(pilot)
    await pilot.press("e")
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, GroupSettingsDialog)
    return dialog


async def test_group_settings_change_the_next_prompt_and_a_bad_value_saves_nothing() -> None:
    await _group_story("settings", order="manual", cards="swap")
    backend = ScriptedBackend(["Ink answers.", "Wren answers."])
    app = make_app(story="settings", backend=backend)
    async with app.run_test(size=(110, 40)) as pilot:
        screen = await wait_story(pilot)
        session = screen.session
        before = session.group
        dialog = await _settings_dialog(pilot)
        # the dialog shows the group as it is; the talkativeness placeholder is the card's value
        assert dialog.query_one("#gs-name", Input).value == before.name
        assert dialog.query_one("#gs-cards", Select).value == "swap"
        assert dialog.query_one("#gs-talk-1", Input).value == ""
        assert dialog.query_one("#gs-talk-1", Input).placeholder.startswith("card: ")

        dialog.query_one("#gs-name", Input).value = "The [b]Harbour[/b] watch"
        dialog.query_one("#gs-scenario", TextArea).text = "A storm closes the harbour."
        dialog.query_one("#gs-cards", Select).value = "join_muted"
        dialog.query_one("#gs-mprefix-1", Input).value = "<<{{char}}>>\\n"  # \n: a line break
        dialog.query_one("#gs-lore-2", Checkbox).value = True
        for bad in ("2", "abc", "-0.1", "nan"):
            talk = dialog.query_one("#gs-talk-1", Input)
            talk.value = ""
            talk.focus()
            await pilot.press(*bad, "ctrl+s")
            await pilot.pause()
            assert app.screen is dialog, bad
            toast = _toasts(app)[-1]
            assert "Talkativeness of Wren Calloway" in toast and "from 0 to 1" in toast and repr(bad) in toast
            assert session.group == before, "nothing is saved"
        talk.value = ""
        talk.focus()
        await pilot.press(*"0.9", "ctrl+s")
        await pilot.pause()
        assert app.screen is not dialog
        group = session.group
        assert group.name == "The [b]Harbour[/b] watch" and group.scenario == "A storm closes the harbour."
        assert group.cards == "join_muted" and group.order == "manual"
        wren = group.member("Wren Calloway")
        assert wren.talkativeness == 0.9 and wren.join_prefix == "<<{{char}}>>\n" and wren.join_suffix is None
        assert group.member("Ink & Margin").lore_only_when_speaking
        assert group.member("Halden Voss") == before.member("Halden Voss")
        await pilot.press("escape")  # close the picker: the title follows the new name
        await pilot.pause()
        assert "The [b]Harbour[/b] watch" in str(screen.query_one("#story-title").render())

        # the next reply's prompt: the new scenario, every card joined, Wren's own prefix
        await pilot.press("ctrl+g")
        await pilot.pause()
        app.screen.query_one("#members", OptionList).highlighted = 2
        await pilot.press("enter")
        await settle(pilot)
        assert screen.transcript.views[-1].author == "Ink & Margin"
        prompt = backend.requests[-1].prompt
        assert "A storm closes the harbour." in prompt
        assert "<<Wren Calloway>>\n" in prompt
        assert "quartermaster of the Magpie's Luck" in prompt  # join: Halden's card too (swap had only Ink's)

        # blank talkativeness and prefix: back to the card's and the group's
        dialog = await _settings_dialog(pilot)
        assert dialog.query_one("#gs-talk-1", Input).value == "0.9"
        assert dialog.query_one("#gs-mprefix-1", Input).value == "<<{{char}}>>\\n"
        dialog.query_one("#gs-talk-1", Input).value = ""
        dialog.query_one("#gs-mprefix-1", Input).value = ""
        await pilot.press("ctrl+s")
        await pilot.pause()
        wren = session.group.member("Wren Calloway")
        assert wren.talkativeness is None and wren.join_prefix is None
        # Esc cancels: nothing changes
        saved = session.group
        dialog = await _settings_dialog(pilot)
        dialog.query_one("#gs-scenario", TextArea).text = "Not this."
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SpeakerPicker) and session.group == saved
        await pilot.press("escape")
        await pilot.press("ctrl+q")

    again = await open_session("settings", settings=make_settings(), paths=get_paths().ensure(),
                               backend=ScriptedBackend())
    try:
        assert again.group.scenario == "A storm closes the harbour." and again.group.cards == "join_muted"
        assert again.group.name == "The [b]Harbour[/b] watch"
    finally:
        await again.close()


async def test_settings_are_refused_while_a_reply_is_generated() -> None:
    await _group_story("busy", order="manual")
    app = make_app(["One two three four five six seven eight nine ten eleven twelve."], story="busy", delay=0.05)
    async with app.run_test(size=(110, 40)) as pilot:
        screen = await wait_story(pilot)
        session = screen.session
        before = session.group
        dialog = await _settings_dialog(pilot)
        dialog.query_one("#gs-scenario", TextArea).text = "Too late."
        screen.generate("reply_as", "Wren Calloway")  # a reply starts while the dialog is open
        for _ in range(50):
            await pilot.pause()
            if session.generating:
                break
        assert session.generating
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is dialog and "not changed" in _toasts(app)[-1]
        assert session.group == before
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("escape")
        await pilot.press("ctrl+q")


def test_prefixes_round_trip_through_one_input_line() -> None:
    for text in ("", "<{{char}}>\n", "a\\nb", "two\n\nlines\\", "C:\\x"):
        line = escape_line(text)
        assert "\n" not in line and unescape_line(line) == text
    assert unescape_line("[Start]\\n") == "[Start]\n"
    assert unescape_line("a\\tb") == "a\\tb"  # other backslashes stay
