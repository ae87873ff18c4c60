"""What a reply may not contain: the player's turn, prompt labels, a half-written last sentence.

Three pure pieces and one streaming filter built from them:

- :func:`find_player_turn` finds where an adventure narrator starts playing the player: a
  ``> ...`` action line, a ``You:`` line, the player speaking (``You answer, "..."`` or
  ``"...," you say``) or acting (``you kiss him on the cheek``). Narration about what the
  player perceives or is (``You see``, ``you are``, ``you feel``) is allowed, and so is the
  narrator restating the action the player just typed (``walk to the inn`` -> ``You walk``).
- :func:`is_label_line` recognises prompt labels copied into prose: ``Mara's personality:``,
  ``Scenario:``, ``[Author's note: ...]``, ``[Hazard: ...]``.
- :func:`trim_incomplete` cuts a reply back to its last complete sentence, as Kobold Lite's and
  SillyTavern's "trim incomplete sentences" do, and returns the cut text so it can be kept.
- :class:`ReplyFilter` applies the first two while text streams: it drops label lines and ends
  the reply where a player turn begins, holding back only the few words it cannot judge yet.

The benchmark (``bench/narrator_bench.py``) counts replies with :func:`find_player_turn` and
:func:`find_label`, so what it reports is exactly what these rules see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "PlayerTurn",
    "ReplyFilter",
    "find_label",
    "find_player_turn",
    "input_verbs",
    "is_label_line",
    "trim_incomplete",
]

# -- trimming ---------------------------------------------------------------------------------

_ENDS = frozenset(".!?…。！？")
_CLOSERS = frozenset("\"”’'»」』)]}*")


def trim_incomplete(text: str) -> tuple[str, str]:
    """Cut ``text`` after its last complete sentence; returns ``(kept, cut)``, ``kept + cut == text``.

    A sentence ends at ``.``, ``!``, ``?`` or ``…`` followed by a space, a line break, the end, or
    a capital glued to a word's end (``fire.The``), so ``3.5``, ``e.g`` and ``U.S.`` do not end
    one; any closing quotes or brackets right after it belong to it. A roleplay action closed with ``*`` ends one too. With no complete sentence at all
    nothing is cut: an empty reply helps nobody, and Continue can still go on from it.
    """
    body = text.rstrip()
    end = -1
    for i in range(len(body) - 1, -1, -1):
        ch = body[i]
        after = body[i + 1] if i + 1 < len(body) else " "
        glued = after.isupper() and i > 0 and body[i - 1].islower()  # "on fire.The air" (small models)
        if ch in _ENDS and (after.isspace() or after in _CLOSERS or glued):
            end = i + 1
        elif ch == "*" and i > 0 and not body[i - 1].isspace() and (after.isspace() or i + 1 == len(body)) \
                and body[:i].count("*") % 2 == 1:
            end = i + 1
        if end >= 0:
            break
    if end < 0:
        return body, text[len(body):]
    while end < len(body) and body[end] in _CLOSERS:
        end += 1
    return body[:end], text[end:]


# -- prompt labels ----------------------------------------------------------------------------

_LABEL_WORDS = (
    "personality", "scenario", "description", "persona", "memory", "author's note", "authors note",
    "author note", "a/n", "world info", "lore", "system", "system prompt", "instruction", "instructions",
    "example", "examples", "example dialogue", "character", "setting", "ooc", "note", "notes",
)
_BRACKET_LABEL = re.compile(r"\s*\[\s*[^\]\n:]{1,40}:")
_ROLE_LINE = re.compile(r"\s*<\|[a-z_]+\|>")
_LABEL_ANYWHERE = re.compile(r"\[\s*(?:author'?s note|a/n|ooc|system|scenario|personality|memory)\b|\bscenario:|<\|im_(?:start|end)\|>")


def _label_literals(names: Iterable[str]) -> list[str]:
    literals = [f"{word}:" for word in _LABEL_WORDS]
    for name in names:
        name = " ".join(name.lower().split())
        if name:
            literals += [f"{name}'s {word}:" for word in ("personality", "description", "persona", "scenario")]
    return literals


def is_label_line(line: str, names: Sequence[str] = ()) -> bool:
    """True when ``line`` starts with a prompt label (``Scenario:``, ``[Author's note: ...``).

    Args:
        line: One line of a reply.
        names: The character's and the player's names, for ``Name's personality:``.
    """
    if _BRACKET_LABEL.match(line) or _ROLE_LINE.match(line):
        return True
    start = " ".join(line.lower().replace("’", "'").split())
    start = start.removeprefix("[").lstrip()
    return any(start.startswith(lit) for lit in _label_literals(names))


def _could_be_label(start: str, names: Sequence[str]) -> bool:
    """True while a line's first characters might still turn into a label."""
    stripped = start.lstrip(" \t")
    if not stripped:
        return True
    if stripped.startswith("[") and "]" not in stripped and len(stripped) <= 42:
        return True
    if stripped.startswith("<") and len(stripped) < 16:
        return True
    norm = " ".join(stripped.lower().replace("’", "'").split()).removeprefix("[").lstrip()
    if stripped[-1:].isspace():
        norm += " "
    return any(lit.startswith(norm) for lit in _label_literals(names))


def find_label(text: str, names: Sequence[str] = ()) -> str | None:
    """The first prompt label in ``text``: a label line, or a card label or note anywhere."""
    for line in text.split("\n"):
        if line.strip() and is_label_line(line, names):
            return line.strip()
    lowered = " ".join(text.lower().replace("’", "'").split())
    for name in names:
        for word in ("personality:", "description:", "scenario:"):
            if f"{name.lower()}'s {word}" in lowered:
                return f"{name}'s {word}"
    found = _LABEL_ANYWHERE.search(lowered)
    return found.group() if found else None


# -- the player's turn ------------------------------------------------------------------------

_ALLOWED = frozenset("""
see sees saw seen hear hears heard notice notices noticed feel feels felt smell smells smelled taste tastes
sense senses sensed spot spots spotted glimpse glimpses catch catches caught find finds found are were am be
was is
have has had can cannot could couldn may might must should shouldn would wouldn will won do does did don
didn doesn need needs seem seems seemed appear appears appeared recognize recognise recognizes recognises
remember remembers recall know knows knew realize realise realizes realises wonder wonders wondered get gets
got stand stands stood sit sits sat lie lies lay wear wears wore carry carries carried own owns alone
both all too also still just now""".split())
_SPEECH = frozenset("""
say says said ask asks asked answer answers answered reply replies replied respond responds responded
tell tells told shout shouts shouted whisper whispers whispered call calls called exclaim exclaims exclaimed
mutter mutters muttered murmur murmurs murmured yell yells yelled cry cries cried speak speaks spoke
add adds added continue continues continued greet greets greeted explain explains explained""".split())
_SKIP = frozenset("then also still just now slowly quickly finally suddenly carefully quietly gently both all "
                  "only never always soon".split())
_CONJ = frozenset("and then but so before until".split())
_FAMILIES = (
    frozenset("walk walks walked go goes went head heads headed move moves moved follow follows followed step "
              "steps stepped arrive arrives arrived reach reaches reached enter enters entered come comes came "
              "make makes made cross crosses crossed climb climbs climbed pass passes passed run runs ran "
              "approach approaches approached return returns returned leave leaves left turn turns turned".split()),
    frozenset("look looks looked glance glances glanced peer peers peered scan scans scanned search searches "
              "searched examine examines examined study studies studied watch watches watched gaze gazes "
              "gazed inspect inspects inspected".split()),
    frozenset("take takes took pick picks picked grab grabs grabbed lift lifts lifted hold holds held".split()),
    frozenset("wait waits waited listen listens listened pause pauses paused stay stays stayed".split()),
    frozenset("ask asks asked say says said speak speaks spoke talk talks talked greet greets greeted".split()),
)
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*|\S")
_NAME_LINE = "{}:"


@dataclass(frozen=True, slots=True)
class PlayerTurn:
    """Where a reply starts playing the player.

    Attributes:
        start: Index of the first character that belongs to the player's turn.
        reason: ``action marker``, ``player line``, ``speech`` or ``action``.
        words: The words that gave it away (``you kiss``).
    """

    start: int
    reason: str
    words: str


def _stem(word: str) -> str:
    word = word.lower().replace("’", "'")
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word.rstrip("e")


def input_verbs(kind: str, text: str) -> frozenset[str]:
    """The verbs of the player's own input, with their families (``walk`` allows ``arrive``).

    Args:
        kind: ``do``, ``say`` or ``story``.
        text: What the player typed.
    """
    if kind == "say":
        return frozenset().union(*(f for f in _FAMILIES if "say" in f))
    if kind != "do":
        return frozenset()
    words = [w.lower() for w in re.findall(r"[A-Za-z']+", text)]
    if words[:1] in (["you"], ["i"]):
        words = words[1:]
    picked = {words[0]} if words else set()
    picked |= {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("and", "then")}
    out: set[str] = set(picked)
    for family in _FAMILIES:
        if any(w in family for w in picked):
            out |= family
    return frozenset(out)


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _player_line(text: str, start: int, names: Sequence[str], final: bool) -> bool | None:
    """Is the line at ``start`` a player line (``> ...``, ``You: ...``)? ``None``: cannot tell yet."""
    end = text.find("\n", start)
    line = text[start:] if end < 0 else text[start:end]
    body = line.lstrip(" \t")
    if body.startswith(">"):
        return True
    low = body.lower()
    labels = [_NAME_LINE.format(n.lower()) for n in names if n] + ["you:", "player:", "me:"]
    if any(low.startswith(label) for label in labels):
        return True
    if end < 0 and not final and any(label.startswith(low) for label in labels):
        return None
    return False


def _scan(text: str, names: Sequence[str], allowed: frozenset[str], final: bool) -> tuple[PlayerTurn | None, int]:
    """Walk ``text``; returns the first player turn (or ``None``) and how far it is safe to show."""
    tokens = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    sentence = clause = 0
    expect = True
    in_quote = False
    checked_lines: set[int] = set()
    hold = len(text)
    i = 0
    while i < len(tokens):
        tok, start, end = tokens[i]
        line = _line_start(text, start)
        if line not in checked_lines and not text[line:start].strip():
            checked_lines.add(line)
            verdict = _player_line(text, line, names, final)
            if verdict:
                return PlayerTurn(line, "action marker" if text[line:].lstrip().startswith(">") else "player line",
                                  text[line:end]), line
            if verdict is None:
                return None, min(hold, line)
            in_quote = False  # a quote left open ends with its paragraph
            sentence = clause = start
            expect = True
        if tok in "\"“”":
            opening = tok == "“" or (tok == '"' and not in_quote)
            if opening:
                in_quote = True
            else:
                in_quote = False
                expect = True  # '"...," you say' attributes the speech
                clause = sentence
            i += 1
            continue
        if in_quote:
            i += 1
            continue
        low = tok.lower().replace("’", "'")
        if tok in _ENDS:
            expect = True
            nxt = tokens[i + 1][1] if i + 1 < len(tokens) else len(text)
            sentence = clause = nxt
        elif tok in ",;:—–-(":
            expect = True
            clause = start
        elif low in _CONJ:
            if not expect:
                clause = start
            expect = True
        elif low in ("you", "i") and expect:
            j = i + 1
            while j < len(tokens) and tokens[j][0].lower() in _SKIP:
                j += 1
            if j >= len(tokens) or (tokens[j][2] == len(text) and not final):
                return None, min(hold, clause)  # the verb is not written yet
            verb = tokens[j][0]
            if verb[0].isalpha():
                vlow = verb.lower().replace("’", "'")
                base = vlow.split("'")[0]
                if base in _SPEECH and vlow not in allowed and base not in allowed:
                    return PlayerTurn(clause, "speech", f"{tok} {verb}"), clause
                if base not in _ALLOWED and base not in allowed and _stem(base) not in {_stem(a) for a in allowed}:
                    return PlayerTurn(clause, "action", f"{tok} {verb}"), clause
            expect = False
        elif expect and not final and end == len(text) and any(w.startswith(low) for w in ("you", "i")):
            return None, min(hold, clause)  # "Yo" may become "You"
        else:
            expect = False
        i += 1
    if in_quote and not final:
        return None, min(hold, sentence)  # '"...", you say' would claim this quote for the player
    if not final and tokens and tokens[-1][0] in "\"”" and not in_quote:
        return None, min(hold, sentence)
    return None, hold


def find_player_turn(text: str, *, names: Sequence[str] = (), allowed: Iterable[str] = (),
                     final: bool = True) -> PlayerTurn | None:
    """Where an adventure reply starts writing the player's turn, or ``None``.

    Args:
        text: The reply.
        names: The player's names, for ``Name: ...`` lines.
        allowed: Verbs the narrator may put after "you": the player's own action of this turn
            (see :func:`input_verbs`).
        final: The text is complete; when false, a last word that may still grow is not judged.
    """
    return _scan(text, names, frozenset(a.lower() for a in allowed), final)[0]


class ReplyFilter:
    """Filters streamed reply text: drops prompt-label lines, ends the reply at a player turn.

    The same interface as :class:`~storyteller.prompt.StopFilter` (``feed``, ``flush``,
    ``stopped``, ``matched``, ``text``), so the two chain.

    Args:
        names: The character's and the player's names (labels such as ``Name's personality:``).
        player: The player's names; when given (adventure mode) player turns end the reply.
        allowed: Verbs the narrator may use after "you" this turn (:func:`input_verbs`).
        labels: Drop lines that start with a prompt label.
    """

    def __init__(self, *, names: Sequence[str] = (), player: Sequence[str] | None = None,
                 allowed: Iterable[str] = (), labels: bool = True) -> None:
        self.names = [n for n in names if n]
        self.player = list(player) if player is not None else None
        self.allowed = frozenset(a.lower() for a in allowed)
        self.labels = labels
        self._raw = ""
        self._done_lines = ""  # complete lines already judged (labels removed)
        self._clean_sent = 0  # characters of the clean text already released
        self.stopped = False
        self.matched: str | None = None
        self.turn: PlayerTurn | None = None
        self.dropped: list[str] = []
        self.text = ""

    def _clean(self, final: bool) -> tuple[str, int]:
        """The text with label lines removed, and how much of it is decided."""
        while "\n" in self._raw:
            line, self._raw = self._raw.split("\n", 1)
            if self.labels and is_label_line(line, self.names):
                self.dropped.append(line)
            else:
                self._done_lines += line + "\n"
        current = self._raw
        if self.labels and current.strip() and is_label_line(current, self.names):
            return self._done_lines, len(self._done_lines)
        if self.labels and not final and _could_be_label(current, self.names):
            return self._done_lines + current, len(self._done_lines)
        return self._done_lines + current, len(self._done_lines) + len(current)

    def _step(self, final: bool) -> str:
        clean, decided = self._clean(final)
        safe = decided
        if self.player is not None:
            turn, hold = _scan(clean[:decided] if not final else clean, self.player, self.allowed, final)
            if turn is not None:
                self.stopped, self.turn = True, turn
                self.matched = f"player turn ({turn.reason}: {turn.words!r})"
                out = clean[self._clean_sent:max(turn.start, self._clean_sent)]
                self._clean_sent = max(turn.start, self._clean_sent)
                self.text += out
                return out
            safe = min(decided, hold)
        if final:
            safe = len(clean)
        out = clean[self._clean_sent:max(safe, self._clean_sent)]
        self._clean_sent = max(safe, self._clean_sent)
        self.text += out
        return out

    def feed(self, chunk: str) -> str:
        """Add a chunk; return the text that can be shown now."""
        if self.stopped or not chunk:
            return ""
        self._raw += chunk
        return self._step(final=False)

    def flush(self) -> str:
        """The stream ended: judge what was held back and return what may be shown."""
        if self.stopped:
            return ""
        if self.labels and self._raw.strip() and is_label_line(self._raw, self.names):
            self.dropped.append(self._raw)
            self._raw = ""
        return self._step(final=True)


class FilterChain:
    """Filters applied one after the other (stop strings, then :class:`ReplyFilter`), as one.

    When a filter stops, the filters after it judge what they still hold at once, as if the
    stream had ended there: the caller cancels the engine and never calls :meth:`flush`.

    Args:
        filters: The filters, in order.
        prefix: Text released before anything else (Continue's restored cut text).
    """

    def __init__(self, *filters: object, prefix: str = "") -> None:
        self.filters: list = list(filters)
        self._prefix = prefix
        self.text = ""

    def _out(self, text: str) -> str:
        text, self._prefix = self._prefix + text, ""
        self.text += text
        return text

    @property
    def stopped(self) -> bool:
        """Some filter stopped the reply."""
        return any(f.stopped for f in self.filters)

    @property
    def matched(self) -> str | None:
        """What stopped it."""
        return next((f.matched for f in self.filters if f.stopped), None)

    def feed(self, chunk: str) -> str:
        """Add a chunk; return the text that can be shown now."""
        if self.stopped:
            return ""
        out = chunk
        for index, flt in enumerate(self.filters):
            out = flt.feed(out) if out else ""
            if flt.stopped:
                return self._finish(index + 1, out)
        return self._out(out)

    def _finish(self, start: int, text: str) -> str:
        for flt in self.filters[start:]:
            text = (flt.feed(text) if text else "") + flt.flush()
        return self._out(text)

    def flush(self) -> str:
        """The stream ended without a stop: release what every filter holds."""
        return "" if self.stopped else self._finish(0, "")
