"""The embedded engine's text assembly: UTF-8 across token boundaries, and stop strings."""

from __future__ import annotations

from storyteller.engines._stops import StopScanner


def _run(pieces: list[bytes], stops: list[str]) -> tuple[list[str], str | None, str]:
    scanner = StopScanner(stops)
    shown: list[str] = []
    for piece in pieces:
        text, stop = scanner.feed(piece)
        if text:
            shown.append(text)
        if stop is not None:
            return shown, stop, ""
    return shown, None, scanner.flush()


def test_a_character_split_across_tokens_is_shown_whole() -> None:
    snow = "❄".encode()
    shown, stop, rest = _run([b"cold ", snow[:1], snow[1:], b"!"], [])
    assert shown == ["cold ", "❄", "!"] and stop is None and rest == ""


def test_a_stop_string_across_tokens_never_shows_any_part() -> None:
    shown, stop, _ = _run([b"He said", b"\nUs", b"er:", b" more"], ["\nUser:"])
    assert "".join(shown) == "He said" and stop == "\nUser:"
    assert all("\n" not in part for part in shown)


def test_a_held_back_prefix_that_does_not_become_a_stop_is_released() -> None:
    shown, stop, rest = _run([b"a\nU", b"nder the tree"], ["\nUser:"])
    assert stop is None and "".join(shown) + rest == "a\nUnder the tree"
    assert shown[0] == "a"  # "\nU" waited for the next token


def test_the_earliest_stop_wins_and_text_after_it_is_dropped() -> None:
    shown, stop, _ = _run([b"one. END two ### three"], ["###", "END"])
    assert "".join(shown) == "one. " and stop == "END"


def test_held_text_comes_out_at_the_end() -> None:
    shown, stop, rest = _run([b"the end\n"], ["\n\n"])
    assert shown == ["the end"] and rest == "\n" and stop is None
