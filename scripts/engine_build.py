"""Build llama-cpp-python for this machine, portably, and install it into a virtual environment.

Why this exists: pip's default build of llama-cpp-python compiles llama.cpp with GGML_NATIVE, so
`-march=native` switches on every instruction set the compiler knows, AMX included. GCC 12 builds
AMX kernels that segfault (llama.cpp issue 20824), and pip caches the wheel by version only, so a
wheel built once with other flags is silently reused. Here:

* llama.cpp is built with GGML_NATIVE=OFF and each CPU feature named explicitly: the features this
  CPU reports, AMX only with GCC >= 13; on ARM64 an explicit -march for the cores found.
* GPU=cuda|vulkan|metal|cpu|auto picks the GPU backend (auto: CUDA when nvcc is found).
* The wheel lives in a folder of our own keyed by llama-cpp-python's version + the CMake flags +
  the compiler, next to a build.json that says what the build promises; pip's cache is never used.
* While compiling, one "compiling llama.cpp: NN%" line per step of progress.

Standard library only: it runs before anything else is installed.
Usage: python scripts/engine_build.py install VENV_PYTHON    (build if needed, then install)
       python scripts/engine_build.py plan                   (print the flags and key as JSON)
       python scripts/engine_build.py progress < pip-v.log   (the progress filter alone)
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

LLAMA_VERSION = "0.3.36"
PACKAGE = "llama-cpp-python"
MANIFEST = "storyteller-engine-build.json"

# (feature flags /proc/cpuinfo must list, CMake option, name in llama_print_system_info or "")
X86_FEATURES: list[tuple[tuple[str, ...], str, str]] = [
    (("sse4_2",), "GGML_SSE42", "SSE3"),
    (("avx",), "GGML_AVX", "AVX"),
    (("avx2",), "GGML_AVX2", "AVX2"),
    (("bmi2",), "GGML_BMI2", "BMI2"),
    (("fma",), "GGML_FMA", "FMA"),
    (("f16c",), "GGML_F16C", "F16C"),
    (("avx_vnni",), "GGML_AVX_VNNI", "AVX_VNNI"),
    (("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"), "GGML_AVX512", "AVX512"),
    (("avx512vbmi",), "GGML_AVX512_VBMI", "AVX512_VBMI"),
    (("avx512_vnni",), "GGML_AVX512_VNNI", "AVX512_VNNI"),
    (("avx512_bf16",), "GGML_AVX512_BF16", "AVX512_BF16"),
]
AMX_FEATURES: list[tuple[tuple[str, ...], str, str]] = [
    (("amx_tile",), "GGML_AMX_TILE", ""),
    (("amx_int8",), "GGML_AMX_INT8", "AMX_INT8"),
    (("amx_bf16",), "GGML_AMX_BF16", ""),
]
AMX_MIN_GCC = 13  # GCC 12 miscompiles ggml's AMX kernels (they segfault in ggml_backend_amx_mul_mat)


@dataclass
class Plan:
    """What one build is: its CMake flags, what llama.cpp will say about itself, and its key."""

    machine: str
    compiler: str
    gpu: str
    cmake_args: list[str]
    expect_on: list[str] = field(default_factory=list)  # llama_print_system_info names = 1
    expect_off: list[str] = field(default_factory=list)  # names that must not be 1
    notes: list[str] = field(default_factory=list)
    version: str = LLAMA_VERSION

    @property
    def key(self) -> str:
        text = json.dumps([self.version, self.machine, self.compiler, sorted(self.cmake_args),
                           sys.version_info[:2]])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        data = asdict(self)
        data["key"] = self.key
        return data


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature words of /proc/cpuinfo ("flags" on x86, "Features" on ARM)."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def gcc_major(version_text: str) -> int | None:
    """GCC's major version from `cc --version`, or None for another compiler."""
    first = version_text.splitlines()[0] if version_text else ""
    if "clang" in first.lower() or not re.search(r"gcc|GCC|\(Debian|\(Ubuntu", first):
        return None
    match = re.search(r"(\d+)\.\d+(\.\d+)?\s*$", first) or re.search(r" (\d+)\.\d+", first)
    return int(match.group(1)) if match else None


