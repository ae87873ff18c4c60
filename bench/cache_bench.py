"""Cache benchmark: does a turn cost only its new tokens, even once the story overflows?

Plays the scripted 100-turn Hollowmere adventure (``bench/_story.py``: fixed inputs, seeded,
40-token replies) with a 2,048-token context, so history is trimmed from about turn 20 on, while
world-info entries fire and stop firing and the author's note comes and goes every third turn.
Per turn it records the prompt's new tokens (what an ideal cache holding the previous prompt and
reply would still have to read), the tokens the engine evaluated, and the time to first token.
A calibration then times the same engine evaluating only k new tokens at the end of a full
prompt, so each turn's time to first token can be compared with the time its new tokens alone
need. Then the same story runs again with prefix reuse and context shifting off.

Targets (embedded engine, mean over the overflowing turns): evaluated / new <= 1.1, time to
first token / time for the new tokens alone <= 1.5.

Run: ``python -m bench cache [--engine embedded|kobold|openai --url URL] [--turns N] [--no-naive]``
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

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _story
from bench._report import machine, write_json, write_section

TARGET_EVALUATED = 1.1
TARGET_TTFT = 1.5
_CALIBRATE_K = (4, 8, 16, 32, 64, 128)
_FILLER = ("The reeds lean in the wind and the boardwalk creaks under every step while lanterns sway "
           "over the black water of the marsh and somewhere a heron calls twice before the fog "
           "closes over the town again and the bell of the chapel answers from far away")


async def _open(engine: str, url: str | None, *, reuse: bool, name: str, memory: bool = True) -> tuple[Any, Any, Any]:
    from storyteller.engines.factory import open_backend
    from storyteller.session_setup import open_session

    paths = _story.fresh_paths(name)
    settings = _story.settings_for(engine, url, reuse=reuse, memory=memory)
    backend = await open_backend(settings, paths)
    recorder = _story.RecordingBackend(backend)
    session = await open_session(_story.STORY, settings=settings, paths=paths, backend=recorder)  # type: ignore[arg-type]
    return session, recorder, backend


def _tokenizer(backend: Any) -> Any:
    """The model's tokenizer: the engine's own, else SmolLM2's from its GGUF (vocabulary only)."""
    tokenize = getattr(backend, "tokenize", None)
    if callable(tokenize):
        return tokenize
    import llama_cpp

    from storyteller.models import bundled_model_path

    vocab = llama_cpp.Llama(model_path=str(bundled_model_path()), vocab_only=True, verbose=False)
    return lambda text: vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True)


async def _ttft(backend: Any, prompt: str) -> float | None:
    from storyteller.engines.base import Finished, GenerationRequest, Sampling

    request = GenerationRequest(prompt=prompt, sampling=Sampling(max_tokens=2, temperature=0.0, seed=1,
                                                                 logit_bias={2: -100.0, 0: -100.0}))
    stats = None
    async for chunk in backend.stream(request):
        if isinstance(chunk, Finished):
            stats = chunk.stats
    return stats.seconds_to_first_token if stats else None


async def calibrate(backend: Any, tokenize: Any, base: str, rounds: int = 3) -> dict[str, Any] | None:
    """Time evaluating only k new tokens after ``base`` (which the cache holds): t(k) = a + b*k."""
    import numpy as np

    words = (_FILLER + " ") * 8
    # Leave room for the longest extra text and the reply: drop text from the front (the
    # position of the new tokens, not the content, is what their evaluation time depends on).
    budget = _story.CONTEXT - max(_CALIBRATE_K) - 8
    lo, hi = 0, len(base)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(tokenize(base[mid:])) <= budget:
            hi = mid
        else:
            lo = mid + 1
    base = base[lo:]
    base_n = len(tokenize(base))
    points: list[tuple[int, float]] = []
    for k in _CALIBRATE_K:
        # Grow the extra text word by word until it adds k tokens to the prompt.
        extra = ""
        for word in words.split():
            if len(tokenize(base + extra)) - base_n >= k:
                break
            extra += " " + word
        k_real = len(tokenize(base + extra)) - base_n
        samples = []
        for _ in range(rounds):
            await _ttft(backend, base)  # the cache holds the base (and one generated token)
            t = await _ttft(backend, base + extra)
            if t is not None:
                samples.append(t)
        if samples:
            points.append((k_real, statistics.median(samples)))
    if len(points) < 2:
        return None  # the engine reports no time to first token
    ks, ts = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    slope, intercept = np.polyfit(ks, ts, 1)
    return {"base_tokens": base_n, "points": [[k, round(t, 5)] for k, t in points],
            "intercept_s": float(intercept), "seconds_per_token": float(slope)}


