"""The reply's own rules: player turns, prompt labels, trimming, and the streaming filter."""

from __future__ import annotations

import random

import pytest

from storyteller.prompt import StopFilter
from storyteller.prompt.reply_filter import (
    FilterChain,
    ReplyFilter,
    find_label,
    find_player_turn,
    input_verbs,
    is_label_line,
    trim_incomplete,
)

PLAYER = ("User", "You", "Player")


def turn(text: str, kind: str = "do", typed: str = "look around"):
    return find_player_turn(text, names=PLAYER, allowed=input_verbs(kind, typed))


# -- the player's turn ------------------------------------------------------------------------

@pytest.mark.parametrize("text, start, reason", [
    # The issue's own examples.
    ("The priest leans closer. You kiss him on the cheek.", len("The priest leans closer. "), "action"),
    ('You answer, "I\'m not a priest."', 0, "speech"),
    ('"I\'m not a priest," you answer. He frowns.', 0, "speech"),
    ("It is dark.\n> You open the door.", len("It is dark.\n"), "action marker"),
    ("The fog thins.\nUser: where am I?", len("The fog thins.\n"), "player line"),
    ("The fog thins.\nYou: hello", len("The fog thins.\n"), "player line"),
    ("You slowly draw your knife.", 0, "action"),
    ("The bell rings, and you decide to run.", len("The bell rings"), "action"),
    ("You're cold. Then you grab the rope.", len("You're cold. "), "action"),
    ("I walk to the door and knock.", 0, "action"),
])
def test_player_turns_are_found_where_they_start(text: str, start: int, reason: str) -> None:
    found = turn(text)
    assert found is not None, text
    assert (found.start, found.reason) == (start, reason)


@pytest.mark.parametrize("text", [
    "You see a lantern swinging over the water. You hear oars.",
    "Behind you, you hear a splash. You are alone.",
    "She looks at you and smiles. \"You look tired,\" she says.",
    "\"You should not be here,\" the woman whispers, and you feel the cold.",
    "You can't make out his face. You're standing on wet boards.",
    "Nobody answers. The lamps hiss.",
    "The ferryman hands you a coin.",
])
def test_narration_about_the_player_is_not_a_player_turn(text: str) -> None:
    assert turn(text) is None


def test_the_narrator_may_restate_the_action_the_player_typed() -> None:
    assert turn("You walk along the causeway and arrive at the inn.", "do", "walk to the inn") is None
    assert turn("You walk along the causeway.", "do", "look around") is not None
    assert turn("You take the lantern from its hook.", "do", "take the lantern") is None
    assert turn('You say "Good evening" and the woman nods.', "say", "Good evening") is None
    assert turn('You say "Good evening" and the woman nods.', "do", "wait and listen") is not None
    assert turn("You wait, and you listen to the reeds.", "do", "wait and listen") is None


def test_input_verbs_cover_the_typed_action_and_its_family() -> None:
    verbs = input_verbs("do", "walk to the lantern causeway")
    assert {"walk", "arrive", "reach"} <= verbs
    assert "kiss" not in verbs
    assert input_verbs("story", "Somewhere a bell tolls.") == frozenset()
    assert "ask" in input_verbs("say", "Where is the inn?")


def test_an_unfinished_last_word_is_not_judged_until_the_text_is_final() -> None:
    assert find_player_turn("The door opens. You s", names=PLAYER, final=False) is None
    assert find_player_turn("The door opens. You s", names=PLAYER, final=True) is not None


# -- labels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "Ink & Margin's personality: witty, dry",
    "Scenario: You have arrived in Hollowmere.",
    "[Author's note: keep the fog close]",
    "  [Hazard: pale bog lights]",
    "Personality: calm",
    "<|im_start|>user",
])
def test_label_lines(line: str) -> None:
    assert is_label_line(line, ["Ink & Margin", "User"])
    assert find_label("The fog rolls in.\n" + line, ["Ink & Margin", "User"]) is not None


@pytest.mark.parametrize("line", [
    "The scenario is simple: find the lamplighter.",
    "Notes of a flute drift over the water.",
    "Personally, I would not go out tonight.",
    "She writes: come at dawn.",
])
def test_prose_is_not_a_label(line: str) -> None:
    assert not is_label_line(line, ["Ink & Margin"])
    assert find_label(line, ["Ink & Margin"]) is None


