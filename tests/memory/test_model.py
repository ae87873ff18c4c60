"""Memory's pure parts on real stories: what a summary covers, and when it stops applying."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from storyteller.config import MemorySettings
from storyteller.memory import MemoryState, PathView, StoryMemory, cover, recall_for
from storyteller.memory.store import merge_pair, spans_to_write
from storyteller.memory.writer import clean_summary
from storyteller.story import StorySettings, StoryStore


@pytest.fixture
def story(tmp_path: Path):
    store = StoryStore(tmp_path / "stories")
    story = store.create("tale", StorySettings(mode="adventure"))
    for turn in range(12):
        story.add_node(f"do thing {turn}", author="user", kind="do")
        story.add_node(f"Thing {turn} happens.", author="Narrator", kind="generation")
    yield story
    story.close()


def summarise(state: MemoryState, story, start: int, end: int, text: str = "", manual: bool = False):
    view = PathView.of(story.messages())
    return state.add_summary(view.keys[start:end], view.heads[start:end], text or f"summary {start}-{end}",
                             manual=manual)


def matching(state: MemoryState, story) -> list[tuple[int, int, str]]:
    return [(x.start, x.end, x.summary.text) for x in state.locate(PathView.of(story.messages()).keys)]


def test_summaries_match_their_span_and_cover_trimmed_history(story) -> None:
    state = MemoryState()
    summarise(state, story, 0, 8)
    summarise(state, story, 8, 16)
    located = state.locate(PathView.of(story.messages()).keys)
    assert [(x.start, x.end) for x in located] == [(0, 8), (8, 16)]
    assert [x.summary.text for x in cover(located, 16)] == ["summary 0-8", "summary 8-16"]
    # A model summary that reaches into the window is not used: its messages are still there.
    assert [x.summary.text for x in cover(located, 12)] == ["summary 0-8"]
    assert cover(located, 4) == []


def test_edit_invalidates_only_the_summary_that_covered_the_message(story) -> None:
    state = MemoryState()
    summarise(state, story, 0, 8)
    summarise(state, story, 8, 16)
    third = story.messages()[2].head
    story.edit(third.id, "do something else entirely")
    # Every later turn was copied with a new id, but the same text: the second summary still applies.
    assert [m[:2] for m in matching(state, story)] == [(8, 16)]
    story.swipe(story.messages()[2].head.id, -1)  # back to the original text
    assert [m[:2] for m in matching(state, story)] == [(0, 8), (8, 16)]


def test_swipe_invalidates_and_swiping_back_restores(story) -> None:
    state = MemoryState()
    reply = story.messages()[5].head
    summarise(state, story, 0, 8)
    story.select(reply.parent)
    story.add_node("Another thing happens instead.", author="Narrator", kind="generation")
    assert matching(state, story) == []
    story.swipe(story.current.id, -1)
    assert [m[:2] for m in matching(state, story)] == [(0, 8)]


def test_undo_takes_summarised_messages_off_the_path(story) -> None:
    state = MemoryState()
    summarise(state, story, 16, 24)
    story.undo()
    assert matching(state, story) == []
    story.redo()
    assert [m[:2] for m in matching(state, story)] == [(16, 24)]


def test_branch_has_its_own_memory(story, tmp_path: Path) -> None:
    memory = StoryMemory.of(story)
    summarise(memory.state, story, 0, 8, "the first eight")
    memory.state.pin_fact("The key is under the blue stone.", anchor=story.messages()[3].head.id)
    memory.save()
    store = StoryStore(tmp_path / "stories")
    branch = store.branch(story, story.messages()[9].head.id, "tale-2")
    try:
        mine = StoryMemory.of(branch)
        assert [m[2] for m in matching(mine.state, branch)] == ["the first eight"], "the branch starts with a copy"
        mine.state.pin_fact("Only in the branch.", anchor=None)
        mine.save()
        assert all(p.text != "Only in the branch." for p in StoryMemory.of(story).state.pins)
    finally:
        branch.close()


def test_pins_follow_the_path_and_edits(story) -> None:
    state = MemoryState()
    messages = story.messages()
    pinned = state.pin_message(messages[4].head.id)
    fact = state.pin_fact("Mara promised to return the lantern.", anchor=messages[6].head.id)
    whole = state.pin_fact("The story is set in Hollowmere.", anchor=None)

    def active() -> list[str]:
        msgs = story.messages()
        view = PathView.of(msgs)
        return [text for _pin, text in state.active_pins(view.heads, story.nodes, dict(zip(view.heads, view.texts)))]

    assert active() == ["do thing 2", "Mara promised to return the lantern.", "The story is set in Hollowmere."]
    story.edit(messages[4].head.id, "do a better thing")
    assert active() == ["do a better thing", "Mara promised to return the lantern.", "The story is set in Hollowmere."]
    story.select(messages[3].head.id)  # back before both anchors
    assert active() == ["The story is set in Hollowmere."]
    state.unpin(pinned.id)
    state.unpin(fact.id)
    assert [p.id for p in state.pins] == [whole.id]


def test_manual_correction_wins_over_a_regenerated_summary(story) -> None:
    state = MemoryState()
    auto = summarise(state, story, 0, 8, "Bob found a sword.")
    fixed = state.edit_summary(auto.id, "Bob found the sword of Aldric.")
    again = summarise(state, story, 0, 8, "Bob found a stick.")
    assert again.id == fixed.id and again.text == "Bob found the sword of Aldric." and again.manual
    assert [s.text for s in state.summaries] == ["Bob found the sword of Aldric."]


def test_editing_a_part_drops_the_merged_summary_made_from_it(story) -> None:
    state = MemoryState()
    a = summarise(state, story, 0, 8, "A.")
    b = summarise(state, story, 8, 16, "B.")
    view = PathView.of(story.messages())
    state.add_summary(view.keys[0:16], view.heads[0:16], "A and B.", parts=(a.id, b.id))
    assert [x.summary.text for x in cover(state.locate(view.keys), 16)] == ["A and B."]
    state.edit_summary(a.id, "A, corrected.")
    assert [x.summary.text for x in cover(state.locate(view.keys), 16)] == ["A, corrected.", "B."]


def test_spans_wait_for_full_runs_unless_trimmed(story) -> None:
    settings = MemorySettings(span_messages=8, keep_recent=4)
    state = MemoryState()
    summarise(state, story, 0, 8)
    located = state.locate(PathView.of(story.messages()).keys)
    assert spans_to_write(located, 24, horizon=20, trimmed=0, settings=settings) == [(8, 16)]
    assert spans_to_write(located, 24, horizon=20, trimmed=20, settings=settings) == [(8, 16), (16, 20)]
    assert spans_to_write(located, 24, horizon=40, trimmed=0, settings=settings) == [(8, 16)]  # keep_recent


def test_merge_picks_the_smallest_neighbouring_pair_when_over_budget(story) -> None:
    state = MemoryState()
    for start in range(0, 24, 8):
        summarise(state, story, start, start + 8, "word " * 30)
    located = state.locate(PathView.of(story.messages()).keys)
    words = lambda text: len(text.split())  # noqa: E731
    assert merge_pair(located, 24, budget=500, count_tokens=words) is None
    a, b = merge_pair(located, 24, budget=100, count_tokens=words)
    assert (a.start, b.end) == (0, 16)


def test_memory_file_round_trip_and_damage(story) -> None:
    memory = StoryMemory.of(story)
    summarise(memory.state, story, 0, 8, "kept")
    memory.state.pin_fact("fact", anchor=None)
    memory.save()
    again = StoryMemory.of(story)
    assert [s.text for s in again.state.summaries] == ["kept"] and [p.text for p in again.state.pins] == ["fact"]
    (story.folder / "memory.json").write_text("{not json", encoding="utf-8")
    broken = StoryMemory.of(story)
    assert broken.state.summaries == [] and "could not be read" in broken.warnings[0]
    assert (story.folder / "memory.json.damaged-1").read_text(encoding="utf-8") == "{not json"


def test_read_only_memory_is_never_written(story, tmp_path: Path) -> None:
    memory = StoryMemory(story.folder, read_only=True)
    memory.state.pin_fact("fact", anchor=None)
    assert memory.save() is False and not (story.folder / "memory.json").exists()


def test_recall_lists_pins_and_summaries_for_the_path(story) -> None:
    state = MemoryState()
    summarise(state, story, 0, 8, "early events")
    state.pin_fact("A fact.", anchor=None)
    recall, view, located = recall_for(state, story.messages(), story.nodes, MemorySettings(), room=1000)
    assert recall.pinned[0][1] == "A fact." and recall.summary_budget == 200 and recall.pinned_budget == 100
    assert recall.summaries(8) == [(f"summary:{state.summaries[0].id}", "early events")]
    assert recall.summaries(7) == []


def test_clean_summary() -> None:
    assert clean_summary("Summary: Bob met Ann. They went to the mill and") == "Bob met Ann."
    assert clean_summary("\n\nAnn waits.\n\n\nBob leaves!") == "Ann waits.\nBob leaves!"
    assert clean_summary("   ") == ""


def test_key_names_and_the_details_line() -> None:
    from storyteller.memory.details import details_of, names_of, split_details, with_details

    texts = ["Sister Maud makes you promise to light a candle at the shrine of Saint Ebba.",
             "The password is 'thistledown'. You walk on.", "The innkeeper's old dog is called Biscuit.",
             "Pell the lamplighter owes you 17 pennies. You thank Pell."]
    # A name at a sentence's start counts when it is capitalised inside a sentence elsewhere
    # (or the next word is capitalised too); "The" and "You" never do.
    assert names_of(texts) == ["Sister Maud", "Saint Ebba", "thistledown", "Biscuit", "Pell"]
    story = [*texts, *["The fog rolls in over the candle-lit marsh and the dog sleeps."] * 3]
    details = details_of(texts, story)
    assert details[:6] == ["Sister Maud", "Saint Ebba", "thistledown", "Biscuit", "Pell", "17"]
    # Words the story used once are kept (grouped as they stand); scenery it repeats is not.
    assert {"shrine", "password", "innkeeper", "lamplighter owes", "pennies"} <= set(details)
    assert "marsh" not in details and "fog" not in details
    line = with_details("Maud asked you for a candle.", details)
    body, listed = split_details(line)
    assert body == "Maud asked you for a candle." and "candle" not in listed and "Saint Ebba" in listed
    assert split_details("Old.\nNames: Wren, Carrowmoor.") == ("Old.", ["Wren", "Carrowmoor"])


async def test_a_merge_keeps_every_detail_its_parts_listed(story) -> None:
    """The 80-turn run lost a name listed first on a part's line and every lowercase detail
    (thistledown) at a merge: the merged line is now the union of the parts' lines."""
    from storyteller.memory.details import split_details
    from storyteller.memory.writer import MERGE_INSTRUCTION, maintain

    async def write(instruction: str, text: str, max_tokens: int) -> str:
        return "Something happened by the sea." if instruction == MERGE_INSTRUCTION else "A walk. " * 6

    memory = StoryMemory.of(story)
    settings = MemorySettings(span_messages=4, keep_recent=4, lookahead_messages=0, jobs_per_turn=2)
    words = lambda text: len(text.split())  # noqa: E731
    await maintain(memory, story.messages(), trimmed=8, fill=1.0, room=2000, settings=settings,
                   write=write, count_tokens=words, names=lambda a: a)
    first, second = memory.state.summaries
    # What the parts listed (here written as a player might correct them) survives the merge.
    memory.state.summaries = [replace(first, text="A walk.\nDetails: Ilsabet, thistledown, brass astrolabe."),
                              replace(second, text="A walk.\nNames: Gullet, Marigold.")]
    done = await maintain(memory, story.messages(), trimmed=8, fill=1.0, room=60, settings=settings,
                          write=write, count_tokens=words, names=lambda a: a)
    assert len(done.merged) == 1, done
    merged = memory.state.summary(done.merged[0])
    body, listed = split_details(merged.text)
    assert body == "Something happened by the sea."
    assert {"Ilsabet", "thistledown", "brass astrolabe", "Gullet", "Marigold"} <= set(listed)