class Reference:
    """A second embedded engine that times evaluating only k new tokens, right after each turn.

    Timing both back to back keeps them under the same machine load (a shared 2-core machine
    varies by 2x from minute to minute). The new tokens go at the same positions as in the
    turn's prompt: the reference engine holds ``L - k`` tokens of filler text and evaluates the
    next ``k``, with the turn's own sampler settings.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        sentences = [f"Entry {i}: the {w} by the {v} was counted twice and written down in the ledger."
                     for i, (w, v) in enumerate((w, v) for w in _FILLER.split()[:30] for v in _FILLER.split()[30:60])]
        self.tokens = backend.tokenize(" ".join(sentences))[: _story.CONTEXT]

    def _text(self, n: int) -> str:
        return self.backend._llm.detokenize(self.tokens[:n]).decode("utf-8", errors="ignore")

    async def time_new(self, prompt_tokens: int, new: int, sampling: Any) -> tuple[float | None, int | None]:
        """(seconds to first token, tokens evaluated) for ``new`` tokens after ``prompt_tokens - new``."""
        from storyteller.engines.base import Finished, GenerationRequest

        await _ttft(self.backend, self._text(prompt_tokens - new))
        request = GenerationRequest(prompt=self._text(prompt_tokens),
                                    sampling=sampling.model_copy(update={"max_tokens": 4}))
        stats = None
        async for chunk in self.backend.stream(request):
            if isinstance(chunk, Finished):
                stats = chunk.stats
        return (stats.seconds_to_first_token, stats.tokens_evaluated) if stats else (None, None)


def _new_eval_seconds(cal: dict[str, Any], new: int) -> float:
    return max(cal["intercept_s"] + cal["seconds_per_token"] * new, 1e-6)


async def run_story(engine: str, url: str | None, turns: int, *, reuse: bool, calibrate_too: bool,
                    verbose: bool = False, memory: bool = True) -> dict[str, Any]:
    """Play the story once; returns per-turn records and, if asked, the calibration."""
    session, recorder, backend = await _open(engine, url, reuse=reuse, name="cache" if reuse else "naive",
                                             memory=memory)
    tokenize = _tokenizer(backend)
    reference = None
    if reuse and engine == "embedded":
        from storyteller.engines.llamacpp import LlamaCppBackend

        reference = Reference(await LlamaCppBackend.open(backend.info().details["path"], backend._settings))
    started = time.perf_counter()
    measuring = [0.0]

    async def measure(turn: _story.Turn) -> None:
        if reference is not None and turn.overflow and turn.new_tokens:
            began = time.perf_counter()
            sampling = session.parts.request_for(session.last_prompt, session.story.settings).sampling
            ttft, evaluated = await reference.time_new(turn.prompt_tokens, turn.new_tokens, sampling)
            turn.extra.update(ref_ttft=ttft, ref_evaluated=evaluated)
            measuring[0] += time.perf_counter() - began
        show(turn)

    def show(turn: _story.Turn) -> None:
        if verbose:
            print(f"  turn {turn.turn:3d} prompt {turn.prompt_tokens:5d} new {turn.new_tokens:4d} "
                  f"eval {turn.evaluated} ttft {turn.ttft and round(turn.ttft, 3)} {'O' if turn.overflow else ' '} "
                  f"ref {turn.extra.get('ref_ttft') and round(turn.extra['ref_ttft'], 3)} "
                  f"asides {turn.asides} ({turn.aside_evaluated} evaluated) "
                  f"{turn.why} | {turn.cache_note}", file=sys.stderr, flush=True)

    try:
        played = await _story.play(session, recorder, tokenize, turns, measure)
        elapsed = time.perf_counter() - started - measuring[0]
        last_prompt = session.last_prompt.text or ""
        info = backend.info()
        if reuse and engine == "embedded":
            await _snapshot_for_resume(session, recorder, tokenize, turns)
    finally:
        await session.close()  # saves the KV state with the story for the resume benchmark
    cal = None
    if calibrate_too and reference is None:
        cal = await calibrate(backend, tokenize, last_prompt)
    await backend.aclose()
    if reference is not None:
        await reference.backend.aclose()
    return {"turns": played, "seconds": elapsed, "calibration": cal, "model": info.model, "engine": info.engine,
            "cache_reuse": settings_policy(backend), "memory": memory}


def settings_policy(backend: Any) -> str | None:
    """The embedded engine's ``engine.cache_reuse`` policy (``None`` for remote engines)."""
    settings = getattr(backend, "_settings", None)
    return getattr(settings, "cache_reuse", None)


