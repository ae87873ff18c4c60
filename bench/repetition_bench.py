"""Repetition benchmark: how often does the bundled model repeat itself across turns?

Plays the scripted 100-turn Hollowmere adventure (``bench/_story.py``: fixed inputs, seeded) on
the embedded engine with the bundled model, the author's note every third turn and the app's
default sampler settings and reply length, and measures over the replies the player is shown:

- *repeated runs*: the share of replies that contain a run of 12 or more tokens (the model's
  tokens) found in an earlier reply of the same story;
- *distinct-2*: distinct word pairs over all word pairs of all replies (1.0: no pair twice).

Target: repeated runs in under 10% of replies with the default settings.

Run: ``python -m bench repetition [--turns N] [--label before|dry-off|after]``. ``after`` (the
default) plays with the app's default settings; ``dry-off`` the same with DRY turned off;
``before`` is a run recorded from the code before the sampler chain (issue 22). Each label
keeps its own ``bench/results/repetition[-LABEL].json``; the doc section shows all three.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _story
from bench._report import machine, write_json, write_section

RUN = 12
"""Token run length that counts as a repeat."""
TARGET = 0.10
LABELS = ("before", "dry-off", "after")
_WORD = re.compile(r"\w+(?:'\w+)?")


def repeated_runs(replies: list[list[int]], run: int = RUN) -> list[int | None]:
    """For each reply, the index of the first earlier reply it shares a ``run``-token run with."""
    seen: dict[tuple[int, ...], int] = {}
    found: list[int | None] = []
    for i, tokens in enumerate(replies):
        grams = {tuple(tokens[k:k + run]) for k in range(len(tokens) - run + 1)}
        hits = [seen[g] for g in grams if g in seen]
        found.append(min(hits) if hits else None)
        for g in grams:
            seen.setdefault(g, i)
    return found


def distinct_2(texts: list[str]) -> float:
    """Distinct word bigrams / all word bigrams, over every text (bigrams never span two texts)."""
    pairs: list[tuple[str, str]] = []
    for text in texts:
        words = _WORD.findall(text.lower())
        pairs += list(zip(words, words[1:], strict=False))
    return len(set(pairs)) / len(pairs) if pairs else 1.0


async def play(turns: int, reply_tokens: int | None, overrides: dict[str, Any], verbose: bool) -> dict[str, Any]:
    from storyteller.engines.factory import open_backend
    from storyteller.session_setup import open_session
    from storyteller.story.model import AuthorsNote

    paths = _story.fresh_paths("repetition")
    settings = _story.settings_for("embedded", None)
    tokens = reply_tokens or type(settings.sampling)().max_tokens
    settings.sampling = settings.sampling.model_copy(update={"max_tokens": tokens, **overrides})
    backend = await open_backend(settings, paths)
    session = await open_session("repetition-bench", settings=settings, paths=paths, backend=backend)
    session.story.set_settings(authors_note=AuthorsNote(text=_story.NOTE, depth=4, interval=_story.NOTE_INTERVAL))
    replies: list[str] = []
    started = time.perf_counter()
    try:
        for number, (kind, typed) in enumerate(_story.script(turns)):
            reply = await session.submit(typed, kind)
            replies.append(reply.text if reply is not None else "")
            if verbose:
                print(f"turn {number + 1:3d} {kind:5s} {replies[-1][:150]!r}", file=sys.stderr, flush=True)
        token_lists = [backend.tokenize(text) for text in replies]
        info = backend.info()
        sampling = settings.sampling.model_dump(exclude={"stop", "logit_bias", "grammar"})
    finally:
        await session.close()
        await backend.aclose()
    return {"replies": replies, "tokens": token_lists, "seconds": time.perf_counter() - started,
            "model": info.model, "reply_tokens": tokens, "sampling": sampling}


def summarise(played: dict[str, Any], label: str) -> dict[str, Any]:
    """The headline figures."""
    replies, tokens = played["replies"], played["tokens"]
    hits = repeated_runs(tokens)
    n = max(len(replies), 1)
    examples = []
    for i, j in enumerate(hits):
        if j is not None and len(examples) < 5:
            examples.append(f"turn {i + 1} repeats turn {j + 1}: {replies[i][:90]!r}")
    return {
        "label": label,
        "model": played["model"],
        "machine": machine(),
        "turns": len(replies),
        "reply_tokens": played["reply_tokens"],
        "context": _story.CONTEXT,
        "sampling": played["sampling"],
        "repeated_run_rate": round(sum(h is not None for h in hits) / n, 4),
        "distinct_2": round(distinct_2(replies), 4),
        "mean_reply_tokens": round(sum(len(t) for t in tokens) / n, 1),
        "empty_replies": sum(1 for r in replies if not r.strip()),
        "examples": examples,
        "seconds": round(played["seconds"], 1),
        "target": {"repeated_run_rate": TARGET},
    }


def _name(label: str) -> str:
    return "repetition" if label == "after" else f"repetition-{label}"


def _load(name: str) -> dict[str, Any] | None:
    from bench._report import _targets

    try:
        return json.loads((_targets()[0] / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run(turns: int = 100, label: str = "after", reply_tokens: int | None = None, verbose: bool = False,
        publish: bool = True) -> dict[str, Any]:
    """Run the benchmark; writes ``bench/results/repetition[-LABEL].json`` and the doc section."""
    overrides = {"dry_multiplier": 0.0} if label == "dry-off" else {}
    played = asyncio.run(play(turns, reply_tokens, overrides, verbose))
    result = summarise(played, label)
    result["per_turn"] = [{"turn": i + 1, "reply": r} for i, r in enumerate(played["replies"])]
    if publish:
        write_json(_name(label), result)
        write_section("repetition", _markdown({name: _load(_name(name)) for name in LABELS}))
    return result


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _markdown(runs: dict[str, dict[str, Any] | None]) -> str:
    runs = {name: r for name, r in runs.items() if r}  # only the runs recorded so far
    ref = runs.get("after") or next((r for r in runs.values() if r), {})
    heads = {"before": "before (old engine)", "dry-off": "sampler chain, DRY off", "after": "now (default settings)"}

    def row(name: str, key: str, fmt: Any = _pct) -> str:
        return f"| {name} | " + " | ".join(fmt(r.get(key)) if r else "n/a" for r in runs.values()) + " |"

    def dry(r: dict[str, Any] | None) -> str:
        s = (r or {}).get("sampling") or {}
        if not s.get("dry_multiplier"):
            return "off"
        return (f"{s['dry_multiplier']} / {s.get('dry_base')} / {s.get('dry_allowed_length')} / "
                f"{s.get('dry_penalty_last_n')}")

    after = runs.get("after")
    met = after is not None and after["repeated_run_rate"] < TARGET
    examples = "\n".join(f"  - {e}" for e in ((runs.get("before") or {}).get("examples") or [])[:3])
    dry_off = (' "DRY off" is the sampler chain with DRY switched off (its repeat penalty also sees the'
               " prompt's last tokens, as llama.cpp's server does);") if "dry-off" in runs else ""
    short = ""
    if ref.get("turns", 100) < 100 or ref.get("reply_tokens", 200) < 200:
        short = (f" These runs played the first {ref.get('turns')} turns with {ref.get('reply_tokens')}-token"
                 " replies: on the shared 2-core machine each took 30-50 minutes, and the full script"
                 " (100 turns, 200-token replies) did not fit; `python -m bench repetition` plays it all.")
    return f"""
