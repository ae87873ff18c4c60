"""Idle return, the turn's time limit and the cooldown, on an injected clock (no sleeping)."""

from __future__ import annotations

from storyteller.tui.kiosk.attract import AttractScreen
from storyteller.tui.kiosk.visitor import VisitorScreen

from tests.kiosk.helpers import kiosk_app, screen_text, settle, type_text


async def test_idle_visitor_returns_to_attract_without_adding() -> None:
    async with kiosk_app(idle_seconds=60) as (app, pilot, clock):
        nodes = len(app.controller.session.story.nodes)
        await pilot.press("a", "enter")
        await type_text(pilot, "hm")
        clock.advance(59)
        app.tick()
        await pilot.pause()
        assert isinstance(app.screen, VisitorScreen)  # not idle yet
        await pilot.press("m")  # a key resets the idle time
        clock.advance(59)
        app.tick()
        await pilot.pause()
        assert isinstance(app.screen, VisitorScreen)
        clock.advance(2)
        app.tick()
        await pilot.pause()
        assert isinstance(app.screen, AttractScreen)
        assert len(app.controller.session.story.nodes) == nodes  # the half-typed text was not added


async def test_idle_at_review_keeps_the_reply_and_starts_cooldown() -> None:
    async with kiosk_app(["The bell tolls."], idle_seconds=60, cooldown_seconds=30) as (app, pilot, clock):
        await pilot.press("a", "enter")
        await type_text(pilot, "ring")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen.stage == "review"
        clock.advance(61)
        app.tick()
        await pilot.pause()
        assert isinstance(app.screen, AttractScreen)
        assert app.controller.messages()[-1].text == "The bell tolls."
        assert app.controller.cooldown_left() == 30


async def test_turn_time_limit_ends_the_turn_even_with_keys_pressed() -> None:
    async with kiosk_app(turn_seconds=100, idle_seconds=60) as (app, pilot, clock):
        await pilot.press("a")
        for _ in range(4):
            clock.advance(30)
            await pilot.press("b")  # busy typing: never idle
            app.tick()
            await pilot.pause()
        assert isinstance(app.screen, AttractScreen)


async def test_time_limit_during_a_reply_lets_it_finish_then_returns() -> None:
    from tests.kiosk.helpers import GatedBackend

    slow = GatedBackend(["Thunder rolls over the far hills tonight."])
    async with kiosk_app(backend=slow, turn_seconds=100) as (app, pilot, clock):
        await pilot.press("a", "enter")
        await type_text(pilot, "wait")
        await pilot.press("enter")
        screen = app.screen
        assert screen.stage == "streaming"
        clock.advance(101)
        app.tick()  # the limit passes while the model writes: the reply is not cut off
        assert screen.stage == "streaming"
        slow.gate.set()
        await settle(app, pilot)
        assert isinstance(app.screen, AttractScreen)
        assert app.controller.messages()[-1].text == "Thunder rolls over the far hills tonight."


async def test_cooldown_blocks_the_next_turn_until_it_passes() -> None:
    async with kiosk_app(["Leaves fall."], cooldown_seconds=30) as (app, pilot, clock):
        await pilot.press("a", "enter")
        await type_text(pilot, "rest")
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AttractScreen)
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, AttractScreen)
        assert "next turn starts in 30 s" in screen_text(app)
        clock.advance(20)
        app.tick()
        assert "next turn starts in 10 s" in screen_text(app)
        clock.advance(10)
        app.tick()
        assert "Press any key to add to the story" in screen_text(app)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, VisitorScreen)
