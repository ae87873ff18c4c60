"""``storyteller models``: list the GGUF models on this machine; ``models pull``: download one."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``models`` (and ``models pull``) to the top-level subcommands."""
    models = sub.add_parser("models", help="list the GGUF models storyteller can find (its own, Ollama, LM Studio, "
                            "Jan, GPT4All, the Hugging Face cache); `models pull` downloads one")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=_cmd_list)
    actions = models.add_subparsers(dest="models_command", metavar="ACTION")
    pull = actions.add_parser("pull", help="download a GGUF into the models folder (resumable, sha256-checked)")
    pull.add_argument("source", metavar="SOURCE",
                      help="an https URL of a .gguf file, or a Hugging Face ORG/NAME:FILE.gguf (or ORG/NAME:QUANT)")
    pull.add_argument("--sha256", default=None, metavar="HEX", help="the file's expected sha256")
    pull.add_argument("--name", default=None, metavar="FILE.gguf", help="file name in the models folder")
    pull.add_argument("--force", action="store_true", help="replace a model of the same name")
    pull.add_argument("--retries", type=int, default=3, metavar="N",
                      help="times a dropped connection is resumed within this run (default 3)")
    pull.set_defaults(func=_cmd_pull)


def _template_name(text: str | None, library: Any) -> str:
    if not text:
        return "none"
    from storyteller.prompt.templates import detect_preset

    preset = detect_preset(text, library.instruct.values())
    return preset.name if preset is not None else "its own"


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def model_rows(settings: Any, paths: Any) -> dict[str, Any]:
    """Everything ``storyteller models --json`` prints: models, problems, memory, GPUs."""
    from storyteller.errors import ModelError
    from storyteller.model_memory import context_for, estimate_bytes, fits, gpu_memory, system_memory
    from storyteller.model_sources import discover
    from storyteller.models import read_gguf_info
    from storyteller.prompt.templates import load_library

    found = discover(paths, folders=settings.models.folders, other_apps=settings.models.other_apps)
    library = load_library(paths.config_dir / "templates")
    memory, gpus = system_memory(), gpu_memory()
    rows, problems = [], list(found.problems)
    for model in found.models:
        try:
            info = read_gguf_info(model.path)
        except ModelError as exc:
            problems.append(f"{model.ref}: {exc}")
            continue
        num_ctx = model.params.get("num_ctx") if isinstance(model.params.get("num_ctx"), int) else None
        n_ctx = context_for(info, settings.engine.n_ctx or num_ctx, settings.engine.max_ctx)
        need = estimate_bytes(info, n_ctx)
        row = info.summary()
        row.update({
            "ref": model.ref, "source": model.source, "source_name": model.name,
            "template": _template_name(info.chat_template, library),
            "context_used": n_ctx, "needs_bytes": need,
            "fits_memory": fits(need, memory.total, memory.available) if memory else "unknown",
            "fits_gpu": max((fits(need, g.total, g.free) for g in gpus), key=["no", "tight", "yes"].index)
            if gpus else None,
        })
        if model.source == "ollama":
            row["ollama"] = {"template": _template_name(model.template, library) if model.template else None,
                             "params": model.params, "system": model.system is not None}
        rows.append(row)
    return {
        "models": rows, "problems": problems,
        "memory": {"total": memory.total, "available": memory.available} if memory else None,
        "gpus": [{"name": g.name, "total": g.total, "free": g.free} for g in gpus],
    }


