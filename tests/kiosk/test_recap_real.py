"""The recap on the real engine: written through the session's own road, kept across a restart.

With llama.cpp every stream ends by setting the request's cancel flag; a recap that read that
flag as "the visitor interrupted" was thrown away every time, so the attract screen never showed
one. This walks the kiosk as it runs: two visitor turns, the recap, a restart.
"""

from __future__ import annotations

import json

from storyteller.config import Settings
from storyteller.kiosk.archive import STATE_FILE

from tests.kiosk.helpers import kiosk_app, screen_text, settle, type_text


async def _turn(app, pilot, text: str) -> None:
    app.controller.cooldown_until = 0
    await pilot.press("a", "enter")
    await type_text(pilot, text)
    await pilot.press("enter")
    await settle(app, pilot)
    await pilot.press("enter")
    await settle(app, pilot)


async def test_recap_every_two_turns_is_written_by_the_real_model_and_kept(embedded_backend) -> None:
    settings = Settings(engine={"kind": "fake", "kv_state": "off"}, sampling={"max_tokens": 40})
    async with kiosk_app(backend=embedded_backend, settings=settings, recap_every=2, recap_tokens=32) as (app, pilot, _):
        story = app.controller.session.story
        await _turn(app, pilot, "open the gate")
        await _turn(app, pilot, "walk to the lake")
        await settle(app, pilot)
        recap = app.controller.state.recap
        assert recap, "the recap is written after two visitor turns"
        folder = story.folder
        assert all(recap not in node.text for node in story.tree.nodes.values()), "nothing added to the story"
    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    assert state["recap"] == recap and state["recap_turn"] == 2
    async with kiosk_app(backend=embedded_backend, settings=settings, recap_every=2) as (app, pilot, _):
        assert app.controller.state.recap == recap
        assert f"The story so far: {recap}" in " ".join(screen_text(app).split())
