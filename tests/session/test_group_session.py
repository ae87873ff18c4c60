"""Group chats through the Session: who answers, reply_as, mute, and the actions on a group reply.

The engine is the scripted fake (the flow is the subject; the real model plays a group in
tests/test_group_play.py). The cards are the bundled ones: Halden Voss, Wren Calloway, Ink & Margin.
"""

from __future__ import annotations

import pytest

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.errors import StoryError, StorytellerError
from storyteller.paths import get_paths
from storyteller.session import GenerationStarted, open_session
from storyteller.story.model import GroupSettings
from storyteller.story.store import StoryStore

CARDS = ["halden_voss", "wren_calloway", "ink_and_margin"]
NAMES = ["Halden Voss", "Wren Calloway", "Ink & Margin"]


def _settings() -> Settings:
    settings = Settings()
    settings.engine.kv_state = "off"
    return settings


async def _group(backend, name: str = "band", **group):
    return await open_session(name, settings=_settings(), paths=get_paths().ensure(), backend=backend,
                              cards=CARDS, group=GroupSettings(**group) if group else None)


async def test_a_group_story_opens_with_every_members_greeting() -> None:
    session = await _group(ScriptedBackend())
    try:
        assert session.members == NAMES
        group = session.group
        assert group is not None and group.name == "Group: Halden Voss, Wren Calloway, Ink & Margin"
        assert session.story.settings.cards == [m.card for m in group.members]
        path = session.path()
        assert [n.kind for n in path] == ["greeting"] * 3
        assert [n.author for n in path] == NAMES
        assert session.character_name == "Ink & Margin"  # the last to speak
    finally:
        await session.close()


async def test_natural_order_the_named_member_answers_first() -> None:
    fake = ScriptedBackend(["Aye.", "Hm.", "Noted."])
    session = await _group(fake, order="natural", seed=3)
    started: list[str] = []
    session.subscribe(lambda e: started.append(e.speaker) if isinstance(e, GenerationStarted) else None)
    try:
        # the draws are seeded, so the same story picks the same members
        assert session.next_speakers() == session.next_speakers()
        reply = await session.submit("Wren, what do you make of the ledger?")
        assert reply is not None
        assert started[0] == "Wren Calloway"
        replies = [n for n in session.path() if n.kind == "generation"]
        assert [n.author for n in replies] == started
        # each reply's prompt ends with its own speaker's header and stops at the others' lines
        prompt = fake.requests[0].prompt
        assert prompt.rstrip().endswith("Wren Calloway:")
        stops = fake.requests[0].sampling.stop
        assert "\nHalden Voss:" in stops and "\nInk & Margin:" in stops and "\nWren Calloway:" not in stops
    finally:
        await session.close()


async def test_list_everyone_and_manual_orders() -> None:
    session = await _group(ScriptedBackend(["One.", "Two.", "Three."]), order="everyone")
    try:
        await session.submit("Hello, all of you.")
        authors = [n.author for n in session.path() if n.kind == "generation"]
        assert authors == NAMES

        session.update_group(order="list")
        await session.submit("And now?")
        # the next member after the last one who spoke (Ink & Margin) is Halden Voss
        assert session.path()[-1].author == "Halden Voss"
        await session.submit("Next.")
        assert session.path()[-1].author == "Wren Calloway"

        session.update_group(order="manual")
        assert await session.submit("Anyone?") is None
        assert session.path()[-1].kind == "say"
        node = await session.reply_as("ink & margin")
        assert node is not None and node.author == "Ink & Margin"
    finally:
        await session.close()


async def test_muted_members_are_never_picked_but_can_be_asked() -> None:
    session = await _group(ScriptedBackend(["Fine."]), order="everyone")
    try:
        session.set_muted("Halden Voss", True)
        assert session.group.member("Halden Voss").muted
        with StoryStore(get_paths().stories_dir).open("band", read_only=True) as saved:
            assert saved.settings.group.member("Halden Voss").muted, "muting is saved with the story"
        await session.submit("Halden, are you there?")
        authors = [n.author for n in session.path() if n.kind == "generation"]
        assert "Halden Voss" not in authors and authors == ["Wren Calloway", "Ink & Margin"]
        node = await session.reply_as("Halden Voss")
        assert node is not None and node.author == "Halden Voss"
        session.set_muted("Halden Voss", False)
        assert not session.group.member("Halden Voss").muted
    finally:
        await session.close()


async def test_unknown_member_names_the_members() -> None:
    session = await _group(ScriptedBackend())
    try:
        with pytest.raises(StoryError, match="Halden Voss, Wren Calloway, Ink & Margin"):
            await session.reply_as("Bob")
        with pytest.raises(StoryError, match="no member called 'Bob'"):
            session.set_muted("Bob", True)
    finally:
        await session.close()


