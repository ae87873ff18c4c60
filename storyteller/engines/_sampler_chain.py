"""The embedded engine's sampler chain, built from :class:`~storyteller.engines.base.Sampling`.

llama-cpp-python's ``Llama`` builds its own chain and has no DRY, XTC or top-n-sigma, so the
engine builds one itself from llama.cpp's samplers (``llama_cpp.llama_cpp``). The order is
llama.cpp's server's default (``common/common.h``: penalties, DRY, top-n-sigma, top-k, typical,
top-p, min-p, XTC, temperature), which is also koboldcpp's shape: repetition penalties and DRY
see the raw logits, truncation follows, XTC and temperature come last, then one draw:

=====  ==============  ====================================================================
step   sampler         what it does
=====  ==============  ====================================================================
1      logit bias      adds each ``logit_bias`` value to its token's logit (-100 bans it)
2      grammar         removes tokens the GBNF grammar does not allow next
3      penalties       repeat / frequency / presence penalty over the last ``repeat_last_n``
4      DRY             penalises tokens that would extend a repeat of earlier text
5      top-n-sigma     keeps tokens within n standard deviations of the top logit
6      top-k           keeps the k most likely tokens
7      typical         locally typical sampling
8      top-p           keeps the smallest set whose probability reaches p
9      min-p           drops tokens less likely than min-p times the top token
10     XTC             with some probability, removes the top choices above a threshold
11     temperature     scales the logits (0: the most likely token)
12     draw            picks one token with the request's seed
=====  ==============  ====================================================================

With mirostat on, steps 5-10 are left out and the chain ends with temperature and mirostat
(llama.cpp's server then also drops the penalties; koboldcpp keeps them, and so do we).
Samplers whose values turn them off (top-k 0, top-p 1, DRY multiplier 0, ...) are not added.

The grammar sits near the front rather than being checked after the draw as llama.cpp's
``common_sampler`` does: slower per token, but it can never run out of allowed candidates.
Repetition penalties and DRY are fed the prompt's last tokens before the first draw (as
llama.cpp's server does), so a reply is penalised for repeating the story, not only itself.
"""

from __future__ import annotations

import ctypes
import random
from typing import Any

import llama_cpp

from storyteller.engines.base import Sampling
from storyteller.errors import EngineError

__all__ = ["DEFAULT_BREAKERS", "ORDER", "SamplerChain"]

ORDER: tuple[str, ...] = ("logit_bias", "grammar", "penalties", "dry", "top_n_sigma", "top_k", "typical",
                          "top_p", "min_p", "xtc", "temperature", "dist")
"""The chain's order without mirostat (with it: logit_bias, grammar, penalties, dry, temperature, mirostat)."""

DEFAULT_BREAKERS: tuple[str, ...] = ("\n", ":", '"', "*")
"""DRY's sequence breakers when a request names none (llama.cpp's, koboldcpp's and SillyTavern's default)."""

# Values used when a Sampling field is None ("the engine's default"): llama-cpp-python's own.
_DEFAULTS: dict[str, Any] = {
    "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "typical_p": 1.0, "repeat_penalty": 1.0,
    "repeat_last_n": 64, "presence_penalty": 0.0, "frequency_penalty": 0.0, "mirostat_mode": 0,
    "mirostat_tau": 5.0, "mirostat_eta": 0.1, "dry_multiplier": 0.0, "dry_base": 1.75, "dry_allowed_length": 2,
    "dry_penalty_last_n": -1, "xtc_probability": 0.0, "xtc_threshold": 0.1, "top_n_sigma": -1.0,
}
_MIN_KEEP = 1


def _value(sampling: Sampling, name: str) -> Any:
    value = getattr(sampling, name, None)
    return _DEFAULTS[name] if value is None else value


def _window(n: int, n_ctx: int) -> int:
    """A penalty window in tokens: -1 is the whole context."""
    return n_ctx if n < 0 else min(n, n_ctx)


