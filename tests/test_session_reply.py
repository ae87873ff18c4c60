"""A reply's own rules inside the play loop, with the scripted engine: the narrator's turn ends
where it starts playing the player, labels are dropped, unfinished sentences are trimmed and the
cut text comes back on Continue."""

from __future__ import annotations

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.paths import get_paths
from storyteller.session import TextReceived, open_session
from storyteller.session.reply import restore_cut, trim_enabled, trim_reply


def _settings(trim: str = "auto") -> Settings:
    settings = Settings()
    settings.engine.kv_state = "off"
    settings.reply.trim_sentences = trim  # type: ignore[assignment]
    return settings


async def _open(backend, name: str = "tale", trim: str = "auto", **kwargs):
    return await open_session(name, settings=_settings(trim), paths=get_paths().ensure(), backend=backend, **kwargs)


async def test_the_narrator_stops_where_it_starts_playing_the_player() -> None:
    fake = ScriptedBackend(["The priest leans closer. You kiss him on the cheek. He blushes."], honour_stops=False)
    session = await _open(fake)
    seen: list[str] = []
    session.subscribe(lambda e: seen.append(e.text) if isinstance(e, TextReceived) else None)
    try:
        reply = await session.submit("look around", "do")
        assert reply is not None and reply.text == "The priest leans closer."
        assert fake.requests[-1].cancel.is_set(), "the engine is told to stop at once"
        assert all("kiss" not in text for text in seen), "the player's turn is never shown"
    finally:
        await session.close()


async def test_the_narrator_may_restate_the_players_own_action() -> None:
    session = await _open(ScriptedBackend(["You walk along the causeway and arrive at the inn. It is warm."]))
    try:
        reply = await session.submit("walk to the inn", "do")
        assert reply.text == "You walk along the causeway and arrive at the inn. It is warm."
    finally:
        await session.close()


async def test_story_mode_drops_label_lines_and_trims_the_unfinished_sentence() -> None:
    fake = ScriptedBackend(["Ink & Margin's personality: witty\nScenario: a study\nAda opens the door. The next morning,",
                            " she found the letter. It was"])
    session = await _open(fake, "ink", card="ink_and_margin", mode="story")
    try:
        reply = await session.submit("Ada climbed the stairs.", "story")
        assert reply.text == "Ada opens the door."
        assert reply.generation.trimmed == " The next morning,"
        more = await session.continue_()
        assert fake.requests[-1].prompt.endswith("Ada opens the door. The next morning,"), \
            "the prompt ends where the model stopped, so it finishes that sentence"
        assert more.kind == "continue" and more.text == " The next morning, she found the letter."
        assert more.generation.trimmed == " It was"
        assert session.story.messages()[-1].text == "Ada opens the door. The next morning, she found the letter."
        assert session.story.node(reply.id).generation.trimmed == " The next morning,", "the tree keeps the cut"
    finally:
        await session.close()


async def test_chat_is_not_trimmed_unless_asked() -> None:
    session = await _open(ScriptedBackend(["Hello there. And then"]), "chat", card="ink_and_margin")
    try:
        reply = await session.submit("hi", "say")
        assert reply.text == "Hello there. And then" and reply.generation.trimmed == ""
    finally:
        await session.close()
    session = await _open(ScriptedBackend(["Hello there. And then"]), "chat-on", trim="on", card="ink_and_margin")
    try:
        reply = await session.submit("hi", "say")
        assert reply.text == "Hello there." and reply.generation.trimmed == " And then"
    finally:
        await session.close()


async def test_trimming_off_in_story_mode() -> None:
    session = await _open(ScriptedBackend(["Ada opens the door. The next"]), "ink", trim="off", card="ink_and_margin",
                          mode="story")
    try:
        reply = await session.submit("Ada climbed the stairs.", "story")
        assert reply.text == "Ada opens the door. The next" and not reply.generation.trimmed
    finally:
        await session.close()


def test_trim_rules() -> None:
    assert trim_enabled("auto", "story") and trim_enabled("auto", "adventure")
    assert not trim_enabled("auto", "chat") and not trim_enabled("auto", "instruct")
    assert trim_enabled("on", "chat") and not trim_enabled("off", "story")
    assert trim_reply("One. Two", setting="auto", mode="story", reason="length") == ("One.", " Two")
    assert trim_reply("One. Two", setting="auto", mode="story", reason="cancelled") == ("One. Two", "")
    assert restore_cut([]) == ([], "")