async def _snapshot_for_resume(session: Any, recorder: Any, tokenize: Any, turns: int) -> None:
    """Keep the story and its KV state as they are now for the resume benchmark, then time the
    next turn here, warm: the time a resumed story should come close to."""
    import shutil

    await session.backend.save_state(session.story.folder / "engine.kv")
    base = _story.bench_home() / "resume-base"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(_story.bench_home() / "cache", base)
    kind, text = _story.script(turns + 1)[turns]
    recorder.finished.clear()
    reply = await session.submit(text, kind)
    stats = recorder.finished[0] if recorder.finished else None
    (_story.bench_home() / "resume-base.json").write_text(json.dumps({
        "turns": turns, "input": [kind, text], "reply": reply.text if reply else "",
        "warm_ttft_s": stats.seconds_to_first_token if stats else None,
        "warm_evaluated": stats.tokens_evaluated if stats else None,
    }))


def summarise(cached: dict[str, Any], naive: dict[str, Any] | None) -> dict[str, Any]:
    """The headline figures."""
    turns: list[_story.Turn] = cached["turns"]
    cal = cached["calibration"]
    over = [t for t in turns if t.overflow]
    ratios = [t.evaluated / t.new_tokens for t in over if t.evaluated is not None and t.new_tokens]
    if cal is None:  # embedded: the reference engine timed each turn's new tokens right after it
        ttft_ratios = [t.ttft / t.extra["ref_ttft"] for t in over if t.ttft and t.extra.get("ref_ttft")]
    else:
        ttft_ratios = [t.ttft / _new_eval_seconds(cal, t.new_tokens) for t in over if t.ttft is not None]
    result: dict[str, Any] = {
        "engine": cached["engine"],
        "model": cached["model"],
        "cache_reuse": cached.get("cache_reuse"),
        "machine": machine(),
        "context": _story.CONTEXT,
        "reply_tokens": _story.REPLY_TOKENS,
        "turns": len(turns),
        "overflow_turns": len(over),
        "first_overflow_turn": over[0].turn if over else None,
        "evaluated_over_new": _round(statistics.fmean(ratios)) if ratios else None,
        "evaluated_over_new_total": _round(sum(t.evaluated for t in over) / max(1, sum(t.new_tokens for t in over)))
        if ratios else None,
        "ttft_over_new_eval": _round(statistics.fmean(ttft_ratios)) if ttft_ratios else None,
        "mean_new_tokens": _round(_story.mean([t.new_tokens for t in over])),
        "mean_evaluated_tokens": _round(_story.mean([t.evaluated for t in over])),
        "mean_ttft_s": _round(_story.mean([t.ttft for t in over])),
        "mean_new_tokens_only_ttft_s": _round(_story.mean([t.extra.get("ref_ttft") for t in over])),
        "max_ttft_s": _round(max((t.ttft for t in over if t.ttft is not None), default=None)),
        "mean_prompt_tokens": _round(_story.mean([t.prompt_tokens for t in over])),
        "mean_stable_prefix_tokens": _round(_story.mean([t.stable_prefix for t in over])),
        "memory": cached.get("memory", True),
        "summaries_written": sum(t.asides for t in turns),
        "aside_evaluated_tokens": sum(t.aside_evaluated for t in turns),
        "aside_prompt_tokens": sum(t.aside_prompt_tokens for t in turns),
        "evaluated_over_new_with_asides": _round(sum(t.evaluated + t.aside_evaluated for t in over)
                                                 / max(1, sum(t.new_tokens for t in over))) if ratios else None,
        "targets": {"evaluated_over_new": TARGET_EVALUATED, "ttft_over_new_eval": TARGET_TTFT},
        "calibration": cal,
        "seconds": _round(cached["seconds"]),
    }
    if naive is not None:
        n_over = [t for t in naive["turns"] if t.overflow]
        naive_ttft = _story.mean([t.ttft for t in n_over])
        result["naive_mean_ttft_s"] = _round(naive_ttft)
        result["naive_mean_evaluated_tokens"] = _round(_story.mean([t.evaluated for t in n_over]))
        result["naive_over_cached_ttft"] = _round(naive_ttft / result["mean_ttft_s"]) if naive_ttft and result["mean_ttft_s"] else None
        result["naive_over_cached_evaluated"] = _round(result["naive_mean_evaluated_tokens"] / result["mean_evaluated_tokens"]) \
            if result["naive_mean_evaluated_tokens"] and result["mean_evaluated_tokens"] else None
        result["naive_seconds"] = _round(naive["seconds"])
    else:
        result["naive_over_cached_ttft"] = None
    return result


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def run(engine: str = "embedded", url: str | None = None, turns: int = 100, naive: bool = True,
        verbose: bool = False, publish: bool = True, memory: bool = True) -> dict[str, Any]:
    """Run the benchmark; writes ``bench/results/cache[-ENGINE][-nomemory].json`` and the doc section.

    Without the naive run (``naive=False``) its figures are carried over from the last published
    run of the same name, if any, and marked as such.
    """
    cached = asyncio.run(run_story(engine, url, turns, reuse=True, calibrate_too=True, verbose=verbose, memory=memory))
    plain = asyncio.run(run_story(engine, url, turns, reuse=False, calibrate_too=False, verbose=verbose,
                                  memory=memory)) if naive else None
    result = summarise(cached, plain)
    result["per_turn"] = _story.turn_rows(cached["turns"])
    if plain is not None:
        result["naive_per_turn"] = _story.turn_rows(plain["turns"])
    name = ("cache" if engine == "embedded" else f"cache-{engine}") + ("" if memory else "-nomemory")
    if _story.CACHE_REUSE and _story.CACHE_REUSE != "balanced":
        name += f"-{_story.CACHE_REUSE}"
    if plain is None:
        _carry_naive(name, result)
    if publish:
        write_json(name, result)
        write_section(name, _markdown(result, name))
    return result


