"""The scripted story the cache and resume benchmarks play, and the tools to measure a turn.

A 100-turn adventure in the bundled Hollowmere world: the player walks from place to place and
talks to people, so world-info entries fire and stop firing as the story moves; the author's
note is inserted every third turn. Inputs are fixed and sampling is seeded, so two runs on the
same engine see the same story.
"""

from __future__ import annotations

import difflib
import inspect
import os
import random
import shutil
import statistics
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STORY = "cache-bench"
CONTEXT = 2048
REPLY_TOKENS = 40
SEED = 1234
NOTE = "Keep the fog close and the replies short; something in the marsh is watching."
NOTE_INTERVAL = 3
CACHE_REUSE: str | None = None
"""``engine.cache_reuse`` for the run (None: the settings' default)."""

# (kind, text) templates; {p} a place, {w} a person. Places and people are world-info keys.
_PLACES = ("the lantern causeway", "the Drowned Bell inn", "the saltreed market", "the chapel of the low tide",
           "the sunken quarter", "Heronwatch tower", "the peat cuttings", "Mirewell", "the eel weirs")
_PEOPLE = ("Isolde the marshwarden", "Tobiah the ferryman", "Sister Maud", "Pell the lamplighter",
           "Widow Corran")
_MOVES = (("do", "walk to {p}"), ("do", "look around {p}"), ("say", "Where is the way to {p}?"),
          ("do", "ask {w} about {p}"), ("say", "Good evening, {w}. What news?"), ("do", "follow {w} quietly"),
          ("do", "wait and listen"), ("story", "Somewhere far off, a bell tolls once."))


