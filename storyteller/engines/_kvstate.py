"""llama.cpp's KV cache on disk: saved with a story, loaded when the story reopens.

Only the KV cache and its tokens are written (``llama_state_save_file``), not the logits that
``Llama.save_state()`` would pickle too: 18 MB instead of 119 MB for 801 tokens of SmolLM2. A
``.json`` sidecar carries a fingerprint of the model file and the context settings; a state whose
fingerprint does not match is never loaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from storyteller.errors import EngineError
from storyteller.fileio import atomic_write, fsync_dir

__all__ = ["fingerprint", "load_kv_state", "save_kv_state"]


def fingerprint(model_path: Path, settings: tuple[Any, ...]) -> str:
    """Identify a model file (by its size, head and tail) together with the given settings."""
    import llama_cpp

    digest = hashlib.sha256()
    size = model_path.stat().st_size
    with model_path.open("rb") as fh:  # head and tail: cheap, and changes with any re-quantisation
        digest.update(fh.read(1 << 20))
        fh.seek(max(0, size - (1 << 20)))
        digest.update(fh.read(1 << 20))
    digest.update(repr((size, *settings, llama_cpp.__version__)).encode())
    return digest.hexdigest()[:32]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_kv_state(llm: Any, path: Path, print_: str) -> int:
    """Write ``llm``'s KV cache to ``path``; returns its size. The caller holds the model lock.

    The state file is written beside its final name and renamed into place; the sidecar goes
    last, so a crash leaves either no valid state or a whole one.
    """
    import llama_cpp

    from storyteller.engines import _llama_private as private

    n = llm.n_tokens
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tokens = (llama_cpp.llama_token * max(n, 1))(*llm.input_ids[:n])
    if not llama_cpp.llama_state_save_file(private.ctx(llm), str(tmp).encode(), tokens, n):
        tmp.unlink(missing_ok=True)
        raise EngineError(f"could not save the model state to {path}; check free disk space.")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    _sidecar(path).unlink(missing_ok=True)  # the state is invalid while it is being replaced
    os.replace(tmp, path)
    fsync_dir(path.parent)
    atomic_write(_sidecar(path), json.dumps({"fingerprint": print_, "tokens": n}).encode())
    return path.stat().st_size


def load_kv_state(llm: Any, path: Path, print_: str) -> bool:
    """Load a state saved by :func:`save_kv_state` into ``llm``; False when it does not fit.

    The caller holds the model lock. On a failed load the cache is emptied.
    """
    import llama_cpp

    from storyteller.engines import _llama_private as private

    try:
        meta = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("fingerprint") != print_ or not path.is_file():
        return False
    capacity = llm.n_ctx()
    buf = (llama_cpp.llama_token * capacity)()
    count = ctypes.c_size_t(0)
    if not llama_cpp.llama_state_load_file(private.ctx(llm), str(path).encode(), buf, capacity, ctypes.byref(count)):
        private.clear_cache(llm)
        return False
    n = count.value
    llm.input_ids[:n] = buf[:n]
    llm.n_tokens = n
    private.mark_logits_stale(llm)  # the saved file has no live logits
    return True
