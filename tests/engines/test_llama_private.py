"""The fence around llama-cpp-python's private internals: one test per private attribute used.

When an upgrade of llama-cpp-python renames or reshapes one of them, the matching test here fails
with its name, instead of a generation failing somewhere deep in the engine.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from storyteller.engines import _llama_private as private  # noqa: E402
from storyteller.errors import ModelLoadError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def llm(smollm2_path):
    """A small Llama of our own (the shared engine's state is left alone)."""
    model = llama_cpp.Llama(model_path=str(smollm2_path), n_ctx=256, n_threads=2, verbose=False)
    yield model
    model.close()


def test_the_list_of_private_attributes_is_what_the_tests_cover() -> None:
    assert set(private.PRIVATE_ATTRIBUTES) == {
        "Llama._ctx.ctx", "Llama._model.vocab", "Llama._model.token_get_text", "Llama._model.add_bos_token",
        "Llama._batch.batch", "Llama._requires_eval", "_internals.LlamaContext",
    }


def test_version_is_checked_at_import(monkeypatch) -> None:
    assert llama_cpp.__version__ == private.TESTED_VERSION  # the import itself passed the check
    with pytest.raises(ModelLoadError, match=r"llama-cpp-python 0\.4\.0 is installed.*0\.3\.36.*ANY_VERSION"):
        private.check_version("0.4.0")
    monkeypatch.setenv(private.ANY_VERSION_ENV, "1")
    private.check_version("0.4.0")  # the override lets a newer build through


def test_nothing_outside_the_fence_touches_llama_internals() -> None:
    private_use = re.compile(r"\bllm\._|\._llm\._|_internals\b|_requires_eval\b")
    offenders = []
    for path in (ROOT / "storyteller").rglob("*.py"):
        if path.name == "_llama_private.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if private_use.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_ctx_is_the_raw_context(llm) -> None:  # Llama._ctx.ctx
    ctx = private.ctx(llm)
    assert ctx and llama_cpp.llama_n_ctx(ctx) == llm.n_ctx() == 256
    assert private.memory(llm) is not None


def test_vocab_is_the_raw_vocabulary(llm) -> None:  # Llama._model.vocab
    vocab = private.vocab(llm)
    assert llama_cpp.llama_vocab_n_tokens(vocab) == llm.n_vocab()
    assert llama_cpp.llama_vocab_is_eog(vocab, llm.token_eos())


def test_token_text_reads_the_vocabulary(llm) -> None:  # Llama._model.token_get_text
    assert private.token_text(llm, llm.token_eos()) == "<|im_end|>"
    assert private.token_text(llm, llm.tokenize(b"hello", add_bos=False)[0]) == "hello"


def test_add_bos_matches_the_vocabulary(llm) -> None:  # Llama._model.add_bos_token
    assert private.add_bos(llm) == bool(llama_cpp.llama_vocab_get_add_bos(private.vocab(llm)))


def test_batch_is_a_llama_batch(llm) -> None:  # Llama._batch.batch
    batch = private.batch(llm)
    assert isinstance(batch, llama_cpp.llama_batch)
    batch.token[0]  # room for tokens: reading the first slot must not fail


def test_logits_stale_follows_evaluation(llm) -> None:  # Llama._requires_eval
    llm.n_tokens = 0
    llm.eval(llm.tokenize(b"Once upon a time", add_bos=False))
    assert not private.logits_stale(llm)
    private.mark_logits_stale(llm)
    assert private.logits_stale(llm)
    private.clear_cache(llm)
    assert llm.n_tokens == 0 and private.logits_stale(llm)


def test_rebuild_context_gives_two_sequences(llm) -> None:  # _internals.LlamaContext
    def address(pointer) -> int:
        return ctypes.cast(pointer, ctypes.c_void_p).value

    before = address(private.ctx(llm))
    assert private.rebuild_context(llm, n_seq_max=2, kv_unified=True)
    assert address(private.ctx(llm)) not in (None, before)
    assert llm.context_params.n_seq_max == 2 and llm.context_params.kv_unified
    llm.n_tokens = 0
    llm.eval(llm.tokenize(b"The sea was calm", add_bos=False))  # the new context decodes
    assert llm.n_tokens > 0
