"""``{{macros}}`` in cards, templates, notes and world info: pure text substitution.

A macro can only ever produce text: there is no code, no file access and no recursion beyond a
fixed number of passes. Innermost macros are expanded first, so ``{{random::{{char}}::b}}``
works; a value that itself contains macros (a description mentioning ``{{user}}``) is expanded
on the next pass. Unknown macros are left exactly as written. Hostile input is bounded: at most
:data:`MAX_PASSES` passes, a cap on the output length, and dice limits (``{{roll:999999d9}}``
is left as written).

Differences from SillyTavern, on purpose: variables are set and read left to right (ST works
line by line, so ``{{setvar::x::1}}{{getvar::x}}`` on one line gives the old value there);
``{{char}}`` uses the V3 nickname when the card has one (ST ignores it).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["MAX_PASSES", "MacroContext", "expand_macros", "expand_names", "humanize_duration"]

MAX_PASSES = 8
"""Nested or self-referencing macros are expanded at most this many times."""
MAX_OUTPUT_CHARS = 1_000_000
"""Expansion stops growing the text past this length (or 8x the input, if that is larger)."""
MAX_DICE = 100
MAX_SIDES = 1_000_000

_MACRO = re.compile(r"\{\{((?:(?!\{\{|\}\}).)*)\}\}", re.S)
_LEGACY = re.compile(r"<(USER|BOT|CHAR)>", re.I)
_NAMES = re.compile(r"\{\{(char|user)\}\}|<(USER|BOT|CHAR)>", re.I)
_DICE = re.compile(r"^\s*(\d*)\s*d\s*(\d+)\s*(?:([+-])\s*(\d+))?\s*$", re.I)
# Private-use characters hide unknown macros from later passes; the trim marker is resolved last.
_OPEN, _CLOSE, _TRIM = "\ue000", "\ue001", "\ue002"
_TRIM_RE = re.compile(r"(?:\r?\n)*" + _TRIM + r"(?:\r?\n)*")


@dataclass(slots=True)
class MacroContext:
    """Everything macros can read, and the variables they may change.

    Attributes:
        char: The character's name (the nickname when the card has one).
        user: The persona's name.
        description: Card description (may itself contain macros).
        personality: Card personality.
        scenario: Card scenario.
        persona: Persona description.
        mes_examples: Formatted example dialogue.
        original: The default prompt that ``{{original}}`` inserts (once).
        input: The text the user is submitting.
        last_message: The newest message's text.
        story_id: Seeds ``{{pick}}`` so it chooses the same way for the whole story.
        variables: Story variables; ``setvar``/``addvar`` change this dict, the caller saves it.
        now: The time for ``{{time}}``/``{{date}}``; ``None`` means the current local time.
        last_user_time: When the user last wrote, for ``{{idle_duration}}``.
        outlets: World-info outlet texts by name, for ``{{outlet::Name}}``.
        extra: Other named values (``model``, ``charPrompt``, ...), matched case-insensitively.
        rng: Randomness for ``{{random}}`` and ``{{roll}}`` (seed it in tests).
    """

    char: str = ""
    user: str = "User"
    description: str = ""
    personality: str = ""
    scenario: str = ""
    persona: str = ""
    mes_examples: str = ""
    original: str = ""
    input: str = ""
    last_message: str = ""
    story_id: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    now: datetime | None = None
    last_user_time: datetime | None = None
    outlets: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)


def expand_names(text: str, char: str, user: str) -> str:
    """Replace only ``{{char}}``, ``{{user}}``, ``<USER>``, ``<BOT>`` and ``<CHAR>``.

    Used for history messages: deterministic, so their token counts can be cached. CRLF and
    lone CR line endings become LF, as in :func:`expand_macros`.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "{{" not in text and "<" not in text:
        return text

    def name(match: re.Match[str]) -> str:
        word = (match.group(1) or match.group(2)).lower()
        return user if word == "user" else char

    return _NAMES.sub(name, text)


def humanize_duration(seconds: float) -> str:
    """Words for a duration, in the style of moment.js (``a few seconds``, ``3 hours``)."""
    s = abs(seconds)
    steps = (
        (45, None, "a few seconds"),
        (90, None, "a minute"),
        (45 * 60, 60, "minutes"),
        (90 * 60, None, "an hour"),
        (22 * 3600, 3600, "hours"),
        (36 * 3600, None, "a day"),
        (26 * 86400, 86400, "days"),
        (45 * 86400, None, "a month"),
        (320 * 86400, 30 * 86400, "months"),
        (548 * 86400, None, "a year"),
    )
    for limit, unit, words in steps:
        if s < limit:
            return words if unit is None else f"{round(s / unit)} {words}"
    return f"{max(2, round(s / (365 * 86400)))} years"


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def _split_choices(body: str) -> list[str]:
    """``::a::b`` splits on ``::``; ``:a,b`` splits on commas, where ``\\,`` is a literal comma."""
    if body.startswith("::"):
        return body[2:].split("::")
    body = body[1:] if body[:1] in (":", " ") else body
    parts = re.split(r"(?<!\\),", body)
    return [part.replace("\\,", ",").strip() for part in parts]


