"""Group benchmark: does a group turn cost only its new tokens, and do members keep to their own lines?

Three bundled members (Halden Voss, Wren Calloway, Ink & Margin) play a scripted 100-turn story
in natural order on the embedded engine with a 2,048-token context, 40-token replies and the
author's note every third turn (``bench/_story.py``'s settings). The player's lines are fixed
for a seed; about half of them name a member, so natural order picks that member first, and the
talkativeness draws (seeded) add others, so one player turn gets one to three replies and the
speaker changes from reply to reply. Per reply it records the prompt's new tokens (what an
ideal cache holding the previous prompt and what the engine generated would still have to read),
the tokens the engine evaluated and the time to first token.

It plays the story with the cards joined (``join``: the head of the prompt is the same whoever
speaks) and then with the cards swapped (``swap``: only the speaker's card is in the prompt).

Correctness: a reply "writes another's turn" when a line of the reply the player is shown (after
the stop strings and the stream filter) starts with another member's name marker (``Wren
Calloway:``, or a first name, ``Wren:``) or the player's (``User:``). The same check on what the
model wrote before any filter says how often it tried.

Targets: join, mean over the replies whose prompt overflowed: evaluated / new <= 1.1; replies
that write another's turn < 5%.

Run: ``python -m bench group [--turns N] [--mode join|swap|both] [--cache-reuse POLICY] [--threads N]``;
each reply is appended to ``$STORYTELLER_BENCH_HOME/group-MODE[-POLICY].jsonl`` as it is played, and
``--from-progress`` writes the results from every such file there (a run stopped early reports the
turns it played), one column per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _story
from bench._report import machine, write_json, write_section

TARGET_EVALUATED = 1.1
TARGET_OTHER_TURN = 0.05
CARDS = ("halden_voss", "wren_calloway", "ink_and_margin")
SEED = 11
"""The group's seed: the talkativeness draws of natural order."""
MODES = ("join", "swap")
POLICIES = ("exact", "balanced", "fast")

# The player's lines. {m} and {n} are members (by first name, as a player addresses them), {p} a place.
_PLACES = ("the harbour wall", "the lamp room", "the salvage hold", "the fish market", "the old chapel",
           "the cliff path", "the radio shack", "the tide pools", "the drowned pier")
_LINES = (
    "{m}, what do you make of {p}?",
    "Good evening, {m}. Any news from {p}?",
    "What do you all think we should do next?",
    "*I walk with the others to {p}.*",
    "{m}, ask {n} what happened at {p}.",
    "*I wait and listen.*",
    "Somewhere far off, a bell tolls once. Did you hear that?",
    "Tell me something I don't know, {m}.",
    "*I hand {m} the map of {p}.* Can you read this?",
    "Does anyone remember the storm last winter?",
)