def x86_flags(flags: set[str], gcc: int | None, compiler: str) -> tuple[list[str], list[str], list[str], list[str]]:
    args, on, off, notes = [], [], [], []
    for needed, option, name in X86_FEATURES:
        have = all(f in flags for f in needed)
        args.append(f"-D{option}={'ON' if have else 'OFF'}")
        if name:
            (on if have else off).append(name)
    amx_ok = gcc is not None and gcc >= AMX_MIN_GCC or ("clang" in compiler.lower())
    has_amx = all(f in flags for f in ("amx_tile", "amx_int8"))
    for needed, option, name in AMX_FEATURES:
        use = has_amx and amx_ok and all(f in flags for f in needed)
        args.append(f"-D{option}={'ON' if use else 'OFF'}")
        if name:
            (on if use else off).append(name)
    if has_amx and not amx_ok:
        notes.append(f"AMX left out: this CPU has it, but the compiler ({compiler or 'unknown'}) "
                     f"is older than GCC {AMX_MIN_GCC}, whose AMX kernels crash")
    return args, on, off, notes


def arm_march(flags: set[str]) -> str:
    """-march for ARM64 from the cores' features (Pi 5: dotprod and fp16; Pi 4: plain armv8-a)."""
    if "asimddp" in flags and "asimdhp" in flags:
        return "armv8.2-a+dotprod+fp16"
    if "asimddp" in flags:
        return "armv8.2-a+dotprod"
    return "armv8-a"


def _runs(*candidates: str) -> str | None:
    """The first program of `candidates` that exists and answers --version (a stale shim does not)."""
    for name in candidates:
        path = shutil.which(name) or (name if Path(name).is_file() else None)
        if not path:
            continue
        try:
            flag = "-L" if name.endswith("nvidia-smi") else "--version"
            if subprocess.run([path, flag], capture_output=True, timeout=20).returncode == 0:
                return path
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def detect_gpu(env: dict[str, str]) -> tuple[str, list[str]]:
    """The GPU backend to build: GPU=cuda|vulkan|metal|cpu (also none/off/no), default auto."""
    choice = (env.get("GPU") or env.get("STORYTELLER_GPU") or "auto").strip().lower()
    notes: list[str] = []
    if choice in ("none", "off", "no", "cpu", "0"):
        return "cpu", notes
    if choice in ("cuda", "vulkan", "metal"):
        return choice, notes
    if choice != "auto":
        raise SystemExit(f"GPU={choice!r} is not a choice: use cuda, vulkan, metal, cpu or auto.")
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "metal", notes
    nvcc = _runs("nvcc", "/usr/local/cuda/bin/nvcc")
    gpu_present = _runs("nvidia-smi") is not None or Path("/dev/nvidia0").exists()
    if nvcc and gpu_present:
        notes.append(f"CUDA found ({nvcc}): building the CUDA engine (GPU=cpu to build without)")
        return "cuda", notes
    if gpu_present:
        notes.append("an NVIDIA GPU is present but the CUDA toolkit (nvcc) is not: building for the CPU; "
                     "install the CUDA toolkit and run again with GPU=cuda to offload to the GPU")
    elif nvcc:
        notes.append("nvcc found but no NVIDIA GPU: building for the CPU (GPU=cuda forces a CUDA build)")
    return "cpu", notes


def make_plan(cpuinfo: str | None = None, compiler: str | None = None, machine: str | None = None,
              env: dict[str, str] | None = None) -> Plan:
    env = dict(os.environ if env is None else env)
    machine = (machine or platform.machine()).lower()
    if compiler is None:
        cc = env.get("CC") or shutil.which("cc") or shutil.which("gcc") or ""
        try:
            compiler = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=20).stdout if cc else ""
        except OSError:
            compiler = ""
    compiler_line = compiler.splitlines()[0].strip() if compiler else ""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    flags = cpu_flags(cpuinfo)
    gpu, notes = detect_gpu(env)
    args = ["-DGGML_NATIVE=OFF", "-DLLAMA_CURL=OFF"]
    on: list[str] = []
    off: list[str] = []
    if machine in ("x86_64", "amd64"):
        a, on, off, more = x86_flags(flags, gcc_major(compiler or ""), compiler_line)
        args += a
        notes += more
    elif machine in ("aarch64", "arm64"):
        if platform.system() != "Darwin":
            args.append(f"-DGGML_CPU_ARM_ARCH={arm_march(flags)}")
    else:
        notes.append(f"no portable flag set known for {machine}: building with llama.cpp's defaults")
        args = ["-DLLAMA_CURL=OFF"]
    if gpu == "cuda":
        args.append("-DGGML_CUDA=ON")
    elif gpu == "vulkan":
        args.append("-DGGML_VULKAN=ON")
    elif gpu == "metal":
        args.append("-DGGML_METAL=ON")
    extra = env.get("STORYTELLER_CMAKE_ARGS", "").split()
    args += extra
    return Plan(machine=machine, compiler=compiler_line, gpu=gpu, cmake_args=args,
                expect_on=on, expect_off=off, notes=notes)


