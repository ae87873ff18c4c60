"""Moderation: off by default; refuses visitor input kindly; regenerates or cuts model output."""

from __future__ import annotations

from storyteller.engines.fake import ScriptedBackend
from storyteller.kiosk.moderation import Moderator
from storyteller.kiosk.settings import ModerationSettings
from storyteller.tui.kiosk.visitor import VisitorScreen

from tests.kiosk.helpers import kiosk_app, screen_text, settle, type_text

ON = {"enabled": True, "words": ["gloom"], "patterns": [r"grim+ly"]}


def test_off_by_default_and_whole_words_only() -> None:
    assert not Moderator(ModerationSettings(words=["gloom"])).active
    mod = Moderator(ModerationSettings(enabled=True, words=["ass", "dark lord"], patterns=[r"\d{3}-\d{4}"]))
    assert mod.first("a class passage") is None
    assert mod.first("you ASS") is not None
    assert mod.first("the Dark   Lord rises") is not None
    assert mod.first("ｄａｒｋ lord") is not None  # full-width letters
    assert mod.first("a\u200bss") is not None  # zero-width space hidden inside
    assert mod.first("call 555-1234 now").term == r"\d{3}-\d{4}"
    assert mod.cut("The hall is quiet. Then the dark lord speaks.") == "The hall is quiet. […]"


def test_word_file_is_read(tmp_path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# one per line\ngloom\n\n", encoding="utf-8")
    mod = Moderator(ModerationSettings(enabled=True, word_file=words))
    assert mod.first("such gloom") is not None


async def test_input_is_refused_kindly_and_nothing_is_added() -> None:
    async with kiosk_app(moderation=ON) as (app, pilot, clock):
        nodes = len(app.controller.session.story.nodes)
        await pilot.press("a", "enter")
        await type_text(pilot, "such GLOOM")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, VisitorScreen) and app.screen.stage == "write"
        assert "keep the story friendly" in screen_text(app)
        assert len(app.controller.session.story.nodes) == nodes


async def test_input_passes_when_moderation_is_off() -> None:
    async with kiosk_app(["Fine."]) as (app, pilot, clock):
        await pilot.press("a", "enter")
        await type_text(pilot, "such gloom")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.controller.messages()[-2].text == "such gloom"


async def test_flagged_output_is_regenerated_and_the_flagged_reply_hidden() -> None:
    backend = ScriptedBackend(["The knight smiles grimmly at you.", "The knight smiles kindly."])
    async with kiosk_app(backend=backend, moderation=ON) as (app, pilot, clock):
        await pilot.press("a", "enter")
        await type_text(pilot, "wave")
        await pilot.press("enter")
        await settle(app, pilot)
        story = app.controller.session.story
        assert app.controller.messages()[-1].text == "The knight smiles kindly."
        flagged = [n for n in story.nodes.values() if n.text.startswith("The knight smiles grim")]
        assert flagged and all(story.is_hidden(n.id) for n in flagged)
        assert "grimmly" not in screen_text(app)


async def test_flagged_output_is_cut_and_marked() -> None:
    backend = ScriptedBackend(["The tower is tall. A gloom falls over the town."])
    async with kiosk_app(backend=backend, moderation={**ON, "output_action": "cut"}) as (app, pilot, clock):
        await pilot.press("a", "enter")
        await type_text(pilot, "look")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.controller.messages()[-1].text == "The tower is tall. […]"
        assert "left out by the kiosk's filter" in screen_text(app)
        assert "gloom" not in screen_text(app)


async def test_regenerate_falls_back_to_cut_when_every_reply_is_flagged() -> None:
    backend = ScriptedBackend(["Such gloom here."])
    async with kiosk_app(backend=backend, moderation={**ON, "max_regenerations": 1}) as (app, pilot, clock):
        await pilot.press("a", "enter")
        await type_text(pilot, "look")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.controller.messages()[-1].text == "Such […]"
        assert len(backend.requests) == 2


def test_streamed_text_never_shows_a_flagged_word() -> None:
    from tests.kiosk.helpers import kiosk_settings

    class _Stub:
        moderator = Moderator(ModerationSettings(**ON))

    from storyteller.kiosk.controller import KioskController

    shown = KioskController.shown_text(_Stub(), "The glo")  # type: ignore[arg-type]
    assert shown == "The "  # a half word is held back until it is complete
    assert KioskController.shown_text(_Stub(), "The gloom is here") == "The "  # type: ignore[arg-type]
    assert kiosk_settings().moderation.enabled is False