class SamplerChain:
    """A llama.cpp sampler chain for one request; use it as a context manager (it owns C memory).

    Args:
        vocab: The model's ``llama_vocab *``.
        sampling: The request's sampler settings.
        n_ctx: The context size (windows of -1 mean all of it).
        seed: The seed for the draw, XTC and mirostat; ``None`` draws a random one.
        history: The tokens before the first draw (the prompt); the last ones feed the
            repetition penalties and DRY.

    Raises:
        EngineError: The grammar does not parse.
    """

    def __init__(self, vocab: Any, sampling: Sampling, *, n_ctx: int, seed: int | None,
                 history: list[int] | None = None) -> None:
        self.names: list[str] = []
        """The samplers in the chain, in order (``ORDER``'s names; ``mirostat`` / ``mirostat_v2``)."""
        self.seed = seed if seed is not None else random.randrange(2**31)
        self._vocab = vocab
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        self._chain = llama_cpp.llama_sampler_chain_init(params)
        try:
            self._build(sampling, n_ctx, history or [])
        except BaseException:
            self.close()
            raise

    # -- building ------------------------------------------------------------------------------

    def _add(self, name: str, sampler: Any) -> Any:
        if not sampler:
            raise EngineError(f"llama.cpp could not create its {name} sampler")
        llama_cpp.llama_sampler_chain_add(self._chain, sampler)  # the chain owns it from here
        self.names.append(name)
        return sampler

    def _build(self, s: Sampling, n_ctx: int, history: list[int]) -> None:
        self._logit_bias(s.logit_bias)
        if s.grammar:
            grammar = llama_cpp.llama_sampler_init_grammar(self._vocab, s.grammar.encode("utf-8"), b"root")
            if not grammar:
                raise EngineError("the GBNF grammar is invalid (llama.cpp could not parse it; it needs a "
                                  "`root ::= ...` rule); check its syntax.")
            self._add("grammar", grammar)
        feed: list[tuple[Any, int]] = []  # (sampler, window): fed the end of the history
        repeat, freq, present = (float(_value(s, k)) for k in ("repeat_penalty", "frequency_penalty", "presence_penalty"))
        last_n = _window(int(_value(s, "repeat_last_n")), n_ctx)
        if last_n > 0 and (repeat != 1.0 or freq != 0.0 or present != 0.0):
            penalties = llama_cpp.llama_sampler_init_penalties(self._n_vocab, last_n, repeat, freq, present)
            feed.append((self._add("penalties", penalties), last_n))
        multiplier, base = float(_value(s, "dry_multiplier")), float(_value(s, "dry_base"))
        dry_n = _window(int(_value(s, "dry_penalty_last_n")), n_ctx)
        if multiplier > 0 and base >= 1.0 and dry_n > 0:
            feed.append((self._dry(s, multiplier, base, dry_n), dry_n))
        for sampler, window in feed:
            for token in history[-window:]:
                llama_cpp.llama_sampler_accept(sampler, token)
        temp = float(_value(s, "temperature"))
        mirostat = int(_value(s, "mirostat_mode"))
        if mirostat:
            tau, eta = float(_value(s, "mirostat_tau")), float(_value(s, "mirostat_eta"))
            self._add("temperature", llama_cpp.llama_sampler_init_temp(temp))
            if mirostat == 1:
                self._add("mirostat", llama_cpp.llama_sampler_init_mirostat(self._n_vocab, self.seed, tau, eta, 100))
            else:
                self._add("mirostat_v2", llama_cpp.llama_sampler_init_mirostat_v2(self.seed, tau, eta))
            return
        sigma = float(_value(s, "top_n_sigma"))
        if sigma > 0:
            self._add("top_n_sigma", llama_cpp.llama_sampler_init_top_n_sigma(sigma))
        top_k = int(_value(s, "top_k"))
        if top_k > 0:
            self._add("top_k", llama_cpp.llama_sampler_init_top_k(top_k))
        typical = float(_value(s, "typical_p"))
        if typical < 1.0:
            self._add("typical", llama_cpp.llama_sampler_init_typical(typical, _MIN_KEEP))
        top_p = float(_value(s, "top_p"))
        if top_p < 1.0:
            self._add("top_p", llama_cpp.llama_sampler_init_top_p(top_p, _MIN_KEEP))
        min_p = float(_value(s, "min_p"))
        if min_p > 0.0:
            self._add("min_p", llama_cpp.llama_sampler_init_min_p(min_p, _MIN_KEEP))
        chance, threshold = float(_value(s, "xtc_probability")), float(_value(s, "xtc_threshold"))
        if chance > 0 and threshold <= 0.5:
            self._add("xtc", llama_cpp.llama_sampler_init_xtc(chance, threshold, _MIN_KEEP, self.seed))
        self._add("temperature", llama_cpp.llama_sampler_init_temp(temp))
        self._add("dist", llama_cpp.llama_sampler_init_dist(self.seed))

    def _logit_bias(self, biases: dict[int, float]) -> None:
        # Ids outside the vocabulary can never be drawn; llama.cpp would read past its array.
        usable = [(int(t), float(b)) for t, b in biases.items() if 0 <= int(t) < self._n_vocab]
        if not usable:
            return
        array = (llama_cpp.llama_logit_bias * len(usable))(*(llama_cpp.llama_logit_bias(t, b) for t, b in usable))
        self._add("logit_bias", llama_cpp.llama_sampler_init_logit_bias(self._n_vocab, len(usable), array))

    def _dry(self, s: Sampling, multiplier: float, base: float, window: int) -> Any:
        chosen = getattr(s, "dry_sequence_breakers", None)
        breakers = DEFAULT_BREAKERS if chosen is None else tuple(chosen)
        encoded = [b.encode("utf-8") for b in breakers if b]
        array = (ctypes.c_char_p * max(len(encoded), 1))(*encoded)
        allowed = int(_value(s, "dry_allowed_length"))
        sampler = llama_cpp.llama_sampler_init_dry(self._vocab, multiplier, base, allowed, window, array, len(encoded))
        return self._add("dry", sampler)

    # -- use -----------------------------------------------------------------------------------

    def sample(self, ctx: Any) -> int:
        """Draw the next token from the context's last logits, and let every sampler see it."""
        return llama_cpp.llama_sampler_sample(self._chain, ctx, -1)

    def close(self) -> None:
        """Free the chain and its samplers."""
        if self._chain:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None

    def __enter__(self) -> SamplerChain:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
