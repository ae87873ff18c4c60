"""Recall benchmark: does the story remember facts planted early, after they left the context?

A scripted adventure of 200 turns (the player's inputs and the narrator's replies are fixed, so
every run sees the same story) plants twelve facts in its first 36 turns (names, objects,
promises) and asks about each one long after it left the 2,048-token context. Played twice on
the bundled model: with memory off, and with memory on, where four of the facts are pinned
(``/pin`` on the message) and the rest are left to the scene summaries the model writes as the
story grows. For each question it reports:

* **in prompt**: the fact's key words are in the prompt the question is asked with (the
  mechanism: the fact survived, pinned or summarised);
* **answered**: the model's answer (through the session's side road, so the scripted story is
  not changed) contains them. SmolLM2-135M is a weak reader; this figure is its, not memory's.

``python -m bench recall [--turns N]``: a reduced run (``--turns 60``) while iterating.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench import _story
from bench._report import machine, write_json, write_section

CONTEXT = 2048
REPLY_TOKENS = 32
SEED = 4321


@dataclass(frozen=True, slots=True)
class Fact:
    """A planted fact: the player's narration, a question about it, the words of a right answer."""

    text: str
    question: str
    keys: tuple[str, ...]
    pinned: bool = False


FACTS = (
    Fact("The ferryman tells you that his true name is Oswin Tarrow.",
         "What is the ferryman's true name?", ("Oswin", "Tarrow"), pinned=True),
    Fact("You find a brass astrolabe wrapped in oilcloth and put it in your pack.",
         "What did you find wrapped in oilcloth?", ("astrolabe",)),
    Fact("Sister Maud makes you promise to light a candle at the shrine of Saint Ebba.",
         "At whose shrine did you promise to light a candle?", ("Ebba",)),
    Fact("Your sister Wren is waiting for you in the city of Carrowmoor.",
         "In which city is your sister waiting?", ("Carrowmoor",), pinned=True),
    Fact("The innkeeper's old dog is called Biscuit.", "What is the innkeeper's dog called?", ("Biscuit",)),
    Fact("You hide the silver key inside a hollow willow stump.", "Where did you hide the silver key?",
         ("willow",)),
    Fact("Pell the lamplighter owes you seventeen copper pennies.", "How many pennies does Pell owe you?",
         ("seventeen", "17"), pinned=True),
    Fact("The password at the tower gate is 'thistledown'.", "What is the password at the tower gate?",
         ("thistledown",)),
    Fact("A stranger in a green scarf, Ilsabet, warns you never to trust the abbot.",
         "Who warned you about the abbot?", ("Ilsabet",)),
    Fact("You promise Tobiah to bring his lantern back by the feast of Saint Odo.",
         "By which feast did you promise to bring the lantern back?", ("Odo",), pinned=True),
    Fact("The map you bought shows a sea cave called the Gullet.", "What is the sea cave on your map called?",
         ("Gullet",)),
    Fact("Widow Corran's son sailed away on a ship named the Marigold.",
         "What was the name of the ship Widow Corran's son sailed on?", ("Marigold",)),
)

_SCENES = ("The fog thins for a moment and shows the rooftops of the town, then closes again.",
           "Water laps at the pilings below, slow and patient, and the boards are slick underfoot.",
           "A lamp burns in a window; someone inside is mending a net and does not look up.",
           "The reeds hiss as the wind turns, and the smell of peat smoke drifts across the path.",
           "Far off a bell tolls once, and the sound hangs over the marsh for a long time.",
           "Mud sucks at your boots; the path bends left between two leaning posts.",
           "Gulls argue over something on the mudflats, and their cries fade into the grey.",
           "The tide has turned: thin streams of water creep back between the tussocks.")


def narrator(turn: int) -> str:
    """The scripted reply for a turn: three sentences of scenery (no fact's key words)."""
    rng = random.Random(turn)
    return " ".join(rng.sample(_SCENES, 3))


