"""Memory at the kiosk, on the real engine: a visitor's turn in a story that outgrew the context
writes a scene summary through the session's side road, beside the story (never into its tree),
and the next prompt carries it with the pinned facts.

The kiosk plays through the same Session as the app, so summaries run there after every reply;
this walks it as a visitor would (Pilot), with a long story already on the table.
"""

from __future__ import annotations

import json

from storyteller.config import Settings
from storyteller.memory.hook import trimmed_of
from storyteller.memory.store import FILE

from tests.kiosk.helpers import kiosk_app, settle, type_text

SCENERY = ("The fog thins for a moment over the rooftops of the town, then closes again, and water laps at "
           "the pilings below while a lamp burns in a window where someone mends a net.")


async def test_a_visitor_turn_writes_a_summary_beside_the_story(embedded_backend) -> None:
    settings = Settings(engine={"kind": "fake", "kv_state": "off"}, sampling={"max_tokens": 24, "seed": 5},
                        memory={"jobs_per_turn": 1, "summary_tokens": 40})
    async with kiosk_app(backend=embedded_backend, settings=settings) as (app, pilot, _):
        session = app.controller.session
        story = session.story
        story.add_node("The ferryman tells you his name is Oswin Tarrow.", author="kiosk:Ada", kind="story")
        for turn in range(40):
            story.add_node(f"walk on, step {turn}", author="kiosk:Ada", kind="do")
            story.add_node(SCENERY, author=session.character_name, kind="generation")
        pin = session.memory.state.pin_fact("Your sister Wren waits in Carrowmoor.", anchor=None)
        session.memory.save()
        before = set(story.nodes)
        app.controller.cooldown_until = 0
        await pilot.press("a", "enter")
        await type_text(pilot, "look around")
        await pilot.press("enter")
        await settle(app, pilot)
        assert trimmed_of(session.last_prompt) > 8, "the story outgrew the 2,048-token context"
        assert session.last_memory is not None and session.last_memory.written, session.last_memory
        summary = session.memory.state.summaries[0]
        assert summary.text.strip()
        # Beside the story: the tree gained the visitor's input and the reply, nothing else.
        added = [n for n in story.nodes.values() if n.id not in before]
        assert sorted(n.kind for n in added) == ["do", "generation"], [n.kind for n in added]
        assert all(summary.text not in n.text for n in story.nodes.values())
        saved = json.loads((story.folder / FILE).read_text(encoding="utf-8"))
        assert summary.text in [s["text"] for s in saved["summaries"]]
        # The next visitor's prompt carries the summary and the pin.
        prompt = await session.next_prompt()
        assert f"summary:{summary.id}" in {s.source for s in prompt.segments if s.kind == "summary"}
        assert f"pin:{pin.id}" in {s.source for s in prompt.segments if s.kind == "pinned"}
