"""Untrusted text made safe to print, store and encode: the one place that does it.

Cards, lorebooks, chats, model output and server error messages are written by strangers. Sent to
a terminal as they are, control characters in them can clear the screen, retitle the window,
write the clipboard (``ESC ] 52``) or fake a prompt; a lone UTF-16 surrogate (JSON can carry
``"\\ud800"``) cannot be encoded at all, so every later ``print`` of it fails. Every path that
prints untrusted text goes through :func:`clean` (plain text) or :func:`safe_json` (``--json``
output), and every importer passes what it parsed through :func:`repair_surrogates`.

Newline and tab are kept; every other C0 control, DEL and every C1 control (U+0080-U+009F) is
removed. A carriage return is removed too (it can overwrite what was printed before it); a CRLF
line end therefore becomes a plain newline.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["SURROGATE_NOTE", "clean", "has_surrogates", "repair_json_escapes", "repair_surrogates", "safe_json"]

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_C1_OR_SURROGATE = re.compile(r"[\x7f-\x9f\ud800-\udfff]")
REPLACEMENT = "\ufffd"
SURROGATE_NOTE = "replaced broken characters (lone UTF-16 surrogates)"
"""How import reports begin the line about :func:`repair_surrogates` repairs."""


def clean(text: object, limit: int | None = None) -> str:
    """``text`` as a string fit for a terminal: controls removed, lone surrogates replaced.

    Args:
        text: Anything; non-strings are converted with ``str``.
        limit: Cut to this many characters (ending in an ellipsis) when given.
    """
    text = text if isinstance(text, str) else str(text)
    text = _CONTROLS.sub("", text)
    text = _SURROGATES.sub(REPLACEMENT, text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def safe_json(obj: Any, **options: Any) -> str:
    """``json.dumps`` with C1 controls, DEL and lone surrogates written as ``\\uXXXX`` escapes.

    The JSON means exactly the same (a consumer gets the same strings back) but no raw control
    byte reaches the terminal; ``json`` itself already escapes C0 controls. Options are passed to
    :func:`json.dumps`; ``ensure_ascii`` defaults to False so other text stays readable.
    """
    options.setdefault("ensure_ascii", False)
    return _C1_OR_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, **options))


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (it could not be encoded as UTF-8)."""
    return _SURROGATES.search(text) is not None


def repair_surrogates(value: Any) -> tuple[Any, int]:
    """Replace lone surrogates in every string of a parsed JSON value (keys too) with U+FFFD.

    Returns:
        The repaired value (the same object when nothing needed repair) and how many strings
        were changed.
    """
    count = 0

    def fix(node: Any) -> Any:
        nonlocal count
        if isinstance(node, str):
            if _SURROGATES.search(node) is None:
                return node
            count += 1
            return _SURROGATES.sub(REPLACEMENT, node)
        if isinstance(node, dict):
            return {fix(key): fix(item) for key, item in node.items()}
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    fixed = fix(value)
    return (fixed, count) if count else (value, 0)


_JSON_ESCAPES = re.compile(
    rb"(\\\\)"  # an escaped backslash: what follows is literal text
    rb"|(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"  # a surrogate pair: a real character
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"  # a lone surrogate escape
)


def repair_json_escapes(data: bytes) -> tuple[bytes, int]:
    """Replace ``\\uD800``-style escapes of lone surrogates in JSON text with ``\\uFFFD``.

    For importers that hand raw bytes to a parser of their own (chats, saves): after this, no
    string they parse can hold a character that cannot be encoded.

    Returns:
        The repaired bytes and the number of escapes replaced.
    """
    if b"\\u" not in data and b"\\U" not in data:
        return data, 0
    count = 0

    def fix(match: re.Match[bytes]) -> bytes:
        nonlocal count
        if match.group(1) or match.group(2):
            return match.group(0)
        count += 1
        return b"\\ufffd"

    fixed = _JSON_ESCAPES.sub(fix, data)
    return (fixed, count) if count else (data, 0)