_NINJA = re.compile(r"^\s*\[(\d+)/(\d+)\]")
_CMAKE = re.compile(r"\[\s*(\d+)%\]")


def progress(lines: Iterable[str]) -> Iterator[str]:
    """Percent lines from a `pip -v` build log (ninja's [N/M], make's [ NN%]), one per change."""
    last = None
    for line in lines:
        match = _NINJA.match(line)
        if match:
            done, total = int(match.group(1)), int(match.group(2))
            pct = int(100 * done / total) if total else 0
        else:
            match = _CMAKE.search(line)
            if not match:
                continue
            pct = int(match.group(1))
        if pct != last:
            last = pct
            yield f"    compiling llama.cpp: {pct}%"


def wheel_root(env: dict[str, str]) -> Path:
    base = env.get("STORYTELLER_WHEELS")
    if base:
        return Path(base)
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "storyteller" / "wheels"


def find_wheel(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    return wheels[0] if wheels else None


def build(plan: Plan, folder: Path, python: str, log: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = dict(os.environ)
    env["CMAKE_ARGS"] = " ".join(plan.cmake_args)
    env["FORCE_CMAKE"] = "1"
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    cmd = [python, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--no-binary", PACKAGE,
           "-v", "-w", str(tmp), f"{PACKAGE}=={plan.version}"]
    print(f"==> Compiling llama.cpp for this machine ({plan.machine}, {plan.gpu}); about 5-13 minutes on 2 cores.")
    for note in plan.notes:
        print(f"    note: {note}")
    print(f"    flags: {' '.join(plan.cmake_args)}")
    sys.stdout.flush()
    with open(log, "w", encoding="utf-8", errors="replace") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", env=env)
        assert proc.stdout is not None

        def tee() -> Iterator[str]:
            for line in proc.stdout:  # type: ignore[union-attr]
                out.write(line)
                yield line

        for message in progress(tee()):
            print(message, flush=True)
        status = proc.wait()
    if status != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        sys.stderr.write("Compiling llama-cpp-python failed; the last lines of " f"{log}:\n" + "\n".join(tail) + "\n")
        raise SystemExit(status)
    wheel = find_wheel(tmp)
    if wheel is None:
        raise SystemExit(f"pip reported success but left no wheel in {tmp}; see {log}")
    (tmp / "build.json").write_text(json.dumps(plan.to_json(), indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder / wheel.name


def install(python: str, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    plan = make_plan(env=env)
    folder = wheel_root(env) / f"{PACKAGE}-{plan.version}-{plan.key}"
    venv = Path(python).parent.parent  # VENV/bin/python
    manifest = venv / MANIFEST
    if manifest.exists():
        try:
            if json.loads(manifest.read_text()).get("key") == plan.key:
                check = subprocess.run([python, "-c", "import llama_cpp"], capture_output=True)
                if check.returncode == 0:
                    return 0
        except (OSError, ValueError):
            pass
    wheel = find_wheel(folder)
    if wheel is None:
        wheel = build(plan, folder, python, venv / "llama-build.log")
    else:
        print(f"==> Using the llama.cpp engine built earlier for these flags ({folder})")
    deps = ["numpy>=1.20.0", "typing-extensions>=4.5.0", "diskcache>=5.6.1", "jinja2>=2.11.3"]
    subprocess.run([python, "-m", "pip", "install", "-q", *deps], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--force-reinstall",
                    str(wheel)], check=True)
    manifest.write_text(json.dumps(plan.to_json(), indent=2) + "\n")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("install", "plan", "progress"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "plan":
        print(json.dumps(make_plan().to_json(), indent=2))
        return 0
    if argv[0] == "progress":
        for message in progress(sys.stdin):
            print(message, flush=True)
        return 0
    if len(argv) < 2:
        print("usage: engine_build.py install VENV_PYTHON", file=sys.stderr)
        return 2
    return install(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
