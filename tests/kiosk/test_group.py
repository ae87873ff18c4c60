"""A kiosk whose story is a group chat: a visitor names a member and that member answers, every
reply shows its member's name (visitor screen, attract screen, admin list, archive), a retry keeps
the speaker, manual order still answers, and a reset keeps the group. Scripted engine."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.kiosk.archive import attributed_markdown
from storyteller.kiosk.controller import KioskController
from storyteller.paths import get_paths
from storyteller.story.model import GroupSettings
from storyteller.tui.kiosk.app import KioskApp
from storyteller.tui.kiosk.attract import AttractScreen
from storyteller.tui.kiosk.visitor import VisitorScreen
from textual.widgets import OptionList

from storyteller.tui.kiosk.admin import ACTIONS
from storyteller.tui.kiosk.admin_forms import PassagePicker
from tests.kiosk.helpers import PIN, FakeClock, kiosk_settings, screen_text, settle, type_text, write_config

CARDS = ["halden_voss", "wren_calloway", "ink_and_margin"]
NAMES = ["Halden Voss", "Wren Calloway", "Ink & Margin"]


async def _controller(replies, *, order: str = "natural", story: str = "tavern", backend=None, **changes):
    paths = get_paths().ensure()
    kiosk = kiosk_settings(**changes)
    write_config(paths.config_dir / "kiosk.toml", kiosk)
    return await KioskController.open(story, kiosk=kiosk, settings=Settings(engine={"kind": "fake"}), paths=paths,
                                      backend=backend or ScriptedBackend(replies), clock=FakeClock(), cards=CARDS,
                                      group=GroupSettings(order=order, seed=11))


@asynccontextmanager
async def group_kiosk(replies, *, order: str = "natural", backend=None, **changes):
    controller = await _controller(replies, order=order, backend=backend, **changes)
    app = KioskApp(controller, config_file=get_paths().config_dir / "kiosk.toml", tick_seconds=3600)
    try:
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            yield app, pilot
    finally:
        await app.controller.close()


async def test_a_visitor_names_a_member_and_that_member_answers_under_its_name() -> None:
    replies = ["The ledger is short by a crown.", "Ink pools on the page.", "Halden shrugs.", "Another try."]
    async with group_kiosk(replies) as (app, pilot):
        controller = app.controller
        assert controller.members == NAMES
        # the members' greetings, each attributed to its member on the attract screen
        shown = screen_text(app)
        assert all(f"— {name}, " in shown for name in NAMES)

        await pilot.press("x")
        assert isinstance(app.screen, VisitorScreen)
        # the story so far, above the visitor's turn: the last two greetings, each after its member
        context = str(app.screen.query_one("#context").render())
        assert context.startswith("Wren Calloway: ") and "\n\nInk & Margin: " in context
        await type_text(pilot, "Ada")
        await pilot.press("enter")
        await type_text(pilot, "Wren, is the ledger right?")
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, VisitorScreen) and screen.stage == "review"
        story = controller.session.story
        replies_now = controller.turn_replies()
        assert replies_now and replies_now[0].author == "Wren Calloway"
        assert all(node.author in NAMES for node in replies_now)
        # the visitor sees each reply after its member's name, the named member first
        reply_box = str(screen.query_one("#reply").render())
        assert "Wren Calloway: The ledger is short by a crown." in reply_box
        places = [reply_box.index(f"{node.author}: {node.text}") for node in replies_now]
        assert places == sorted(places)

        # a retry replaces the last reply with one by the same member
        last_author = replies_now[-1].author
        await pilot.press("r")
        await settle(app, pilot)
        assert controller.turn_replies()[-1].author == last_author
        assert f"{last_author}: " in str(screen.query_one("#reply").render())

        await pilot.press("enter")  # keep it
        await pilot.pause()
        assert isinstance(app.screen, AttractScreen)
        shown = screen_text(app)
        assert "— Wren Calloway, " in shown and "Ada, " in shown
        assert story.messages()[3].head.author == "kiosk:Ada"
        # the archive names each reply's member
        markdown = attributed_markdown(story, title="t", speaker=controller.speaker)
        assert "*— Wren Calloway, " in markdown and "*— Halden Voss, " in markdown
        # the operator's passage list names the members too
        await pilot.press("f12")
        await type_text(pilot, PIN)
        await pilot.press("enter")
        await pilot.pause()
        index = [key for key, _ in ACTIONS].index("hide")
        await pilot.press("home", *["down"] * index, "enter")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, PassagePicker)
        listed = screen_text(app) + "\n".join(str(o.prompt) for o in picker.query_one(OptionList).options)
        assert "Wren Calloway, " in listed and "Ink & Margin, " in listed
        await pilot.press("escape")


async def test_manual_order_at_the_kiosk_answers_with_the_named_member() -> None:
    controller = await _controller(["Aye.", "Hm."], order="manual", story="manual-tavern")
    try:
        result = await controller.submit("Ink & Margin, what is written here?", "say", "Bo")
        assert result.error is None and result.reply is not None
        assert result.replies and result.replies[0].author == "Ink & Margin"
        assert controller.speaker_for(result.replies[0]) == "Ink & Margin"
    finally:
        await controller.close()


async def test_a_reset_keeps_the_group_and_its_muted_members() -> None:
    controller = await _controller(["Aye."], story="reset-tavern")
    try:
        controller.session.set_muted("Halden Voss", True)
        await controller.submit("Hello, Wren.", "say", "Cy")
        archived = await controller.reset()
        assert archived.startswith("reset-tavern-archived-")
        session = controller.session
        assert session.story.name == "reset-tavern"
        assert session.members == NAMES and session.group.member("Halden Voss").muted
        assert [n.author for n in session.path()] == NAMES  # the members greet again
    finally:
        await controller.close()


class HoldSecondReply(ScriptedBackend):
    """The scripted engine, but the second reply stops after its first word until the gate opens."""

    def __init__(self, replies) -> None:
        super().__init__(replies)
        self.streams = 0
        self.held = asyncio.Event()
        self.gate = asyncio.Event()

    async def stream(self, request):
        self.streams += 1
        words = 0
        async for chunk in super().stream(request):
            if self.streams == 2 and type(chunk).__name__ == "TextChunk":
                words += 1
                if words == 2:
                    self.held.set()
                    await self.gate.wait()
            yield chunk


async def test_while_a_group_turn_streams_the_visitor_sees_who_is_speaking() -> None:
    backend = HoldSecondReply(["Halden counts the crates.", "Wren trims the lamp.", "Ink writes it down."])
    async with group_kiosk([], order="everyone", backend=backend) as (app, pilot):
        await pilot.press("x")
        await type_text(pilot, "Ada")
        await pilot.press("enter")
        await type_text(pilot, "Good evening.")
        await pilot.press("enter")
        await asyncio.wait_for(backend.held.wait(), timeout=10)
        await pilot.pause(0.1)  # the screen shows streamed text every 30 ms
        screen = app.screen
        assert isinstance(screen, VisitorScreen) and screen.stage == "streaming"
        shown = str(screen.query_one("#reply").render())
        assert "Halden Voss: Halden counts the crates." in shown
        assert "Wren Calloway: Wren" in shown and "trims" not in shown
        backend.gate.set()
        await settle(app, pilot)
        shown = str(screen.query_one("#reply").render())
        assert screen.stage == "review"
        assert [line.split(":")[0] for line in shown.split("\n\n")[1:]] == NAMES


async def test_moderation_in_a_group_turn_regenerates_the_flagged_members_reply() -> None:
    moderation = {"enabled": True, "words": ["gloom"]}
    controller = await _controller(["Halden counts crates.", "Wren sees gloom ahead.", "Wren trims the lamp."],
                                   order="everyone", story="moderated-tavern", moderation=moderation)
    try:
        result = await controller.submit("Good evening.", "say", "Di")
        assert result.error is None and result.moderated == "regenerated"
        # the flagged reply stopped the turn at once; its member's reply was written again
        assert [(n.author, n.text) for n in result.replies] == [("Halden Voss", "Halden counts crates."),
                                                               ("Wren Calloway", "Wren trims the lamp.")]
        assert all("gloom" not in m.text for m in controller.messages())
    finally:
        await controller.close()
