"""A visitor's whole turn, driven with Pilot like a keyboard, on the scripted engine."""

from __future__ import annotations

from storyteller.tui.kiosk.attract import AttractScreen
from storyteller.tui.kiosk.visitor import VisitorScreen

from tests.kiosk.helpers import PIN, kiosk_app, screen_text, settle, type_text


async def test_whole_visitor_flow_attract_name_write_stream_retry_keep() -> None:
    replies = ["The lantern flickers as the gate creaks open.", "A crow watches from the wall.",
               "The gate swings wide."]
    async with kiosk_app(replies) as (app, pilot, clock):
        assert isinstance(app.screen, AttractScreen)
        shown = screen_text(app)
        assert "Press any key to add to the story" in shown
        assert "cafe" in shown  # the title defaults to the story's name
        greeting = app.controller.messages()[0]
        assert greeting.head.kind == "greeting"

        await pilot.press("x")
        assert isinstance(app.screen, VisitorScreen)
        assert app.screen.stage == "name"
        await type_text(pilot, "Ada", keys=True)
        await pilot.press("enter")
        assert app.screen.stage == "write"
        assert "Your turn, Ada" in screen_text(app)
        # adventure mode: Do, Say, Story; Tab changes the kind
        assert app.screen.kind == "do"
        await pilot.press("tab")
        assert app.screen.kind == "say"
        await pilot.press("tab", "tab")
        assert app.screen.kind == "do"

        await type_text(pilot, "open the gate", keys=True)
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, VisitorScreen) and screen.stage == "review"
        assert "The lantern flickers" in screen_text(app)
        assert "R: try again" in screen_text(app)

        await pilot.press("r")  # the one retry
        await settle(app, pilot)
        assert screen.stage == "review"
        assert "A crow watches" in screen_text(app)
        assert "R: try again" not in screen_text(app)
        await pilot.press("r")  # no retries left: nothing happens
        await settle(app, pilot)
        assert "A crow watches" in screen_text(app)

        await pilot.press("enter")  # keep it
        await pilot.pause()
        assert isinstance(app.screen, AttractScreen)
        story = app.controller.session.story
        visitor_input, reply = story.messages()[-2:]
        assert visitor_input.head.author == "kiosk:Ada"
        assert visitor_input.head.kind == "do" and visitor_input.text == "open the gate"
        assert reply.text == "A crow watches from the wall."
        # the first reply is kept as a swipe, not lost
        assert len(story.siblings(reply.head.id)) == 2
        shown = screen_text(app)
        assert "A crow watches from the wall." in shown
        assert "Ada, " in shown  # attribution with the time
        assert "You open the gate." in shown


async def test_anonymous_visitor_is_attributed_as_a_visitor() -> None:
    async with kiosk_app(["Rain [/b] begins to [link='x']fall[/link]."], render_markdown=False) as (app, pilot, clock):
        await pilot.press("space")
        await pilot.press("enter")  # no name
        await type_text(pilot, "listen [OOC: [/b] hi]")
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("enter")
        await pilot.pause()
        story = app.controller.session.story
        assert story.messages()[-2].head.author == "kiosk:"
        shown = screen_text(app)
        assert "a visitor, " in shown
        # visitor and model text are shown as typed, never parsed as markup
        assert "listen [OOC: [/b] hi]" in shown and "Rain [/b] begins to [link='x']fall[/link]." in shown


async def test_input_is_limited_in_length_and_empty_input_is_not_sent() -> None:
    async with kiosk_app(max_input_chars=10) as (app, pilot, clock):
        await pilot.press("a", "enter")
        await pilot.press("enter")  # empty text
        assert app.screen.stage == "write"
        assert "Write a line or two first" in screen_text(app)
        await type_text(pilot, "abcdefghijklmn", keys=True)
        from textual.widgets import Input

        assert app.screen.query_one("#text", Input).value == "abcdefghij"
        assert "10/10" in screen_text(app)


async def test_escape_leaves_without_adding_and_without_cooldown() -> None:
    async with kiosk_app() as (app, pilot, clock):
        before = len(app.controller.session.story.nodes)
        await pilot.press("a", "enter")
        await type_text(pilot, "hello")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, AttractScreen)
        assert len(app.controller.session.story.nodes) == before
        assert app.controller.cooldown_left() == 0


async def test_the_visitors_line_reads_the_same_everywhere() -> None:
    """Issue 14 item 14: no raw "> ask the woman" while streaming or in the admin lists when the
    attract screen shows "You ask the woman"."""
    from storyteller.tui.kiosk.admin import AdminScreen

    async with kiosk_app(["She points at the tower."]) as (app, pilot, clock):
        await pilot.press("x")
        await type_text(pilot, "Ada", keys=True)
        await pilot.press("enter")
        await type_text(pilot, "ask the woman about the key", keys=True)
        await pilot.press("enter")
        await settle(app, pilot)
        review = screen_text(app)
        assert "You ask the woman about the key." in review
        assert "> ask the woman" not in review
        await pilot.press("enter")
        await pilot.pause()
        attract = screen_text(app)
        assert "You ask the woman about the key." in attract
        await pilot.press("f12")
        await pilot.pause()
        await type_text(pilot, PIN)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AdminScreen)
        lines = [text for _id, text in app.screen._passages()]  # what the Hide and Edit pickers list
        assert any("You ask the woman about the key." in line for line in lines)
        assert not any("> ask the woman" in line or ": ask the woman" in line for line in lines)
