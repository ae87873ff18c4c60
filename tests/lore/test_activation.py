"""The activation engine, feature by feature, against SillyTavern's checkWorldInfo."""

from __future__ import annotations

import random
import time

from storyteller.lore import (
    CharacterFilter,
    Position,
    Role,
    ScanSources,
    SelectiveLogic,
    TimedEffectsState,
    WorldInfoSettings,
    activate,
    compute_budget,
    seeded_rng,
)
from tests.lore.helpers import book, entry, fired, reason, run, trace


def test_plain_key_case_insensitive_by_default() -> None:
    result = run([entry(0, ["Dragon"]), entry(1, ["castle"])], ["A DRAGON appears."])
    assert fired(result) == {0}
    assert trace(result, 0).matched_key == "Dragon" and trace(result, 0).matched_in == "message 0"
    assert reason(result, 1) == "no_match"


def test_case_sensitive_per_entry_and_global() -> None:
    entries = [entry(0, ["Dragon"], case_sensitive=True), entry(1, ["dragon"])]
    assert fired(run(entries, ["a dragon"])) == {1}
    assert fired(run(entries, ["a dragon"], s={"case_sensitive": True})) == {1}
    assert fired(run(entries, ["a Dragon"], s={"case_sensitive": True})) == {0}


def test_whole_words_per_entry_and_global() -> None:
    entries = [entry(0, ["cat"]), entry(1, ["cat"], match_whole_words=False)]
    assert fired(run(entries, ["a category"])) == {1}
    assert fired(run(entries, ["a category"], s={"match_whole_words": False})) == {0, 1}
    assert fired(run(entries, ["the cat, sleeping"])) == {0, 1}


def test_whole_words_are_unicode_aware() -> None:
    # SillyTavern's ASCII \W treats "é" as a boundary, so "caf" would match "café". Not here.
    assert fired(run([entry(0, ["caf"])], ["un café noir"])) == set()
    assert fired(run([entry(0, ["café"])], ["un café noir"])) == {0}
    # CJK has no spaces between words: a CJK key still matches inside running text.
    assert fired(run([entry(0, ["東京"])], ["私は東京に行く"])) == {0}
    assert fired(run([entry(0, ["Straße"])], ["die Straßenbahn"])) == set()


def test_multi_word_keys_match_as_substring() -> None:
    assert fired(run([entry(0, ["safe haven"])], ["an unsafe havens list"])) == {0}


def test_regex_keys_ignore_case_and_word_settings() -> None:
    entries = [entry(0, [r"/\bdrag(on|ons)\b/"]), entry(1, [r"/ELF/i"]), entry(2, ["/^\x01Bob:/m"])]
    result = run(entries, ["Bob: two dragons and an elf"], s={"case_sensitive": True})
    assert fired(result) == {0, 1, 2}
    assert fired(run([entry(0, ["/Dragon/"])], ["a dragon"])) == set()  # no i flag: case matters


def test_catastrophic_regex_is_cut_off_not_hung() -> None:
    evil = "/(a+)+$/"
    start = time.perf_counter()
    result = run([entry(0, [evil]), entry(1, ["b"])], ["a" * 5000 + "!", "b"], s={"regex_timeout_s": 0.05})
    assert time.perf_counter() - start < 5
    assert result.regex_timeouts == [evil]
    assert fired(result) == {1}


def test_secondary_logic_all_four() -> None:
    def fires(logic: SelectiveLogic, text: str) -> bool:
        e = entry(0, ["king"], secondary_keys=["crown", "throne"], selective_logic=logic)
        return bool(fired(run([e], [text])))

    assert fires(SelectiveLogic.AND_ANY, "king crown") and not fires(SelectiveLogic.AND_ANY, "king")
    assert fires(SelectiveLogic.AND_ALL, "king crown throne") and not fires(SelectiveLogic.AND_ALL, "king crown")
    assert fires(SelectiveLogic.NOT_ANY, "king") and not fires(SelectiveLogic.NOT_ANY, "king throne")
    assert fires(SelectiveLogic.NOT_ALL, "king crown") and not fires(SelectiveLogic.NOT_ALL, "king crown throne")
    result = run([entry(0, ["king"], secondary_keys=["crown"])], ["king"])
    assert reason(result, 0) == "secondary_failed"