def _carry_naive(name: str, result: dict[str, Any]) -> None:
    """Copy the reuse-off figures of the last published run (they do not depend on the policy)."""
    path = Path(__file__).resolve().parent / "results" / f"{name}.json"
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if old.get("naive_mean_ttft_s") is None or old.get("context") != result.get("context"):
        return
    for key in ("naive_mean_ttft_s", "naive_mean_evaluated_tokens", "naive_seconds"):
        result[key] = old.get(key)
    result["naive_from_earlier_run"] = old.get("naive_from_earlier_run") or old.get("machine", True)
    if result["naive_mean_ttft_s"] and result["mean_ttft_s"]:
        result["naive_over_cached_ttft"] = _round(result["naive_mean_ttft_s"] / result["mean_ttft_s"])
    if result["naive_mean_evaluated_tokens"] and result["mean_evaluated_tokens"]:
        result["naive_over_cached_evaluated"] = _round(result["naive_mean_evaluated_tokens"] / result["mean_evaluated_tokens"])


def _policy_line(r: dict[str, Any]) -> str:
    if not r.get("cache_reuse"):
        return ""
    return (f"Measured with `engine.cache_reuse = \"{r['cache_reuse']}\"`; `python -m bench cache_quality` "
            "shows what each policy costs in prediction quality.")


def _flags(r: dict[str, Any]) -> str:
    """The options that made this run differ from the default one."""
    flags = "" if r.get("memory", True) else " --memory off"
    if r.get("cache_reuse") and r["cache_reuse"] != "balanced":
        flags += f" --cache-reuse {r['cache_reuse']}"
    return flags


