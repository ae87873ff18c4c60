"""Every use of llama-cpp-python's private internals, fenced in one place.

The embedded engine needs a few things ``Llama`` does not expose publicly: the raw
``llama_context`` pointer (for KV-cache surgery, state files and sampling), the model's vocabulary
pointer (for the sampler chain and grammars), the model wrapper's token texts, the batch it
decodes with, the flag that says whether its logits are live, and its ``LlamaContext`` class (to
rebuild the context with two sequences). They are private, so any release may rename them.

This module is the only place storyteller touches them. It checks the installed version at
import: storyteller was written and tested against :data:`TESTED_VERSION`; another version
raises :class:`~storyteller.errors.ModelLoadError` here, naming what to install, instead of
failing somewhere deep inside a generation. ``tests/engines/test_llama_private.py`` holds one
test per private attribute listed in :data:`PRIVATE_ATTRIBUTES`, so an upgrade that moves one
fails loudly there. ``STORYTELLER_LLAMA_CPP_ANY_VERSION=1`` skips the version check, for
someone trying a newer build on purpose.

Public attributes of ``Llama`` that are undocumented but plain (``input_ids``, ``n_tokens``,
``context_params``, ``eval``, ``n_batch``) are used directly elsewhere; the tests here cover the
ones that go stale together with the private ones (``input_ids``, ``n_tokens``).
"""

from __future__ import annotations

import os
from typing import Any

import llama_cpp  # before anything that may pull in numpy (see storyteller.engines.native)

from storyteller.errors import ModelLoadError

__all__ = [
    "PRIVATE_ATTRIBUTES", "TESTED_VERSION", "add_bos", "batch", "check_version", "clear_cache", "ctx",
    "logits_stale", "mark_logits_stale", "memory", "rebuild_context", "token_text", "vocab",
]

TESTED_VERSION = "0.3.36"
"""The llama-cpp-python release whose internals this module was written against."""
ANY_VERSION_ENV = "STORYTELLER_LLAMA_CPP_ANY_VERSION"

PRIVATE_ATTRIBUTES: tuple[str, ...] = (
    "Llama._ctx.ctx", "Llama._model.vocab", "Llama._model.token_get_text",
    "Llama._model.add_bos_token", "Llama._batch.batch", "Llama._requires_eval", "_internals.LlamaContext",
)
"""What storyteller reads or writes that llama-cpp-python keeps private (one test each)."""


def check_version(version: str | None = None) -> None:
    """Refuse a llama-cpp-python whose internals were not checked.

    Raises:
        ModelLoadError: The installed version is not :data:`TESTED_VERSION` (and the override
            variable is not set).
    """
    found = version if version is not None else getattr(llama_cpp, "__version__", "unknown")
    if found == TESTED_VERSION or os.environ.get(ANY_VERSION_ENV) == "1":
        return
    raise ModelLoadError(
        f"llama-cpp-python {found} is installed, but storyteller's embedded engine was built against "
        f"{TESTED_VERSION} and uses some of its internals; reinstall with the README's set-up command "
        f"(llama-cpp-python=={TESTED_VERSION}), or set {ANY_VERSION_ENV}=1 to try this version anyway."
    )


check_version()


def ctx(llm: Any) -> Any:
    """The raw ``llama_context *`` of a ``Llama``."""
    return llm._ctx.ctx


def memory(llm: Any) -> Any:
    """The context's KV memory handle (``llama_memory_t``)."""
    return llama_cpp.llama_get_memory(llm._ctx.ctx)


def vocab(llm: Any) -> Any:
    """The raw ``llama_vocab *`` of a ``Llama``'s model."""
    return llm._model.vocab


def token_text(llm: Any, token: int) -> str:
    """The vocabulary text of ``token`` (special tokens as written, e.g. ``<|im_end|>``)."""
    return llm._model.token_get_text(token)


def add_bos(llm: Any) -> bool:
    """Whether the model wants a BOS token at the start of a prompt."""
    return bool(llm._model.add_bos_token())


def batch(llm: Any) -> Any:
    """The ``llama_batch`` the ``Llama`` decodes with (room for ``n_batch`` tokens)."""
    return llm._batch.batch


def logits_stale(llm: Any) -> bool:
    """True when the context's last logits do not belong to ``input_ids[n_tokens - 1]``."""
    return bool(getattr(llm, "_requires_eval", True))


def mark_logits_stale(llm: Any) -> None:
    """Say that the logits no longer match the cache (after loading a state or editing the cache)."""
    llm._requires_eval = True


def clear_cache(llm: Any) -> None:
    """Empty the KV cache of every sequence and forget the cached tokens."""
    llama_cpp.llama_memory_seq_rm(memory(llm), -1, 0, -1)
    llm.n_tokens = 0
    llm._requires_eval = True


def rebuild_context(llm: Any, *, n_seq_max: int, kv_unified: bool) -> bool:
    """Replace ``llm``'s context by one with these sequence settings (same size, same memory).

    ``Llama`` always makes a one-sequence context. On failure the old context stays and the
    parameters are put back; returns whether the new context is in place.
    """
    from llama_cpp import _internals

    params = llm.context_params
    old = llm._ctx
    before = params.n_seq_max, params.kv_unified
    params.n_seq_max, params.kv_unified = n_seq_max, kv_unified
    try:
        llm._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    except (ValueError, RuntimeError):
        params.n_seq_max, params.kv_unified = before
        return False
    old.close()
    return True
