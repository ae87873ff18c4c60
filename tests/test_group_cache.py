"""Group chats and the cache: what a joined prompt holds before the history is the same whoever
speaks, and the group nudge goes only where the reply header does not already name the speaker."""

from __future__ import annotations

from typing import Any

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.lore.model import Lorebook, WorldEntry
from storyteller.paths import get_paths
from storyteller.session import build_turn, open_session
from storyteller.session.group import nudge_helps

TRIO = ["halden_voss", "wren_calloway", "ink_and_margin"]
NAMES = ["Halden Voss", "Wren Calloway", "Ink & Margin"]
NUDGE = "[Write the next reply only as"


async def _session(name: str, *, use_chat: bool = False) -> tuple[Any, ScriptedBackend]:
    settings = Settings()
    settings.engine.kv_state = "off"
    settings.remote.use_chat = use_chat  # a chat-completion engine: prompts go out as messages
    backend = ScriptedBackend(["Aye.", "The lamp turns.", "Noted."])
    session = await open_session(name, settings=settings, paths=get_paths().ensure(), backend=backend, cards=TRIO)
    return session, backend


async def _two_replies(name: str, *, use_chat: bool = False) -> list[Any]:
    """The requests of a turn answered by the member it names, then one by Halden Voss."""
    session, backend = await _session(name, use_chat=use_chat)
    try:
        await session.submit("Wren, what do you make of the lamp room?")
        await session.reply_as("Halden Voss")
        return list(backend.requests)
    finally:
        await session.close()


async def test_text_completion_names_the_speaker_in_the_header_and_sends_no_nudge() -> None:
    sent = [r.prompt for r in await _two_replies("nudge-text")]
    assert sent and all(p is not None for p in sent)
    assert all(NUDGE not in p for p in sent), "the header already says who speaks"
    assert sent[0].rstrip().endswith("Wren Calloway:") and sent[-1].rstrip().endswith("Halden Voss:")


async def test_chat_completion_keeps_sillytaverns_nudge_after_the_history() -> None:
    sent = [r.messages for r in await _two_replies("nudge-chat", use_chat=True)]
    assert sent and all(m is not None for m in sent)
    last = [m[-1].content for m in sent]
    assert last[0] == "[Write the next reply only as Wren Calloway.]"
    assert last[-1] == "[Write the next reply only as Halden Voss.]"
    # after the history: the player's line comes before it
    assert "Wren, what do you make of the lamp room?" in sent[0][-2].content


def test_nudge_helps_only_where_the_header_does_not_name_the_speaker() -> None:
    assert not nudge_helps("text", "chat")
    assert nudge_helps("messages", "chat") and nudge_helps("text", "instruct") and nudge_helps("messages", "instruct")


async def test_a_joined_head_is_byte_identical_whoever_speaks_lore_included() -> None:
    """Every member's book is scanned the same way whoever speaks: an entry that matches the
    character's description (here a word only Halden's card has) fires for every speaker."""
    session, _backend = await _session("join-head")
    try:
        halden = session.parts.members["Halden Voss"]
        word = "quartermaster"
        assert word in halden.description.lower() and all(
            word not in session.parts.members[n].description.lower() for n in NAMES[1:])
        book = Lorebook(name="Harbour notes", entries=[
            WorldEntry(uid=1, keys=[word], content="The quartermasters of the Drift meet at the Fulmar Arms.",
                      match_character_description=True),
            WorldEntry(uid=2, keys=["lamp"], content="The lamp is lit at dusk."),
        ])
        session.parts = session.parts.replace(member_books={**session.parts.member_books, "Ink & Margin": book})
        session.story.add_node("Tell me about the lamp room.", author="user", kind="say")
        messages = session.story.messages()
        texts = {}
        for name in NAMES:
            prompt, _lore = await build_turn(session.parts, session.story.name, session.story.settings, messages,
                                             continuing=False, speaker=name)
            texts[name] = prompt.text or ""
    finally:
        await session.close()
    heads = {name: text[: text.index("Tell me about the lamp room.")] for name, text in texts.items()}
    assert len(set(heads.values())) == 1, "the head before the history differs between speakers"
    head = heads["Wren Calloway"]
    assert "The quartermasters of the Drift meet at the Fulmar Arms." in head, "matched in the joined description"
    assert "The lamp is lit at dusk." in head
    for name, text in texts.items():
        assert NUDGE not in text and text.rstrip().endswith(f"{name}:")