def test_secondary_ignored_when_not_selective() -> None:
    e = entry(0, ["king"], secondary_keys=["crown"], selective=False)
    assert fired(run([e], ["king"])) == {0}


def test_constant_disabled_and_no_keys() -> None:
    result = run([entry(0, constant=True), entry(1, ["x"], disable=True), entry(2)], ["x"])
    assert fired(result) == {0}
    assert reason(result, 0) == "constant" and reason(result, 1) == "disabled" and reason(result, 2) == "no_keys"


def test_scan_depth_global_and_per_entry() -> None:
    messages = ["old dragon", "middle", "newest"]
    assert fired(run([entry(0, ["dragon"])], messages)) == set()
    assert fired(run([entry(0, ["dragon"])], messages, s={"scan_depth": 3})) == {0}
    assert fired(run([entry(0, ["dragon"], scan_depth=3)], messages)) == {0}


def test_depth_zero_still_scans_author_note_deviation() -> None:
    sources = ScanSources.with_author_note("the dragon stirs")
    result = run([entry(0, ["dragon"])], ["dragon in chat"], s={"scan_depth": 0}, sources=sources)
    assert fired(result) == {0} and trace(result, 0).matched_in == "author's note"


def test_opt_in_sources() -> None:
    sources = ScanSources(character_description="a knight of the rose", scenario="a siege")
    entries = [entry(0, ["rose"]), entry(1, ["rose"], match_character_description=True), entry(2, ["siege"], match_scenario=True)]
    assert fired(run(entries, ["hello"], sources=sources)) == {1, 2}


def test_recursion_and_its_flags() -> None:
    entries = [
        entry(0, ["castle"], content="The castle has a dragon."),
        entry(1, ["dragon"], content="Dragons hoard gold."),
        entry(2, ["gold"], content="Gold.", exclude_recursion=True),
        entry(3, ["castle"], content="The castle hides a wyrm.", prevent_recursion=True),
        entry(4, ["wyrm"], content="Wyrm."),
    ]
    result = run(entries, ["I see the castle"])
    assert fired(result) == {0, 1, 3}
    assert trace(result, 1).matched_in == "recursion: entry 0 (castle)" and trace(result, 1).pass_no == 2
    assert reason(result, 2) == "exclude_recursion"
    assert reason(result, 4) == "no_match"  # entry 3 prevents recursion
    assert fired(run(entries, ["I see the castle"], s={"recursive": False})) == {0, 3}


def test_delay_until_recursion_levels() -> None:
    entries = [
        entry(0, ["start"], content="alpha"),
        entry(1, ["alpha"], content="beta", delay_until_recursion=1),
        entry(2, ["start"], content="gamma", delay_until_recursion=2),
    ]
    result = run(entries, ["start"])
    assert fired(result) == {0, 1, 2}
    assert trace(result, 2).pass_no > trace(result, 1).pass_no
    # The first level is pre-set; only levels beyond it open extra passes (as in SillyTavern).
    only_chat = run([entry(1, ["start"], delay_until_recursion=1)], ["start"], s={"recursive": False})
    assert fired(only_chat) == set() and reason(only_chat, 1) == "delay_until_recursion"
    two_levels = [entry(1, ["start"], delay_until_recursion=1), entry(2, ["start"], delay_until_recursion=2)]
    assert fired(run(two_levels, ["start"], s={"recursive": False})) == {1, 2}


