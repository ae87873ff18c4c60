"""Budgets: the prompt never exceeds the context, counted with real tokenizers; caching; trimming."""

from __future__ import annotations

import random

import pytest

from storyteller.prompt import (
    AuthorsNote,
    CharacterInfo,
    HistoryMessage,
    Persona,
    PromptBuilder,
    PromptOptions,
    PromptTooLongError,
    WorldInfoInsert,
    load_library,
    tiktoken_counter,
)

LIBRARY = load_library()
WORDS = "the fox ran over lantern river quiet storm ancient gate whispered, glowing! why? 42 café naïve 🙂".split()
CARD = CharacterInfo(
    name="Mira",
    description="Mira is a fox spirit who guards the old forest. " * 6,
    personality="sly, kind",
    scenario="A forest at night.",
    mes_example="<START>\n{{user}}: hi\n{{char}}: hello there\n<START>\n{{user}}: who are you?\n{{char}}: a fox.",
)


def make_history(n: int, seed: int = 1) -> list[HistoryMessage]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40)))
        role = "user" if i % 2 else "assistant"
        kind = rng.choice(["do", "say", "story"]) if role == "user" else "chat"
        out.append(HistoryMessage(role, text, kind=kind))
    return out


def make_world(n: int) -> list[WorldInfoInsert]:
    positions = ["before_char", "after_char", "at_depth", "an_top", "em_top"]
    return [
        WorldInfoInsert(
            f"Lore entry {i}: " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(12)),
            position=positions[i % len(positions)],  # type: ignore[arg-type]
            depth=i % 5,
            order=i,
            source=f"w/{i}",
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("mode", ["chat", "story", "adventure", "instruct"])
@pytest.mark.parametrize("template", ["none", "chatml"])
@pytest.mark.parametrize("context", [400, 800, 2048])
async def test_prompt_never_exceeds_the_context(counter_and_measure, mode: str, template: str, context: int) -> None:
    counter, measure = counter_and_measure
    options = PromptOptions(mode=mode, template=LIBRARY.get_instruct(template), context_length=context, reply_tokens=100)
    builder = PromptBuilder(counter, options)
    history = make_history(300)
    for turn in range(3):
        prompt = await builder.build(
            history[: 280 + turn * 7], character=CARD, persona=Persona("Ann", "Ann is tall."), memory="Pinned memory.",
            world_info=make_world(40), authors_note=AuthorsNote("Be vivid.", depth=3),
        )
        real = measure(prompt.text)  # the whole text, tokenised at once (with BOS for llama.cpp)
        assert real <= context - options.reply_tokens
        assert prompt.budget.used <= prompt.budget.available
        assert real <= prompt.budget.used + 1  # never undercounts the whole
        assert prompt.budget.used >= 0.6 * prompt.budget.available  # and the window is put to use
        if mode in ("chat", "instruct"):  # turns meet at line breaks and markers: parts add up
            assert sum(s.tokens for s in prompt.segments) + 1 == prompt.budget.used


async def test_fixed_parts_too_long_names_the_part(counter_and_measure) -> None:
    counter, _ = counter_and_measure
    card = CharacterInfo(name="Mira", description="A very long description. " * 80, personality="sly")
    builder = PromptBuilder(counter, PromptOptions(context_length=256, reply_tokens=100))
    with pytest.raises(PromptTooLongError) as err:
        await builder.build([HistoryMessage("user", "Hi.")], character=card)
    assert err.value.part == "description"
    assert err.value.excess > 0
    assert f"by at least {err.value.excess} tokens" in str(err.value)
    smaller = CharacterInfo(name="Mira", description="A very long description. " * 10)
    prompt = await builder.build([HistoryMessage("user", "Hi.")], character=smaller)
    assert prompt.budget.used <= prompt.budget.available


async def test_newest_message_too_long_is_an_error() -> None:
    builder = PromptBuilder(tiktoken_counter(exact=True), PromptOptions(context_length=256, reply_tokens=100))
    with pytest.raises(PromptTooLongError) as err:
        await builder.build([HistoryMessage("user", "word " * 400)], character=CARD)
    assert err.value.part == "history"


async def test_no_message_is_tokenised_twice_across_builds() -> None:
    counter = tiktoken_counter(exact=True)
    builder = PromptBuilder(counter, PromptOptions(mode="chat", context_length=2048, reply_tokens=200))
    history = make_history(400)
    kwargs = dict(character=CARD, world_info=make_world(30), authors_note=AuthorsNote("Be vivid."))
    await builder.build(history[:390], **kwargs)
    first_calls = len(counter.calls)
    assert len(counter.calls) == len(set(counter.calls))
    await builder.build(history[:391], **kwargs)
    second = counter.calls[first_calls:]
    assert len(counter.calls) == len(set(counter.calls))  # nothing counted twice
    assert second and len(second) <= 3  # only the new message (and its neighbours' changes)
    assert any(history[390].text in text for text in second)


async def test_history_is_trimmed_in_chunks_so_the_prefix_stays_put() -> None:
    counter = tiktoken_counter(exact=True)
    builder = PromptBuilder(counter, PromptOptions(mode="chat", context_length=2048, reply_tokens=100, trim_chunk=16))
    history = make_history(200)
    previous, same_prefix, starts = None, 0, set()
    for n in range(120, 160):
        prompt = await builder.build(history[:n], character=CARD)
        first = next(s for s in prompt.segments if s.kind == "history")
        starts.add(int(first.source.split(":")[1]))
        if previous is not None and prompt.text.startswith(previous):
            same_prefix += 1
        previous = "".join(s.text for s in prompt.segments[:-1])  # all but the reply header
        assert prompt.stable_prefix_tokens > 0
    assert len(starts) <= 6
    assert same_prefix >= 30  # most turns only append to the previous prompt


async def test_examples_are_dropped_before_history() -> None:
    builder = PromptBuilder(tiktoken_counter(exact=True), PromptOptions(mode="chat", context_length=420, reply_tokens=100))
    prompt = await builder.build(make_history(60), character=CARD)
    assert not any(s.kind == "examples" for s in prompt.segments)
    assert any("example block" in d for d in prompt.dropped)
    roomy = PromptBuilder(tiktoken_counter(exact=True), PromptOptions(mode="chat", context_length=4096))
    prompt = await roomy.build(make_history(6), character=CARD)
    assert sum(1 for s in prompt.segments if s.kind == "examples") == 2


async def test_world_info_keeps_highest_order_within_its_budget() -> None:
    world = [WorldInfoInsert(f"entry {i} " + "lore " * 30, order=i, source=f"w/{i}") for i in range(10)]
    world.append(WorldInfoInsert("always here", constant=True, order=-5, source="w/const"))
    builder = PromptBuilder(tiktoken_counter(exact=True), PromptOptions(context_length=1000, reply_tokens=200, wi_budget_ratio=0.1))
    prompt = await builder.build([HistoryMessage("user", "Hi.")], character=CARD, world_info=world)
    kept = [s.source for s in prompt.segments if s.kind == "world_info"]
    assert "w/const" in kept
    assert kept[-2:] == ["w/8", "w/9"] and "w/0" not in kept  # higher order kept and placed later
    wi_tokens = sum(s.tokens for s in prompt.segments if s.kind == "world_info" and s.source != "w/const")
    assert wi_tokens <= 80
    assert any("over budget" in d for d in prompt.dropped)