async def test_retry_swipe_continue_edit_undo_keep_the_speaker() -> None:
    session = await _group(ScriptedBackend(["First try.", "Second try.", "And more."]), order="manual")
    try:
        await session.submit("Tell me something.")
        reply = await session.reply_as("Wren Calloway")
        assert reply.author == "Wren Calloway"

        again = await session.regenerate()
        assert again.author == "Wren Calloway" and again.parent == reply.parent
        back = await session.swipe(-1)
        assert back.id == reply.id
        new = await session.swipe(+1)
        assert new.author == "Wren Calloway"
        newest = await session.swipe(+1)  # past the last alternative: a new one, same speaker
        assert newest.author == "Wren Calloway" and session.swipe_position() == (2, 3)

        more = await session.continue_()
        assert more.kind == "continue" and more.author == "Wren Calloway"
        edited = session.edit(newest.id, "Edited words.")
        assert edited.author == "Wren Calloway"
        assert session.character_name == "Wren Calloway"
        while session.path()[-1].kind != "say":  # the edited reply, then its continuation
            assert session.undo() is not None
        assert session.character_name == "Ink & Margin"  # the last greeting is the last to speak
    finally:
        await session.close()


async def test_a_stopped_reply_ends_the_group_turn() -> None:
    fake = ScriptedBackend(["word " * 40], delay=0.01)
    session = await _group(fake, order="everyone")

    def stop_early(event) -> None:
        if type(event).__name__ == "TextReceived":
            session.stop()

    session.subscribe(stop_early)
    try:
        await session.submit("Go on.")
        replies = [n for n in session.path() if n.kind == "generation"]
        assert len(fake.requests) == 1 and len(replies) <= 1
    finally:
        await session.close()


def _head(prompt) -> str:
    """The prompt's text before the history (what an engine keeps cached from turn to turn)."""
    text = ""
    for segment in prompt.segments:
        if segment.kind == "history":
            break
        text += segment.text
    return text


async def _prompts_by_speaker(mode: str) -> dict[str, object]:
    session = await _group(ScriptedBackend(), name=f"heads-{mode}", cards=mode, order="manual")
    try:
        await session.submit("Hello, everyone.")
        messages = session.story.messages()
        from storyteller.session import build_turn

        return {name: (await build_turn(session.parts, session.story.name, session.story.settings, messages,
                                        continuing=False, speaker=name))[0] for name in NAMES}
    finally:
        await session.close()


async def test_join_mode_keeps_the_head_the_same_whoever_speaks() -> None:
    prompts = await _prompts_by_speaker("join")
    heads = {name: _head(p) for name, p in prompts.items()}
    assert len(set(heads.values())) == 1, "the head must not depend on the speaker"
    head = heads["Halden Voss"]
    for name in NAMES:  # every member's card is in it, and {{char}} is the member list
        assert name in head
    assert "Halden Voss, Wren Calloway and Ink & Margin" in head
    assert "{{char}}" not in head
    for name, prompt in prompts.items():
        assert prompt.text.rstrip().endswith(f"{name}:"), "the reply header names the speaker"
        assert f"\n{name}:" not in prompt.stops
        assert all(f"\n{other}:" in prompt.stops for other in NAMES if other != name)
    # the history is named by author: the greetings keep their members' names
    history = [s.text for s in prompts["Halden Voss"].segments if s.kind == "history"]
    assert history[0].startswith("Halden Voss:") and history[1].startswith("Wren Calloway:")


async def test_swap_mode_puts_only_the_speakers_card_in_the_head() -> None:
    prompts = await _prompts_by_speaker("swap")
    heads = {name: _head(p) for name, p in prompts.items()}
    assert len(set(heads.values())) == 3, "each speaker has their own head"
    assert "Wren Calloway" in heads["Wren Calloway"] and "Halden Voss" not in _head_fields(prompts["Wren Calloway"])


def _head_fields(prompt) -> str:
    return "".join(s.text for s in prompt.segments if s.kind in ("description", "personality"))


async def test_join_prefix_and_suffix_wrap_each_members_fields() -> None:
    session = await _group(ScriptedBackend(), name="wrapped", join_prefix="[<FIELDNAME> of {{char}}]",
                           join_suffix="[end]")
    try:
        prompt = await session.next_prompt()
        text = prompt.text
        for name in NAMES:
            assert f"[Description of {name}]\n" in text
        assert text.count("[end]") >= 3
    finally:
        await session.close()


async def test_join_examples_on_an_instruct_template_give_each_member_their_own_turns() -> None:
    session = await _group(ScriptedBackend(), name="templated")
    try:
        session.story.set_settings(template="chatml")
        from storyteller.session.opening import make_parts

        session.parts = make_parts(session.story.name, session.story.settings, settings=session.parts.settings,
                                   paths=session.parts.paths, backend=session.backend)
        prompt = await session.next_prompt()
        examples = "".join(s.text for s in prompt.segments if s.kind == "examples")
        for name in ("Halden Voss", "Wren Calloway"):
            assert f"<|im_start|>assistant\n{name}:" in examples
        assert "<|im_start|>user\nUser:" in examples
    finally:
        await session.close()


