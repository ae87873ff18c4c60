"""The native llama.cpp library: loading it safely, and what the installed build says about itself.

Import order matters. With a CUDA build, importing numpy before ``llama_cpp`` makes ``Llama()``
segfault during CUDA start-up (observed on an H200 with CUDA 13 and llama-cpp-python 0.3.36).
Every storyteller entry point that can load the engine therefore calls :func:`preload` before
anything imports numpy, and storyteller's own modules import numpy only lazily.

The set-up script (``scripts/engine_build.py``) writes ``storyteller-engine-build.json`` into the
virtual environment: the CMake flags it built llama.cpp with and the CPU features the build must
report. :func:`check_build` compares that promise with ``llama_print_system_info()``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

__all__ = ["BUILD_MANIFEST", "BuildCheck", "build_manifest", "check_build", "cpu_flags",
           "import_order_ok", "preload", "system_info"]

BUILD_MANIFEST = "storyteller-engine-build.json"


def preload() -> ModuleType | None:
    """Import ``llama_cpp`` now (before numpy), or return None when it is not installed."""
    try:
        import llama_cpp
    except ImportError:
        return None
    return llama_cpp


def import_order_ok(modules: list[str] | None = None) -> bool:
    """True unless numpy was imported before llama.cpp's native library (the order that crashes
    CUDA builds). ``sys.modules`` lists a module when its import completes, and ``llama_cpp``
    itself imports numpy, so the module to compare is ``llama_cpp.llama_cpp``, which loads the
    shared library; a list of import starts (``modules``) may name just ``llama_cpp``."""
    names = list(sys.modules) if modules is None else modules
    if "numpy" not in names:
        return True
    lib = "llama_cpp.llama_cpp" if "llama_cpp.llama_cpp" in names else "llama_cpp"
    if lib not in names:
        return False
    return names.index(lib) < names.index("numpy")


def system_info() -> str:
    """``llama_print_system_info()`` of the installed build ("" when llama_cpp is missing)."""
    llama_cpp = preload()
    if llama_cpp is None:
        return ""
    return llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip()


def reported_features(info: str) -> dict[str, bool]:
    """``{"AVX2": True, "AMX_INT8": False, ...}`` from a system-info line ("NAME = 1 | ...")."""
    found: dict[str, bool] = {}
    for part in info.replace("\n", "|").split("|"):
        name, sep, value = part.partition("=")
        if not sep:
            continue
        name = name.strip().split(":")[-1].strip()
        if name:
            found[name] = value.strip() == "1"
    return found


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """This CPU's feature words (/proc/cpuinfo's "flags" on x86, "Features" on ARM)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def build_manifest(prefix: str | None = None) -> dict | None:
    """The set-up script's record of how llama.cpp was built, or None if it was installed otherwise."""
    path = Path(prefix or sys.prefix) / BUILD_MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass
class BuildCheck:
    """The installed build's system info held against what the set-up promised."""

    manifest: dict | None
    info: str
    missing: list[str] = field(default_factory=list)  # promised on, reported off
    unexpected: list[str] = field(default_factory=list)  # promised off (e.g. AMX on GCC 12), reported on

    @property
    def ok(self) -> bool:
        return self.manifest is not None and not self.missing and not self.unexpected

    def describe(self) -> str:
        if self.manifest is None:
            return ("llama-cpp-python was not installed by storyteller's set-up, so its build flags are "
                    "unknown; run `make run` (or scripts/setup.sh) to build it for this machine")
        if self.ok:
            return f"built for this machine ({self.manifest.get('machine')}, {self.manifest.get('gpu')}) as promised"
        parts = []
        if self.missing:
            parts.append("missing " + ", ".join(self.missing))
        if self.unexpected:
            parts.append("unexpectedly on: " + ", ".join(self.unexpected))
        return ("the installed llama.cpp is not the build the set-up made (" + "; ".join(parts)
                + "): delete .venv and run `make run` again")


def check_build(manifest: dict | None = None, info: str | None = None) -> BuildCheck:
    manifest = build_manifest() if manifest is None else manifest
    info = system_info() if info is None else info
    check = BuildCheck(manifest, info)
    if manifest is None:
        return check
    reported = reported_features(info)
    check.missing = [name for name in manifest.get("expect_on", []) if not reported.get(name, False)]
    check.unexpected = [name for name in manifest.get("expect_off", []) if reported.get(name, False)]
    return check


def crash_hint(gpu_layers: int | None = None) -> str:
    """What to do after the engine crashed natively."""
    hint = ("rebuild the engine for this machine: delete .venv and run `make run` "
            "(GPU=cpu make run builds without GPU support)")
    if gpu_layers:
        hint += "; or run on the CPU with STORYTELLER_ENGINE__N_GPU_LAYERS=0"
    return hint