class _Expander:
    """One call of :func:`expand_macros`: keeps the per-call state (pick offsets, original)."""

    def __init__(self, ctx: MacroContext, source: str, limit: int) -> None:
        self.ctx = ctx
        self.source = source
        self.limit = limit
        self.size = 0
        self.original_used = False
        self.pick_seen: dict[str, int] = {}

    def leave(self, inner: str) -> str:
        return _OPEN + inner + _CLOSE

    def __call__(self, match: re.Match[str]) -> str:
        inner = match.group(1)
        value = self.value(inner)
        if value is None:
            return self.leave(inner)
        growth = len(value) - len(match.group(0))
        if self.size + growth > self.limit:
            return self.leave(inner)
        self.size += growth
        return value

    def value(self, inner: str) -> str | None:
        ctx = self.ctx
        stripped = inner.strip()
        key = stripped.lower()
        if key.startswith("//"):
            return ""
        simple = {
            "noop": "",
            "newline": "\n",
            "trim": _TRIM,
            "char": ctx.char,
            "charifnotgroup": ctx.char,
            "group": ctx.char,
            "user": ctx.user,
            "description": ctx.description,
            "personality": ctx.personality,
            "scenario": ctx.scenario,
            "persona": ctx.persona,
            "mesexamples": ctx.mes_examples,
            "input": ctx.input,
            "lastmessage": ctx.last_message,
        }
        if key in simple:
            return simple[key]
        if key == "original":
            if self.original_used:
                return ""
            self.original_used = True
            return ctx.original
        if key in ("time", "date", "weekday", "isotime", "isodate"):
            return self.clock(key)
        if key == "idle_duration":
            if ctx.last_user_time is None:
                return "just now"
            return humanize_duration(((ctx.now or datetime.now()) - ctx.last_user_time).total_seconds())
        for prefix, handler in (
            ("random", self.random),
            ("pick", self.pick),
            ("roll", self.roll),
            ("reverse:", lambda body: body[::-1]),
        ):
            if key.startswith(prefix):
                return handler(stripped[len(prefix):])
        if "::" in stripped:
            return self.variable(stripped)
        for name, value in ctx.extra.items():
            if name.lower() == key:
                return value
        return None

    def clock(self, key: str) -> str:
        now = self.ctx.now or datetime.now()
        if key == "time":
            return f"{now.hour % 12 or 12}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}"
        if key == "date":
            return f"{now:%B} {now.day}, {now.year}"
        if key == "weekday":
            return f"{now:%A}"
        if key == "isotime":
            return f"{now:%H:%M}"
        return f"{now:%Y-%m-%d}"

    def random(self, body: str) -> str | None:
        if not body or body[0] not in ": ":
            return None
        choices = _split_choices(body)
        return self.ctx.rng.choice(choices) if choices else ""

    def pick(self, body: str) -> str | None:
        if not body or body[0] not in ": ":
            return None
        choices = _split_choices(body)
        if not choices:
            return ""
        offset = self.pick_seen.get(body, 0)
        self.pick_seen[body] = offset + 1
        seed = "\x00".join((self.ctx.story_id, self.source, body, str(offset)))
        digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()
        return choices[int.from_bytes(digest[:8], "big") % len(choices)]

    def roll(self, body: str) -> str | None:
        body = body[1:] if body[:1] in (":", " ") else body
        if body.strip().isdigit():
            body = "d" + body.strip()
        match = _DICE.match(body)
        if not match:
            return None
        count = int(match.group(1) or 1)
        sides = int(match.group(2))
        bonus = int(match.group(4) or 0) * (-1 if match.group(3) == "-" else 1)
        if not (1 <= count <= MAX_DICE and 1 <= sides <= MAX_SIDES and abs(bonus) <= MAX_SIDES):
            return None  # absurd dice are left as written rather than computed
        return str(sum(self.ctx.rng.randint(1, sides) for _ in range(count)) + bonus)

    def variable(self, stripped: str) -> str | None:
        parts = stripped.split("::")
        op, name = parts[0].strip().lower(), parts[1].strip()
        variables = self.ctx.variables
        if op == "getvar" and len(parts) == 2:
            return variables.get(name, "")
        if op == "setvar" and len(parts) >= 3:
            variables[name] = "::".join(parts[2:])
            return ""
        if op == "addvar" and len(parts) >= 3:
            old, add = variables.get(name, ""), "::".join(parts[2:])
            a, b = _number(old or "0"), _number(add)
            variables[name] = _format_number(a + b) if a is not None and b is not None else old + add
            return ""
        if op in ("incvar", "decvar") and len(parts) == 2:
            current = _number(variables.get(name, "0") or "0") or 0.0
            variables[name] = _format_number(current + (1 if op == "incvar" else -1))
            return variables[name]
        if op == "outlet" and len(parts) == 2:
            return self.ctx.outlets.get(name, "")
        return None


def expand_macros(text: str, ctx: MacroContext, *, max_passes: int = MAX_PASSES) -> str:
    """Expand every known macro in ``text``; unknown ones stay as written.

    Args:
        text: Untrusted text (card field, template, note, world info).
        ctx: Values and variables; ``ctx.variables`` may be changed.
        max_passes: Nesting depth limit.

    Returns:
        The expanded text, with CRLF and lone CR line endings turned into LF.
    """
    if not text:
        return text
    # Cards keep their authors' CRLF line endings; the model sees plain newlines.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace(_OPEN, "").replace(_CLOSE, "").replace(_TRIM, "")
    text = _LEGACY.sub(lambda m: ctx.user if m.group(1).lower() == "user" else ctx.char, text)
    if "{{" not in text:
        return text
    expander = _Expander(ctx, text, max(MAX_OUTPUT_CHARS, 8 * len(text)))
    expander.size = len(text)
    for _ in range(max_passes):
        new = _MACRO.sub(expander, text)
        if new == text:
            break
        text = new
        if "{{" not in text:
            break
    if _TRIM in text:
        text = _TRIM_RE.sub("", text)
    return text.replace(_OPEN, "{{").replace(_CLOSE, "}}")
