"""Cache quality benchmark: what reusing stale KV values costs in predictions, per reuse policy.

Plays the cache benchmark's scripted story (``bench/_story.py``) through the real Session on the
embedded engine, once per ``engine.cache_reuse`` policy. On every turn it reads the engine's
next-token distribution at the prompt's last position (the logits the reply's first token is
drawn from) and evaluates the same request again on a second engine that never reuses its cache
(a fresh context, the same code path). It reports KL(exact || reused) in nats, whether the top
token agrees, how both grow with the stale tokens the engine tracks, and what the policy costs
in evaluated tokens and time to first token. Controls, every few turns: the exact evaluation
repeated (KL should be 0), and the exact prompt with one world-info entry dropped (what a
plainly wrong prompt looks like).

Targets for ``balanced`` (the default): mean KL < 0.01 nats, top-1 agreement >= 99%,
evaluated / new <= 1.3, time to first token / time for the new tokens alone <= 1.5.

Run: ``python -m bench cache_quality [--turns N] [--policies exact,balanced,fast] [--layout both]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _story
from bench._report import machine, write_json, write_section

TARGET_KL = 0.01
TARGET_TOP1 = 0.99
TARGET_EVALUATED = 1.3
TARGET_TTFT = 1.5
CONTROL_EVERY = 10
THREADS = 0


@dataclass(slots=True)
class _Record:
    request: Any
    cached: list[int]
    plan: Any = None
    tokens: list[int] | None = None
    logits: Any = None
    seconds: float = 0.0


def _probe_class() -> type:
    """LlamaCppBackend that keeps each generation's plan and its prompt's last logits."""
    from storyteller.engines.llamacpp import LlamaCppBackend

    class Probe(LlamaCppBackend):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.records: list[_Record] = []

        def _plan(self, request: Any) -> Any:
            record = _Record(request, list(self._llm.input_ids[: self._llm.n_tokens]))
            record.seconds = time.perf_counter()
            plan = super()._plan(request)
            record.plan = plan
            self.records.append(record)
            return plan

        def _decode_reply(self, tokens: list[int], *args: Any, **kwargs: Any) -> Any:
            import llama_cpp
            import numpy as np

            from storyteller.engines import _llama_private as private

            record = self.records[-1]
            record.seconds = time.perf_counter() - record.seconds  # prompt evaluation
            n_vocab = self._llm.n_vocab()
            ptr = llama_cpp.llama_get_logits_ith(private.ctx(self._llm), -1)
            record.logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).astype(np.float64)
            record.tokens = list(tokens)
            return super()._decode_reply(tokens, *args, **kwargs)

    return Probe


def kl(exact: Any, other: Any) -> float:
    """KL(exact || other) in nats, between the softmaxes of two logit vectors."""
    import numpy as np

    def log_softmax(x: Any) -> Any:
        x = x - x.max()
        return x - math.log(float(np.exp(x).sum()))

    lp, lq = log_softmax(exact), log_softmax(other)
    return max(float((np.exp(lp) * (lp - lq)).sum()), 0.0)


async def _exact(engine: Any, request: Any, prompt: str | None = None) -> _Record:
    from storyteller.engines.base import GenerationRequest, Sampling, collect

    replay = GenerationRequest(prompt=prompt if prompt is not None else request.prompt,
                               messages=None if (prompt is not None or request.prompt is not None) else request.messages,
                               add_bos=request.add_bos, sampling=Sampling(max_tokens=1, temperature=0.0, seed=1))
    await collect(engine, replay)
    return engine.records[-1]


def _kind(record: _Record) -> str:
    from storyteller.engines._kvcache import plan_reuse

    if not record.cached:
        return "first"
    plan = plan_reuse(record.cached, record.tokens or [], insert=True)
    big = [(a, b) for a, b in plan.inserts if b - a > 2]  # a 2-token seam where the reply ended
    return {(False, False): "append", (True, False): "removal", (False, True): "insertion",
            (True, True): "both"}[(bool(plan.removals), bool(big))]


async def run_policy(policy: str, turns: int, *, layout: bool = True, every: int = 1,
                     verbose: bool = False, save: str | None = None) -> dict[str, Any]:
    """Play the story with one policy; per-turn quality and cost."""
    from storyteller.models import bundled_model_path
    from storyteller.session_setup import open_session

    name = f"quality-{policy}{'' if layout else '-oldlayout'}"
    paths = _story.fresh_paths(name)
    settings = _story.settings_for("embedded", None, reuse=True, kv_state="off")
    settings.engine.cache_reuse = policy  # type: ignore[assignment]
    if THREADS:
        settings.engine.n_threads = settings.engine.n_threads_batch = THREADS
    probe = _probe_class()
    path = bundled_model_path()
    backend = probe.load(path, settings.engine)
    exact = probe.load(path, settings.engine.model_copy(update={"prefix_reuse": False}))
    recorder = _story.RecordingBackend(backend)
    session = await open_session(_story.STORY, settings=settings, paths=paths, backend=recorder)  # type: ignore[arg-type]
    if not layout:  # SillyTavern's plain order: what fires turn by turn may sit before constant entries
        import dataclasses

        session.parts.builder.options = dataclasses.replace(session.parts.builder.options, volatile_last=False)
    rows: list[dict[str, Any]] = []
    controls: list[dict[str, Any]] = []

    async def measure(turn: _story.Turn) -> None:
        prompt = session.last_prompt
        mine = [r for r in backend.records if r.request.prompt == prompt.text] or backend.records[:1]
        backend.records.clear()
        if not mine or mine[0].logits is None or (turn.turn - 1) % every:
            return
        record = mine[0]
        ref = await _exact(exact, record.request)
        if ref.tokens != record.tokens:
            raise RuntimeError(f"turn {turn.turn}: the exact evaluation read other tokens")
        stale = backend.staleness
        spans = stale.spans()
        row = {
            "turn": turn.turn, "kind": _kind(record), "overflow": turn.overflow,
            "kl": kl(ref.logits, record.logits),
            "top1": int(ref.logits.argmax()) == int(record.logits.argmax()),
            "prompt_tokens": turn.prompt_tokens, "new_tokens": turn.new_tokens, "evaluated": turn.evaluated,
            "ttft": turn.ttft, "prompt_seconds": record.seconds,
            "exact_prompt_seconds": ref.seconds,
            "new_only_seconds": ref.seconds * turn.new_tokens / max(1, len(ref.tokens or [])),
            "stale_tokens": stale.stale_tokens(), "stale_token_edits": stale.token_edits(),
            "max_edits": max((s.edits for s in spans), default=0),
            "oldest_stale_age": (stale.turn - min(s.since for s in spans)) if spans else 0,
            "cache_note": turn.cache_note,
        }
        rows.append(row)
        if turn.turn % (CONTROL_EVERY * every) == 0 and record.request.prompt is not None:
            again = await _exact(exact, record.request)
            control = {"turn": turn.turn, "repeat_kl": kl(ref.logits, again.logits)}
            lore = [s for s in prompt.segments if s.kind == "world_info" and s.text.strip() and s.text in record.request.prompt]
            if lore:
                dropped = record.request.prompt.replace(lore[0].text, "", 1)
                wrong = await _exact(exact, record.request, dropped)
                control["dropped_entry_kl"] = kl(ref.logits, wrong.logits)
                control["dropped_entry_top1"] = int(ref.logits.argmax()) == int(wrong.logits.argmax())
            controls.append(control)
        exact.records.clear()
        if save:  # a long run stopped early still leaves what it measured
            partial = {"policy": policy, "layout": layout, "rows": rows, "controls": controls,
                       "seconds": time.perf_counter() - started, "params": _params()}
            Path(save).write_text(json.dumps({"turns": turn.turn, "every": every, "context": _story.CONTEXT,
                                              "runs": [partial]}))
        if verbose:
            print(f"  {policy} turn {turn.turn:3d} {row['kind']:9s} kl {row['kl']:.4f} top1 {row['top1']} "
                  f"new {turn.new_tokens} eval {turn.evaluated} stale {row['stale_tokens']} "
                  f"edits {row['max_edits']} | {turn.cache_note}", file=sys.stderr, flush=True)

    def tokenize(text: str) -> list[int]:
        return backend.tokenize(text)

    started = time.perf_counter()
    try:
        await _story.play(session, recorder, tokenize, turns, measure)
    finally:
        await session.close()
        await backend.aclose()
        await exact.aclose()
    return {"policy": policy, "layout": layout, "rows": rows, "controls": controls,
            "seconds": time.perf_counter() - started, "params": _params()}


def _params() -> dict[str, Any]:
    """``balanced``'s limits as they are in this process."""
    from storyteller.engines import _staleness

    return {"window": _staleness.RECOMPUTE_WINDOW, "edit_limit": _staleness.EDIT_LIMIT,
            "stale_share": _staleness.STALE_SHARE, "recent": _staleness.RECENT_WINDOW}


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """Headline figures of one policy's run (turns that reused a cache)."""
    rows = [r for r in run["rows"] if r["kind"] != "first"]
    over = [r for r in rows if r["overflow"]] or rows

    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 5) if values else None

    def stats(part: list[dict[str, Any]]) -> dict[str, Any]:
        kls = [r["kl"] for r in part]
        return {"turns": len(part), "mean_kl": mean(kls),
                "median_kl": round(statistics.median(kls), 5) if kls else None,
                "max_kl": round(max(kls), 4) if kls else None,
                "top1": mean([1.0 if r["top1"] else 0.0 for r in part])}

    out: dict[str, Any] = {"policy": run["policy"], "layout": "volatile last" if run["layout"] else "configured order",
                           **stats(rows)}
    out["by_kind"] = {k: stats([r for r in rows if r["kind"] == k]) for k in ("append", "removal", "insertion", "both")}
    thirds = [rows[i * len(rows) // 3:(i + 1) * len(rows) // 3] for i in range(3)]
    out["by_third"] = [stats(t) | {"mean_stale_tokens": mean([r["stale_tokens"] for r in t]),
                                   "mean_max_edits": mean([r["max_edits"] for r in t])} for t in thirds if t]
    ev = [r["evaluated"] / r["new_tokens"] for r in over if r["evaluated"] is not None and r["new_tokens"]]
    out["evaluated_over_new"] = mean(ev)
    out["evaluated_over_new_total"] = round(sum(r["evaluated"] or 0 for r in over) / max(1, sum(r["new_tokens"] for r in over)), 4)
    tt = [r["ttft"] / r["new_only_seconds"] for r in over if r["ttft"] and r["new_only_seconds"]]
    out["ttft_over_new_eval"] = mean(tt)
    out["mean_stale_tokens"] = mean([r["stale_tokens"] for r in rows])
    out["controls"] = {
        "repeat_kl_max": max((c["repeat_kl"] for c in run["controls"]), default=None),
        "dropped_entry_mean_kl": mean([c["dropped_entry_kl"] for c in run["controls"] if "dropped_entry_kl" in c]),
        "dropped_entry_top1": mean([1.0 if c["dropped_entry_top1"] else 0.0 for c in run["controls"] if "dropped_entry_kl" in c]),
    }
    out["seconds"] = round(run["seconds"], 1)
    return out


def run(turns: int = 100, policies: tuple[str, ...] = ("exact", "balanced", "fast"), layout: str = "on",
        verbose: bool = False, publish: bool = True, every: int = 1, save: str | None = None,
        merge: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the benchmark; writes ``bench/results/cache_quality.json`` and its doc section.

    ``save`` keeps this process's raw runs in a file instead of publishing; ``merge`` publishes
    runs saved that way (policies run in separate processes) together with these.
    """
    one = save if save and len(policies) == 1 and layout != "both" else None
    runs = [asyncio.run(run_policy(p, turns, layout=layout != "off", every=every, verbose=verbose, save=one))
            for p in policies]
    if layout == "both":
        runs += [asyncio.run(run_policy(p, turns, layout=False, every=every, verbose=verbose))
                 for p in policies if p == "fast"]
    if save:
        Path(save).write_text(json.dumps({"turns": turns, "every": every, "context": _story.CONTEXT, "runs": runs}))
        publish = False
    for path in merge:
        saved = json.loads(Path(path).read_text())
        turns, every, runs = saved["turns"], saved["every"], runs + saved["runs"]
        _story.CONTEXT = saved.get("context", _story.CONTEXT)
    params = _params() | next((r["params"] for r in runs if r["policy"] == "balanced" and r.get("params")), {})
    result = {"machine": machine(), "turns": turns, "every": every, "context": _story.CONTEXT, "params": params,
              "summary": [summarise(r) for r in runs], "per_turn": {f"{r['policy']}{'' if r['layout'] else '-oldlayout'}": r["rows"] for r in runs},
              "controls": {r["policy"]: r["controls"] for r in runs}}
    if publish:
        write_json("cache_quality", result)
        write_section("cache_quality", _markdown(result))
    return result


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _markdown(r: dict[str, Any]) -> str:
    lines = [f"""
`python -m bench cache_quality --turns {r['turns']} --every {r['every']} --context {r['context']}`: the cache benchmark's scripted story
on the embedded engine ({r['context']}-token context), once per `engine.cache_reuse` policy. Every
{'' if r['every'] == 1 else str(r['every']) + ' '}turn{'' if r['every'] == 1 else 's'} the
logits at the prompt's last position are compared with a fresh evaluation of the same request
on a second engine that never reuses its cache. KL is KL(exact || reused) in nats; "top-1" is
how often both put the same token first. Evaluated / new and time to first token over the turns
that overflowed the context (all turns if none did); the time for the new tokens alone is
estimated from the fresh evaluation's own rate (per token, same prompt). {r['machine']}.
Raw figures per turn: `bench/results/cache_quality.json`.

The policies (`engine.cache_reuse`): `exact` keeps the unchanged prefix plus a span removed right
after it (koboldcpp's ContextShift) and evaluates everything after any other edit again; `fast`
keeps every cached run still in the prompt, wherever it moved; `balanced` keeps them too but
evaluates again the first {r['params']['window']} tokens after each edit, the stale ones among the last
{r['params']['recent']} cached tokens before the new text (with everything after them), and everything from the first
stale token once a cached token has missed {r['params']['edit_limit']} edits (or
{r['params']['stale_share'] * r['params']['edit_limit']:g} on average over the prompt): the limits this run used. "Layout" is where world info that fires turn by turn goes within its
position: after the constant entries (the default, `volatile_last`), or in SillyTavern's plain
`order`; the `fast` run in the configured order shows what the layout alone saves.

| policy | layout | turns compared | mean KL | median KL | max KL | top-1 | evaluated / new | TTFT / new alone | stale tokens (mean) |
|---|---|---|---|---|---|---|---|---|---|"""]
    for s in r["summary"]:
        lines.append(f"| {s['policy']} | {s['layout']} | {s['turns']} | {_fmt(s['mean_kl'])} | {_fmt(s['median_kl'])} | {_fmt(s['max_kl'])} | "
                     f"{_fmt(s['top1'])} | {_fmt(s['evaluated_over_new'])} | {_fmt(s['ttft_over_new_eval'])} | {_fmt(s['mean_stale_tokens'])} |")
    lines += ["", (f"Targets for `balanced`: mean KL < {TARGET_KL}, top-1 >= {TARGET_TOP1:.0%}, evaluated / new <= "
                   f"{TARGET_EVALUATED}, TTFT / new alone <= {TARGET_TTFT}."), "",
              "By turn kind (what the cache had to do): mean KL / top-1 / turns", "",
              "| policy | append | removal | insertion | both |", "|---|---|---|---|---|"]
    for s in r["summary"]:
        cells = [f"{_fmt(k['mean_kl'])} / {_fmt(k['top1'])} / {k['turns']}" for k in s["by_kind"].values()]
        lines.append(f"| {s['policy']} ({s['layout']}) | " + " | ".join(cells) + " |")
    lines += ["", "Growth over the story (first, middle, last third): mean KL / mean stale tokens / most edits a token missed", "",
              "| policy | first third | middle third | last third |", "|---|---|---|---|"]
    for s in r["summary"]:
        cells = [f"{_fmt(t['mean_kl'])} / {_fmt(t['mean_stale_tokens'])} / {_fmt(t['mean_max_edits'])}" for t in s["by_third"]]
        lines.append(f"| {s['policy']} ({s['layout']}) | " + " | ".join(cells) + " |")
    lines += ["", (f"Controls, every {CONTROL_EVERY * r['every']}th turn: the fresh evaluation repeated, and the "
                   "fresh prompt with one world-info entry dropped (what a plainly wrong prompt costs):"), "",
              "| policy | repeat: max KL | entry dropped: mean KL | entry dropped: top-1 |", "|---|---|---|---|"]
    for s in r["summary"]:
        c = s["controls"]
        lines.append(f"| {s['policy']} ({s['layout']}) | {_fmt(c['repeat_kl_max'])} | {_fmt(c['dropped_entry_mean_kl'])} | {_fmt(c['dropped_entry_top1'])} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument("--turns", type=int, default=100, help="turns to play per policy (default 100)")
    parser.add_argument("--policies", default="exact,balanced,fast", help="comma-separated policies")
    parser.add_argument("--layout", choices=("on", "off", "both"), default="on",
                        help="volatile prompt parts last (on, the default), in configured order (off), "
                             "or both (adds a fast run with the configured order)")
    parser.add_argument("--context", type=int, default=_story.CONTEXT,
                        help=f"context size (default {_story.CONTEXT}, the cache benchmark's; smaller overflows sooner)")
    parser.add_argument("--threads", type=int, default=0,
                        help="llama.cpp threads per engine (default: llama-cpp-python's choice; 1 on a busy machine)")
    parser.add_argument("--controls", type=int, default=CONTROL_EVERY,
                        help=f"run the controls on every Nth compared turn (default {CONTROL_EVERY})")
    parser.add_argument("--every", type=int, default=1, help="compare with a fresh evaluation every N turns (default 1)")
    parser.add_argument("--save", help="keep the raw runs in this file instead of publishing")
    parser.add_argument("--merge", action="append", default=[], help="publish together with runs saved by --save")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every turn to stderr")


def run_from_args(args: argparse.Namespace) -> int:
    if getattr(args, "engine", "embedded") != "embedded":
        print("the cache_quality benchmark runs on the embedded engine only", file=sys.stderr)
        return 2
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip() and p.strip() != "none")
    unknown = [p for p in policies if p not in ("exact", "balanced", "fast")]
    if unknown:
        print(f"unknown policy {unknown[0]!r}: use exact, balanced or fast", file=sys.stderr)
        return 2
    _story.CONTEXT = args.context
    global CONTROL_EVERY, THREADS
    CONTROL_EVERY = max(1, args.controls)
    THREADS = max(0, args.threads)
    result = run(args.turns, policies, args.layout, verbose=args.verbose, every=max(1, args.every),
                 save=args.save, merge=tuple(args.merge))
    print(json.dumps(result["summary"], indent=None if getattr(args, "json", False) else 2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cache_quality", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    from storyteller.engines.native import preload

    preload()
    sys.exit(main())