def group_script(turns: int, names: list[str], seed: int = 7) -> list[str]:
    """The player's lines: fixed for a seed; many name a member by first name."""
    rng = random.Random(seed)
    firsts = [n.split()[0] for n in names]
    out = []
    for turn in range(turns):
        place = _PLACES[(turn // 4) % len(_PLACES)]
        m, n = rng.sample(firsts, 2)
        out.append(_LINES[rng.randrange(len(_LINES))].format(m=m, n=n, p=place))
    return out


def markers(names: list[str], user: str) -> dict[str, re.Pattern[str]]:
    """Each name's line marker: ``Name:`` at the start of a line (full name or first word), also
    inside emphasis, quotes or an opening bracket (``[Wren: ...``)."""
    out = {}
    for name in [*names, user]:
        forms = {name, name.split()[0]}
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        out[name] = re.compile(rf"^[ \t*_\"'\[(]*(?:{alternatives})[ \t]*:", re.M | re.I)
    return out


def other_turn(text: str, speaker: str, names: list[str], user: str) -> str | None:
    """The first other member (or the player) whose marker starts a line of ``text``, else ``None``."""
    found = [(m.start(), who) for who, pattern in markers(names, user).items()
             if who.casefold() != speaker.casefold() and (m := pattern.search(text))]
    return min(found)[1] if found else None


class Log:
    """What the session and the engine did during a turn: prompts, speakers, generations, replies."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.events: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def stream(self, request: Any) -> Any:
        from storyteller.engines.base import Finished, TextChunk

        parts: list[str] = []
        stats, stop = None, None
        async for chunk in self.inner.stream(request):
            if isinstance(chunk, TextChunk):
                parts.append(chunk.text)
            elif isinstance(chunk, Finished):
                stats, stop = chunk.stats, chunk.stop_string
            yield chunk
        self.events.append(("generation", {"prompt": request.prompt or "", "raw": "".join(parts), "stats": stats,
                                           "stop": stop}))

    def listen(self, event: Any) -> None:
        from storyteller.session.events import GenerationFailed, GenerationFinished, GenerationStarted, PromptBuilt

        if isinstance(event, GenerationStarted):
            self.events.append(("start", event.speaker))
        elif isinstance(event, PromptBuilt):
            self.events.append(("prompt", event.prompt))
        elif isinstance(event, GenerationFinished | GenerationFailed):
            self.events.append(("done", event.node))


def variant(mode: str, cache_reuse: str | None = None) -> str:
    """A run's name: the card mode, and the cache policy when it is not the default (``join-fast``)."""
    return f"{mode}-{cache_reuse}" if cache_reuse else mode


def progress_path(key: str) -> Path:
    """Where each reply's record is appended as it is played (``key``: :func:`variant`)."""
    return _story.bench_home() / f"group-{key}.jsonl"


async def play(mode: str, turns: int, *, verbose: bool = False, threads: int | None = None,
               cache_reuse: str | None = None) -> list[dict[str, Any]]:
    """Play the group story in card mode ``mode``; one record per reply."""
    from bench.cache_bench import _tokenizer
    from storyteller.engines.factory import open_backend
    from storyteller.session_setup import open_session
    from storyteller.story.model import AuthorsNote, GroupSettings

    key = variant(mode, cache_reuse)
    paths = _story.fresh_paths(f"group-{key}")
    settings = _story.settings_for("embedded", None)
    settings.engine.n_threads = threads
    if cache_reuse:
        settings.engine.cache_reuse = cache_reuse  # type: ignore[assignment]
    backend = await open_backend(settings, paths)
    log = Log(backend)
    session = await open_session(f"group-bench-{key}", settings=settings, paths=paths, backend=log,  # type: ignore[arg-type]
                                 cards=list(CARDS), group=GroupSettings(order="natural", cards=mode, seed=SEED))
    session.story.set_settings(authors_note=AuthorsNote(text=_story.NOTE, depth=4, interval=_story.NOTE_INTERVAL))
    session.subscribe(log.listen)
    tokenize = _tokenizer(backend)
    names = session.members
    user = session.story.settings.persona.name or "User"
    progress = progress_path(key)
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.write_text(json.dumps({"mode": mode, "model": backend.info().model, "members": names,
                                    "machine": machine(), "threads": threads, "tree": _tree(), "user": user,
                                    "cache_reuse": settings.engine.cache_reuse, "loadavg_start": _loadavg()}) + "\n", encoding="utf-8")
    rows: list[dict[str, Any]] = []
    before: list[int] = []
    previous_speaker = ""
    asides: list[Any] = []  # side-road generations (memory's scene summaries) since the last reply
    started = time.perf_counter()
    try:
        for number, line in enumerate(group_script(turns, names)):
            log.events.clear()
            await session.submit(line)
            speaker, prompt, attempts, replying = "", None, [], False
            for what, value in log.events:
                if what == "start":
                    speaker, prompt, attempts, replying = value, None, [], True
                elif what == "prompt":
                    prompt = value
                elif what == "generation":
                    (attempts if replying else asides).append(value)
                elif what == "done":
                    replying = False
                    if prompt is None:
                        continue
                    row = _record(number + 1, line, speaker, previous_speaker, prompt, attempts, value,
                                  tokenize, before, names, user)
                    row["asides_before"] = len(asides)
                    row["aside_evaluated"] = sum(a["stats"].tokens_evaluated or 0 for a in asides if a["stats"])
                    asides = []
                    before = tokenize(prompt.text or "") + tokenize(attempts[-1]["raw"] if attempts else "")
                    previous_speaker = speaker
                    row["seconds"] = round(time.perf_counter() - started, 2)
                    rows.append(row)
                    with progress.open("a", encoding="utf-8") as out:
                        out.write(json.dumps(row) + "\n")
                    if verbose:
                        print(f"  {key} turn {row['turn']:3d} {speaker[:12]:12s} prompt {row['prompt_tokens']:5d} "
                              f"new {row['new_tokens']:4d} eval {row['evaluated']} ttft {row['ttft']} "
                              f"{'O' if row['overflow'] else ' '} {row['shown_other'] or ''}", file=sys.stderr, flush=True)
    finally:
        await session.close()
        await backend.aclose()
    return rows


def _record(turn: int, line: str, speaker: str, previous: str, prompt: Any, attempts: list[dict[str, Any]],
            node: Any, tokenize: Any, before: list[int], names: list[str], user: str) -> dict[str, Any]:
    tokens = tokenize(prompt.text or "")
    stats = [a["stats"] for a in attempts if a["stats"] is not None]
    evaluated = [s.tokens_evaluated for s in stats]
    first = stats[0] if stats else None
    shown = node.text if node is not None else ""
    return {
        "turn": turn, "input": line, "speaker": speaker, "speaker_changed": bool(previous) and speaker != previous,
        "prompt_tokens": len(tokens), "new_tokens": _story.new_tokens(before, tokens) if before else len(tokens),
        "overflow": any("oldest messages" in d for d in prompt.dropped),
        "evaluated": sum(evaluated) if stats and None not in evaluated else None,
        "reused": first.tokens_reused if first else None, "shifted": first.tokens_shifted if first else None,
        "ttft": round(first.seconds_to_first_token, 4) if first and first.seconds_to_first_token is not None else None,
        "stable_prefix": prompt.stable_prefix_tokens, "attempts": len(attempts),
        "shown": shown, "raw": [a["raw"] for a in attempts],
        "shown_other": other_turn(shown, speaker, names, user),
        "raw_other": next((who for a in attempts if (who := other_turn(a["raw"], speaker, names, user))), None),
        "stop_strings": [a["stop"] for a in attempts],
        "stopped_at_other": next((who for a in attempts if a["stop"]
                                  and (who := other_turn(a["stop"].lstrip("\n"), speaker, names, user))), None),
        "cache_note": first.cache_note if first else "", "loadavg": _loadavg(),
    }


def _tree() -> str:
    """The commit the run measures (``+`` when the checkout has uncommitted changes)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=root, capture_output=True, text=True,
                               timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{head}+" if head and dirty else head


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def read_progress(key: str, turns: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and reply records a run appended (up to player turn ``turns``), each reply
    judged again by :func:`other_turn`."""
    lines = progress_path(key).read_text(encoding="utf-8").splitlines()
    head, rows = json.loads(lines[0]), [json.loads(x) for x in lines[1:] if x.strip()]
    names, user = list(head.get("members") or []), head.get("user", "User")
    for r in rows:  # judged again, so a run is read with the current rules
        r["shown_other"] = other_turn(r["shown"], r["speaker"], names, user)
        r["raw_other"] = next((who for raw in r["raw"] if (who := other_turn(raw, r["speaker"], names, user))), None)
    return head, [r for r in rows if turns is None or r["turn"] <= turns]


def summarise(key: str, head: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline figures of one card mode."""
    over = [r for r in rows if r["overflow"]]
    ratios = [r["evaluated"] / r["new_tokens"] for r in over if r["evaluated"] is not None and r["new_tokens"]]
    changed = [r for r in over if r["speaker_changed"]]
    same = [r for r in over if not r["speaker_changed"]]

    def total(subset: list[dict[str, Any]]) -> float | None:
        known = [r for r in subset if r["evaluated"] is not None]
        return _round(sum(r["evaluated"] for r in known) / max(1, sum(r["new_tokens"] for r in known))) if known else None

    recomputed = sum(_recomputed(r["cache_note"]) for r in over if r["evaluated"] is not None)
    known = [r for r in over if r["evaluated"] is not None]
    speakers: dict[str, int] = {}
    for r in rows:
        speakers[r["speaker"]] = speakers.get(r["speaker"], 0) + 1
    return {
        "mode": head.get("mode", key), "variant": key, "tree": head.get("tree", ""), "cache_reuse": head.get("cache_reuse"), "threads": head.get("threads"), "model": head.get("model"), "members": head.get("members"), "machine": head.get("machine"),
        "context": _story.CONTEXT, "reply_tokens": _story.REPLY_TOKENS,
        "turns": max((r["turn"] for r in rows), default=0), "replies": len(rows), "replies_by_speaker": speakers,
        "speaker_changes": sum(r["speaker_changed"] for r in rows),
        "overflow_replies": len(over), "first_overflow_turn": over[0]["turn"] if over else None,
        "evaluated_over_new": _round(statistics.fmean(ratios)) if ratios else None,
        "evaluated_over_new_median": _round(statistics.median(ratios)) if ratios else None,
        "evaluated_over_new_total": total(over),
        "evaluated_over_new_speaker_changed": total(changed),
        "evaluated_over_new_same_speaker": total(same),
        "recomputed_tokens": recomputed,
        "policy_rereads": sum(_policy_rereads(r) for r in known),
        "evaluated_over_new_without_policy_rereads": _round(
            (sum(r["evaluated"] for r in known) - sum(_policy_rereads(r) for r in known))
            / max(1, sum(r["new_tokens"] for r in known))) if known else None,
        "evaluated_over_new_without_recompute": _round(
            (sum(r["evaluated"] for r in known) - recomputed) / max(1, sum(r["new_tokens"] for r in known)))
        if known else None,
        "mean_new_tokens": _round(_story.mean([r["new_tokens"] for r in over])),
        "mean_new_tokens_speaker_changed": _round(_story.mean([r["new_tokens"] for r in changed])),
        "mean_evaluated_tokens": _round(_story.mean([r["evaluated"] for r in over])),
        "mean_prompt_tokens": _round(_story.mean([r["prompt_tokens"] for r in over])),
        "mean_stable_prefix_tokens": _round(_story.mean([r["stable_prefix"] for r in over])),
        "mean_ttft_s": _round(_story.mean([r["ttft"] for r in over])),
        "max_ttft_s": _round(max((r["ttft"] for r in over if r["ttft"] is not None), default=None)),
        "other_turn_rate": _round(sum(bool(r["shown_other"]) for r in rows) / len(rows)) if rows else None,
        "raw_other_turn_rate": _round(sum(bool(r["raw_other"]) for r in rows) / len(rows)) if rows else None,
        "empty_replies": sum(not r["shown"] for r in rows),
        "stopped_at_other_rate": _round(sum(bool(r["stopped_at_other"]) for r in rows) / len(rows))
        if rows and all("stopped_at_other" in r for r in rows) else None,
        "full_reads": sum(1 for r in rows[1:] if _full_read(r)),
        "asides": sum(r.get("asides_before", 0) for r in rows) if rows and "asides_before" in rows[0] else None,
        "replies_after_aside": sum(1 for r in over if r.get("asides_before")),
        "evaluated_over_new_after_aside": total([r for r in over if r.get("asides_before")]),
        "evaluated_over_new_not_after_aside": total([r for r in over if not r.get("asides_before")]),
        "evaluated_over_new_without_full_reads": total([r for r in over if not _full_read(r)]),
        "loadavg": [head.get("loadavg_start"), rows[-1]["loadavg"] if rows else None],
        "seconds": rows[-1]["seconds"] if rows else None,
        "targets": {"evaluated_over_new": TARGET_EVALUATED, "other_turn_rate": TARGET_OTHER_TURN},
    }


def _full_read(row: dict[str, Any]) -> bool:
    """The engine read (nearly) the whole prompt again for this reply."""
    return bool(row["evaluated"]) and row["evaluated"] >= 0.9 * row["prompt_tokens"]


def _policy_rereads(row: dict[str, Any]) -> int:
    """Tokens ``balanced`` read again for accuracy in one reply, estimated from the cache note: the
    window after each edit, plus, when it read again from a stale token on, the tokens from there
    to the end of the prompt less the new ones among them (the reply's new tokens less those it
    evaluated in place, in the middle). 0 under other policies."""
    note = row["cache_note"] or ""
    extra = _recomputed(note)
    found = re.search(r"evaluated again from token (\d+)", note)
    if found:
        in_place = re.search(r"evaluated (\d+) new tokens in place", note)
        new_in_place = max(0, (int(in_place.group(1)) if in_place else 0) - extra)
        new_at_end = max(0, row["new_tokens"] - new_in_place)
        extra += max(0, row["prompt_tokens"] - int(found.group(1)) - new_at_end)
    return min(extra, max(0, (row["evaluated"] or 0) - row["new_tokens"]))


def _recomputed(note: str) -> int:
    """Tokens the ``balanced`` policy evaluated again right after edits (from the engine's cache note)."""
    found = re.search(r"recomputed (\d+) tokens right after edits", note or "")
    return int(found.group(1)) if found else 0


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def publish(results: dict[str, dict[str, Any]], rows: dict[str, list[dict[str, Any]]]) -> None:
    """``bench/results/group-VARIANT.json`` per run and the doc's ``group`` section."""
    for key, result in results.items():
        write_json(f"group-{key}", {**result, "per_reply": rows[key]})
    write_section("group", _markdown(results))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "n/a" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _markdown(results: dict[str, dict[str, Any]]) -> str:
    modes = list(results)
    any_r = results[modes[0]]
    met = [f"{r['cache_reuse']} at {r['tree'] or '?'}" for r in results.values() if r["mode"] == "join"
           and r["evaluated_over_new"] is not None and r["evaluated_over_new"] <= TARGET_EVALUATED]
    rates = [r["other_turn_rate"] for r in results.values() if r["other_turn_rate"] is not None]
    ok_other = bool(rates) and max(rates) < TARGET_OTHER_TURN

    def row(label: str, key: str, fmt: Any = _fmt, target: str = "") -> str:
        return f"| {label} | " + " | ".join(fmt(results[m].get(key)) for m in modes) + f" | {target} |"

    header = "| | " + " | ".join(f"{results[m]['mode']}, {results[m]['cache_reuse']}, {results[m]['tree'] or '?'} "
                                 f"({results[m]['turns']} turns)"
                                 for m in modes) + " | target |"
    lines = [
        header, "|---|" + "---|" * len(modes) + "---|",
        row("evaluated / new tokens (overflowing replies)", "evaluated_over_new",
            target=f"join <= {TARGET_EVALUATED} " + (f"(met: {'; '.join(met)})" if met else "(missed)")),
        row("same, median", "evaluated_over_new_median"),
        row("same, totals over those replies", "evaluated_over_new_total"),
        row("same, replies after a change of speaker", "evaluated_over_new_speaker_changed"),
        row("same, totals, less the policy's re-evaluation after edits", "evaluated_over_new_without_recompute"),
        row("same, totals, less all the policy's re-reads (estimate: window after edits, stale tail)",
            "evaluated_over_new_without_policy_rereads"),
        row("same, totals, replies that did not read the whole prompt again", "evaluated_over_new_without_full_reads"),
        row("new tokens per reply", "mean_new_tokens"),
        row("new tokens per reply after a change of speaker", "mean_new_tokens_speaker_changed"),
        row("evaluated tokens per reply", "mean_evaluated_tokens"),
        row("prompt tokens per reply", "mean_prompt_tokens"),
        "| time to first token, mean / max, s | " + " | ".join(
            f"{_fmt(results[m]['mean_ttft_s'])} / {_fmt(results[m]['max_ttft_s'])}" for m in modes) + " | |",
        "| replies / overflowing / after a change of speaker | " + " | ".join(
            f"{results[m]['replies']} / {results[m]['overflow_replies']} / {results[m]['speaker_changes']}"
            for m in modes) + " | |",
        row("replies that write another's turn (shown)", "other_turn_rate", _pct,
            f"< {TARGET_OTHER_TURN:.0%} {'(met)' if ok_other else '(missed)'}"),
        row("the same in what the engine streamed (before the stream filter)", "raw_other_turn_rate", _pct),
        row("replies a stop string cut at another's marker (the model tried)", "stopped_at_other_rate", _pct),
        row("replies that read the whole prompt again (after the first)", "full_reads"),
        row("side-road generations (memory's scene summaries) between replies", "asides"),
        row("same, totals, overflowing replies right after one", "evaluated_over_new_after_aside"),
        row("same, totals, the other overflowing replies", "evaluated_over_new_not_after_aside"),
        row("empty replies", "empty_replies"),
    ]
    trees = ", ".join(f"{m} at {results[m]['tree'] or 'an unrecorded commit'}" for m in modes)
    load = "; ".join(f"{m}: {results[m]['loadavg'][0]} at the start, {results[m]['loadavg'][1]} at the end"
                     for m in modes)
    return f"""
`python -m bench group`: three bundled members ({', '.join(any_r['members'] or [])}) in natural
order, a scripted player (fixed lines, seeded; about half name a member, so natural order picks
them, and the seeded talkativeness draws add others) on {any_r['model']}, a {any_r['context']}-token
context so history is trimmed, {any_r['reply_tokens']}-token replies and the author's note every third
turn; the engine's `engine.cache_reuse` policy is named in each column (the default is
`balanced`). The same story is played with the cards joined (`join`: every member's card in the head, the
speaker named only after the history) and swapped (`swap`: only the speaker's card). "New tokens"
are the prompt tokens an ideal cache holding the previous prompt and what the engine generated
would still read; means over the replies whose prompt overflowed. "Writes another's turn": a line
of the reply the player is shown starts with another member's name marker (`Wren Calloway:` or
`Wren:`) or the player's (`User:`). Measured on {trees} (`+`: with uncommitted changes in the
checkout). {any_r['machine']}; the machine is shared, so times are noisy
(/proc/loadavg {load}); token counts are not. Raw figures, per reply:
{', '.join(f"`bench/results/group-{m}.json`" for m in modes)}.

{chr(10).join(lines)}

{_findings(results)}

{_WHY}

{_EARLIER}
"""


_WHY = """Where the tokens beyond the new ones go (each reply's cache note is in the JSON): a group reply
brings several edits for few new tokens. The oldest messages are trimmed, the author's note comes,
goes and moves down, and lore entries in the head change places: entries of equal order stand in
reverse scan order, as in SillyTavern, so one that fires from a key in the chat one turn and only
by recursion the next moves (with `fast` that costs the entry's own tokens, which the ideal cache
reads too). Before 06baa8c the previous reply's nudge (`[Write the next reply only as ...]`, after
the history) was also cut out of every prompt; a text-completion prompt no longer carries it (its
reply header names the speaker), so a reply that follows another in the same turn reads little
more than the new header. Memory writes scene summaries on a side road between replies; until the
embedded engine put its cache back after a side road, the reply after one found the summary's
prompt in the cache and read again everything the summary's prompt did not hold (the replies
that evaluated a long unchanged stretch of history in the runs at 644ef8d+); the rows "right after
one" and "the other overflowing replies" tell them apart. The plan itself
(`engines/_kvcache.py`) keeps every run of 16 tokens or more that an ideal cache keeps
(`tests/engines/test_kvcache_plan.py`). `balanced` reads again, for accuracy, the 16 tokens after
each edit, the stale tokens among the last 192 before the new text (in a group, where a reply adds
few tokens, most of what it evaluates), and everything from the first stale token once cached
tokens have missed too many edits; the row "less all the policy's re-reads" estimates the
evaluation without them from the cache notes. In `swap` every change of speaker replaces the card
and its examples at the head of the prompt; Ink & Margin's card has its own system prompt, so a
change to or from it alters the prompt from its fourth token on. The engine took a prompt sharing
fewer than four tokens with its cache for a new one and read it whole (the 644ef8d+ run); since
MIN_PREFIX went to three (the template's opening turn) it reads the new card and keeps the history."""


_EARLIER = """Earlier runs, replaced above (their JSON is in git at f7b608c): at 644ef8d+, with the nudge in
every prompt and side roads that left their prompt in the cache, `join` evaluated 1.62 times its
new tokens with `fast` (median 1.0, totals 1.4; the 13 replies right after a scene summary evaluated 110-515
tokens more than their new ones, unchanged history) and 2.42 with `balanced` (before RECENT_WINDOW); `swap` with
`balanced` 5.84 over 78 turns, 91 of its 148 replies reading the whole prompt again (in its first
25 turns, the length of the `swap` run above: totals 5.68, 23 of 42 replies reading it all again,
1217 tokens evaluated per overflowing reply)."""


def _findings(results: dict[str, dict[str, Any]]) -> str:
    """What the figures say, in sentences made from them."""
    out = []
    for key, r in results.items():
        if r["evaluated_over_new"] is None:
            continue
        text = (f"`{r['mode']}` with `{r['cache_reuse']}` at {r['tree'] or '?'}: evaluated / new "
                f"{_fmt(r['evaluated_over_new'])} (median {_fmt(r['evaluated_over_new_median'])}, totals "
                f"{_fmt(r['evaluated_over_new_total'])}; {_fmt(r['mean_evaluated_tokens'])} tokens evaluated for "
                f"{_fmt(r['mean_new_tokens'])} new per reply)")
        if r["cache_reuse"] == "balanced":
            text += (f"; the policy evaluated {r['recomputed_tokens']} tokens again right after edits, and without them "
                     f"the totals would be {_fmt(r['evaluated_over_new_without_recompute'])}; without all its "
                     f"re-reads (estimated from the cache notes) {_fmt(r.get('evaluated_over_new_without_policy_rereads'))}")
        if r.get("asides"):
            text += (f"; {r['asides']} side-road generations (scene summaries) ran between replies, and the "
                     f"{r['replies_after_aside']} overflowing replies right after one evaluated "
                     f"{_fmt(r['evaluated_over_new_after_aside'])} times their new tokens")
        if r["full_reads"]:
            text += f"; {r['full_reads']} replies read the whole prompt again"
        out.append(text + ".")
    return "\n".join(f"- {line}" for line in out)


def run(turns: int = 100, modes: tuple[str, ...] = MODES, verbose: bool = False, from_progress: bool = False,
        publish_results: bool = True, threads: int | None = None, cache_reuse: str | None = None) -> dict[str, Any]:
    """Play (or read back) each mode; writes the results and the doc section."""
    results: dict[str, dict[str, Any]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    keys = [variant(mode, cache_reuse) for mode in modes]
    for mode in modes:
        if not from_progress:
            asyncio.run(play(mode, turns, verbose=verbose, threads=threads, cache_reuse=cache_reuse))
    if from_progress:  # every run whose per-reply file is there, so the doc shows them side by side
        keys = [k for m in modes for k in (variant(m), *(variant(m, p) for p in POLICIES)) if progress_path(k).is_file()]
    for key in keys:
        head, rows[key] = read_progress(key, turns)
        results[key] = summarise(key, head, rows[key])
    if publish_results:
        publish(results, rows)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared with ``python -m bench group``)."""
    parser.add_argument("--turns", type=int, default=100, help="player turns to play (default 100)")
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both", help="card mode (default both)")
    parser.add_argument("--from-progress", action="store_true",
                        help="write the results from the last run's per-reply files instead of playing")
    parser.add_argument("--threads", type=int, help="CPU threads for the engine (default: llama.cpp's choice)")
    parser.add_argument("--cache-reuse", choices=POLICIES,
                        help="the embedded engine's cache policy (default: the setting's default)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every reply to stderr")


def run_from_args(args: argparse.Namespace) -> int:
    if getattr(args, "engine", "embedded") != "embedded":
        print("the group benchmark runs on the embedded engine only", file=sys.stderr)
        return 2
    modes = MODES if args.mode == "both" else (args.mode,)
    results = run(args.turns, modes, verbose=args.verbose, from_progress=args.from_progress,
                  threads=args.threads, cache_reuse=args.cache_reuse)
    print(json.dumps(results, indent=None if getattr(args, "json", False) else 2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench group", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
