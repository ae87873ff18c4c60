"""Narrator benchmark: how often does the adventure narrator play the player or leak prompt labels?

Plays the scripted 100-turn Hollowmere adventure (``bench/_story.py``: fixed inputs, seeded) on
the embedded engine with the bundled narrator card and world, the author's note every third
turn, and 60-token replies. Each reply is checked with the rules of
``storyteller.prompt.reply_filter``:

- *player turn*: the reply writes the player's action or speech (``> You ...`` lines, a
  ``User:`` line, ``You answer, "..."``, ``you kiss him``), other than restating the action the
  player typed this turn (:func:`find_player_turn`);
- *leaked label*: a prompt label in the prose (``Name's personality:``, ``Scenario:``,
  ``[Author's note: ...]``, a bracketed ``[Label: ...]`` line; :func:`find_label`).

Both are counted twice: in what the model wrote (every attempt, before storyteller's own
filters) and in the reply the player is shown and the story keeps. Target: under 5% of shown
replies with a player turn, and none with a leaked label.

Run: ``python -m bench narrator [--turns N] [--label before|after]``. ``--label before`` writes
``bench/results/narrator-before.json``; the doc section shows the last "before" next to the
current run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _story
from bench._report import RESULTS, machine, write_json, write_section

TARGET_PLAYER = 0.05
TARGET_LABEL = 0.0
PLAYER_NAMES = ("User", "You", "Player")
REPLY_TOKENS = 60
"""Tokens per reply: a short paragraph (the app's default of 200 makes a 100-turn run take most
of an hour on a 2-core machine; the rates are per reply either way)."""


class RawRecorder:
    """Wraps a backend and keeps the raw text of every generation, before any filter."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.raw: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def stream(self, request: Any) -> Any:
        from storyteller.engines.base import TextChunk

        parts: list[str] = []
        self.raw.append("")
        async for chunk in self.inner.stream(request):
            if isinstance(chunk, TextChunk):
                parts.append(chunk.text)
                self.raw[-1] = "".join(parts)
            yield chunk


def classify(text: str, kind: str, typed: str, names: list[str]) -> dict[str, Any]:
    """The benchmark's verdict on one piece of text."""
    from storyteller.prompt.reply_filter import find_label, find_player_turn, input_verbs

    turn = find_player_turn(text, names=PLAYER_NAMES, allowed=input_verbs(kind, typed))
    label = find_label(text, names)
    return {"player_turn": f"{turn.reason}: {turn.words}" if turn else None, "label": label}


def progress_path(label: str) -> Path:
    """Where each turn's record is appended as it is played (``--from-progress`` reads it back)."""
    return _story.bench_home() / f"narrator-{label}.jsonl"


async def play(turns: int, reply_tokens: int | None, verbose: bool, label: str = "after") -> dict[str, Any]:
    from storyteller.engines.factory import open_backend
    from storyteller.session_setup import open_session
    from storyteller.story.model import AuthorsNote

    paths = _story.fresh_paths("narrator")
    settings = _story.settings_for("embedded", None)
    tokens = reply_tokens or REPLY_TOKENS
    settings.sampling = settings.sampling.model_copy(update={"max_tokens": tokens})
    backend = await open_backend(settings, paths)
    recorder = RawRecorder(backend)
    session = await open_session("narrator-bench", settings=settings, paths=paths, backend=recorder)  # type: ignore[arg-type]
    session.story.set_settings(authors_note=AuthorsNote(text=_story.NOTE, depth=4, interval=_story.NOTE_INTERVAL))
    names = [session.character_name, "Narrator", session.story.settings.persona.name]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    progress = progress_path(label)
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.write_text(json.dumps({"model": backend.info().model, "reply_tokens": tokens}) + "\n", encoding="utf-8")
    try:
        for number, (kind, typed) in enumerate(_story.script(turns)):
            recorder.raw.clear()
            reply = await session.submit(typed, kind)
            shown = reply.text if reply is not None else ""
            raw = [classify(text, kind, typed, names) for text in recorder.raw]
            row = {
                "turn": number + 1, "kind": kind, "input": typed, "shown": shown, "raw": list(recorder.raw),
                "shown_verdict": classify(shown, kind, typed, names),
                "raw_player_turn": any(r["player_turn"] for r in raw),
                "raw_label": any(r["label"] for r in raw),
                "finish_reason": reply.generation.finish_reason if reply is not None and reply.generation else None,
                "trimmed": bool(reply is not None and reply.generation is not None
                                and getattr(reply.generation, "trimmed", "")),
                "template": session.last_prompt.template if session.last_prompt is not None else None,
            }
            rows.append(row)
            with progress.open("a", encoding="utf-8") as log:
                log.write(json.dumps({**row, "seconds": time.perf_counter() - started}) + "\n")
            if verbose:
                verdict = row["shown_verdict"]
                print(f"turn {number + 1:3d} {kind:5s} player={verdict['player_turn']} label={verdict['label']} "
                      f"raw_player={row['raw_player_turn']} raw_label={row['raw_label']}\n    {shown[:160]!r}",
                      file=sys.stderr, flush=True)
        info = backend.info()
    finally:
        await session.close()
        await backend.aclose()
    return {"rows": rows, "seconds": time.perf_counter() - started, "model": info.model, "reply_tokens": tokens}


