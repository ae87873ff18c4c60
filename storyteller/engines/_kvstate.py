"""llama.cpp's KV cache on disk: saved with a story, loaded when the story reopens.

Only the KV cache and its tokens are written (``llama_state_save_file``), not the logits that
``Llama.save_state()`` would pickle too: 18 MB instead of 119 MB for 801 tokens of SmolLM2. A
``.json`` sidecar carries a fingerprint of the model file and the context settings; a state whose
fingerprint does not match is never loaded.

A side-road generation (a recap, a scene summary) must leave the story's cache as it found it:
:func:`snapshot_kv` copies the main sequence's KV cache and its tokens into memory before it
(``llama_state_seq_get_data``: about 23 kB a token for SmolLM2-135M, no logits) and
:func:`restore_kv` puts them back after it, however it ended.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyteller.errors import EngineError
from storyteller.fileio import atomic_write, fsync_dir

__all__ = ["KVSnapshot", "fingerprint", "load_kv_state", "restore_kv", "save_kv_state", "snapshot_kv"]

SNAPSHOT_LIMIT = 4 << 30
"""The largest KV cache copied into memory for a side road (bytes); above it the side road
runs on the cache itself, as if no snapshot had been asked for."""


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


@dataclass(frozen=True, slots=True)
class KVSnapshot:
    """Sequence 0's KV cache (``data``, ``size`` bytes) and the tokens it holds."""

    data: Any
    size: int
    tokens: tuple[int, ...]


def snapshot_kv(llm: Any, limit: int = SNAPSHOT_LIMIT) -> KVSnapshot | None:
    """Copy ``llm``'s main sequence (its KV cache and tokens) into memory; the caller holds the lock.

    Returns ``None`` when llama.cpp cannot write the state or it is larger than ``limit`` bytes.
    """
    import llama_cpp

    from storyteller.engines import _llama_private as private

    n = llm.n_tokens
    tokens = tuple(int(t) for t in llm.input_ids[:n])
    if n == 0:
        return KVSnapshot(None, 0, ())
    ctx = private.ctx(llm)
    size = llama_cpp.llama_state_seq_get_size(ctx, 0)
    if not size or size > limit:
        return None
    data = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, data, size, 0)
    return KVSnapshot(data, written, tokens) if written else None


def restore_kv(llm: Any, snapshot: KVSnapshot) -> bool:
    """Put a :func:`snapshot_kv` copy back in place of whatever the cache holds; the caller holds
    the lock. False (and an empty cache) when llama.cpp refuses it."""
    import llama_cpp

    from storyteller.engines import _llama_private as private

    private.clear_cache(llm)  # every sequence: what the side road left goes
    if snapshot.size:
        read = llama_cpp.llama_state_seq_set_data(private.ctx(llm), snapshot.data, snapshot.size, 0)
        if read != snapshot.size:
            private.clear_cache(llm)
            return False
    n = len(snapshot.tokens)
    llm.input_ids[:n] = snapshot.tokens
    llm.n_tokens = n
    private.mark_logits_stale(llm)  # the logits are the side road's
    return True
