"""``storyteller doctor``: load the configured model in a child process and report on the engine.

The child loads the model with the user's settings, reads a short prompt, generates a few tokens
and prints one JSON object. A native crash there (a bad build, a driver problem) kills only the
child: the parent turns it into one line that says what crashed and what to do. The set-up script
runs the doctor at the end of every install, so a bad build fails the install, not the first turn.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["run_doctor", "format_report", "child_main"]

_PROMPT = ("Once upon a time, in a village at the edge of a great forest, there lived an old clockmaker "
           "who repaired every clock in the valley. One winter morning a stranger knocked on his door "
           "carrying a broken pocket watch that ticked backwards. The clockmaker opened the case and")


def _child_payload(settings_json: str, model: str) -> dict[str, Any]:
    """Runs in the child: everything that touches the native library."""
    import faulthandler

    faulthandler.enable()
    stage_file = os.environ.get("STORYTELLER_DOCTOR_STAGE_FILE")

    def stage(name: str) -> None:
        if stage_file:
            Path(stage_file).write_text(name)
        if os.environ.get("STORYTELLER_DOCTOR_FAULT") == name:  # test hook: a real native crash here
            faulthandler._sigsegv()

    stage("import")
    from storyteller.engines import native

    native.preload()
    order_ok = native.import_order_ok()
    import llama_cpp

    from storyteller.config import EngineSettings
    from storyteller.engines.llamacpp import LlamaCppBackend, gpu_support

    engine = EngineSettings.model_validate_json(settings_json)
    check = native.check_build()
    can_offload, gpu_backend = gpu_support()
    stage("load")
    started = time.perf_counter()
    backend = LlamaCppBackend.load(model, engine)
    load_seconds = time.perf_counter() - started
    info = backend.info()
    stage("generate")
    import asyncio

    from storyteller.engines.base import Finished, GenerationRequest, Sampling, TextChunk

    request = GenerationRequest(prompt=_PROMPT, sampling=Sampling(max_tokens=16, temperature=0.0, seed=1))

    async def go() -> tuple[str, Any]:
        text, finished = [], None
        async for chunk in backend.stream(request):
            if isinstance(chunk, TextChunk):
                text.append(chunk.text)
            elif isinstance(chunk, Finished):
                finished = chunk
        return "".join(text), finished

    async def run() -> tuple[str, Any]:
        try:
            return await go()
        finally:
            await backend.aclose()

    text, finished = asyncio.run(run())
    stats = finished.stats if finished else None
    prompt_tps = None
    if stats and stats.prompt_seconds and stats.tokens_evaluated:
        prompt_tps = stats.tokens_evaluated / stats.prompt_seconds
    flags = native.cpu_flags()
    wanted = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8",
              "asimd", "asimddp", "asimdhp", "sve")
    return {
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": check.info,
        "build": {"ok": check.ok, "summary": check.describe(),
                  "cmake_args": (check.manifest or {}).get("cmake_args"),
                  "missing": check.missing, "unexpected": check.unexpected},
        "cpu_features": sorted(f for f in wanted if f in flags),
        "gpu": {"can_offload": can_offload, "backend": info.gpu_backend if info.gpu_layers else
                (gpu_backend if can_offload else "none"),
                "layers": info.gpu_layers, "layers_total": (info.details.get("layers") or 0) + 1},
        "model": {"name": info.model, "path": info.details.get("path"),
                  "quantization": info.details.get("quantization"), "context": info.context_length,
                  "chat_template": _template_name(info.chat_template)},
        "load_seconds": round(load_seconds, 3),
        "prompt_tokens_per_second": round(prompt_tps, 1) if prompt_tps else None,
        "generation_tokens_per_second": round(stats.tokens_per_second, 1) if stats and stats.tokens_per_second else None,
        "sample": text,
        "import_order_ok": order_ok,
        "warnings": list(info.warnings),
    }


def _template_name(template: str | None) -> str:
    if not template:
        return "none (a generic template is used)"
    known = {"<|im_start|>": "ChatML", "<|start_header_id|>": "Llama 3", "[INST]": "Mistral/Llama 2",
             "<start_of_turn>": "Gemma", "<|user|>": "Zephyr/Phi", "<|turn>": "Gemma 4"}
    for marker, name in known.items():
        if marker in template:
            return f"{name} (from the GGUF)"
    return "custom (from the GGUF)"


def child_main(argv: list[str]) -> int:
    settings_json, model = argv[0], argv[1]
    try:
        payload = _child_payload(settings_json, model)
    except Exception as exc:  # an ordinary Python error: report it as data, not a traceback
        payload = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write("STORYTELLER-DOCTOR " + json.dumps(payload) + "\n")
    sys.stdout.flush()
    return 0


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def run_doctor(settings, paths, *, timeout: float = 300.0) -> dict[str, Any]:
    """Run the check in a child process; returns the report (``ok`` False with ``problem`` on failure)."""
    import tempfile

    from storyteller.models import resolve_model

    model = str(resolve_model(settings.engine.model, paths))
    with tempfile.TemporaryDirectory(prefix="storyteller-doctor-") as tmp:
        stage_file = Path(tmp) / "stage"
        env = dict(os.environ, STORYTELLER_DOCTOR_STAGE_FILE=str(stage_file))
        cmd = [sys.executable, "-X", "faulthandler", "-m", "storyteller.doctor",
               settings.engine.model_dump_json(), model]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"ok": False, "model": model,
                    "problem": f"the engine did not answer within {timeout:.0f} s while checking {model}; "
                               "try a smaller model or context"}
        stage = stage_file.read_text() if stage_file.exists() else "start"
    report: dict[str, Any] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith("STORYTELLER-DOCTOR "):
            report = json.loads(line.split(" ", 1)[1])
    gpu_layers = settings.engine.n_gpu_layers
    if proc.returncode < 0 or (report is None and proc.returncode != 0):
        what = _signal_name(proc.returncode) if proc.returncode < 0 else f"exit status {proc.returncode}"
        frame = _first_native_frame(proc.stderr)
        from storyteller.engines.native import crash_hint

        where = {"import": "loading the llama.cpp library", "load": "loading the model",
                 "generate": "generating", "start": "starting"}.get(stage, stage)
        return {"ok": False, "model": model, "crashed": what, "stage": stage,
                "problem": f"the llama.cpp engine crashed ({what}) while {where}{frame}: "
                           + crash_hint(gpu_layers if gpu_layers != 0 else None)}
    if report is None:
        return {"ok": False, "model": model, "problem": "the engine check printed no report: " + proc.stderr[-400:]}
    if "error" in report:
        return {"ok": False, "model": model, "problem": report["error"]}
    report["ok"] = bool(report["build"]["ok"] or report["build"]["cmake_args"] is None) and bool(report["sample"])
    if not report["build"]["ok"] and report["build"]["cmake_args"] is not None:
        report["problem"] = report["build"]["summary"]
    elif not report["sample"]:
        report["problem"] = "the model loaded but generated no text"
    return report


def _first_native_frame(stderr: str) -> str:
    """`` in FUNCTION`` when the faulthandler/gdb output names a native function, else ""."""
    for line in stderr.splitlines():
        if "ggml_" in line or "llama_" in line:
            return f" ({line.strip()[:120]})"
    return ""


def format_report(report: dict[str, Any]) -> str:
    if not report.get("ok") and "llama_cpp_python" not in report:
        return f"storyteller doctor: {report['problem']}"
    gpu = report["gpu"]
    lines = [
        f"engine       llama-cpp-python {report['llama_cpp_python']}",
        f"build        {report['build']['summary']}",
        f"llama.cpp    {report['system_info']}",
        f"cpu          {' '.join(report['cpu_features']) or 'no SIMD features found'}",
        f"gpu          {gpu['backend']}, {gpu['layers']} of {gpu['layers_total']} layers offloaded"
        + ("" if gpu["can_offload"] else " (a CPU build)"),
        f"model        {report['model']['name']} ({report['model']['quantization']}), context {report['model']['context']}",
        f"template     {report['model']['chat_template']}",
        f"speed        prompt {report['prompt_tokens_per_second'] or '?'} tokens/s, "
        f"generation {report['generation_tokens_per_second'] or '?'} tokens/s (load {report['load_seconds']} s)",
    ]
    lines += [f"warning      {w}" for w in report.get("warnings", [])]
    lines.append("result       " + ("ok" if report["ok"] else f"PROBLEM: {report.get('problem')}"))
    return "\n".join(lines)


if __name__ == "__main__":  # the child process
    sys.exit(child_main(sys.argv[1:]))