def test_a_card_label_inside_a_line_is_still_found() -> None:
    assert find_label("The page turns. Ink & Margin's personality: witty.", ["Ink & Margin"])
    assert find_label("It begins [Author's note: be brief] and ends.", [])


# -- trimming ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, kept", [
    ("He left. The next morning,", "He left."),
    ("She said \"Go.\" And then", "She said \"Go.\""),
    ("Are you there? I", "Are you there?"),
    ("Wait... no", "Wait..."),
    ("It costs 3.5 coins and", "It costs 3.5 coins and"),  # no sentence ends: nothing is cut
    ("*She smiles* and", "*She smiles*"),
    ("All done!", "All done!"),
    ("(Quietly.) The", "(Quietly.)"),
    ("Line one.\n\nLine two has no end", "Line one."),
    ("as if on fire.The air seemed to", "as if on fire."),
    ("They flew to the U.S.A and", "They flew to the U.S.A and"),
])
def test_trim_incomplete_keeps_whole_sentences(text: str, kept: str) -> None:
    got, cut = trim_incomplete(text)
    assert got == kept
    assert got + cut == text, "nothing is lost: the cut text is returned"


def test_trim_keeps_everything_when_no_sentence_ends() -> None:
    assert trim_incomplete("The next morning,") == ("The next morning,", "")
    assert trim_incomplete("") == ("", "")


# -- streaming --------------------------------------------------------------------------------

def _stream(flt, text: str, seed: int = 0) -> str:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(text) and not flt.stopped:
        size = rng.randint(1, 6)
        out.append(flt.feed(text[i:i + size]))
        i += size
    if not flt.stopped:
        out.append(flt.flush())
    return "".join(out)


@pytest.mark.parametrize("seed", range(5))
def test_the_stream_ends_where_the_player_turn_begins(seed: int) -> None:
    text = 'The woman nods. "I\'m not a priest," you answer. She laughs.'
    flt = ReplyFilter(player=list(PLAYER))
    assert _stream(flt, text, seed).rstrip() == "The woman nods."
    assert flt.stopped and "speech" in (flt.matched or "")


@pytest.mark.parametrize("seed", range(5))
def test_the_stream_never_shows_what_it_later_cuts(seed: int) -> None:
    text = "The fog lifts. You kiss him on the cheek and walk away."
    flt = ReplyFilter(player=list(PLAYER))
    shown = ""
    rng = random.Random(seed)
    i = 0
    while i < len(text) and not flt.stopped:
        size = rng.randint(1, 4)
        shown += flt.feed(text[i:i + size])
        assert "You" not in shown, "text is held back until it can be judged"
        i += size
    assert shown.rstrip() == "The fog lifts."


@pytest.mark.parametrize("seed", range(5))
def test_label_lines_are_dropped_and_the_prose_goes_on(seed: int) -> None:
    text = ("[Author's note: keep the replies short]\nThe fog rolls in.\n"
            "Ink & Margin's personality: witty\nScenario: a study\nShe dips her pen.")
    flt = ReplyFilter(names=["Ink & Margin"])
    assert _stream(flt, text, seed) == "The fog rolls in.\nShe dips her pen."
    assert len(flt.dropped) == 3 and not flt.stopped


def test_an_honest_reply_streams_unchanged() -> None:
    text = ("The ferryman points at the lanterns. \"Inn's that way,\" he says. You see a sign swinging "
            "in the wind.\n\nWhat do you do?")
    for seed in range(5):
        assert _stream(ReplyFilter(names=["Narrator"], player=list(PLAYER)), text, seed) == text


def test_the_chain_flushes_the_reply_filter_when_a_stop_string_ends_the_stream() -> None:
    chain = FilterChain(StopFilter(["\n>"]), ReplyFilter(player=list(PLAYER)))
    shown = chain.feed("The door creaks. You")
    shown += chain.feed(" hear steps.\n> You run")
    assert chain.stopped and shown == "The door creaks. You hear steps."
    assert chain.flush() == ""


def test_the_chain_releases_its_prefix_first() -> None:
    chain = FilterChain(StopFilter([]), ReplyFilter(), prefix=" The next morning,")
    assert chain.feed(" the fog was gone.") == " The next morning, the fog was gone."
    assert chain.flush() == ""
    empty = FilterChain(StopFilter([]), prefix="cut")
    assert empty.flush() == "cut"