`python -m bench repetition`: the scripted Hollowmere adventure ({ref.get('turns')} turns) on
{ref.get('model')}, {ref.get('context')}-token context, the app's default sampler settings and
{ref.get('reply_tokens')}-token replies, seeded, author's note every third turn; {ref.get('machine')}.
*Repeated runs*: replies containing a run of {RUN} or more tokens found in an earlier reply.
*Distinct-2*: distinct word pairs over all word pairs of all replies (higher is more varied).
"Before" is the engine before issue 22 (llama-cpp-python's own sampling: no DRY; its repeat
penalty saw only the reply);{dry_off} "now" is the default settings as shipped, DRY on. Raw figures, every reply: `bench/results/repetition*.json`.

| | {' | '.join(heads[k] for k in runs)} |
|---|{'---|' * len(runs)}
{row("replies repeating a 12-token run", "repeated_run_rate")}
{row("distinct-2", "distinct_2", lambda v: f"{v:.3f}")}
{row("mean reply length, tokens", "mean_reply_tokens", str)}
{row("empty replies", "empty_replies", str)}
| DRY multiplier / base / allowed length / range | {' | '.join(dry(r) if r else 'n/a' for r in runs.values())} |

Target: repeated runs in under {_pct(TARGET)} of replies with the default settings
({'met' if met else 'missed'}).{short} Before, for example:
{examples}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument("--turns", type=int, default=100, help="turns to play (default 100)")
    parser.add_argument("--label", choices=LABELS, default="after",
                        help="after: default settings; dry-off: DRY turned off; before: a baseline run")
    parser.add_argument("--reply-tokens", type=int, default=None, help="reply length (default: the app's)")
    parser.add_argument("--no-publish", action="store_true", help="print only; leave results and the doc alone")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every reply to stderr")


def run_from_args(args: argparse.Namespace) -> int:
    if getattr(args, "engine", "embedded") != "embedded":
        print("the repetition benchmark runs on the embedded engine only", file=sys.stderr)
        return 2
    result = run(args.turns, args.label, args.reply_tokens, args.verbose, publish=not args.no_publish)
    print(json.dumps({k: v for k, v in result.items() if k != "per_turn"}, indent=None if args.json else 2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench repetition", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
