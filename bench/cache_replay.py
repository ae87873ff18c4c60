"""Tuning aid for ``engine.cache_reuse``: one recorded story replayed under several policies.

``bench cache_quality`` plays the story once per policy, so each policy writes its own replies
and sees its own prompts. For tuning, this records the scripted story once (the requests, the
replies, and a fresh evaluation's last logits per turn), then replays exactly those prompts
under each configuration, feeding the recorded replies back, and reports KL(fresh || reused),
top-1 agreement and evaluated / new tokens on the same prompts: a paired comparison, at the
cost of one engine pass per configuration.

    python bench/cache_replay.py record --turns 12 --context 1024 --out /tmp/story
    python bench/cache_replay.py replay /tmp/story fast balanced balanced:RECENT_WINDOW=0

A configuration is a policy, optionally with ``_staleness`` constants to override
(``balanced:RECOMPUTE_WINDOW=0,RECENT_WINDOW=256``). Figures go to stdout, not to the docs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _story  # noqa: E402
from bench.cache_quality_bench import _exact, _probe_class, kl  # noqa: E402


def _settings(policy: str, context: int) -> Any:
    _story.CONTEXT = context
    settings = _story.settings_for("embedded", None, reuse=True, kv_state="off", memory=False)
    settings.engine.cache_reuse = policy  # type: ignore[assignment]
    settings.engine.n_threads = settings.engine.n_threads_batch = 1
    return settings


async def record(turns: int, context: int, out: str) -> None:
    """Play the story (``fast``), keeping each turn's request, reply and fresh last logits."""
    import numpy as np

    from storyteller.models import bundled_model_path
    from storyteller.session_setup import open_session

    settings = _settings("fast", context)
    probe = _probe_class()
    backend = probe.load(bundled_model_path(), settings.engine)
    exact = probe.load(bundled_model_path(), settings.engine.model_copy(update={"prefix_reuse": False}))
    recorder = _story.RecordingBackend(backend)
    session = await open_session(_story.STORY, settings=settings, paths=_story.fresh_paths("replay-record"),
                                 backend=recorder)  # type: ignore[arg-type]
    rows: list[dict[str, Any]] = []
    logits: list[Any] = []
    replies: list[str] = []
    submit = session.submit

    async def submitted(text: str, kind: str) -> Any:
        reply = await submit(text, kind)
        replies.append(reply.text if reply is not None else "")
        return reply

    async def measure(turn: _story.Turn) -> None:
        mine = [r for r in backend.records if r.request.prompt == session.last_prompt.text]
        backend.records.clear()
        ref = await _exact(exact, mine[0].request)
        exact.records.clear()
        rows.append({"turn": turn.turn, "prompt": mine[0].request.prompt, "add_bos": mine[0].request.add_bos,
                     "tokens": mine[0].tokens, "reply": replies[-1]})
        logits.append(ref.logits.astype(np.float32))
        Path(out + ".json").write_text(json.dumps(rows))  # a stopped recording keeps its turns
        np.save(out + ".npy", np.stack(logits))
        print(f"recorded turn {turn.turn}", file=sys.stderr, flush=True)

    session.submit = submitted  # type: ignore[method-assign]
    try:
        await _story.play(session, recorder, backend.tokenize, turns, measure)
    finally:
        await session.close()
        await backend.aclose()
        await exact.aclose()


async def replay(rows: list[dict[str, Any]], fresh: Any, config: str, context: int) -> list[dict[str, Any]]:
    """Replay the recorded prompts under one configuration."""
    from storyteller.engines import _staleness
    from storyteller.engines.base import GenerationRequest, Sampling, collect
    from storyteller.models import bundled_model_path

    policy, _, rest = config.partition(":")
    overrides = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
    saved = {name: getattr(_staleness, name) for name in overrides}
    for name, value in overrides.items():
        setattr(_staleness, name, type(saved[name])(value))
    engine = _probe_class().load(bundled_model_path(), _settings(policy, context).engine)
    out: list[dict[str, Any]] = []
    before: list[int] = []

    def one(prompt: str, add_bos: bool) -> Any:
        return GenerationRequest(prompt=prompt, add_bos=add_bos, sampling=Sampling(max_tokens=1, temperature=0.0, seed=1))

    try:
        for i, row in enumerate(rows):
            result = await collect(engine, one(row["prompt"], row["add_bos"]))
            mine = engine.records[-1]
            if mine.tokens != row["tokens"]:
                raise RuntimeError(f"turn {i + 1}: the prompt tokenized differently from the recording")
            out.append({"turn": i + 1, "kl": kl(fresh[i].astype("float64"), mine.logits),
                        "top1": int(fresh[i].argmax()) == int(mine.logits.argmax()),
                        "new": _story.new_tokens(before, mine.tokens) if before else len(mine.tokens),
                        "evaluated": result.stats.tokens_evaluated, "note": result.stats.cache_note})
            await collect(engine, one(row["prompt"] + row["reply"], row["add_bos"]))  # the reply, as generated
            engine.records.clear()
            before = mine.tokens + engine.tokenize(row["reply"])
    finally:
        await engine.aclose()
        for name, value in saved.items():
            setattr(_staleness, name, value)
    return out


def summary(config: str, out: list[dict[str, Any]]) -> str:
    """One line per configuration (turns after the first)."""
    rows = out[1:]
    kls = [r["kl"] for r in rows]
    return (f"{config:48s} turns {len(rows)} mean KL {statistics.fmean(kls):.4f} median {statistics.median(kls):.4f} "
            f"max {max(kls):.3f} top-1 {statistics.fmean(r['top1'] for r in rows):.3f} "
            f"evaluated/new {statistics.fmean(r['evaluated'] / r['new'] for r in rows):.3f}")


def main() -> int:
    from storyteller.engines.native import preload

    preload()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--turns", type=int, default=12)
    rec.add_argument("--context", type=int, default=1024)
    rec.add_argument("--out", required=True)
    rep = sub.add_parser("replay")
    rep.add_argument("story")
    rep.add_argument("configs", nargs="+")
    rep.add_argument("--context", type=int, default=1024)
    rep.add_argument("--dump", help="write the per-turn rows here (JSON)")
    args = parser.parse_args()
    if args.command == "record":
        asyncio.run(record(args.turns, args.context, args.out))
        return 0
    import numpy as np

    rows = json.loads(Path(args.story + ".json").read_text())
    fresh = np.load(args.story + ".npy")
    dumped = {}
    for config in args.configs:
        started = time.perf_counter()
        dumped[config] = asyncio.run(replay(rows, fresh, config, args.context))
        print(summary(config, dumped[config]), f"({time.perf_counter() - started:.0f} s)", flush=True)
    if args.dump:
        Path(args.dump).write_text(json.dumps(dumped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
