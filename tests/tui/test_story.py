"""The story screen's main flow on the scripted engine."""

from __future__ import annotations

from storyteller.session import GenerationFinished, GenerationStarted
from storyteller.tui.messages import SessionEventReceived
from storyteller.tui.widgets.transcript import MessageView, Transcript
from tests.tui.conftest import make_app, settle, wait_story


async def test_first_run_plays_the_bundled_adventure() -> None:
    seen: list = []
    app = make_app(["The ferryman nods and points at the bell."])
    async with app.run_test(size=(80, 24), message_hook=seen.append) as pilot:
        screen = await wait_story(pilot)
        assert screen.mode == "adventure" and screen.kind == "do"
        transcript = screen.query_one(Transcript)
        assert [v.message.head.kind for v in transcript.views] == ["greeting"]
        await pilot.click("#prompt-input")
        await pilot.press(*"ring the bell", "enter")
        await settle(pilot)
        kinds = [v.message.head.kind for v in transcript.views]
        assert kinds == ["greeting", "do", "generation"]
        assert transcript.views[1].text == "> You ring the bell."
        assert transcript.views[2].text == "The ferryman nods and points at the bell."
        assert not transcript.views[2].streaming
        events = [type(m.event) for m in seen if isinstance(m, SessionEventReceived)]
        assert GenerationStarted in events and events[-1] is GenerationFinished
        assert "fake" in screen.status.line and "ctx " in screen.status.line
        await pilot.press("ctrl+q")
    assert app.return_value == 0
    assert app.session is None  # closed on the way out


async def test_retry_swipe_undo_redo_edit() -> None:
    app = make_app(["First answer.", "Second answer.", "Third answer."])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await wait_story(pilot)
        session = screen.session
        await pilot.press(*"look", "enter")
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        transcript = screen.transcript
        assert transcript.views[-1].text == "Second answer."
        assert transcript.views[-1].counter == "2/2"
        await pilot.press("alt+left")
        await settle(pilot)
        assert transcript.views[-1].text == "First answer." and transcript.views[-1].counter == "1/2"
        await pilot.press("alt+right")
        await settle(pilot)
        assert transcript.views[-1].text == "Second answer."
        await pilot.press("alt+right")  # past the last: a new one
        await settle(pilot)
        assert transcript.views[-1].text == "Third answer." and transcript.views[-1].counter == "3/3"
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert [v.message.head.kind for v in transcript.views] == ["greeting", "do"]
        await pilot.press("ctrl+y")
        await settle(pilot)
        assert transcript.views[-1].text == "Third answer."
        await pilot.press("f2")
        await pilot.pause()
        editor = app.screen.query_one("TextArea")
        editor.text = "An edited answer with [OOC: brackets]."
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert transcript.views[-1].text == "An edited answer with [OOC: brackets]."
        assert session.path()[-1].text == "An edited answer with [OOC: brackets]."
        await pilot.press("ctrl+n")  # continue
        await settle(pilot)
        assert transcript.views[-1].text.startswith("An edited answer with [OOC: brackets].")
        assert len(transcript.views[-1].message.nodes) == 2
        await pilot.press("ctrl+q")


async def test_kinds_cycle_and_stop_keeps_partial_text() -> None:
    long_reply = " ".join(f"word{i}" for i in range(400))
    app = make_app([long_reply], delay=0.005)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await wait_story(pilot)
        await pilot.press("ctrl+t")
        assert screen.kind == "say"
        await pilot.press("ctrl+t", "ctrl+t")
        assert screen.kind == "do"
        await pilot.press(*"wait", "enter")
        # Wait for the first flush of streamed text, then stop.
        for _ in range(200):
            await pilot.pause(0.01)
            if screen.flushes:
                break
        assert screen.transcript.stream_view is not None and screen.transcript.stream_view.streaming
        await pilot.press("escape")
        await settle(pilot)
        last = screen.session.path()[-1]
        assert last.kind == "generation" and last.generation.interrupted
        assert 0 < len(last.text.split()) < 400
        assert not screen.transcript.views[-1].streaming
        await pilot.press("ctrl+q")


async def test_markup_in_model_text_is_shown_literally() -> None:
    app = make_app(["[bold]not bold[/bold] and [OOC: a note]"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await wait_story(pilot)
        await pilot.press(*"x", "enter")
        await settle(pilot)
        view = screen.transcript.views[-1]
        assert isinstance(view, MessageView)
        rendered = "".join(s.text for s in app.console.render(view.render(), app.console.options.update_width(70)))
        assert "[bold]not bold[/bold]" in rendered and "[OOC: a note]" in rendered
        await pilot.press("ctrl+q")