def summarise(played: dict[str, Any], label: str) -> dict[str, Any]:
    """The headline rates."""
    rows = played["rows"]
    n = max(len(rows), 1)
    shown_player = [r for r in rows if r["shown_verdict"]["player_turn"]]
    shown_label = [r for r in rows if r["shown_verdict"]["label"]]
    empty = [r for r in rows if not r["shown"].strip()]
    return {
        "label": label,
        "model": played["model"],
        "machine": machine(),
        "turns": len(rows),
        "reply_tokens": played["reply_tokens"],
        "context": _story.CONTEXT,
        "template": rows[-1]["template"] if rows else None,
        "player_turn_rate": round(len(shown_player) / n, 4),
        "label_rate": round(len(shown_label) / n, 4),
        "raw_player_turn_rate": round(sum(r["raw_player_turn"] for r in rows) / n, 4),
        "raw_label_rate": round(sum(r["raw_label"] for r in rows) / n, 4),
        "empty_replies": len(empty),
        "trimmed_replies": sum(1 for r in rows if r["trimmed"]),
        "mean_reply_chars": round(sum(len(r["shown"]) for r in rows) / n, 1)
        if all("shown" in r for r in rows) else None,
        "examples_player_turn": [f"turn {r['turn']}: {r['shown_verdict']['player_turn']}" for r in shown_player[:8]],
        "examples_label": [f"turn {r['turn']}: {r['shown_verdict']['label'][:60]}" for r in shown_label[:8]],
        "seconds": round(played["seconds"], 1),
        "targets": {"player_turn_rate": TARGET_PLAYER, "label_rate": TARGET_LABEL},
    }


def run(turns: int = 100, label: str = "after", reply_tokens: int | None = None, verbose: bool = False,
        publish: bool = True) -> dict[str, Any]:
    """Run the benchmark; writes ``bench/results/narrator[-before].json`` and the doc section."""
    played = asyncio.run(play(turns, reply_tokens, verbose, label))
    result = summarise(played, label)
    result["per_turn"] = played["rows"]
    if publish:
        publish_results(result, label)
    return result


def from_progress(label: str, turns: int) -> dict[str, Any]:
    """Summarise the first ``turns`` turns recorded so far by a run (interrupted, or still going)."""
    lines = progress_path(label).read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    rows = [json.loads(line) for line in lines[1:] if line.strip()][:turns]
    for row in rows:  # judge again with today's rules, so two runs are always compared alike
        names = row.get("names") or ["Narrator of Hollowmere", "Narrator", "User"]
        row["shown_verdict"] = classify(row["shown"], row["kind"], row["input"], names)
        raw = [classify(text, row["kind"], row["input"], names) for text in row["raw"]]
        row["raw_player_turn"] = any(r["player_turn"] for r in raw)
        row["raw_label"] = any(r["label"] for r in raw)
    played = {"rows": rows, "seconds": rows[-1].get("seconds", 0.0) if rows else 0.0, **head}
    result = summarise(played, label)
    result["per_turn"] = rows
    return result


