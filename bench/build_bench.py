"""Portable build vs native build: the same model, the same run, interleaved.

The set-up builds llama.cpp with ``GGML_NATIVE=OFF`` and this CPU's features named one by one
(scripts/engine_build.py). This benchmark shows what that costs against ``-march=native`` on a
machine where native works: the installed (portable) build runs in this virtual environment, the
native wheel (built beforehand with ``CMAKE_ARGS="-DGGML_NATIVE=ON"``, see ``--native``) in a
scratch virtual environment, each measured in fresh child processes, alternating, several rounds.
Target: portable >= 0.95x native for prompt reading and for generation.

    python -m bench build --native ~/.cache/storyteller/native-bench
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from bench import _report

CHILD = r'''
import json, sys, time
import llama_cpp
model, threads = sys.argv[1], int(sys.argv[2])
llm = llama_cpp.Llama(model_path=model, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False, seed=1)
text = ("The old lighthouse keeper climbed the spiral stairs every evening, counting the steps aloud. " * 40)
tokens = llm.tokenize(text.encode())[:512]
best_prompt, best_gen = 0.0, 0.0
for _ in range(2):
    llm.reset()
    t0 = time.perf_counter(); llm.eval(tokens); t1 = time.perf_counter()
    best_prompt = max(best_prompt, len(tokens) / (t1 - t0))
    t0 = time.perf_counter()
    out = llm.create_completion(tokens, max_tokens=64, temperature=0.0)
    n = out["usage"]["completion_tokens"]
    t1 = time.perf_counter()
    best_gen = max(best_gen, n / (t1 - t0))
print(json.dumps({"prompt_tps": best_prompt, "gen_tps": best_gen,
                  "system_info": llama_cpp.llama_print_system_info().decode()}))
'''


def add_arguments(parser) -> None:
    parser.add_argument("--native", default=str(Path.home() / ".cache" / "storyteller" / "native-bench"),
                        help="folder holding a llama_cpp_python wheel built with -DGGML_NATIVE=ON")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)


def _native_python(folder: Path, scratch: Path) -> str:
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if not wheels:
        raise SystemExit(f"no llama_cpp_python wheel in {folder}: build one with\n"
                         f"  CMAKE_ARGS=-DGGML_NATIVE=ON pip wheel --no-deps --no-cache-dir --no-binary "
                         f"llama-cpp-python -w {folder} llama-cpp-python==0.3.36")
    venv.create(scratch, with_pip=True)
    py = str(scratch / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "numpy", "typing-extensions", "diskcache", "jinja2"], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(wheels[0])], check=True)
    return py


def _measure(python: str, model: str, threads: int) -> dict:
    out = subprocess.run([python, "-c", CHILD, model, str(threads)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{python} failed: {out.stderr[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_from_args(args) -> int:
    from storyteller.models import bundled_model_path

    model = str(bundled_model_path())
    with tempfile.TemporaryDirectory(prefix="storyteller-native-") as tmp:
        native_py = _native_python(Path(args.native), Path(tmp) / "venv")
        runs: dict[str, list[dict]] = {"portable": [], "native": []}
        info: dict[str, str] = {}
        for _ in range(args.rounds):
            for name, py in (("portable", sys.executable), ("native", native_py)):
                result = _measure(py, model, args.threads)
                runs[name].append(result)
                info[name] = result["system_info"].strip()
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("prompt_tps", "gen_tps")} for name, rs in runs.items()}
    ratio = {k: med["portable"][k] / med["native"][k] for k in ("prompt_tps", "gen_tps")}
    from storyteller.engines.native import build_manifest

    data = {"machine": _report.machine(), "model": Path(model).name, "rounds": args.rounds, "threads": args.threads,
            "portable": med["portable"], "native": med["native"], "ratio": ratio, "system_info": info,
            "portable_flags": (build_manifest() or {}).get("cmake_args"), "target": 0.95,
            "ok": min(ratio.values()) >= 0.95}
    _report.write_json("build", data)
    md = [f"Portable build (the set-up's explicit flags) against `-DGGML_NATIVE=ON`, same model "
          f"({data['model']}), {args.threads} threads, median of {args.rounds} interleaved rounds, each the best "
          f"of 2 passes in a fresh process; {data['machine']}.", "",
          "| build | prompt tokens/s (512) | generation tokens/s (64) |", "|---|---|---|"]
    for name in ("portable", "native"):
        md.append(f"| {name} | {med[name]['prompt_tps']:.0f} | {med[name]['gen_tps']:.1f} |")
    md += ["", f"Portable / native: prompt **{ratio['prompt_tps']:.3f}x**, generation **{ratio['gen_tps']:.3f}x** "
           f"(target >= 0.95x: {'met' if data['ok'] else 'NOT met'}).", "",
           f"Portable: `{info.get('portable', '')}`  ", f"Native: `{info.get('native', '')}`"]
    _report.write_section("build", "\n".join(md))
    print(json.dumps(data, indent=None if getattr(args, "json", False) else 2))
    return 0