def _cmd_list(args: argparse.Namespace) -> int:
    from storyteller.config import load_settings
    from storyteller.models import INSTALL_HINT
    from storyteller.paths import get_paths

    paths = get_paths()
    report = model_rows(load_settings(paths), paths)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    memory, gpus = report["memory"], report["gpus"]
    machine = f"memory {_gb(memory['total'])}, {_gb(memory['available'])} free" if memory else "memory unknown"
    machine += "; " + (", ".join(f"GPU {g['name']} {_gb(g['total'])}, {_gb(g['free'])} free" for g in gpus)
                       if gpus else "no GPU found")
    print(f"This machine: {machine}.\n")
    if not report["models"]:
        print("No GGUF models found. " + INSTALL_HINT.format(models_dir=paths.models_dir))
    for row in report["models"]:
        ollama = row.get("ollama")
        template = row["template"]
        if ollama and ollama["template"]:
            template += f" (Ollama's: {ollama['template']})"
        fit = (f"fits in memory: {row['fits_memory']} (needs about {_gb(row['needs_bytes'])} at context "
               f"{row['context_used']})")
        if row["fits_gpu"] is not None:
            fit += f"; in GPU memory: {row['fits_gpu']}"
        print(f"{row['ref']}    [{row['source']}]\n  {row['path']}\n  {row['architecture']}, {row['size_label']} "
              f"parameters, {row['quantization']}, context {row['context_length']}, chat template {template}, "
              f"{_gb(row['file_size'])}\n  {fit}")
        if ollama and ollama["params"]:
            shown = ", ".join(f"{k} {v}" for k, v in ollama["params"].items() if k != "stop")
            stops = ollama["params"].get("stop")
            shown += (", " if shown else "") + (f"{len(stops)} stop strings" if isinstance(stops, list) else "")
            print(f"  Ollama's parameters (used where your settings leave them unset): {shown.rstrip(', ')}")
    print("\nPick one with --model NAME (the first word of each entry), or engine.model in config.toml.")
    for problem in report["problems"]:
        print(f"storyteller: skipped {problem}", file=sys.stderr)
    return 0


class _ProgressBar:
    """Progress on stderr: one line redrawn on a terminal, a line every 10 % otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last_draw = 0.0
        self.last_step = -1
        self.announced = False

    def __call__(self, p: Any) -> None:
        if not self.announced:
            self.announced = True
            if p.started_at:
                print(f"continuing from {_gb(p.started_at)} (an earlier download stopped there)", file=self.stream)
        now = time.monotonic()
        speed = (p.done - p.started_at) / p.seconds if p.seconds > 0 else 0.0
        if p.total:
            pct = 100.0 * p.done / p.total
            filled = int(pct / 100 * 30)
            eta = f"{(p.total - p.done) / speed:.0f}s" if speed > 0 else "?"
            line = f"{pct:5.1f}% [{'#' * filled}{'.' * (30 - filled)}] {_gb(p.done)} of {_gb(p.total)}, " \
                   f"{speed / 1e6:.1f} MB/s, {eta} left"
            step = int(pct // 10)
        else:
            line = f"{_gb(p.done)}, {speed / 1e6:.1f} MB/s"
            step = int(now // 5)
        if self.tty:
            if now - self.last_draw >= 0.1 or (p.total and p.done >= p.total):
                self.stream.write("\r" + line + "  ")
                self.stream.flush()
                self.last_draw = now
        elif step != self.last_step:
            self.last_step = step
            print(line, file=self.stream, flush=True)

    def finish(self) -> None:
        if self.tty and self.announced and self.last_draw:
            self.stream.write("\n")
            self.stream.flush()
        self.last_draw = 0.0


def _cmd_pull(args: argparse.Namespace) -> int:
    from storyteller.model_pull import parse_source, pull
    from storyteller.paths import get_paths

    paths = get_paths()
    source = parse_source(args.source, sha256=args.sha256, name=args.name)
    print(f"Downloading {source.url}\n  to {paths.models_dir / source.filename}", file=sys.stderr)
    bar = _ProgressBar(sys.stderr)
    try:
        result = pull(source, paths.models_dir, force=args.force, retries=max(0, args.retries), progress=bar)
    except KeyboardInterrupt:
        bar.finish()
        print("storyteller: download stopped; run the same command again to continue from where it stopped.",
              file=sys.stderr)
        return 130
    finally:
        bar.finish()
    check = f"matches {result.verified_by}" if result.verified_by else "not checked: the source gave no hash"
    print(f"Saved {result.path} ({_gb(result.size)}).\n  sha256 {result.sha256} ({check})\n"
          f"  Use it with: storyteller --model {result.path.stem}")
    return 0
