"""The engine build: portable flags per CPU, a wheel per flag set, progress, and the installed build.

The AMX crash and the GPU crash were invisible to a suite that only ran on one CPU. These tests
check the build plan for the CPUs users have (from recorded /proc/cpuinfo lines), and the build
this machine actually installed against what its plan promised, by llama.cpp's own report.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("engine_build", ROOT / "scripts" / "engine_build.py")
engine_build = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("engine_build", engine_build)
_spec.loader.exec_module(engine_build)

GCC12 = "gcc (Debian 12.2.0-14+deb12u1) 12.2.0\nCopyright (C) 2022 Free Software Foundation, Inc."
GCC13 = "gcc (Ubuntu 13.2.0-23ubuntu4) 13.2.0\n"
SAPPHIRE_RAPIDS = ("flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma bmi2 avx2 avx512f avx512dq avx512cd "
                   "avx512bw avx512vl avx512vbmi avx512_vnni avx512_bf16 avx_vnni amx_bf16 amx_tile amx_int8\n")
ZEN3 = "flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma bmi2 avx2\n"
OLD_SANDY = "flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx\n"
PI5 = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"
PI4 = "Features\t: fp asimd evtstrm crc32 cpuid\n"


def _plan(cpuinfo: str, compiler: str = GCC12, machine: str = "x86_64", **env: str):
    return engine_build.make_plan(cpuinfo=cpuinfo, compiler=compiler, machine=machine, env={"GPU": "cpu", **env})


def _on(plan) -> set[str]:
    return {a[2:].split("=")[0] for a in plan.cmake_args if a.endswith("=ON")}


def test_never_native():
    for info in (SAPPHIRE_RAPIDS, ZEN3, OLD_SANDY):
        assert "-DGGML_NATIVE=OFF" in _plan(info).cmake_args


def test_amx_left_out_with_gcc12_and_said_so():
    plan = _plan(SAPPHIRE_RAPIDS, GCC12)
    assert not {"GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"} & _on(plan)
    assert {"GGML_AVX512", "GGML_AVX512_VNNI", "GGML_AVX512_BF16", "GGML_AVX2", "GGML_FMA"} <= _on(plan)
    assert "AMX_INT8" in plan.expect_off
    assert any("AMX left out" in note for note in plan.notes)


def test_amx_kept_with_gcc13():
    plan = _plan(SAPPHIRE_RAPIDS, GCC13)
    assert {"GGML_AMX_TILE", "GGML_AMX_INT8"} <= _on(plan)
    assert "AMX_INT8" in plan.expect_on


def test_cpu_without_avx512_gets_no_avx512():
    plan = _plan(ZEN3)
    assert "GGML_AVX2" in _on(plan)
    assert not any(opt.startswith("GGML_AVX512") for opt in _on(plan))
    old = _plan(OLD_SANDY)
    assert "GGML_AVX" in _on(old) and "GGML_AVX2" not in _on(old) and "GGML_FMA" not in _on(old)


def test_arm64_march_for_the_pi():
    assert "-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16" in _plan(PI5, machine="aarch64").cmake_args
    assert "-DGGML_CPU_ARM_ARCH=armv8-a" in _plan(PI4, machine="aarch64").cmake_args


def test_gpu_choice():
    assert "-DGGML_CUDA=ON" in _plan(ZEN3, GPU="cuda").cmake_args
    assert "-DGGML_VULKAN=ON" in _plan(ZEN3, GPU="vulkan").cmake_args
    assert not any("CUDA" in a for a in _plan(ZEN3, GPU="cpu").cmake_args)
    with pytest.raises(SystemExit, match="not a choice"):
        _plan(ZEN3, GPU="tpu")


def test_each_flag_set_has_its_own_wheel_folder():
    """pip caches by version only; our folder key changes with every flag, compiler and GPU choice."""
    keys = {_plan(SAPPHIRE_RAPIDS, GCC12).key, _plan(SAPPHIRE_RAPIDS, GCC13).key, _plan(ZEN3).key,
            _plan(ZEN3, GPU="cuda").key, _plan(ZEN3, STORYTELLER_CMAKE_ARGS="-DGGML_LTO=ON").key}
    assert len(keys) == 5
    assert _plan(ZEN3).key == _plan(ZEN3).key


def test_progress_from_a_recorded_pip_log():
    """pip -v indents ninja's [N/M] lines: the filter must still turn them into percentages."""
    log = (ROOT / "tests" / "fixtures" / "pip-v-llama-build.log").read_text().splitlines()
    assert any(re.match(r"^\s+\[\d+/\d+\]", line) for line in log)
    assert not any(re.match(r"^\[\d+/\d+\]", line) for line in log)  # what the old awk filter expected
    lines = list(engine_build.progress(log))
    values = [int(re.search(r"(\d+)%", line).group(1)) for line in lines]
    assert len(values) > 50
    assert values == sorted(values) and values[-1] == 100
    assert all(line.startswith("    compiling llama.cpp: ") for line in lines)


def test_installed_build_is_what_the_setup_promised():
    """llama.cpp's own system info against the plan the set-up recorded for this machine."""
    from storyteller.engines import native

    manifest = native.build_manifest()
    assert manifest is not None, f"no {native.BUILD_MANIFEST} in {sys.prefix}: install with scripts/setup.sh"
    check = native.check_build(manifest)
    assert check.ok, check.describe()
    assert "-DGGML_NATIVE=OFF" in manifest["cmake_args"]
    reported = native.reported_features(check.info)
    flags = native.cpu_flags()
    by_name = {name: needed for needed, _opt, name in engine_build.X86_FEATURES + engine_build.AMX_FEATURES if name}
    for name, on in reported.items():
        if on and name in by_name and flags:
            assert all(f in flags for f in by_name[name]), f"the build uses {name}, which this CPU lacks"
    gcc = engine_build.gcc_major(manifest["compiler"])
    if gcc is not None and gcc < engine_build.AMX_MIN_GCC:
        assert not reported.get("AMX_INT8"), "AMX kernels built with GCC < 13 crash"


def test_build_check_catches_a_foreign_build():
    from storyteller.engines import native

    manifest = {"expect_on": ["AVX2", "AVX512"], "expect_off": ["AMX_INT8"], "machine": "x86_64", "gpu": "cpu"}
    bad = native.check_build(manifest, "CPU : AVX = 1 | AVX2 = 1 | AMX_INT8 = 1 | OPENMP = 1 |")
    assert not bad.ok and bad.missing == ["AVX512"] and bad.unexpected == ["AMX_INT8"]
    assert "make run" in bad.describe()
    good = native.check_build(manifest, "CPU : AVX2 = 1 | AVX512 = 1 | OPENMP = 1 |")
    assert good.ok