def test_max_recursion_steps_reports_recursion_limit() -> None:
    entries = [entry(0, ["a"], content="b"), entry(1, ["b"], content="c"), entry(2, ["c"], content="d")]
    result = run(entries, ["a"], s={"max_recursion_steps": 2})
    assert fired(result) == {0, 1}
    assert reason(result, 2) == "recursion_limit"


def test_inclusion_group_picks_one_by_weight() -> None:
    entries = [entry(i, ["storm"], group="weather", group_weight=w) for i, w in ((0, 1), (1, 1000))]
    wins = [fired(run(entries, ["storm"], rng=random.Random(seed))) for seed in range(40)]
    assert all(len(w) == 1 for w in wins)
    assert sum(1 for w in wins if w == {1}) >= 35
    result = run(entries, ["storm"], rng=random.Random(3))
    loser = ({0, 1} - fired(result)).pop()
    assert reason(result, loser) == "group_lost" and "weighted roll" in trace(result, loser).detail


def test_group_override_and_scoring() -> None:
    entries = [
        entry(0, ["storm"], group="w", order=10, group_override=True),
        entry(1, ["storm"], group="w", order=50, group_override=True),
        entry(2, ["storm"], group="w", order=90),
    ]
    assert fired(run(entries, ["storm"])) == {1}
    scored = [entry(0, ["storm"], group="w"), entry(1, ["storm", "rain"], group="w")]
    on = {"use_group_scoring": True}
    assert all(fired(run(scored, ["storm and rain"], rng=random.Random(n), s=on)) == {1} for n in range(10))
    # Only entries that use scoring can lose by score (SillyTavern): here entry 0 does not.
    half = [entry(0, ["storm"], group="w"), entry(1, ["storm", "rain"], group="w", use_group_scoring=True)]
    assert {0} in [fired(run(half, ["storm and rain"], rng=random.Random(n))) for n in range(20)]


def test_group_already_fired_in_earlier_pass_checks_each_group() -> None:
    entries = [
        entry(0, ["x"], content="trigger", group="g"),
        entry(1, ["trigger"], group="h, g"),  # SillyTavern compares the whole string "h, g" and lets it through
    ]
    result = run(entries, ["x"])
    assert fired(result) == {0} and reason(result, 1) == "group_lost"


def test_probability_is_seeded_and_reported() -> None:
    entries = [entry(0, ["x"], probability=50, use_probability=True)]
    outcomes = [fired(run(entries, ["x"], rng=seeded_rng("story", turn))) for turn in range(30)]
    assert {0} in outcomes and set() in outcomes
    assert outcomes == [fired(run(entries, ["x"], rng=seeded_rng("story", turn))) for turn in range(30)]
    failed = next(t for t in range(30) if not outcomes[t])
    assert reason(run(entries, ["x"], rng=seeded_rng("story", failed)), 0) == "probability"
    assert fired(run([entry(0, ["x"], probability=0, use_probability=False)], ["x"])) == {0}


def test_sticky_cooldown_delay() -> None:
    e = entry(0, ["fog"], sticky=2, cooldown=2)
    chat = ["the fog rolls in"]
    first = run([e], chat)
    assert fired(first) == {0}
    assert first.timed.sticky["T.0"].start == 1 and first.timed.sticky["T.0"].end == 3
    second = run([e], [*chat, "quiet"], timed=first.timed)
    assert fired(second) == {0} and reason(second, 0) == "sticky"
    third = run([e], [*chat, "quiet", "calm"], timed=second.timed)  # sticky ended -> protected cooldown
    assert fired(third) == set() and reason(third, 0) == "cooldown"
    assert third.timed.cooldown["T.0"].protected
    fourth = run([e], [*chat, "quiet", "calm", "fog"], timed=third.timed)
    assert reason(fourth, 0) == "cooldown"
    fifth = run([e], [*chat, "quiet", "calm", "fog", "fog again"], timed=fourth.timed)
    assert fired(fifth) == {0}
    delayed = run([entry(1, ["fog"], delay=3)], ["fog", "fog"])
    assert reason(delayed, 1) == "delay"
    assert fired(run([entry(1, ["fog"], delay=3)], ["fog", "fog", "fog"])) == {1}