async def test_update_group_adds_a_member_and_saves_the_story_cards() -> None:
    from storyteller.story.model import GroupMember

    session = await _group(ScriptedBackend(["Welcome."]), name="grown", order="manual")
    try:
        members = [*session.group.members, GroupMember(card="narrator_of_hollowmere", name="Narrator of Hollowmere")]
        session.update_group(members=members, scenario="A storm closes the harbour.")
        assert session.members == [*NAMES, "Narrator of Hollowmere"]
        assert session.story.settings.cards[-1] == "narrator_of_hollowmere"
        assert session.parts.members["Narrator of Hollowmere"].name == "Narrator of Hollowmere"
        node = await session.reply_as("narrator of hollowmere")
        assert node.author == "Narrator of Hollowmere"
        assert "A storm closes the harbour." in session.last_prompt.text
        with pytest.raises(Exception, match="order"):
            session.update_group(order="shouting")
        assert session.group.order == "manual", "a refused change leaves the group as it was"
    finally:
        await session.close()


async def test_members_join_and_leave_and_a_leavers_lines_keep_their_name() -> None:
    fake = ScriptedBackend(["Aye.", "Hello there.", "Still here."])
    session = await _group(fake, name="coming-going", order="manual")
    try:
        await session.submit("Halden?")
        await session.reply_as("Halden Voss")
        added = session.add_member("narrator_of_hollowmere")
        assert added == "Narrator of Hollowmere" and session.members[-1] == added
        assert session.story.settings.cards[-1].startswith("narrator_of_hollowmere")
        assert session.add_member("wren_calloway") == "Wren Calloway 2", "a second copy gets a numbered name"
        await session.reply_as(added)
        assert session.path()[-1].author == added

        assert session.remove_member("halden voss") == "Halden Voss"
        assert "Halden Voss" not in session.members
        assert not [ref for ref in session.story.settings.cards if ref.startswith("halden_voss")]
        await session.reply_as("Wren Calloway")
        prompt = fake.requests[-1].prompt
        # Halden's reply is still his in the history, not the speaker's
        assert "Halden Voss: Aye." in prompt and "Wren Calloway: Aye." not in prompt
        with pytest.raises(StoryError, match="no member called"):
            session.remove_member("Halden Voss")
        for name in ("Wren Calloway 2", "Ink & Margin", "Narrator of Hollowmere"):
            session.remove_member(name)
        with pytest.raises(StoryError, match="only member"):
            session.remove_member("Wren Calloway")
        with pytest.raises(StorytellerError, match="nobody_at_all"):
            session.add_member("nobody_at_all")
        assert session.members == ["Wren Calloway"], "a refused change leaves the group as it was"
    finally:
        await session.close()
    again = await open_session("coming-going", settings=_settings(), paths=get_paths().ensure(),
                               backend=ScriptedBackend())
    try:
        assert again.members == ["Wren Calloway"], "the members are saved with the story"
    finally:
        await again.close()


async def test_a_members_own_settings_change_the_next_prompt() -> None:
    fake = ScriptedBackend(["Aye.", "Aye again."])
    session = await _group(fake, name="own-settings", order="manual", join_prefix="[<FIELDNAME> of {{char}}]")
    try:
        await session.submit("Hello.")
        member = session.set_member("wren calloway", join_prefix="<<{{char}}>>", talkativeness=0.9)
        assert member.talkativeness == 0.9 and member.join_prefix == "<<{{char}}>>"
        await session.reply_as("Halden Voss")
        prompt = fake.requests[-1].prompt
        assert "<<Wren Calloway>>" in prompt and "[Description of Halden Voss]" in prompt
        assert "[Description of Wren Calloway]" not in prompt
        with pytest.raises(Exception, match="talkativeness"):
            session.set_member("Wren Calloway", talkativeness=3)
        with pytest.raises(StoryError, match="no setting"):
            session.set_member("Wren Calloway", card="elsewhere")
        assert session.group.member("wren calloway").talkativeness == 0.9
        session.set_member("Wren Calloway", join_prefix=None)
        assert session.group.member("wren calloway").join_prefix is None
    finally:
        await session.close()


async def test_the_group_cannot_change_while_a_reply_is_being_written() -> None:
    fake = ScriptedBackend(["word " * 40], delay=0.01)
    session = await _group(fake, name="busy", order="manual")
    refused: list[str] = []

    def try_changes(event) -> None:
        if type(event).__name__ != "TextReceived" or refused:
            return
        for change in (lambda: session.update_group(order="list"), lambda: session.set_muted("Wren Calloway", True),
                       lambda: session.set_member("Wren Calloway", talkativeness=0.1),
                       lambda: session.add_member("narrator_of_hollowmere"),
                       lambda: session.remove_member("Halden Voss")):
            try:
                change()
            except StoryError as exc:
                refused.append(str(exc))

    session.subscribe(try_changes)
    try:
        await session.reply_as("Wren Calloway")
        assert len(refused) == 5 and all("being generated" in r for r in refused), refused
        group = session.group
        assert group.order == "manual" and session.members == NAMES
        assert not group.member("Wren Calloway").muted and group.member("Wren Calloway").talkativeness is None
    finally:
        await session.close()
