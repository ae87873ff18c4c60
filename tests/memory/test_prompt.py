"""Memory in the prompt: pins always, summaries for what history trimmed, within their budgets."""

from __future__ import annotations

from storyteller.prompt import HistoryMessage, PromptBuilder, PromptOptions, Recall, tiktoken_counter


def history(n: int) -> list[HistoryMessage]:
    return [HistoryMessage("user" if i % 2 == 0 else "assistant", f"Message number {i} of the long tale, " * 3)
            for i in range(n)]


def summaries_for(trimmed: int) -> list[tuple[str, str]]:
    return [(f"summary:{start}", f"Events {start} to {start + 7} happened.") for start in range(0, trimmed - 7, 8)]


async def build(n: int, recall: Recall | None, mode: str = "adventure", position: str = "before_history"):
    builder = PromptBuilder(tiktoken_counter(exact=True), PromptOptions(mode=mode, context_length=1024,
                                                                        reply_tokens=100))
    if recall is not None:
        recall = Recall(recall.pinned, recall.summaries, recall.summary_budget, recall.pinned_budget, position)
    return await builder.build(history(n), memory="The world is made of glass.", recall=recall)


async def test_pins_and_summaries_sit_before_the_history() -> None:
    recall = Recall(pinned=(("pin:a", "The key is under the blue stone."),), summaries=summaries_for,
                    summary_budget=200, pinned_budget=50)
    prompt = await build(60, recall)
    kinds = [s.kind for s in prompt.segments]
    first_history = kinds.index("history")
    assert "[Pinned: The key is under the blue stone.]" in prompt.text
    assert kinds.index("pinned") < kinds.index("summary") < first_history
    assert all(k != "summary" for k in kinds[first_history:])
    trimmed = int(prompt.segments[first_history].source.split(":")[1])
    shown = [s.source for s in prompt.segments if s.kind == "summary"]
    assert shown and shown == [src for src, _ in summaries_for(trimmed)][-len(shown):]
    assert prompt.budget.used <= prompt.budget.available


async def test_no_summary_before_anything_was_trimmed() -> None:
    recall = Recall(pinned=(("pin:a", "Fact."),), summaries=summaries_for, summary_budget=200)
    prompt = await build(4, recall)
    assert [s.kind for s in prompt.segments].count("summary") == 0 and "[Pinned: Fact.]" in prompt.text


async def test_summary_budget_keeps_the_newest() -> None:
    recall = Recall(summaries=summaries_for, summary_budget=30)
    prompt = await build(80, recall)
    shown = [s for s in prompt.segments if s.kind == "summary"]
    assert 0 < sum(s.tokens for s in shown) <= 30
    assert any("over the summary budget" in d for d in prompt.dropped)


async def test_pins_over_their_budget_are_still_sent_with_a_warning() -> None:
    recall = Recall(pinned=(("pin:a", "A very long pinned fact. " * 20),), pinned_budget=10)
    prompt = await build(10, recall, mode="chat")
    assert "A very long pinned fact." in prompt.text and "over their budget" in prompt.warnings[0]


async def test_memory_does_not_move_the_prompt_between_trims() -> None:
    recall = Recall(pinned=(("pin:a", "Fact."),), summaries=summaries_for, summary_budget=200)
    previous = None
    trims = set()
    for n in range(40, 80):
        prompt = await build(n, recall)
        first = next(i for i, s in enumerate(prompt.segments) if s.kind == "history")
        trimmed = int(prompt.segments[first].source.split(":")[1])
        head = prompt.segments[:first]
        assert any(s.kind == "summary" for s in head) == (trimmed >= 8)
        if previous is not None and previous[0] == trimmed:
            assert head == previous[1], f"the part before the history moved at {n} messages without a trim"
        previous = (trimmed, head)
        trims.add(trimmed)
    assert len(trims) > 2, "the window was trimmed several times along the way"


async def test_top_position() -> None:
    recall = Recall(pinned=(("pin:a", "Fact."),), summaries=summaries_for, summary_budget=200)
    prompt = await build(60, recall, position="top")
    assert prompt.segments[0].kind == "pinned"


async def test_an_aside_is_a_user_turn_of_its_own_in_story_and_adventure_modes() -> None:
    from storyteller.prompt import load_library

    chatml = load_library().get_instruct("chatml")
    for mode in ("story", "adventure"):
        builder = PromptBuilder(tiktoken_counter(exact=True), PromptOptions(mode=mode, template=chatml,
                                                                            context_length=1024, reply_tokens=100))
        story = [*history(4), HistoryMessage("user", "Bob: hi\n\nSummarize the passage above.", kind="aside")]
        prompt = await builder.build(story)
        assert prompt.text.endswith("<|im_end|>\n<|im_start|>user\nBob: hi\n\nSummarize the passage above.<|im_end|>\n"
                                    "<|im_start|>assistant\n"), mode
        assert "> You" not in prompt.text.split("<|im_start|>user\n")[-1], "an aside is not a player action"