def publish_results(result: dict[str, Any], label: str) -> None:
    """Write the JSON and the doc section for a summarised run."""
    write_json("narrator-before" if label == "before" else "narrator", result)
    before = _load("narrator-before") if label != "before" else result
    after = result if label != "before" else _load("narrator")
    write_section("narrator", _markdown(before, after))


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _markdown(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    ref = after or before or {}
    cols = [("before", before), ("after", after)]

    def row(name: str, key: str, fmt: Any = _pct) -> str:
        return f"| {name} | " + " | ".join(fmt(r.get(key)) if r else "n/a" for _, r in cols) + " |"

    ok_player = after is not None and after["player_turn_rate"] < TARGET_PLAYER
    ok_label = after is not None and after["label_rate"] <= TARGET_LABEL
    turns = " / ".join(str(r["turns"]) for _, r in cols if r)
    examples = "\n".join(f"  - {e}" for e in (before or {}).get("examples_player_turn", [])[:4])
    full = _load("narrator-before-full")
    longer = ""
    if full and before and full["turns"] > before["turns"]:
        longer = (f"\nBoth columns cover the same first {before['turns']} turns (the \"after\" run was stopped there "
                  f"for time, on a shared, heavily loaded machine); the \"before\" run went on to {full['turns']} "
                  f"turns: {_pct(full['player_turn_rate'])} of its replies played the player and "
                  f"{_pct(full['label_rate'])} leaked a label.\n")
    return f"""
`python -m bench narrator`: the scripted Hollowmere adventure ({turns} turns) on {ref.get('model')},
{ref.get('context')}-token context, {ref.get('reply_tokens')}-token replies, seeded, author's note every third
turn; {ref.get('machine')}. "Before" is the code before issue 14 (the whole adventure in one open assistant
turn, the author's note as a bracketed line in it, only the `\\n>` stop string and the `>` ban, no
trimming); "after" is the current code (turns, stream filter, trimming). A reply *plays the player* when, outside quoted speech, it
has a `>` action line or a `User:` line, "you" followed by a speech verb (`You answer, "..."`), or
"you"/"I" as a subject followed by a verb other than perceiving or being (see, hear, feel, are,
can...) and other than the action the player typed this turn (the rules of
`storyteller/prompt/reply_filter.py`, which the stream filter also applies). A *leaked label* is a
prompt label in the prose: `Name's personality:`, `Scenario:`, `[Author's note: ...]`, a
`[Label: ...]` line. "Model wrote" counts every attempt before storyteller's filters; "shown" is the
reply the player sees and the story keeps. Raw figures, per turn: `bench/results/narrator.json` and
`narrator-before.json`.

| | before | after |
|---|---|---|
{row("replies that play the player (shown)", "player_turn_rate")}
{row("replies with a leaked label (shown)", "label_rate")}
{row("model wrote a player turn (any attempt)", "raw_player_turn_rate")}
{row("model wrote a label (any attempt)", "raw_label_rate")}
{row("replies trimmed to a full sentence", "trimmed_replies", str)}
{row("empty replies", "empty_replies", str)}
{row("mean reply length, characters", "mean_reply_chars", str)}
{row("prompt template", "template", str)}

Targets: under {_pct(TARGET_PLAYER)} of replies play the player ({'met' if ok_player else 'missed'}); no leaked
labels ({'met' if ok_label else 'missed'}).{longer} Before, for example:
{examples}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument("--turns", type=int, default=100, help="turns to play (default 100)")
    parser.add_argument("--label", choices=("before", "after"), default="after",
                        help="'before' keeps the result as the baseline the doc compares with")
    parser.add_argument("--reply-tokens", type=int, default=None, help=f"reply length (default {REPLY_TOKENS})")
    parser.add_argument("--no-publish", action="store_true", help="print only; leave results and the doc alone")
    parser.add_argument("--from-progress", action="store_true",
                        help="play nothing: summarise the first --turns turns a run has recorded so far")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every turn to stderr")


def run_from_args(args: argparse.Namespace) -> int:
    if getattr(args, "engine", "embedded") != "embedded":
        print("the narrator benchmark runs on the embedded engine only", file=sys.stderr)
        return 2
    if args.from_progress:
        result = from_progress(args.label, args.turns)
        if not args.no_publish:
            publish_results(result, args.label)
    else:
        result = run(args.turns, args.label, args.reply_tokens, args.verbose, publish=not args.no_publish)
    print(json.dumps({k: v for k, v in result.items() if k != "per_turn"}, indent=None if args.json else 2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench narrator", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