def _markdown(r: dict[str, Any], name: str = "cache") -> str:
    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return "n/a" if value is None else str(value)

    ok_eval = r["evaluated_over_new"] is not None and r["evaluated_over_new"] <= TARGET_EVALUATED
    ok_ttft = r["ttft_over_new_eval"] is not None and r["ttft_over_new_eval"] <= TARGET_TTFT
    return f"""
`python -m bench cache --engine {r['engine']} --turns {r['turns']} --context {r['context']}{_flags(r)}`: the scripted {r['turns']}-turn Hollowmere adventure on
{r['model']} with a {r['context']}-token context and {r['reply_tokens']}-token replies; history is first
trimmed at turn {fmt(r['first_overflow_turn'])}, world-info entries fire and stop as the player moves, and
the author's note is inserted every third turn. "New tokens" are the prompt tokens an ideal cache
holding the previous prompt and reply would still read. Means over the {r['overflow_turns']} turns that
overflowed; {r['machine']}. Raw figures, per turn: `bench/results/{name}.json`.
{_policy_line(r)}

How: the embedded engine aligns the new prompt with what its KV cache holds (difflib's longest
runs, 16 tokens or more), removes what left the prompt, shifts what stayed, and evaluates new
spans in the middle (an entry that started firing, the author's note) in place, with the rest of
the cache parked in a second sequence so the new tokens see exactly what precedes them; then the
new text at the end. The time for "the new tokens alone" is measured right after each turn on a
second engine evaluating the same number of tokens at the same positions, so both share the
machine's load of the moment.

| | value | target |
|---|---|---|
| evaluated / new tokens | {fmt(r['evaluated_over_new'])} | <= {TARGET_EVALUATED} {'(met)' if ok_eval else '(missed)'} |
| time to first token / time for the new tokens alone | {fmt(r['ttft_over_new_eval'])} | <= {TARGET_TTFT} {'(met)' if ok_ttft else '(missed)'} |
| new tokens per turn | {fmt(r['mean_new_tokens'])} | |
| evaluated tokens per turn | {fmt(r['mean_evaluated_tokens'])} | |
| prompt tokens per turn | {fmt(r['mean_prompt_tokens'])} | |
| stable prefix per turn | {fmt(r['mean_stable_prefix_tokens'])} | |
| time to first token, mean / max, s | {fmt(r['mean_ttft_s'])} / {fmt(r['max_ttft_s'])} | |
| reuse and shifting off: time to first token, s | {fmt(r.get('naive_mean_ttft_s'))} | |
| off / on, time to first token | {fmt(r['naive_over_cached_ttft'])} | |
| off / on, evaluated tokens | {fmt(r.get('naive_over_cached_evaluated'))} | |
{_memory_lines(r)}"""


def _memory_lines(r: dict[str, Any]) -> str:
    lines = []
    if r.get("memory", True):
        lines.append(f"| memory (scene summaries, pins) | on: {r.get('summaries_written', 'n/a')} summaries written, "
                     f"{r.get('aside_evaluated_tokens', 'n/a')} tokens evaluated for them | |")
        with_asides = r.get("evaluated_over_new_with_asides")
        total = r.get("evaluated_over_new_total")
        lines.append(f"| evaluated / new, totals over the turns: without / with the summaries | {total:.3g} / "
                     f"{with_asides:.3g} | |" if with_asides is not None and total is not None
                     else "| evaluated / new, totals over the turns: without / with the summaries | n/a | |")
    else:
        lines.append("| memory (scene summaries, pins) | off | |")
    text = "\n".join(lines) + "\n"
    if r.get("naive_from_earlier_run"):
        text += ("\nThe reuse-off figures are carried over from an earlier run (`--no-naive` this time; they do "
                 "not depend on the reuse policy).\n")
    if r.get("memory", True):
        text += ("\nMemory is on, as in the app: the summaries memory writes after a reply (through the "
                 "session's side road) are counted apart from the turns; \"evaluated\" is the turn's own reply.\n")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cache", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared with ``python -m bench cache``)."""
    parser.add_argument("--turns", type=int, default=100, help="turns to play (default 100)")
    parser.add_argument("--no-naive", action="store_true",
                        help="skip the run with reuse and shifting off (its last published figures are kept)")
    parser.add_argument("--memory", choices=("on", "off"), default="on",
                        help="scene summaries and pins (on, as in the app; the summaries are counted apart "
                             "from the turns), or off (published as cache-nomemory)")
    parser.add_argument("--context", type=int, default=_story.CONTEXT,
                        help=f"context size (default {_story.CONTEXT}; smaller overflows sooner, for a short run)")
    parser.add_argument("--cache-reuse", choices=("exact", "balanced", "fast"),
                        help="the embedded engine's reuse policy (default: the settings' default, balanced); "
                             "another policy is published under its own name (cache-fast...)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every turn to stderr")


def run_from_args(args: argparse.Namespace) -> int:
    _story.CONTEXT = getattr(args, "context", _story.CONTEXT)
    _story.CACHE_REUSE = getattr(args, "cache_reuse", None)
    result = run(getattr(args, "engine", "embedded"), getattr(args, "url", None), args.turns,
                 naive=not args.no_naive, verbose=args.verbose, memory=getattr(args, "memory", "on") != "off")
    summary = {k: v for k, v in result.items() if k not in ("per_turn", "naive_per_turn")}
    print(json.dumps(summary, indent=None if getattr(args, "json", False) else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
