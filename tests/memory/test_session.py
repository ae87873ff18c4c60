"""Memory in a real session on the bundled model: summaries written through the side road, never
into the story tree, and carried by the next prompt; pins in every prompt."""

from __future__ import annotations


from storyteller.config import Settings
from storyteller.memory.hook import trimmed_of
from storyteller.paths import get_paths
from storyteller.session import open_session

SCENERY = ("The fog thins for a moment over the rooftops of the town, then closes again, and water laps at "
           "the pilings below while a lamp burns in a window where someone mends a net.")


def _settings() -> Settings:
    settings = Settings()
    settings.sampling = settings.sampling.model_copy(update={"max_tokens": 24, "seed": 5})
    settings.memory.jobs_per_turn = 1
    settings.memory.summary_tokens = 40
    return settings


async def test_summaries_are_written_beside_the_story_and_reach_the_prompt(embedded_backend) -> None:
    session = await open_session("long", settings=_settings(), paths=get_paths().ensure(), backend=embedded_backend)
    story = session.story
    try:
        story.add_node("The ferryman tells you his name is Oswin Tarrow.", author="user", kind="story")
        for turn in range(40):
            story.add_node(f"walk on, step {turn}", author="user", kind="do")
            story.add_node(SCENERY, author=session.character_name, kind="generation")
        pin = session.memory.state.pin_fact("Your sister Wren waits in Carrowmoor.", anchor=None)
        session.memory.save()
        before = dict(story.nodes)
        reply = await session.submit("look around", "do")
        assert reply is not None
        assert trimmed_of(session.last_prompt) > 8, "the story outgrew the 2,048-token context"
        assert session.last_memory is not None and session.last_memory.written, session.last_memory
        # The summary went beside the story: the tree gained only the turn's input and reply.
        added = [n for n in story.nodes.values() if n.id not in before]
        assert [n.kind for n in added] == ["do", "generation"]
        summary = session.memory.state.summaries[0]
        assert all(summary.text not in n.text and "Summarize" not in n.text for n in story.nodes.values())
        # Whatever the 135M model wrote, the name it covered is kept (in its words or on the Details line).
        assert "Oswin Tarrow" in summary.text
        # The next prompt carries it (its messages have left the window) and the pin.
        prompt = await session.next_prompt()
        kinds = {s.kind: s for s in prompt.segments}
        assert "[Pinned: Your sister Wren waits in Carrowmoor.]" in (prompt.text or "")
        assert f"summary:{summary.id}" in {s.source for s in prompt.segments if s.kind == "summary"}
        assert "Oswin Tarrow" in (prompt.text or "")
        assert kinds["pinned"].source == f"pin:{pin.id}"
    finally:
        await session.close()


async def test_memory_off_sends_nothing(embedded_backend) -> None:
    settings = _settings()
    settings.memory.enabled = False
    session = await open_session("off", settings=settings, paths=get_paths().ensure(), backend=embedded_backend)
    try:
        session.memory.state.pin_fact("A fact.", anchor=None)
        prompt = await session.next_prompt()
        assert not any(s.kind in ("pinned", "summary") for s in prompt.segments)
    finally:
        await session.close()
