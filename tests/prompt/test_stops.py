"""StopFilter on streamed text split at every position."""

from __future__ import annotations

import itertools

import pytest

from storyteller.prompt import StopFilter, cut_at_stop, name_stops

STOPS = ["\nAnn:", "\nAnn ", "<|im_end|>", "\n>"]


def stream(text: str, cuts: tuple[int, ...], stops=STOPS, context: str = "") -> tuple[str, StopFilter, list[str]]:
    flt = StopFilter(stops, context=context)
    shown: list[str] = []
    bounds = [0, *cuts, len(text)]
    for a, b in itertools.pairwise(bounds):
        shown.append(flt.feed(text[a:b]))
        if flt.stopped:
            break
    if not flt.stopped:
        shown.append(flt.flush())
    return "".join(shown), flt, shown


CASES = [
    ("She smiles.\nAnn: hi there", "She smiles.", "\nAnn:"),
    ("Done<|im_end|>junk after", "Done", "<|im_end|>"),
    ("The door opens.\n> You run", "The door opens.", "\n>"),
    ("Annie\nAnnabel walks", "Annie\nAnnabel walks", None),
    ("ends with a partial <|im_", "ends with a partial <|im_", None),
    ("\nAnn waves", "", "\nAnn "),
]


@pytest.mark.parametrize(("text", "expected", "matched"), CASES)
def test_every_split_in_two(text: str, expected: str, matched: str | None) -> None:
    for cut in range(len(text) + 1):
        out, flt, _ = stream(text, (cut,))
        assert out == expected, cut
        assert flt.matched == matched
        assert flt.text == expected


@pytest.mark.parametrize(("text", "expected", "matched"), CASES)
def test_every_split_in_three_and_char_by_char(text: str, expected: str, matched: str | None) -> None:
    for a in range(len(text) + 1):
        for b in range(a, len(text) + 1):
            out, flt, _ = stream(text, (a, b))
            assert (out, flt.matched) == (expected, matched), (a, b)
    out, flt, _ = stream(text, tuple(range(1, len(text))))
    assert (out, flt.matched) == (expected, matched)


def test_partial_stop_never_reaches_the_screen() -> None:
    text = "Hello.\nAnn: no"
    flt = StopFilter(STOPS)
    shown = ""
    for ch in text:
        shown += flt.feed(ch)
        assert "\nA" not in shown and not shown.endswith("\n")
        if flt.stopped:
            break
    assert flt.stopped and shown == "Hello."


def test_stop_reported_as_soon_as_it_completes() -> None:
    flt = StopFilter(["<|im_end|>"])
    assert flt.feed("ok<|im_") == "ok"
    assert not flt.stopped
    assert flt.feed("end|>more") == ""
    assert flt.stopped and flt.matched == "<|im_end|>"
    assert flt.feed("anything") == "" and flt.flush() == ""


def test_context_lets_a_stop_begin_in_the_prompt() -> None:
    # the adventure prompt ends with a blank line; a reply opening with ">" is a leaked action
    for cut in range(1, 12):
        out, flt, _ = stream("> You jump.", (cut,), stops=["\n>"], context="door.\n\n")
        assert out == "" and flt.matched == "\n>"
    out, flt, _ = stream("It opens.", (3,), stops=["\n>"], context="door.\n\n")
    assert out == "It opens." and flt.matched is None


def test_no_stops_passes_everything() -> None:
    flt = StopFilter([])
    assert flt.feed("abc") == "abc" and flt.flush() == ""


def test_earliest_stop_wins() -> None:
    assert cut_at_stop("a<|im_end|>b\nAnn: c", STOPS) == ("a", "<|im_end|>")
    assert cut_at_stop("a\nAnn: b<|im_end|>", STOPS) == ("a", "\nAnn:")


def test_name_stops() -> None:
    assert name_stops("Ann") == ["\nAnn:", "\nAnn "]
    assert name_stops("  ") == []
