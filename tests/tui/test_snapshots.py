"""Snapshots of the main screens at 80x24 (fixed story names, no times, no speeds)."""

from __future__ import annotations

from tests.tui.conftest import make_app, settle, wait_story

SIZE = (80, 24)


def test_story_screen(snap_compare) -> None:
    async def ready(pilot) -> None:
        await wait_story(pilot)
        await pilot.press("ctrl+t")  # Say

    assert snap_compare(make_app(), run_before=ready, terminal_size=SIZE)


def test_library_screen(snap_compare) -> None:
    async def ready(pilot) -> None:
        await wait_story(pilot)
        await pilot.press("f6")
        await settle(pilot)

    assert snap_compare(make_app(), run_before=ready, terminal_size=SIZE)


def test_prompt_inspector(snap_compare) -> None:
    async def ready(pilot) -> None:
        await wait_story(pilot)
        await pilot.press(*"ring the bell", "enter")
        await settle(pilot)
        await pilot.press("f3")
        await pilot.pause()

    assert snap_compare(make_app(["The bell answers."]), run_before=ready, terminal_size=SIZE)


def test_world_info_editor(snap_compare) -> None:
    async def ready(pilot) -> None:
        await wait_story(pilot)
        await pilot.press("f8")
        await settle(pilot)  # the card or worlds are read in a worker

    assert snap_compare(make_app(), run_before=ready, terminal_size=SIZE)
