"""Will a model fit? This machine's memory and GPU memory, and what a GGUF needs to run.

The estimate is the model file (llama.cpp maps it whole) plus the f16 KV cache at the context
size storyteller would use for it, plus a tenth for compute buffers. It is a guide for picking a
model from a list, not a promise: llama.cpp's own buffers vary by architecture and batch size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from storyteller.models import GGUFInfo

__all__ = ["GPUMemory", "SystemMemory", "estimate_bytes", "fits", "gpu_memory", "system_memory"]


@dataclass(frozen=True, slots=True)
class SystemMemory:
    """RAM in bytes: all of it, and what is free for a new program now."""

    total: int
    available: int


@dataclass(frozen=True, slots=True)
class GPUMemory:
    """One GPU's memory in bytes."""

    name: str
    total: int
    free: int


def system_memory() -> SystemMemory | None:
    """This machine's RAM, or ``None`` where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh if line.strip()}
        total = fields["MemTotal"]
        return SystemMemory(total, fields.get("MemAvailable", fields.get("MemFree", total)))
    except (OSError, KeyError, ValueError, IndexError):
        pass
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import ctypes

        class _Status(ctypes.Structure):
            _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                        ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                        ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                        ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                        ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

        status = _Status()
        status.dwLength = ctypes.sizeof(_Status)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return SystemMemory(status.ullTotalPhys, status.ullAvailPhys)
        return None
    try:  # macOS and other Unixes: the total only
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return SystemMemory(total, total)


def gpu_memory(timeout: float = 5.0) -> list[GPUMemory]:
    """NVIDIA GPUs as ``nvidia-smi`` reports them; empty when there is none (or no driver)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else []


def parse_nvidia_smi(text: str) -> list[GPUMemory]:
    """Rows of ``name, total MiB, free MiB``; lines that do not parse are left out."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) == 3:
            try:
                gpus.append(GPUMemory(parts[0], int(float(parts[1]) * 2**20), int(float(parts[2]) * 2**20)))
            except ValueError:
                continue
    return gpus


def _int(meta: dict[str, object], key: str) -> int | None:
    value = meta.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def context_for(info: GGUFInfo, n_ctx: int | None, max_ctx: int) -> int:
    """The context size the embedded engine would open ``info`` with (see ``LlamaCppBackend.load``)."""
    return n_ctx or min(info.context_length or 4096, max_ctx)


def estimate_bytes(info: GGUFInfo, n_ctx: int) -> int:
    """Bytes to run ``info`` with an f16 KV cache of ``n_ctx`` tokens (file + KV cache + 10 %)."""
    meta, arch = info.metadata, info.architecture
    layers = info.block_count or 0
    embed = _int(meta, f"{arch}.embedding_length") or 0
    heads = _int(meta, f"{arch}.attention.head_count") or 0
    kv_heads = _int(meta, f"{arch}.attention.head_count_kv") or heads
    key_len = _int(meta, f"{arch}.attention.key_length") or (embed // heads if heads else 0)
    value_len = _int(meta, f"{arch}.attention.value_length") or key_len
    kv = layers * n_ctx * kv_heads * (key_len + value_len) * 2
    return int((info.file_size + kv) * 1.1)


def fits(need: int, total: int, free: int) -> str:
    """``yes`` (fits in what is free), ``tight`` (only in the total) or ``no``."""
    if need <= free:
        return "yes"
    return "tight" if need <= total else "no"