def test_timed_effects_survive_an_edit_but_not_a_swipe() -> None:
    e = entry(0, ["fog"], sticky=3)
    first = run([e], ["a", "fog"])
    edited = entry(0, ["fog"], sticky=3, content="fixed a typo")
    assert reason(run([edited], ["a", "fog", "b"], timed=first.timed), 0) == "sticky"
    swiped = run([e], ["a", "fog"][:1], timed=first.timed)  # the chat went back: effect dropped
    assert "T.0" not in swiped.timed.sticky


def test_dry_run_keeps_state() -> None:
    result = run([entry(0, ["fog"], sticky=3)], ["fog"], dry_run=True)
    assert fired(result) == {0} and result.timed == TimedEffectsState()


def test_budget_order_and_overflow() -> None:
    entries = [
        entry(0, ["x"], content="a" * 40, order=10),
        entry(1, ["x"], content="b" * 40, order=30),
        entry(2, ["x"], content="c" * 40, order=20),
        entry(3, ["x"], content="d" * 400, order=5, ignore_budget=True),
    ]
    result = run(entries, ["x"], max_context=100, count_tokens=len, s={"budget_percent": 100})
    assert fired(result) == {1, 2, 3}  # higher order considered first; 0 overflows; 3 ignores the budget
    assert reason(result, 0) == "budget" and result.overflowed and result.tokens_used == 80
    assert compute_budget(WorldInfoSettings(budget_percent=25, budget_cap=100), 1000) == 100
    assert compute_budget(WorldInfoSettings(budget_percent=25), 2) == 1  # round(0.5) = 1 as in JS


def test_min_activations_scans_deeper() -> None:
    messages = ["dragon far back", "x", "y", "z"]
    assert fired(run([entry(0, ["dragon"])], messages)) == set()
    result = run([entry(0, ["dragon"])], messages, s={"min_activations": 1})
    assert fired(result) == {0} and result.passes >= 3
    capped = run([entry(0, ["dragon"])], messages, s={"min_activations": 1, "min_activations_depth_max": 2})
    assert fired(capped) == set()


def test_positions_and_order_in_buckets() -> None:
    entries = [
        entry(0, constant=True, content="B-low", order=1, position=Position.BEFORE_CHAR),
        entry(1, constant=True, content="B-high", order=9, position=Position.BEFORE_CHAR),
        entry(2, constant=True, content="A", position=Position.AFTER_CHAR),
        entry(3, constant=True, content="ANT", position=Position.AN_TOP),
        entry(4, constant=True, content="ANB", position=Position.AN_BOTTOM),
        entry(5, constant=True, content="EMT", position=Position.EM_TOP),
        entry(6, constant=True, content="EMB", position=Position.EM_BOTTOM),
        entry(7, constant=True, content="D1", position=Position.AT_DEPTH, depth=1, role=Role.USER),
        entry(8, constant=True, content="D1b", position=Position.AT_DEPTH, depth=1, role=Role.USER, order=200),
        entry(9, constant=True, content="O", position=Position.OUTLET, outlet_name="map"),
        entry(10, constant=True, content="", position=Position.AFTER_CHAR),
    ]
    result = run(entries, ["hi"])
    prompt = result.prompt
    assert prompt.before == ["B-low", "B-high"] and prompt.after == ["A"]
    assert (prompt.an_top, prompt.an_bottom, prompt.em_top, prompt.em_bottom) == (["ANT"], ["ANB"], ["EMT"], ["EMB"])
    assert len(prompt.depth) == 1 and prompt.depth[0].role == Role.USER and prompt.depth[0].text == "D1\nD1b"
    assert prompt.outlets == {"map": ["O"]}
    assert reason(result, 10) == "empty_content"


