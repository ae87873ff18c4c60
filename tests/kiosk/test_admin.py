"""The operator's actions behind the PIN: undo, hide, edit, export, settings, reset."""

from __future__ import annotations

import tomllib

from storyteller.tui.kiosk.admin import ACTIONS, AdminScreen
from storyteller.tui.kiosk.admin_forms import EditScreen, PassagePicker, SettingsScreen
from storyteller.tui.screens.dialogs import Confirm
from storyteller.kiosk.settings import verify_pin
from storyteller.paths import get_paths
from storyteller.story.store import StoryStore

from tests.kiosk.helpers import PIN, kiosk_app, settle, type_text


async def _visitor_turn(app, pilot, name: str, text: str) -> None:
    await pilot.press("a")
    await type_text(pilot, name)
    await pilot.press("enter")
    await type_text(pilot, text)
    await pilot.press("enter")
    await settle(app, pilot)
    await pilot.press("enter")
    await pilot.pause()
    app.controller.cooldown_until = 0


async def _admin(app, pilot, action: str) -> None:
    if not isinstance(app.screen, AdminScreen):
        await pilot.press("f12")
        await type_text(pilot, PIN)
        await pilot.press("enter")
        await pilot.pause()
    index = [key for key, _ in ACTIONS].index(action)
    await pilot.press("home", *["down"] * index, "enter")
    await pilot.pause()


def _status(app) -> str:
    return str(app.screen.query_one("#admin-status").render())


async def test_undo_last_turn_removes_the_visitor_input_and_reply() -> None:
    async with kiosk_app(["One.", "Two."]) as (app, pilot, clock):
        await _visitor_turn(app, pilot, "ada", "walk")
        await _visitor_turn(app, pilot, "bo", "run")
        texts = [m.text for m in app.controller.messages()]
        assert texts[-2:] == ["run", "Two."]
        await _admin(app, pilot, "undo")
        assert [m.text for m in app.controller.messages()] == texts[:-2]
        assert "Undid the last turn (2 passage(s))" in _status(app)
        # nothing is deleted: the nodes are still in the story
        assert any(n.text == "Two." for n in app.controller.session.story.nodes.values())


async def test_hide_and_edit_a_passage() -> None:
    async with kiosk_app(["A rude reply.", "Fine."]) as (app, pilot, clock):
        await _visitor_turn(app, pilot, "ada", "look")
        await _admin(app, pilot, "hide")
        assert isinstance(app.screen, PassagePicker)
        await pilot.press("enter")  # the last passage is highlighted
        await pilot.pause()
        assert isinstance(app.screen, AdminScreen)
        assert "A rude reply." not in [m.text for m in app.controller.messages()]
        assert "Hidden" in _status(app)

        await _admin(app, pilot, "edit")
        await pilot.press("enter")  # the last passage now: the visitor's "look"
        await pilot.pause()
        assert isinstance(app.screen, EditScreen)
        await pilot.press("end")
        await type_text(pilot, " around")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.controller.messages()[-1].text == "look around"
        assert app.controller.messages()[-1].head.author == "kiosk:ada"  # attribution survives an edit


async def test_export_writes_markdown_and_jsonl_with_attribution() -> None:
    async with kiosk_app(["The moon rises."]) as (app, pilot, clock):
        await _visitor_turn(app, pilot, "ada", "wave")
        await _admin(app, pilot, "export")
        folder = get_paths().data_dir / "kiosk-archive"
        md = sorted(folder.glob("cafe-*.md"))
        jsonl = sorted(folder.glob("cafe-*.jsonl"))
        assert len(md) == 1 and len(jsonl) == 1
        text = md[0].read_text(encoding="utf-8")
        assert "> wave" in text and "*— ada, " in text and "The moon rises." in text
        assert "wave" in jsonl[0].read_text(encoding="utf-8")
        assert str(folder) in _status(app)


async def test_settings_are_saved_to_the_config_file_and_applied() -> None:
    async with kiosk_app() as (app, pilot, clock):
        await _admin(app, pilot, "settings")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#cooldown_seconds").value = "abc"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)  # refused, with a message
        assert "whole number" in str(screen.query_one("#problem").render())
        screen.query_one("#cooldown_seconds").value = "45"
        screen.query_one("#words").value = "gloom, doom"
        screen.query_one("#moderation").value = True
        screen.query_one("#new_pin").value = "9999"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, AdminScreen)
        assert app.controller.kiosk.cooldown_seconds == 45
        assert app.controller.moderator.active
        saved = tomllib.loads(app.config_file.read_text(encoding="utf-8"))
        assert saved["cooldown_seconds"] == 45
        assert saved["moderation"]["words"] == ["gloom", "doom"]
        assert verify_pin("9999", saved["pin_hash"]) and "9999" not in app.config_file.read_text()


async def test_reset_archives_the_old_story_and_starts_a_new_one() -> None:
    async with kiosk_app(["Old tale."]) as (app, pilot, clock):
        await _visitor_turn(app, pilot, "ada", "begin")
        old_nodes = len(app.controller.session.story.nodes)
        await _admin(app, pilot, "reset")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await settle(app, pilot)
        assert "a new one has begun" in _status(app)
        store = StoryStore(get_paths().stories_dir)
        names = [info.name for info in store.list()]
        archived = [n for n in names if n.startswith("cafe-archived-")]
        assert len(archived) == 1 and "cafe" in names
        kept = store.open(archived[0], read_only=True)
        assert len(kept.nodes) == old_nodes  # the old story is whole
        kept.close()
        story = app.controller.session.story
        assert story.name == "cafe" and [m.head.kind for m in story.messages()] == ["greeting"]
        assert story.settings.mode == "adventure"
        assert not story.read_only