def plan(turns: int) -> tuple[dict[int, Fact], dict[int, Fact]]:
    """(turn -> fact planted then, turn -> fact asked after it), scaled to ``turns``."""
    plant = {2 + 3 * i: fact for i, fact in enumerate(FACTS)}
    first_question = max(turns // 2, 3 * len(FACTS) + 10)
    step = max((turns - first_question) // len(FACTS), 1)
    ask = {first_question + step * i: fact for i, fact in enumerate(FACTS)}
    return plant, ask


def _contains(text: str, keys: tuple[str, ...]) -> bool:
    """Whether a key is in ``text`` as a word (``Odo`` is not found in ``odour``)."""
    return any(re.search(rf"(?<!\w){re.escape(key)}(?!\w)", text, re.IGNORECASE) for key in keys)


def _tree() -> str:
    """The commit the run measures (``+`` when tracked files have uncommitted changes)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno", "--", "storyteller", "bench"], cwd=root,
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{head}+" if head and dirty else head


def _where(prompt: Any, keys: tuple[str, ...]) -> list[str]:
    """The prompt segments (by source) that hold one of the keys."""
    return [segment.source for segment in prompt.segments if _contains(segment.text, keys)]


async def _run(turns: int, memory_on: bool) -> dict[str, Any]:
    from storyteller.engines.factory import open_backend
    from storyteller.memory import hook
    from storyteller.session import open_session

    tree = _tree()
    paths = _story.fresh_paths(f"recall-{'on' if memory_on else 'off'}")
    settings = _story.settings_for("embedded", None, kv_state="off")
    settings.engine.n_ctx = CONTEXT
    settings.sampling = settings.sampling.model_copy(update={"max_tokens": REPLY_TOKENS, "seed": SEED})
    settings.memory.enabled = memory_on
    backend = await open_backend(settings, paths)
    session = await open_session("recall", settings=settings, paths=paths, backend=backend)
    story = session.story
    plant, ask = plan(turns)
    inputs = _story.script(turns)
    rows = []
    planted_at: dict[str, int] = {}
    aside_seconds = 0.0
    written = merged = failed = 0
    started = time.perf_counter()
    try:
        for turn in range(1, turns + 1):
            fact = plant.get(turn)
            if fact is not None:
                node = story.add_node(fact.text, author="user", kind="story")
                planted_at[fact.text] = len(story.messages()) - 1
                if memory_on and fact.pinned:
                    session.memory.state.pin_message(node.id)
                    session.memory.save()
            else:
                kind, text = inputs[turn - 1]
                story.add_node(text, author="user", kind=kind)
            story.add_node(narrator(turn), author=session.character_name, kind="generation")
            session.last_prompt = await session.next_prompt()
            if memory_on:
                t0 = time.perf_counter()
                done = await hook.remember(session)
                aside_seconds += time.perf_counter() - t0
                written, merged, failed = written + len(done.written), merged + len(done.merged), failed + len(done.failed)
            if turn % 10 == 0:
                print(f"[recall {'on' if memory_on else 'off'}] turn {turn}, {written} summaries, {merged} merges, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            question = ask.get(turn)
            if question is not None:
                prompt = await session.next_prompt()
                trimmed = hook.trimmed_of(prompt)
                answer = await session.aside(question.question, max_tokens=REPLY_TOKENS)
                rows.append({
                    "turn": turn, "fact": question.text, "pinned": question.pinned,
                    "left_context": planted_at[question.text] < trimmed,
                    "in_prompt": _contains(prompt.text or "", question.keys),
                    "found_in": _where(prompt, question.keys),
                    "summaries_sent": [seg.source for seg in prompt.segments if seg.source.startswith("summary:")],
                    "summaries_dropped": [d for d in prompt.dropped if "summar" in d],
                    "in_memory": memory_on and any(_contains(s.text, question.keys)
                                                   for s in session.memory.state.summaries),
                    "answered": _contains(answer, question.keys),
                    "answer": answer[:200],
                })
                # Kept as it goes: a run stopped early still shows the questions it asked.
                _progress(memory_on, turns).write_text(json.dumps({"turn": turn, "rows": rows, "summaries_written": written,
                                                                    "merges": merged, "failed": failed}), encoding="utf-8")
        summaries = session.memory.state.summaries if memory_on else []
        in_use = []
        if memory_on:
            final = await session.next_prompt()
            in_use = [seg.text for seg in final.segments if seg.source.startswith("summary:")]
        return {"memory": memory_on, "turns": turns, "tree": tree, "rows": rows, "summaries_in_use": in_use, "seconds": round(time.perf_counter() - started, 1),
                "summary_seconds": round(aside_seconds, 1), "summaries_written": written, "merges": merged,
                "failed": failed, "summaries_kept": len(summaries),
                "sample_summaries": [s.text for s in summaries[:3]]}
    finally:
        await session.close()
        await backend.aclose()


def _share(rows: list[dict[str, Any]], key: str, pinned: bool | None) -> float | None:
    chosen = [r for r in rows if r["left_context"] and (pinned is None or r["pinned"] == pinned)]
    return round(100.0 * sum(r[key] for r in chosen) / len(chosen), 1) if chosen else None


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """Shares (percent) of the facts that had left the context."""
    rows = run["rows"]
    return {
        "asked": len(rows), "left_context": sum(r["left_context"] for r in rows),
        "in_prompt_pinned": _share(rows, "in_prompt", True), "in_prompt_summarised": _share(rows, "in_prompt", False),
        "answered_pinned": _share(rows, "answered", True), "answered_summarised": _share(rows, "answered", False),
        "in_prompt_all": _share(rows, "in_prompt", None), "answered_all": _share(rows, "answered", None),
    }


def _progress(memory_on: bool, turns: int) -> Any:
    return _story.bench_home() / f"recall-{'on' if memory_on else 'off'}-{turns}.progress.json"


def _partial(mode: str, turns: int) -> Any:
    return _story.bench_home() / f"recall-{mode}-{turns}.json"


def run(turns: int = 200, only: str | None = None) -> dict[str, Any]:
    """Play the story with memory off, then on; write the results (a full run only).

    With ``only`` (``on`` / ``off``) play one of them and keep it aside; the two halves can run
    in two processes, and the one that finishes second writes the results.
    """
    halves = {}
    for mode in ("off", "on"):
        if only in (None, mode):
            halves[mode] = asyncio.run(_run(turns, memory_on=mode == "on"))
            if only is not None:
                _partial(mode, turns).write_text(json.dumps(halves[mode]), encoding="utf-8")
        elif _partial(mode, turns).exists():
            halves[mode] = json.loads(_partial(mode, turns).read_text(encoding="utf-8"))
    if len(halves) < 2:
        return {"turns": turns, "waiting_for": [m for m in ("off", "on") if m not in halves],
                **{m: summarize(h) for m, h in halves.items()}}
    off, on = halves["off"], halves["on"]
    result = {"machine": machine(), "context": CONTEXT, "turns": turns, "facts": [asdict(f) for f in FACTS],
              "off": {**summarize(off), **{k: v for k, v in off.items() if k != "rows"}, "rows": off["rows"]},
              "on": {**summarize(on), **{k: v for k, v in on.items() if k != "rows"}, "rows": on["rows"]}}
    write_json("recall", result)
    write_section("recall", _markdown(result))
    return result


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _markdown(result: dict[str, Any]) -> str:
    off, on = result["off"], result["on"]
    lines = [
        f"`python -m bench recall{'' if result['turns'] == 200 else ' --turns ' + str(result['turns'])}`: "
        f"a scripted {result['turns']}-turn adventure{'' if result['turns'] == 200 else ' (a reduced run)'}, {result['context']}-token context, "
        f"SmolLM2-135M; 12 facts planted in the first 36 turns (4 pinned when memory is on), each asked "
        f"after it left the context. {result['machine']}.",
        "",
        "| | memory off | memory on |",
        "|---|---|---|",
        f"| pinned facts in the prompt when asked | {_pct(off['in_prompt_pinned'])} | {_pct(on['in_prompt_pinned'])} |",
        f"| summarised facts in the prompt when asked | {_pct(off['in_prompt_summarised'])} | "
        f"{_pct(on['in_prompt_summarised'])} |",
        f"| pinned facts answered correctly | {_pct(off['answered_pinned'])} | {_pct(on['answered_pinned'])} |",
        f"| summarised facts answered correctly | {_pct(off['answered_summarised'])} | "
        f"{_pct(on['answered_summarised'])} |",
        f"| facts that had left the context when asked | {off['left_context']}/{off['asked']} | "
        f"{on['left_context']}/{on['asked']} |",
        f"| run time (of it, writing summaries) | {off['seconds']} s | {on['seconds']} s ({on['summary_seconds']} s) |",
        "",
        f"Memory on wrote {on['summaries_written']} summaries and {on['merges']} merges ({on['failed']} attempts "
        f"gave nothing usable). \"In the prompt\" means the fact's key words were in the prompt the question was "
        "asked with; \"answered\" means the 135M model's answer contained them.",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--turns``."""
    parser.add_argument("--turns", type=int, default=200, help="turns to play (default 200)")
    parser.add_argument("--only", choices=("on", "off"), help="play only memory on or off (run both halves in two processes)")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point for ``python -m bench recall``."""
    result = run(args.turns, args.only)
    brief = {k: {kk: vv for kk, vv in v.items() if kk != "rows"} if isinstance(v, dict) else v
             for k, v in result.items() if k != "facts"}
    print(json.dumps(brief, indent=None if args.json else 2), flush=True)
    return 0