def test_summaries_past_their_budget_send_their_details_first(story) -> None:
    from storyteller.memory.store import fit_summaries

    state = MemoryState()
    keys = PathView.of(story.messages()).keys
    old = state.add_summary(keys[0:4], (), "A long retelling of nothing much at all," * 4 + "\nDetails: Ilsabet, Gullet.")
    new = state.add_summary(keys[4:8], (), "Ilsabet walks to the Gullet.\nDetails: Ilsabet, Marigold.")
    mine = state.add_summary(keys[8:12], (), "My own words, kept.\nDetails: Ilsabet.", manual=True)
    chosen = cover(state.locate(keys), 12)
    words = lambda text: len(text.split())  # noqa: E731
    roomy = fit_summaries(chosen, 500, words)
    # A detail an older summary lists is not listed again; the player's text is sent as written.
    assert roomy == [(f"summary:{old.id}", old.text), (f"summary:{new.id}", "Ilsabet walks to the Gullet.\nDetails: Marigold."),
                     (f"summary:{mine.id}", mine.text)]
    tight = fit_summaries(chosen, 40, words)
    # Over the budget, the oldest model summary sends only its details line.
    assert tight[0] == (f"summary:{old.id}", "Details: Ilsabet, Gullet.") and tight[1:] == roomy[1:]
    # Over it still, the oldest details line loses its newest details (the whole summary is not lost).
    tighter = fit_summaries(chosen, 28, words)
    assert tighter == [(f"summary:{old.id}", "Details: Ilsabet."), (f"summary:{new.id}", "Details: Marigold."),
                       (f"summary:{mine.id}", mine.text)]


