"""No way out without the PIN: every escape key is swallowed; the PIN opens the admin screen."""

from __future__ import annotations

from storyteller.tui.kiosk.admin import AdminScreen
from storyteller.tui.kiosk.app import BLOCKED_KEYS
from storyteller.tui.kiosk.attract import AttractScreen
from storyteller.tui.kiosk.pin import PinScreen
from storyteller.tui.kiosk.visitor import VisitorScreen

from tests.kiosk.helpers import PIN, kiosk_app, type_text


async def _enter_pin(pilot, pin: str) -> None:
    await pilot.press("f12")
    await pilot.pause()
    await type_text(pilot, pin)
    await pilot.press("enter")
    await pilot.pause()


async def test_escape_keys_do_nothing_on_the_attract_screen() -> None:
    async with kiosk_app() as (app, pilot, clock):
        for key in sorted(BLOCKED_KEYS):
            await pilot.press(key)
            await pilot.pause()
            assert app.is_running and app.return_code is None, key
            # swallowed before any screen sees it: it does not even start a visitor's turn
            assert isinstance(app.screen, AttractScreen), key
        assert not app.use_command_palette
        assert not any(type(s).__name__ == "CommandPalette" for s in app.screen_stack)
        for key in ("escape", "ctrl+d", "tab"):  # ordinary keys start a turn, and never quit
            await pilot.press(key)
            await pilot.pause()
            assert app.is_running, key
            await pilot.press("escape")
            await pilot.pause()


async def test_escape_keys_do_nothing_while_a_visitor_types() -> None:
    async with kiosk_app() as (app, pilot, clock):
        await pilot.press("a", "enter")
        await type_text(pilot, "hi", keys=True)
        for key in sorted(BLOCKED_KEYS):
            await pilot.press(key)
        await pilot.pause()
        assert app.is_running
        assert isinstance(app.screen, VisitorScreen) and app.screen.stage == "write"
        from textual.widgets import Input

        assert app.screen.query_one("#text", Input).value == "hi"


async def test_quit_and_palette_actions_are_disabled() -> None:
    async with kiosk_app() as (app, pilot, clock):
        await app.run_action("quit")
        await app.run_action("command_palette")
        await app.run_action("suspend_process")
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, AttractScreen)
        assert not [b for b in app._bindings if b[1].action in ("quit", "help_quit", "command_palette")]


async def test_wrong_pin_is_refused_and_locks_after_three() -> None:
    async with kiosk_app(pin_attempts=3, pin_lockout_seconds=60) as (app, pilot, clock):
        await _enter_pin(pilot, "1111")
        assert isinstance(app.screen, PinScreen)
        assert "Wrong PIN." in str(app.screen.query_one("#pin-message").render())
        await type_text(pilot, "2222")
        await pilot.press("enter")
        await type_text(pilot, "3333")
        await pilot.press("enter")
        await pilot.pause()
        assert "Locked for 60 s" in str(app.screen.query_one("#pin-message").render())
        await type_text(pilot, PIN)  # the right PIN, but locked
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PinScreen)
        assert "Too many wrong PINs" in str(app.screen.query_one("#pin-message").render())
        clock.advance(61)
        await type_text(pilot, PIN)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AdminScreen)


async def test_escape_on_the_pin_screen_goes_back() -> None:
    async with kiosk_app() as (app, pilot, clock):
        await pilot.press("f12")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, AttractScreen)


async def test_right_pin_opens_admin_and_quit_needs_confirmation() -> None:
    async with kiosk_app() as (app, pilot, clock):
        await _enter_pin(pilot, PIN)
        assert isinstance(app.screen, AdminScreen)
        await pilot.press("end", "enter")  # "Quit the kiosk" is the last action
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, AdminScreen)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.return_code == 0


async def test_admin_screen_closes_itself_when_left_alone() -> None:
    async with kiosk_app(idle_seconds=60) as (app, pilot, clock):
        await _enter_pin(pilot, PIN)
        assert isinstance(app.screen, AdminScreen)
        clock.advance(299)
        app.tick()
        await pilot.pause()
        assert isinstance(app.screen, AdminScreen)
        clock.advance(2)
        app.tick()
        await pilot.pause()
        assert isinstance(app.screen, AttractScreen)
