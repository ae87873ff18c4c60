"""The details line of a summary: what a weak model's summary must not lose, found without it.

A small model's summary often drops exactly the things a player asks about later: a name, the
object in the pack, the password, a number. So every summary the model writes ends with a
``Details:`` line listing what its passage held and the summary left out, found
deterministically:

* **names**: capitalised words inside a sentence (and at a sentence's start when the same word
  is capitalised inside one elsewhere, or the next word is capitalised too: ``Widow Corran``);
* **quoted words**: a short quotation (``'thistledown'``);
* **numbers**: anything with a digit;
* **rare words**: words the story has used in at most two messages so far (the brass
  astrolabe, the willow stump), grouped as they stand next to each other. Scenery a narrator
  keeps repeating is not rare; what was said once is. This needs no word list, so it works in
  any language that separates words with spaces.

A merged summary keeps the union of its parts' details (never the model's retelling of them),
so a fact listed once stays listed however many times summaries are merged. The line is plain
text kept in the summary: the player sees it and may correct it like the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["MAX_DETAILS", "MAX_MERGED_DETAILS", "details_of", "split_details", "with_details"]

LABEL = "Details: "
_OLD_LABEL = "Names: "
MAX_NAMES = 12
MAX_RARE = 14
RARE_PER_MESSAGE = 3
MAX_DETAILS = MAX_NAMES + MAX_RARE
MAX_MERGED_DETAILS = 160
RARE_MESSAGES = 2

_NOT_NAMES = {"i", "you", "your", "he", "she", "it", "we", "they", "the", "a", "an", "and", "but", "then", "mr", "mrs",
              "his", "her", "my", "our", "their", "its", "this", "that", "there", "here", "what", "when", "where", "who",
              "why", "how", "if", "in", "on", "at", "of", "to", "for", "with", "as", "so", "no", "yes", "oh", "not"}
# Common English words that are rare in a story without carrying a fact (the rest of the
# rare-word test needs no list).
_PLAIN = set("""
about above across after again against along also always among another anyone anything around away back because
been before behind being below beside besides between beyond both came come comes could does doing done down during
each either else even ever every everything find finds found from gave give gives going gone have having here into
just keep keeps kept know knows last later least less like little long made make makes many maybe more most much
must near never next nothing often once only onto other others over perhaps quite rather really same says said seem
seems should since some something soon still such take takes tell tells than that their them then there these they
thing things this those though through thus together told took toward towards under until upon very want wants
went were what whatever when where whether which while whom whose will with within without would yours yourself
all and any are but can did for get got had has her him his how its may nor not now off old one our out own put
saw say see she the too two use was way who why yes yet you
ask asks asked call calls called name named look looks looked walk walks walked turn turns turned
""".split())
_QUOTED = re.compile(r"(?:^|\s)['\"“‘]([^'\"”’\n]{2,40})['\"”’](?=[\s.,!?;:]|$)")
_SENTENCES = re.compile(r"(?<=[.!?…:;])\s+|\n+")
_STRIP = ".,!?;:()[]{}\"“”‘’*_—–"
_NUMBER = re.compile(r"\d")


def _clean(word: str) -> str:
    word = word.strip(_STRIP).strip(" '’-")
    return word.removesuffix("'s").removesuffix("’s")


def _add(found: list[str], item: str) -> None:
    item = item.strip(" '’-,")
    if item and item.lower() not in _NOT_NAMES and item.lower() not in (f.lower() for f in found):
        found.append(item)


def names_of(texts: Sequence[str]) -> list[str]:
    """Names and short quoted words, in order of appearance."""
    inner: set[str] = set()
    for text in texts:
        for sentence in _SENTENCES.split(text):
            for raw in sentence.split()[1:]:
                word = _clean(raw)
                if word[:1].isupper():
                    inner.add(word.lower())
    found: list[str] = []
    for text in texts:
        for quoted in _QUOTED.findall(text):
            if len(quoted.split()) <= 3:
                _add(found, quoted.strip(",.;:!?"))
        for sentence in _SENTENCES.split(text):
            words = sentence.split()
            run: list[str] = []
            for position, raw in enumerate(words):
                word = _clean(raw)
                capital = word[:1].isupper() and word.lower() not in _NOT_NAMES
                if capital and position == 0:
                    following = _clean(words[1]) if len(words) > 1 else ""
                    capital = word.lower() in inner or (following[:1].isupper() and raw[-1:] not in _STRIP)
                if capital:
                    run.append(word)
                if run and (not capital or raw[-1:] in ".,!?;:)\"”"):
                    _add(found, " ".join(run))
                    run = []
            if run:
                _add(found, " ".join(run))
    return found


def _words(text: str) -> set[str]:
    return {_clean(raw).lower() for raw in text.split()}


def rare_of(texts: Sequence[str], story: Sequence[str]) -> list[str]:
    """Runs of words of ``texts`` that at most :data:`RARE_MESSAGES` messages of ``story`` use.

    Words of three letters or more, not capitalised (names are :func:`names_of`'s), not common
    English words; neighbours are kept together (``hollow willow stump``). At most
    :data:`RARE_PER_MESSAGE` from one message (its longest, in their order), so one long
    description cannot crowd out the short line that planted a fact.
    """
    seen: dict[str, int] = {}
    for message in story:
        for word in _words(message):
            seen[word] = seen.get(word, 0) + 1
    found: list[str] = []
    for text in texts:
        runs: list[str] = []
        for sentence in _SENTENCES.split(text):
            run: list[str] = []
            for raw in sentence.split():
                word = _clean(raw)
                low = word.lower()
                rare = (len(word) >= 3 and not _NUMBER.search(word) and not word[:1].isupper()
                        and low not in _PLAIN and seen.get(low, 0) <= RARE_MESSAGES)
                if rare:
                    run.append(word)
                if run and (not rare or raw[-1:] in _STRIP):
                    _add(runs, " ".join(run))
                    run = []
            if run:
                _add(runs, " ".join(run))
        longest = set(sorted(runs, key=len, reverse=True)[:RARE_PER_MESSAGE])
        for item in runs:
            if item in longest:
                _add(found, item)
    return found


def numbers_of(texts: Sequence[str]) -> list[str]:
    """Words with a digit in them (a price, a date, a door number)."""
    found: list[str] = []
    for text in texts:
        for raw in text.split():
            word = raw.strip(_STRIP)
            if _NUMBER.search(word) and len(word) <= 24:
                _add(found, word)
    return found


def details_of(texts: Sequence[str], story: Sequence[str] = ()) -> list[str]:
    """The details of a passage: names and quoted words, numbers, then rare words (see module doc).

    Args:
        texts: The passage's messages.
        story: Every message of the story's path, to tell rare words (none given: no rare words).
    """
    found: list[str] = []
    for item in names_of(texts)[:MAX_NAMES] + numbers_of(texts):
        _add(found, item)
    if story:
        taken = {item.lower() for item in found}
        for item in [item for item in rare_of(texts, story) if item.lower() not in taken][:MAX_RARE]:
            _add(found, item)
    return found[:MAX_DETAILS + 4]


def split_details(text: str) -> tuple[str, list[str]]:
    """A summary's text as (body, details listed on its ``Details:`` or older ``Names:`` line)."""
    for label in (LABEL, _OLD_LABEL):
        body, found, listed = ("\n" + text).partition("\n" + label)
        body = body[1:]
        if found:
            items = [item.strip() for item in listed.strip().removesuffix(".").split(",")]
            return body.rstrip(), [item for item in items if item]
    return text, []


def _mentions(body: str, item: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(item)}(?!\w)", body, re.IGNORECASE) is not None


def with_details(summary: str, details: Iterable[str], *, limit: int = MAX_DETAILS,
                 already: Iterable[str] = ()) -> str:
    """The summary followed by the ``details`` its body leaves out (and that ``already`` lacks)."""
    body, listed = split_details(summary)
    skip = {item.lower() for item in already}
    kept: list[str] = []
    for item in [*details, *listed]:
        item = item.replace(",", " ").strip()
        if item and item.lower() not in skip and not _mentions(body, item):
            _add(kept, item)
    kept = kept[:limit]
    return f"{body}\n{LABEL}{', '.join(kept)}." if kept else body
