"""How many layers to offload: ``n_gpu_layers = "auto"``.

All layers when the build can offload and the model plus its KV cache fit in free GPU memory,
fewer when not, 0 on a CPU build. Free memory is read from ``nvidia-smi`` for CUDA; where it
cannot be read (Metal's unified memory, Vulkan) every layer is offloaded, as llama.cpp does
with ``-ngl 99``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from storyteller.models import GGUFInfo

__all__ = ["GpuChoice", "choose_layers", "free_gpu_memory", "kv_cache_bytes"]

RESERVE = 512 * 1024 * 1024
"""Kept free for llama.cpp's compute buffers and the driver."""


@dataclass(frozen=True, slots=True)
class GpuChoice:
    layers: int
    reason: str


def free_gpu_memory(backend: str) -> int | None:
    """Free bytes on the first GPU, or None when unknown."""
    if backend != "CUDA":
        return None
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        return int(out.stdout.split()[0]) * 1024 * 1024
    except (IndexError, ValueError):
        return None


def kv_cache_bytes(info: GGUFInfo, n_ctx: int, bytes_per_value: float = 2.0) -> int:
    """f16 K and V for every layer, from the GGUF's own dimensions (a rough upper bound if unknown)."""
    arch = info.architecture
    meta = info.metadata
    layers = info.block_count or 0
    embd = meta.get(f"{arch}.embedding_length")
    heads = meta.get(f"{arch}.attention.head_count")
    heads_kv = meta.get(f"{arch}.attention.head_count_kv", heads)
    if not (isinstance(embd, int) and isinstance(heads, int) and heads and isinstance(heads_kv, int)):
        return int(info.file_size * 0.25)
    per_token = 2 * layers * embd * heads_kv // heads
    return int(per_token * n_ctx * bytes_per_value)


def choose_layers(setting: int | str, *, can_offload: bool, layers_total: int, model_bytes: int,
                  kv_bytes: int, free_bytes: int | None) -> GpuChoice:
    """The layers to offload for ``setting`` (-1 all, N, or "auto")."""
    if not can_offload:
        return GpuChoice(0, "CPU build")
    if setting != "auto":
        n = int(setting)
        if n == 0:
            return GpuChoice(0, "n_gpu_layers = 0")
        return GpuChoice(layers_total if n < 0 else min(n, layers_total), "as set")
    if free_bytes is None:
        return GpuChoice(layers_total, "auto: all layers (free GPU memory unknown)")
    need = model_bytes + kv_bytes + RESERVE
    if need <= free_bytes:
        return GpuChoice(layers_total, f"auto: all layers fit ({need / 2**30:.1f} of {free_bytes / 2**30:.1f} GiB free)")
    per_layer = (model_bytes + kv_bytes) / max(layers_total, 1)
    fit = int(max(0, free_bytes - RESERVE) // per_layer) if per_layer else 0
    fit = max(0, min(fit, layers_total - 1))
    return GpuChoice(fit, f"auto: {fit} of {layers_total} layers fit in {free_bytes / 2**30:.1f} GiB free")