def test_decorators() -> None:
    entries = [
        entry(0, ["never"], content="@@activate\nalways"),
        entry(1, ["x"], content="@@dont_activate\nno"),
        entry(2, ["x"], content="@@depth 3\n@@role assistant\ndeep"),
        entry(3, [], content="@@additional_keys wyrm, drake\nextra"),
        entry(4, ["x"], content="@@exclude_keys peace\nwar"),
        entry(5, ["x"], content="@@is_greeting 1\n@@@activate\nfallback used"),
        entry(6, ["x"], content="@@activate_only_every 2\nevery other"),
    ]
    result = run(entries, ["x drake peace"])
    assert fired(result) == {0, 2, 3, 5}
    assert result.prompt.depth[0].depth == 3 and result.prompt.depth[0].role == Role.ASSISTANT
    assert result.prompt.depth[0].entries == ["deep"]
    assert reason(result, 1) == "decorator" and reason(result, 4) == "excluded_key" and reason(result, 6) == "decorator"
    assert "fallback used" in result.prompt.before
    assert fired(run(entries, ["x drake peace", "two"])) >= {6}


def test_dont_activate_after_match_is_endless_cooldown() -> None:
    e = entry(0, ["x"], content="@@dont_activate_after_match\nonce")
    first = run([e], ["x"])
    later = run([e], ["x", "x", "x", "x"], timed=first.timed)
    assert fired(first) == {0} and reason(later, 0) == "cooldown"


def test_character_filter_and_triggers() -> None:
    entries = [
        entry(0, ["x"], character_filter=CharacterFilter(names=["Seraphina"])),
        entry(1, ["x"], character_filter=CharacterFilter(names=["Seraphina"], is_exclude=True)),
        entry(2, ["x"], triggers=["continue"]),
    ]
    result = run(entries, ["x"], character="Seraphina")
    assert fired(result) == {0} and reason(result, 1) == "character_filter" and reason(result, 2) == "trigger"
    assert fired(run(entries, ["x"], character="Other", generation_type="continue")) == {1, 2}


def test_macros_substituted_in_keys_and_content() -> None:
    result = run([entry(0, ["{{user}}"], content="{{user}} is here")], ["Ana waves"],
                 substitute=lambda s: s.replace("{{user}}", "Ana"))  # fmt: skip
    assert result.activated[0].content == "Ana is here"


def test_books_in_order_and_evenly() -> None:
    first = book(entry(0, constant=True, content="low", order=1), name="char")
    second = book(entry(0, constant=True, content="high", order=9), name="global")
    in_order = activate([first, second], ["x"], max_context=10, count_tokens=lambda s: 1,
                        settings=WorldInfoSettings(budget_percent=20))  # budget 2: only one fits
    assert [a.book for a in in_order.activated] == ["char"]
    evenly = activate([first, second], ["x"], max_context=10, count_tokens=lambda s: 1,
                      settings=WorldInfoSettings(budget_percent=20, strategy="evenly"))  # fmt: skip
    assert [a.book for a in evenly.activated] == ["global"]


def test_trace_json_shape() -> None:
    data = run([entry(0, ["x"], comment="X"), entry(1, ["y"])], ["x"]).to_json()
    assert data["activated"][0]["uid"] == 0 and data["activated"][0]["comment"] == "X"
    assert data["activated"][0]["matched_key"] == "x" and "tokens" in data["activated"][0]
    assert data["skipped"][0]["reason"] == "no_match"


def test_scan_window_is_bounded_for_long_chats() -> None:
    entries = [entry(i, [f"word{i}", f"other{i}"], content=f"entry {i}") for i in range(1000)]
    messages = [f"message {n} mentions word{n % 1000}" for n in range(2000)]
    start = time.perf_counter()
    result = run(entries, messages)
    elapsed = time.perf_counter() - start
    assert fired(result) == {998, 999}
    assert elapsed < 2.0
