"""The embedded engine's reply loop: draw a token, show its text, evaluate it, repeat.

llama-cpp-python's ``create_completion`` samples with its own chain (no DRY, no XTC), so the
engine runs this loop instead, drawing from a :class:`~storyteller.engines._sampler_chain.SamplerChain`.
The caller holds the model lock and has evaluated the prompt: the context's last logits belong
to the prompt's last token.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any

import llama_cpp

from storyteller.engines import _llama_private as private
from storyteller.engines._sampler_chain import SamplerChain
from storyteller.engines._stops import StopScanner
from storyteller.engines.base import FinishReason, Sampling, TextChunk

__all__ = ["decode_reply"]

_PIECE_BYTES = 64  # a token's text fits in this many bytes, nearly always


def decode_reply(llm: Any, tokens: list[int], sampling: Sampling, *, seed: int | None, cancel: threading.Event,
                 emit: Callable[[object], None]) -> tuple[FinishReason, str | None, float | None, int]:
    """Generate a reply; returns (why it ended, the stop string, when text first came, tokens drawn).

    Each token is drawn from the sampler chain, turned into text through the stop-string scanner,
    then evaluated so the next one can be drawn. The cancel flag is checked before every draw:
    generation stops within one token. The token that ends the reply (end of generation, a stop
    string, the length limit) is not evaluated; the cache then holds exactly the tokens whose
    logits are live.

    Args:
        llm: The ``Llama``, with ``tokens`` evaluated.
        tokens: The prompt; its end feeds the repetition penalties and DRY.
        sampling: The request's sampler settings, ``max_tokens`` and ``stop``.
        seed: The seed for the chain (``None``: a random one).
        cancel: Set from any thread to stop.
        emit: Receives each :class:`TextChunk`.
    """
    ctx, vocab, n_ctx = private.ctx(llm), private.vocab(llm), llm.n_ctx()
    scanner = StopScanner(sampling.stop)
    buf = ctypes.create_string_buffer(_PIECE_BYTES)
    first_at: float | None = None
    finish: FinishReason = "length"
    stop_string: str | None = None
    sampled = 0
    with SamplerChain(vocab, sampling, n_ctx=n_ctx, seed=seed, history=tokens) as chain:
        while sampled < sampling.max_tokens:
            if cancel.is_set():
                finish = "cancelled"
                break
            token = chain.sample(ctx)
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            sampled += 1
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, _PIECE_BYTES, 0, False)
            piece = buf.raw[:n] if n >= 0 else _long_piece(vocab, token, -n)
            text, stop_string = scanner.feed(piece)
            if text:
                if first_at is None:
                    first_at = time.perf_counter()
                emit(TextChunk(text))
            if stop_string is not None:
                finish = "stop"
                break
            if sampled >= sampling.max_tokens or llm.n_tokens + 1 >= n_ctx:
                break  # the length limit: this token is shown but never needs evaluating
            llm.eval([token])
    if stop_string is None and finish != "cancelled":
        rest = scanner.flush()
        if rest:
            first_at = first_at or time.perf_counter()
            emit(TextChunk(rest))
    return finish, stop_string, first_at, sampled


def _long_piece(vocab: Any, token: int, size: int) -> bytes:
    """A token's bytes when they do not fit the usual buffer."""
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, False)
    return buf.raw[:max(n, 0)]