def script(turns: int, seed: int = 7) -> list[tuple[str, str]]:
    """The player's inputs: fixed for a seed, moving through places and people."""
    rng = random.Random(seed)
    out = []
    for turn in range(turns):
        place = _PLACES[(turn // 4) % len(_PLACES)]  # a new place every four turns
        person = _PEOPLE[(turn // 6) % len(_PEOPLE)]
        kind, text = _MOVES[rng.randrange(len(_MOVES))]
        out.append((kind, text.format(p=place, w=person)))
    return out


def bench_home() -> Path:
    """Where the benchmark story lives between the cache and resume runs."""
    return Path(os.environ.get("STORYTELLER_BENCH_HOME") or Path(tempfile.gettempdir()) / "storyteller-bench")


def fresh_paths(name: str) -> Any:
    """A clean STORYTELLER_HOME for one run; returns its Paths."""
    from storyteller.paths import get_paths

    home = bench_home() / name
    shutil.rmtree(home, ignore_errors=True)
    os.environ["STORYTELLER_HOME"] = str(home)
    return get_paths().ensure()


def settings_for(engine: str, url: str | None, *, reuse: bool = True, kv_state: str = "exit",
                 memory: bool = True) -> Any:
    """Settings for a benchmark run on ``engine`` (``memory``: scene summaries and pins, on by default
    as in the app)."""
    from storyteller.config import Settings

    settings = Settings()
    settings.memory.enabled = memory
    settings.engine.kind = engine  # type: ignore[assignment]
    settings.engine.n_ctx = CONTEXT
    settings.engine.seed = SEED
    settings.engine.prefix_reuse = reuse
    settings.engine.context_shift = reuse
    settings.engine.kv_state = kv_state  # type: ignore[assignment]
    if CACHE_REUSE:
        settings.engine.cache_reuse = CACHE_REUSE  # type: ignore[assignment]
    if url:
        settings.remote.url = url
    settings.remote.context_length = CONTEXT
    settings.sampling = settings.sampling.model_copy(update={"max_tokens": REPLY_TOKENS, "seed": SEED})
    return settings


class RecordingBackend:
    """Wraps a backend and keeps the stats of every generation (a turn may retry).

    Generations made through the session's side road (``Session.aside``: the scene summaries
    memory writes after a reply) are kept apart in :attr:`asides`, so a turn's figures are the
    turn's own; :func:`play` marks them.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.finished: list[Any] = []
        self.asides: list[Any] = []
        self.in_aside = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        from storyteller.engines.base import Finished

        async for chunk in self.inner.stream(request):
            if isinstance(chunk, Finished):
                (self.asides if self.in_aside else self.finished).append(chunk.stats)
            yield chunk


def mark_asides(session: Any, recorder: RecordingBackend) -> None:
    """Make the session's side-road generations count as asides on ``recorder``."""
    aside = session.aside

    async def marked(*args: Any, **kwargs: Any) -> Any:
        recorder.in_aside += 1
        try:
            return await aside(*args, **kwargs)
        finally:
            recorder.in_aside -= 1

    session.aside = marked


def new_tokens(before: Sequence[int], after: Sequence[int], min_block: int = 8) -> int:
    """Tokens of ``after`` that an ideal cache holding ``before`` would still have to read.

    Blocks shorter than ``min_block`` tokens count as new: no cache reuses a coincidental
    two-token match in the middle of new text.
    """
    matcher = difflib.SequenceMatcher(None, list(before), list(after), autojunk=False)
    kept = sum(block.size for block in matcher.get_matching_blocks() if block.size >= min_block)
    return len(after) - kept


@dataclass(slots=True)
class Turn:
    """What one turn cost."""

    turn: int
    kind: str
    prompt_tokens: int
    new_tokens: int
    overflow: bool
    evaluated: int | None
    reused: int | None
    shifted: int | None
    ttft: float | None
    prompt_seconds: float | None
    stable_prefix: int
    attempts: int
    reply_chars: int
    why: str = ""
    cache_note: str = ""
    asides: int = 0
    aside_evaluated: int = 0
    aside_prompt_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


async def play(session: Any, recorder: RecordingBackend, tokenize: Callable[[str], list[int]], turns: int,
               progress: Callable[[Turn], Any] | None = None) -> list[Turn]:
    """Play the scripted story for ``turns`` turns; one :class:`Turn` per input."""
    from storyteller.story.model import AuthorsNote

    session.story.set_settings(authors_note=AuthorsNote(text=NOTE, depth=4, interval=NOTE_INTERVAL))
    mark_asides(session, recorder)
    out: list[Turn] = []
    before: list[int] = []
    for number, (kind, text) in enumerate(script(turns)):
        recorder.finished.clear()
        recorder.asides.clear()
        reply = await session.submit(text, kind)
        prompt = session.last_prompt
        tokens = tokenize(prompt.text or "")
        runs = list(recorder.finished)
        first = runs[0] if runs else None
        evaluated = [s.tokens_evaluated for s in runs]
        report = getattr(session, "last_report", None)
        record = Turn(
            turn=number + 1,
            kind=kind,
            prompt_tokens=len(tokens),
            new_tokens=new_tokens(before, tokens) if before else len(tokens),
            overflow=any("oldest messages" in d for d in prompt.dropped),
            evaluated=sum(evaluated) if runs and None not in evaluated else None,
            reused=first.tokens_reused if first else None,
            shifted=first.tokens_shifted if first else None,
            ttft=first.seconds_to_first_token if first else None,
            prompt_seconds=first.prompt_seconds if first else None,
            stable_prefix=prompt.stable_prefix_tokens,
            attempts=len(runs),
            reply_chars=len(reply.text) if reply is not None else 0,
            why=getattr(report, "why", "") if report is not None else "",
            cache_note=first.cache_note if first else "",
            asides=len(recorder.asides),
            aside_evaluated=sum(s.tokens_evaluated or 0 for s in recorder.asides),
            aside_prompt_tokens=sum(s.prompt_tokens or 0 for s in recorder.asides),
        )
        out.append(record)
        if progress is not None:
            outcome = progress(record)
            if inspect.isawaitable(outcome):
                await outcome
        before = tokens + (tokenize(reply.text) if reply is not None else [])
    return out


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the known values, or ``None``."""
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def turn_rows(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Turns as JSON-ready dicts."""
    return [asdict(t) for t in turns]
