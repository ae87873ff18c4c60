"""Kill the kiosk process, start it again: the same story on the same (attract) screen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from storyteller.engines.fake import ScriptedBackend
from storyteller.tui.kiosk.attract import AttractScreen

from tests.kiosk.helpers import kiosk_app, screen_text, settle

ROOT = Path(__file__).resolve().parents[2]


def _run_and_kill(mode: str) -> str:
    proc = subprocess.Popen([sys.executable, "-m", "tests.kiosk._child", mode], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY"), proc.stderr.read() if proc.poll() is not None else line
    finally:
        proc.send_signal(signal.SIGKILL)  # a power cut, as far as the story is concerned
        proc.wait(timeout=30)
    return line.split()[1]


async def test_killed_after_a_turn_comes_back_to_the_same_story_and_screen() -> None:
    assert _run_and_kill("done") == "AttractScreen"
    async with kiosk_app(["unused"]) as (app, pilot, clock):
        assert isinstance(app.screen, AttractScreen)
        story = app.controller.session.story
        assert story.name == "cafe" and not story.read_only
        texts = [(m.head.author, m.text) for m in story.messages()]
        assert texts[-2:] == [("kiosk:ada", "open the door"), ("Narrator of Hollowmere", "The door opens onto a garden.")]
        shown = screen_text(app)
        assert "The door opens onto a garden." in shown and "ada, " in shown
        assert "Press any key" in shown


async def test_killed_mid_reply_finishes_the_visitors_turn_after_restart() -> None:
    assert _run_and_kill("mid") == "VisitorScreen"
    backend = ScriptedBackend(["The hinges sing."])
    async with kiosk_app(backend=backend) as (app, pilot, clock):
        assert isinstance(app.screen, AttractScreen)
        await settle(app, pilot)
        messages = app.controller.messages()
        assert (messages[-2].head.author, messages[-2].text) == ("kiosk:ada", "open the door")
        assert messages[-1].text == "The hinges sing."
        assert "The hinges sing." in screen_text(app)
        assert len(backend.requests) == 1
