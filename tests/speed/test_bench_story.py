"""The benchmarks' recorder: a turn's generations and the side-road ones (summaries) kept apart."""

from __future__ import annotations

from bench import _story
from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.paths import get_paths
from storyteller.session_setup import open_session


async def test_asides_are_counted_apart_from_the_turn() -> None:
    settings = Settings()
    settings.engine.kv_state = "off"
    recorder = _story.RecordingBackend(ScriptedBackend(["Water laps at the stilts.", "A summary of the scene."]))
    session = await open_session("asides", settings=settings, paths=get_paths().ensure(), backend=recorder)  # type: ignore[arg-type]
    try:
        _story.mark_asides(session, recorder)
        await session.submit("wait and listen", "do")
        assert len(recorder.finished) == 1 and not recorder.asides
        text = await session.aside("Summarize the scene.", max_tokens=16)
        assert text == "A summary of the scene."
        assert len(recorder.finished) == 1 and len(recorder.asides) == 1
        assert recorder.in_aside == 0
    finally:
        await session.close()


def test_settings_follow_the_memory_switch() -> None:
    assert _story.settings_for("fake", None).memory.enabled
    assert not _story.settings_for("fake", None, memory=False).memory.enabled
