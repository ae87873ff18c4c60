"""The session as the one road to the engine: asides, the frozen parts and the changes made
through Session methods, the pure turn builder, and the engine's declared capabilities."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from storyteller.config import Settings
from storyteller.engines.base import BackendInfo
from storyteller.engines.capabilities import Capabilities, KVPersistence, TokenBans, Tokenizer, completion_target
from storyteller.engines.fake import ScriptedBackend
from storyteller.paths import get_paths
from storyteller.session import build_turn, open_session
from storyteller.story.model import Mode, Node, kinds_for_mode


def _settings() -> Settings:
    return Settings(engine={"kind": "fake", "kv_state": "off"})


async def _open(backend, name: str = "road", **kwargs):
    return await open_session(name, settings=_settings(), paths=get_paths().ensure(), backend=backend, **kwargs)


async def test_aside_answers_from_the_story_and_writes_nothing() -> None:
    backend = ScriptedBackend(["A bell rang.", "So far: a bell rang at the ferry."])
    session = await _open(backend)
    events = []
    try:
        await session.submit("ring the bell", "do")
        nodes = dict(session.story.tree.nodes)
        session.subscribe(events.append)
        text = await session.aside("(Tell a newcomer what happened so far.)", max_tokens=40)
        assert text == "So far: a bell rang at the ferry."
        assert session.story.tree.nodes == nodes and events == []
        request = backend.requests[-1]
        assert request.sampling.max_tokens == 40
        assert request.prompt.index("ring the bell") < request.prompt.index("Tell a newcomer what happened")
    finally:
        await session.close()


async def test_aside_asks_again_when_nothing_comes_and_a_stop_ends_it() -> None:
    backend = ScriptedBackend(["The gate opens.", "", "  ", "A gate opened."])
    session = await _open(backend)
    try:
        await session.submit("open the gate", "do")
        assert await session.aside("(Recap.)") == "A gate opened."
        assert len(backend.requests) == 4
    finally:
        await session.close()


async def test_stop_aside_ends_it_with_nothing_and_a_reply_can_follow() -> None:
    from tests.kiosk.helpers import GatedBackend

    backend = GatedBackend(["one two three four five"])
    session = await _open(backend)
    try:
        task = asyncio.create_task(session.aside("(Recap.)"))
        await asyncio.sleep(0.05)
        session.stop_aside()
        backend.gate.set()
        assert await task == ""
        reply = await session.submit("wait", "do")
        assert reply is not None and reply.text == "one two three four five"
    finally:
        await session.close()


async def test_parts_are_frozen_and_change_through_the_session(tmp_path) -> None:
    session = await _open(ScriptedBackend())
    try:
        with pytest.raises(dataclasses.FrozenInstanceError):
            session.parts.card = None  # type: ignore[misc]
        before = session.parts
        session.reload_lore()
        assert session.parts is not before and session.parts.books[0].name == before.books[0].name
        world = tmp_path / "Moors.json"
        world.write_text('{"name": "Moors", "entries": {"0": {"uid": 0, "key": ["moor"], "content": '
                         '"The moors are wide.", "constant": true}}}', encoding="utf-8")
        session.attach_world(str(world))
        assert str(world) in session.story.settings.worlds
        assert any(book.name == "Moors" for book in session.parts.books)
        prompt = await session.next_prompt()
        assert "The moors are wide." in prompt.text
        sampling = session.apply_sampling(overrides={"temperature": 0.2})
        assert sampling.temperature == 0.2 and session.sampling().temperature == 0.2
        assert session.story.settings.sampler_overrides == {"temperature": 0.2}
    finally:
        await session.close()


async def test_build_turn_is_pure_and_is_what_the_next_turn_sends() -> None:
    backend = ScriptedBackend(["The fog lifts."])
    session = await _open(backend)
    try:
        story = session.story
        settings_before = story.settings.model_dump()
        messages = story.messages()
        first, _ = await build_turn(session.parts, story.name, story.settings, messages, continuing=False)
        second, _ = await build_turn(session.parts, story.name, story.settings, messages, continuing=False)
        assert first.to_dict() == second.to_dict() and story.settings.model_dump() == settings_before
        await session.submit("", "do")
        assert backend.requests[-1].prompt == first.text
    finally:
        await session.close()


async def test_use_template_changes_the_next_prompt_in_place_and_is_saved() -> None:
    from storyteller.errors import FormatError

    backend = ScriptedBackend(["The fog parts.", "It lifts."])
    session = await _open(backend, "templated")
    try:
        assert (await session.next_prompt()).template == "none"  # auto: the fake has no chat template
        assert session.use_template("ChatML") == "chatml"
        assert session.story.settings.template == "ChatML"
        prompt = await session.next_prompt()
        assert prompt.template == "chatml" and "<|im_start|>" in prompt.text
        await session.submit("look", "do")
        assert "<|im_start|>" in backend.requests[-1].prompt
        builder = session.parts.builder
        with pytest.raises(FormatError, match="unknown instruct template 'klingon'"):
            session.use_template("klingon")
        assert session.story.settings.template == "ChatML" and session.parts.builder is builder  # nothing changed
    finally:
        await session.close()
    # Saved with the story: opened again, it uses the template; "auto" goes back to the model's.
    again = await _open(ScriptedBackend(["Hm."]), "templated")
    try:
        assert (await again.next_prompt()).template == "chatml"
        assert again.use_template("auto") == "none" and again.story.settings.template is None
        assert "<|im_start|>" not in (await again.next_prompt()).text
    finally:
        await again.close()


def test_capabilities_are_declared_flags_read_like_a_set() -> None:
    caps = ScriptedBackend().info().capabilities
    assert isinstance(caps, Capabilities) and caps.chat and caps.text and caps.exact_tokens
    assert "chat" in caps and {"text", "chat"} <= caps and "grammar" not in caps
    with pytest.raises(ValueError, match="unknown engine capabilities"):
        Capabilities.of({"telepathy"})
    info = BackendInfo(engine="x", model="m", context_length=1024, capabilities=frozenset({"chat"}))
    assert info.capabilities == Capabilities(chat=True)
    assert completion_target(info.capabilities) == "messages"
    assert completion_target(Capabilities(text=True, chat=True)) == "text"
    assert completion_target(Capabilities(text=True, chat=True), prefer_chat=True) == "messages"
    full = Capabilities(text=True, chat=True, grammar=True)
    assert full.without("chat", "grammar") == Capabilities(text=True) and full.grammar  # a copy
    with pytest.raises(ValueError, match="unknown engine capabilities"):
        full.without("telepathy")


def test_optional_features_are_protocols() -> None:
    fake = ScriptedBackend()
    assert not isinstance(fake, Tokenizer) and not isinstance(fake, KVPersistence) and not isinstance(fake, TokenBans)


def test_the_story_model_owns_the_input_rules() -> None:
    assert kinds_for_mode(Mode.ADVENTURE) == ("do", "say", "story")
    assert kinds_for_mode("story") == ("story",) and kinds_for_mode("chat") == ("say",)
    visitor = Node.make("hello", author="kiosk: Ada ", kind="say", parent=None)
    assert visitor.is_player and visitor.is_user and visitor.visitor_name == "Ada"
    reply = Node.make("hi", author="Mira", kind="generation", parent=None)
    assert not reply.is_player and reply.visitor_name is None


async def test_library_lists_starts_and_branches() -> None:
    from storyteller.session import Library

    paths = get_paths().ensure()
    library = Library(paths)
    cards = library.cards()
    assert any(bundled and "Hollowmere" in name for name, _path, _error, bundled in cards)
    assert any(name.lower() == "hollowmere" for name, *_ in library.worlds())
    assert library.default_story_name(None) == "adventure"
    session = await _open(ScriptedBackend(["The bell rings."]), name="adventure")
    try:
        await session.submit("ring the bell", "do")
        assert library.default_story_name(None) == "adventure"
        assert library.unique_story_name("adventure") != "adventure"
        library.branch(session, "adventure-branch")
    finally:
        await session.close()
    assert {name for name, _modified in library.stories()} == {"adventure", "adventure-branch"}
    assert library.find_card(str(cards[0][1])) == cards[0][1]
