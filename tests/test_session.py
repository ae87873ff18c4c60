"""The play loop with the scripted backend (flow) and the real engine (cache, resume)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from storyteller.config import Settings
from storyteller.engines.base import BackendInfo, GenerationRequest, TextChunk
from storyteller.engines.fake import ScriptedBackend
from storyteller.errors import EngineConnectionError, StoryError
from storyteller.paths import get_paths
from storyteller.session import (
    GenerationFailed,
    GenerationFinished,
    GenerationStarted,
    PromptBuilt,
    StoryChanged,
    TextReceived,
)
from storyteller.session import open_session


def _settings(**engine) -> Settings:
    settings = Settings()
    settings.engine.kv_state = "off"
    for key, value in engine.items():
        setattr(settings.engine, key, value)
    return settings


async def _open(backend, name: str = "tale", **kwargs):
    return await open_session(name, settings=kwargs.pop("settings", _settings()), paths=get_paths().ensure(),
                              backend=backend, **kwargs)


async def test_new_story_opens_the_bundled_adventure() -> None:
    session = await _open(ScriptedBackend())
    try:
        assert session.story.settings.mode == "adventure"
        assert session.character_name == "Narrator of Hollowmere"
        assert [w.lower() for w in session.story.settings.worlds] == ["hollowmere"]
        assert session.parts.books and session.parts.books[0].name == "Hollowmere"
        path = session.path()
        assert len(path) == 1 and path[0].kind == "greeting" and "Hollowmere" in path[0].text
    finally:
        await session.close()


async def test_a_turn_streams_and_saves_the_reply() -> None:
    fake = ScriptedBackend(["The notice reads: ferry closed until the bell."])
    session = await _open(fake)
    events = []
    session.subscribe(events.append)
    try:
        reply = await session.submit("read the notice", "do")
        assert reply is not None and reply.text == "The notice reads: ferry closed until the bell."
        assert reply.generation.engine == "fake" and not reply.generation.interrupted
        kinds = [type(e) for e in events]
        assert kinds[:3] == [StoryChanged, GenerationStarted, PromptBuilt]
        assert kinds[-1] is GenerationFinished
        streamed = [e for e in events if isinstance(e, TextReceived)]
        assert len(streamed) > 3 and streamed[-1].text == reply.text
        prompt = fake.requests[-1].prompt
        assert "> You read the notice." in prompt  # Do input, adventure format
        assert "\n>" in fake.requests[-1].sampling.stop
        assert [n.kind for n in session.path()] == ["greeting", "do", "generation"]
    finally:
        await session.close()


async def test_world_info_fires_and_is_explained() -> None:
    session = await _open(ScriptedBackend(["You wait."]))
    try:
        await session.submit("ask the boy about the bell", "do")
        lore = session.last_lore
        assert lore is not None and lore.activated, "Hollowmere's entries should fire on 'bell'"
        assert any("bell" in (e.matched_key or "").lower() for e in lore.activated)
        assert any(seg.kind == "world_info" for seg in session.last_prompt.segments)
    finally:
        await session.close()


async def test_a_leaked_player_action_is_cut() -> None:
    fake = ScriptedBackend(["The door creaks open.\n> You step inside and take the lamp."], honour_stops=False)
    session = await _open(fake)
    try:
        reply = await session.submit("open the door", "do")
        assert reply.text == "The door creaks open."
        assert fake.requests[-1].cancel.is_set(), "the engine must be told to stop at once"
    finally:
        await session.close()


async def test_retry_swipe_continue_edit_undo_redo_keep_everything() -> None:
    fake = ScriptedBackend(["First reply.", "Second reply.", " And more.", "Third reply."])
    session = await _open(fake)
    try:
        first = await session.submit("look", "do")
        second = await session.regenerate()
        assert second.parent == first.parent and session.swipe_position() == (1, 2)
        back = await session.swipe(-1)
        assert back.id == first.id and session.swipe_position() == (0, 2)
        await session.swipe(1)
        more = await session.continue_()
        assert more.kind == "continue"
        assert session.story.messages()[-1].text == "Second reply. And more."
        edited = session.edit(second.id, "Second reply, edited.")
        assert session.story.messages()[-1].head.id == edited.id
        assert session.story.node(second.id).text == "Second reply."  # the old text stays
        third = await session.swipe(1)  # past the last alternative: a new one
        assert third.text == "Third reply."
        texts = {n.text for n in session.story.nodes.values()}
        assert {"First reply.", "Second reply.", " And more.", "Third reply.", "Second reply, edited."} <= texts
        before = len(session.path())
        session.undo()
        assert len(session.path()) == before - 1
        session.redo()
        assert len(session.path()) == before
    finally:
        await session.close()


async def test_stop_keeps_the_partial_reply() -> None:
    fake = ScriptedBackend(["one two three four five six seven eight nine ten"], delay=0.01)
    session = await _open(fake)
    seen = asyncio.Event()

    def listener(event) -> None:
        if isinstance(event, TextReceived) and len(event.text.split()) >= 3:
            seen.set()

    session.subscribe(listener)
    try:
        task = asyncio.create_task(session.submit("wait", "do"))
        await asyncio.wait_for(seen.wait(), 10)
        with pytest.raises(StoryError, match="being generated"):
            await session.submit("again", "do")
        session.stop()
        reply = await asyncio.wait_for(task, 10)
        assert reply is not None and reply.generation.interrupted
        assert reply.generation.finish_reason == "cancelled"
        assert 3 <= len(reply.text.split()) < 10
    finally:
        await session.close()


class _Breaks:
    """A backend whose server drops the connection after two words."""

    def info(self) -> BackendInfo:
        return BackendInfo(engine="fake", model="breaks", context_length=4096, capabilities=frozenset({"text"}))

    async def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def stream(self, request: GenerationRequest) -> AsyncIterator:
        yield TextChunk("Half a")
        yield TextChunk(" sentence")
        raise EngineConnectionError("the server at http://127.0.0.1:9 closed the connection", partial_text="Half a sentence")

    async def aclose(self) -> None:
        pass


async def test_engine_failure_keeps_text_and_reports() -> None:
    session = await _open(_Breaks())
    events = []
    session.subscribe(events.append)
    try:
        reply = await session.submit("listen", "do")
        assert reply.text == "Half a sentence" and reply.generation.interrupted
        failed = [e for e in events if isinstance(e, GenerationFailed)]
        assert failed and "closed the connection" in failed[0].message
    finally:
        await session.close()


async def test_story_reopens_with_every_turn() -> None:
    session = await _open(ScriptedBackend(["Reply one.", "Reply two."]), "saved")
    await session.submit("first", "do")
    await session.submit("second", "say")
    texts = [n.text for n in session.path()]
    await session.close()
    again = await _open(ScriptedBackend(), "saved")
    try:
        assert [n.text for n in again.path()] == texts
    finally:
        await again.close()


async def test_second_opener_is_read_only() -> None:
    first = await _open(ScriptedBackend(), "shared")
    try:
        second = await open_session("shared", settings=_settings(), paths=get_paths(), backend=ScriptedBackend())
        try:
            assert second.story.read_only
            with pytest.raises(StoryError, match="read-only"):
                await second.submit("hello", "say")
        finally:
            await second.close()
    finally:
        await first.close()


async def test_chat_mode_with_a_bundled_card() -> None:
    fake = ScriptedBackend(["Hello, traveller."])
    session = await _open(fake, "chat", card="wren_calloway")
    try:
        assert session.story.settings.mode == "chat"
        reply = await session.submit("Hi!", "say")
        assert reply.author == session.character_name
        assert f"\n{session.story.settings.persona.name}:" in " ".join(fake.requests[-1].sampling.stop)
    finally:
        await session.close()


async def test_real_engine_reuses_cache_and_resumes_from_disk(smollm2_path) -> None:
    pytest.importorskip("llama_cpp")
    from storyteller.engines.llamacpp import LlamaCppBackend

    settings = _settings(n_ctx=2048, kv_state="turn")
    settings.sampling.max_tokens = 16
    settings.sampling.seed = 3
    backend = await LlamaCppBackend.open(smollm2_path, settings.engine)
    session = await _open(backend, "real", settings=settings)
    try:
        await session.submit("look around", "do")
        second = await session.submit("walk to the notice", "do")
        assert second.generation.tokens_reused > 0
        assert (session.story.folder / "engine.kv").is_file()
    finally:
        await session.close()
        await backend.aclose()
    cold = await LlamaCppBackend.open(smollm2_path, settings.engine)
    again = await _open(cold, "real", settings=settings)
    try:
        third = await again.submit("read it", "do")
        assert third.generation.tokens_reused > 200, "the saved KV state should spare re-reading the story"
    finally:
        await again.close()
        await cold.aclose()


async def test_story_preset_and_overrides_reach_the_engine() -> None:
    from storyteller.presets import save_preset

    save_preset("Terse", {"temperature": 0.3, "max_tokens": 17}, get_paths())
    fake = ScriptedBackend(["Fine."])
    session = await _open(fake, "preset")
    try:
        session.story.set_settings(sampler_preset="Terse", sampler_overrides={"top_k": 7})
        await session.submit("wait", "do")
        sampling = fake.requests[-1].sampling
        assert (sampling.temperature, sampling.max_tokens, sampling.top_k) == (0.3, 17, 7)
        assert session.last_prompt.budget.reserved == 17
    finally:
        await session.close()
