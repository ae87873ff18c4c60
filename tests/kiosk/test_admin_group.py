"""The operator's Group item at a group kiosk, the way an operator uses it: F12, the PIN, Group,
mute a member with Enter, change the speaker order with ``o``, back to the visitors. A muted member
never answers a visitor (not even one who names them), the change is saved with the story, the
last member who can answer cannot be muted, and a single-character kiosk has no Group item."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from textual.widgets import OptionList

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.errors import StoryError
from storyteller.kiosk.controller import KioskController
from storyteller.paths import get_paths
from storyteller.story.model import GroupSettings
from storyteller.tui.kiosk.admin import ACTIONS, AdminScreen, admin_actions
from storyteller.tui.kiosk.admin_forms import GroupScreen
from storyteller.tui.kiosk.app import KioskApp
from storyteller.tui.kiosk.attract import AttractScreen
from storyteller.tui.kiosk.visitor import VisitorScreen

from tests.kiosk.helpers import PIN, FakeClock, kiosk_app, kiosk_settings, settle, type_text, write_config

CARDS = ["halden_voss", "wren_calloway", "ink_and_margin"]
NAMES = ["Halden Voss", "Wren Calloway", "Ink & Margin"]
REPLIES = ["Halden counts the crates.", "Wren trims the lamp.", "Ink writes it down.", "The fire cracks."]


async def _open(story: str, *, order: str = "natural", cards: list[str] | None = CARDS) -> KioskController:
    paths = get_paths().ensure()
    kiosk = kiosk_settings()
    write_config(paths.config_dir / "kiosk.toml", kiosk)
    group = GroupSettings(order=order, seed=11) if cards else None
    return await KioskController.open(story, kiosk=kiosk, settings=Settings(engine={"kind": "fake"}), paths=paths,
                                      backend=ScriptedBackend(REPLIES), clock=FakeClock(), cards=cards, group=group)


@asynccontextmanager
async def group_kiosk(story: str, *, order: str = "natural"):
    controller = await _open(story, order=order)
    app = KioskApp(controller, config_file=get_paths().config_dir / "kiosk.toml", tick_seconds=3600)
    try:
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            yield app, pilot
    finally:
        await app.controller.close()


async def _admin(app, pilot, action: str) -> None:
    if not isinstance(app.screen, AdminScreen):
        await pilot.press("f12")
        await type_text(pilot, PIN)
        await pilot.press("enter")
        await pilot.pause()
    assert isinstance(app.screen, AdminScreen)
    keys = [str(o.id) for o in app.screen.query_one("#actions", OptionList).options]
    await pilot.press("home", *["down"] * keys.index(action), "enter")
    await pilot.pause()


def _members(app) -> list[str]:
    """The member lines the Group dialog shows."""
    return [str(o.prompt) for o in app.screen.query_one("#members", OptionList).options]


def _group_status(app) -> str:
    return str(app.screen.query_one("#group-status").render())


async def _mute(app, pilot, name: str) -> None:
    """Highlight the member ``name`` in the Group dialog and press Enter."""
    index = NAMES.index(name)
    await pilot.press("home", *["down"] * index, "enter")
    await pilot.pause()


async def _visitor_turn(app, pilot, name: str, text: str) -> None:
    await pilot.press("x")
    assert isinstance(app.screen, VisitorScreen)
    await type_text(pilot, name)
    await pilot.press("enter")
    await type_text(pilot, text)
    await pilot.press("enter")
    await settle(app, pilot)
    assert app.screen.stage == "review"
    await pilot.press("enter")  # keep it
    await pilot.pause()
    assert isinstance(app.screen, AttractScreen)
    app.controller.cooldown_until = 0


async def test_the_operator_mutes_a_member_who_then_never_answers_and_stays_muted() -> None:
    async with group_kiosk("muted-tavern") as (app, pilot):
        await _admin(app, pilot, "group")
        assert isinstance(app.screen, GroupScreen)
        assert _members(app) == NAMES
        await _mute(app, pilot, "Wren Calloway")
        assert _members(app) == ["Halden Voss", "Wren Calloway  (muted)", "Ink & Margin"]
        assert "Wren Calloway muted" in _group_status(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, AdminScreen)
        assert "muted: Wren Calloway" in str(app.screen.query_one("#admin-status").render())
        await _admin(app, pilot, "back")
        assert isinstance(app.screen, AttractScreen)

        # a visitor asks Wren by name: the named member is muted, so someone else answers
        await _visitor_turn(app, pilot, "Ada", "Wren, is the ledger right?")
        replies = app.controller.turn_replies()
        assert replies and all(node.author in NAMES for node in replies)
        assert "Wren Calloway" not in [node.author for node in replies]
        assert app.controller.session.story.messages()[-1 - len(replies)].head.author == "kiosk:Ada"

        # the operator changes the order to everyone: every unmuted member answers, Wren still not
        await _admin(app, pilot, "group")
        order = str(app.screen.query_one("#group-order").render())
        assert "speaker order natural" in order
        await pilot.press("o", "o")  # natural -> list -> everyone
        await pilot.pause()
        assert "speaker order everyone" in str(app.screen.query_one("#group-order").render())
        assert "Speaker order: everyone" in _group_status(app)
        await pilot.press("escape")
        await pilot.pause()
        await _admin(app, pilot, "back")
        await _visitor_turn(app, pilot, "Bo", "Good evening, all of you.")
        assert [node.author for node in app.controller.turn_replies()] == ["Halden Voss", "Ink & Margin"]

    # the story reopened (a restart of the kiosk) keeps the mute and the order
    controller = await _open("muted-tavern", cards=None)
    try:
        group = controller.session.group
        assert group is not None and group.order == "everyone"
        assert [m.name for m in group.members if m.muted] == ["Wren Calloway"]
        result = await controller.submit("Wren, come back!", "say", "Cy")
        assert result.error is None and [n.author for n in result.replies] == ["Halden Voss", "Ink & Margin"]
    finally:
        await controller.close()


async def test_the_last_member_who_can_answer_cannot_be_muted_and_unmute_works() -> None:
    async with group_kiosk("quiet-tavern") as (app, pilot):
        await _admin(app, pilot, "group")
        await _mute(app, pilot, "Halden Voss")
        await _mute(app, pilot, "Ink & Margin")
        await _mute(app, pilot, "Wren Calloway")  # the last one: refused, with the reason
        status = _group_status(app)
        assert "Wren Calloway is the only member who can still answer" in status
        assert "problem" in app.screen.query_one("#group-status").classes
        assert _members(app) == ["Halden Voss  (muted)", "Wren Calloway", "Ink & Margin  (muted)"]
        group = app.controller.session.group
        assert [m.name for m in group.members if not m.muted] == ["Wren Calloway"]
        await _mute(app, pilot, "Halden Voss")  # Enter again unmutes
        assert _members(app)[0] == "Halden Voss"
        assert "Halden Voss unmuted" in _group_status(app)
        assert not app.controller.session.group.member("Halden Voss").muted
        await pilot.press("space")  # space toggles too: Halden muted again
        await pilot.pause()
        assert app.controller.session.group.member("Halden Voss").muted


async def test_a_story_in_manual_order_shows_why_and_o_leaves_it_for_natural() -> None:
    async with group_kiosk("manual-tavern", order="manual") as (app, pilot):
        await _admin(app, pilot, "group")
        order = str(app.screen.query_one("#group-order").render())
        assert "manual" in order and "answered as natural here" in order
        await pilot.press("o")
        await pilot.pause()
        assert app.controller.session.group.order == "natural"
    # the controller itself never sets manual: visitors cannot pick who speaks
    controller = await _open("manual-tavern", cards=None)
    try:
        with pytest.raises(StoryError, match="manual needs a player"):
            controller.set_order("manual")
        assert controller.session.group.order == "natural"
    finally:
        await controller.close()


async def test_a_group_muted_to_the_last_member_elsewhere_tells_the_visitor_and_adds_nothing() -> None:
    async with group_kiosk("silent-tavern") as (app, pilot):
        for name in NAMES:  # as the app's speaker picker can do
            app.controller.session.set_muted(name, True)
        before = len(app.controller.messages())
        await pilot.press("x")
        await type_text(pilot, "Ada")
        await pilot.press("enter")
        await type_text(pilot, "Hello?")
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, VisitorScreen) and screen.stage == "write"
        assert "every character is muted" in str(screen.query_one("#notice").render())
        assert len(app.controller.messages()) == before
        # the operator unmutes one in the Group dialog and the next visitor is answered
        await _admin(app, pilot, "group")
        await _mute(app, pilot, "Ink & Margin")
        await pilot.press("escape")
        await pilot.pause()
        await _admin(app, pilot, "back")
        await _visitor_turn(app, pilot, "Ada", "Hello?")
        assert [n.author for n in app.controller.turn_replies()] == ["Ink & Margin"]


async def test_a_single_character_kiosk_has_no_group_item() -> None:
    assert [key for key, _ in admin_actions(False)] == [key for key, _ in ACTIONS]
    assert "group" in [key for key, _ in admin_actions(True)]
    async with kiosk_app() as (app, pilot, clock):
        await pilot.press("f12")
        await type_text(pilot, PIN)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AdminScreen)
        keys = [str(o.id) for o in app.screen.query_one("#actions", OptionList).options]
        assert keys == [key for key, _ in ACTIONS] and "group" not in keys
        app.screen.do_group()  # even called directly, it opens nothing
        await pilot.pause()
        assert isinstance(app.screen, AdminScreen)