async def test_maintain_writes_spans_then_merges_within_the_budget(story) -> None:
    """The planning around the model, with a writer that answers at once (the model's part is
    walked in test_session on the real model)."""
    from storyteller.memory.writer import MERGE_INSTRUCTION, maintain

    asked: list[str] = []

    async def write(instruction: str, text: str, max_tokens: int) -> str:
        asked.append(instruction)
        return "Merged." if instruction == MERGE_INSTRUCTION else f"Part {len(asked)} happened. " * 4

    memory = StoryMemory.of(story)
    settings = MemorySettings(span_messages=4, keep_recent=4, lookahead_messages=0, jobs_per_turn=8)
    words = lambda text: len(text.split())  # noqa: E731
    done = await maintain(memory, story.messages(), trimmed=16, fill=1.0, room=200, settings=settings,
                          write=write, count_tokens=words, names=lambda a: a)
    assert len(done.written) == 4 and len(done.merged) == 2, done
    located = memory.state.locate(PathView.of(story.messages()).keys)
    chosen = cover(located, 16)
    # The budget is 40 tokens (20% of 200): four 12-word summaries passed 80% of it, so the two
    # pairs that cover the fewest messages were merged, and the prompt now uses the merged two.
    assert [(x.start, x.end, x.summary.text.split("\n")[0]) for x in chosen] == [(0, 8, "Merged."), (8, 16, "Merged.")]
    assert StoryMemory.of(story).state.summaries, "saved as it goes"
    # Nothing more to do: every span is covered, and a corrected summary is never merged away.
    fixed = memory.state.edit_summary(chosen[0].summary.id, "Mine.")
    again = await maintain(memory, story.messages(), trimmed=16, fill=1.0, room=200, settings=settings,
                           write=write, count_tokens=words, names=lambda a: a)
    assert not again.written and all(fixed.id not in s.parts for s in memory.state.summaries)


async def test_maintain_stops_when_the_model_gives_nothing(story) -> None:
    from storyteller.memory.writer import maintain

    async def write(instruction: str, text: str, max_tokens: int) -> str:
        return ""

    memory = StoryMemory.of(story)
    settings = MemorySettings(span_messages=4, keep_recent=4, lookahead_messages=0, jobs_per_turn=8)
    done = await maintain(memory, story.messages(), trimmed=16, fill=1.0, room=2000, settings=settings,
                          write=write, count_tokens=len, names=lambda a: a)
    assert done.written == [] and len(done.failed) == 1 and memory.state.summaries == []


def test_memory_settings_come_from_config_toml_and_the_environment(monkeypatch) -> None:
    from storyteller.config import load_settings
    from storyteller.paths import get_paths

    paths = get_paths().ensure()
    paths.config_file.write_text('[memory]\nenabled = true\nsummary_share = 0.3\nspan_messages = 12\n',
                                 encoding="utf-8")
    monkeypatch.setenv("STORYTELLER_MEMORY__POSITION", "top")
    memory = load_settings(paths).memory
    assert (memory.summary_share, memory.span_messages, memory.position) == (0.3, 12, "top")
