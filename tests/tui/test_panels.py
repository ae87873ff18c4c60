"""Prompt inspector, world-info trace, notes panel, help and the command palette."""

from __future__ import annotations

from textual.widgets import DataTable, Input, TextArea

from storyteller.tui.app import ACTIONS
from storyteller.tui.screens.inspector import BudgetBar, PromptInspector, WorldTrace
from storyteller.tui.screens.notes import NotesScreen
from tests.tui.conftest import make_app, settle, wait_story


async def _play_a_turn(pilot, text: str = "ask the boy about the bell") -> None:
    await pilot.press(*text, "enter")
    await settle(pilot)


async def test_inspector_before_and_after_a_turn() -> None:
    app = make_app(["You wait."])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, PromptInspector)
        assert "No prompt yet" in app.screen.summary()
        await pilot.press("escape")
        await pilot.pause()
        await _play_a_turn(pilot)
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PromptInspector)
        table = screen.query_one(DataTable)
        prompt = app.session.last_prompt
        assert table.row_count == len(prompt.segments) > 3
        assert screen.query_one(BudgetBar).prompt is prompt
        assert "tokens reused" in screen.summary() and "trimmed:" in screen.summary()
        kinds = {s.kind for s in prompt.segments}
        assert "history" in kinds and "world_info" in kinds
        await pilot.press("c")
        assert app.clipboard == prompt.text and "> You ask the boy about the bell." in app.clipboard
        await pilot.press("f4")  # straight to the trace
        await pilot.pause()
        assert isinstance(app.screen, WorldTrace)
        await pilot.press("ctrl+q")


async def test_world_trace_shows_fired_and_skipped_entries() -> None:
    app = make_app(["You wait."])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_story(pilot)
        await _play_a_turn(pilot)
        await pilot.press("f4")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, WorldTrace)
        lore = app.session.last_lore
        table = screen.query_one(DataTable)
        assert table.row_count == len(lore.trace)
        fired = [t for t in lore.trace if t.status == "activated"]
        assert fired and f"{len(fired)} fired" in screen.summary()
        await pilot.press("a")  # fired only
        assert table.row_count == len(fired)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+q")


async def test_notes_are_saved_with_the_story_and_reach_the_prompt() -> None:
    app = make_app(["You wait."])
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_story(pilot)
        await pilot.press("f5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, NotesScreen)
        screen.query_one("#note-text", TextArea).text = "Keep the fog thick. [style: gothic]"
        screen.query_one("#note-depth", Input).value = "2"
        screen.query_one("#memory", TextArea).text = "The bell has not rung in forty years."
        screen.query_one("#persona-name", Input).value = "Ada"
        await pilot.press("ctrl+s")
        await pilot.pause()
        st = app.session.story.settings
        assert st.authors_note.text == "Keep the fog thick. [style: gothic]" and st.authors_note.depth == 2
        assert st.memory == "The bell has not rung in forty years." and st.persona.name == "Ada"
        await _play_a_turn(pilot, "listen")
        prompt = app.session.last_prompt.text
        assert "Keep the fog thick. [style: gothic]" in prompt and "forty years" in prompt
        await pilot.press("ctrl+q")


async def test_help_and_command_palette_list_every_action() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await wait_story(pilot)
        await pilot.press("f1")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == len(ACTIONS)
        await pilot.press("escape")
        await pilot.pause()
        names = {c.title for c in app.get_system_commands(screen)}
        for _key, action, name, _text in ACTIONS:
            if action not in ("submit", "command_palette", "quit"):
                assert name in names
        # Run one palette command the way the palette does.
        command = next(c for c in app.get_system_commands(screen) if c.title == "Switch input kind")
        command.callback()
        await pilot.pause()
        assert screen.kind == "say"
        await pilot.press("ctrl+q")


async def test_notes_screen_shows_and_changes_what_the_story_remembers() -> None:
    from textual.widgets import Static

    app = make_app(["You wait."])
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_story(pilot)
        await pilot.press("f5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, NotesScreen)
        command = screen.query_one("#recall-command", Input)
        command.value = "pin The bell is cracked [and rings at dawn]."
        await command.action_submit()
        await pilot.pause()
        shown = str(screen.query_one("#recall-list", Static).render())
        assert "P1 [pinned fact] The bell is cracked [and rings at dawn]." in shown
        assert [p.text for p in app.session.memory.state.pins] == ["The bell is cracked [and rings at dawn]."]
        command.value = "unpin P1"
        await command.action_submit()
        await pilot.pause()
        assert app.session.memory.state.pins == []
        await pilot.press("ctrl+q")
