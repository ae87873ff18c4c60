"""The embedded engine's sampler chain on the real SmolLM2 model and real llama.cpp samplers.

Each sampler is checked against what llama.cpp documents it to do, by drawing the next token many
times (one seed per draw) from one evaluated context and comparing the drawn set with the
model's own probabilities for that context. DRY is checked on the history it is fed (its
sequence breakers included) and end to end through the engine.
"""

from __future__ import annotations

import ctypes
from collections import Counter

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from storyteller.engines import _llama_private as private  # noqa: E402
from storyteller.engines._sampler_chain import ORDER, SamplerChain  # noqa: E402
from storyteller.engines.base import GenerationRequest, Sampling, collect  # noqa: E402

DRAWS = 150
# Every sampler off but the draw: what each test then turns on is all that shapes the result.
NEUTRAL = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0, repeat_penalty=1.0,
               frequency_penalty=0.0, presence_penalty=0.0, mirostat_mode=0, dry_multiplier=0.0)
SHARP = dict(top_k=10, temperature=0.5)  # the likeliest token then comes about half the time
PROMPT = "<|im_start|>user\nName an animal.<|im_end|>\n<|im_start|>assistant\nSure! One animal is the"


class Context:
    """A Llama with ``PROMPT`` evaluated, its next-token probabilities, and a way to draw."""

    def __init__(self, llm) -> None:
        import numpy as np

        self.llm = llm
        self.history = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
        llm.n_tokens = 0
        llm.eval(self.history)
        n_vocab = llm.n_vocab()
        pointer = llama_cpp.llama_get_logits_ith(private.ctx(llm), -1)
        self.logits = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)),
                                            shape=(n_vocab,)).copy()
        exp = np.exp(self.logits - self.logits.max())
        self.probs = exp / exp.sum()
        self.top = int(self.logits.argmax())

    def draw(self, draws: int = DRAWS, history: list[int] | None = None, **sampling) -> Counter[int]:
        """The tokens drawn with seeds 0..draws-1, counted."""
        settings = Sampling(**{**NEUTRAL, **sampling})
        counts: Counter[int] = Counter()
        for seed in range(draws):
            with SamplerChain(private.vocab(self.llm), settings, n_ctx=self.llm.n_ctx(), seed=seed,
                              history=self.history if history is None else history) as chain:
                counts[chain.sample(private.ctx(self.llm))] += 1
        return counts


@pytest.fixture(scope="module")
def context(smollm2_path) -> Context:
    llm = llama_cpp.Llama(model_path=str(smollm2_path), n_ctx=512, n_threads=2, verbose=False)
    yield Context(llm)
    llm.close()


def test_chain_order_is_llama_cpp_servers() -> None:
    # Built without a model: the names only need the vocabulary size, so check ORDER itself.
    assert ORDER == ("logit_bias", "grammar", "penalties", "dry", "top_n_sigma", "top_k", "typical", "top_p",
                     "min_p", "xtc", "temperature", "dist")


def test_every_sampler_is_added_in_order(context) -> None:
    every = Sampling(temperature=0.7, top_k=40, top_p=0.9, min_p=0.05, typical_p=0.9, repeat_penalty=1.1,
                     top_n_sigma=2.0, dry_multiplier=0.8, xtc_probability=0.5, xtc_threshold=0.1,
                     logit_bias={5: -100.0}, grammar='root ::= "a"')
    with SamplerChain(private.vocab(context.llm), every, n_ctx=512, seed=1) as chain:
        assert chain.names == list(ORDER)
    mirostat = Sampling(mirostat_mode=2, dry_multiplier=0.8, top_k=40)
    with SamplerChain(private.vocab(context.llm), mirostat, n_ctx=512, seed=1) as chain:
        assert chain.names == ["penalties", "dry", "temperature", "mirostat_v2"]
    with SamplerChain(private.vocab(context.llm), Sampling(**NEUTRAL), n_ctx=512, seed=1) as chain:
        assert chain.names == ["temperature", "dist"]  # samplers set to "off" are left out


def test_the_context_is_uncertain_enough_to_test_with(context) -> None:
    # Several plausible animals: the draws below have room to differ.
    assert context.probs.max() < 0.6 and (context.probs > 0.02).sum() >= 4
    assert len(context.draw()) >= 5


def test_seeded_draws_repeat(context) -> None:
    assert context.draw(40, xtc_probability=0.5, xtc_threshold=0.05) == \
        context.draw(40, xtc_probability=0.5, xtc_threshold=0.05)


def test_temperature_zero_is_greedy_and_low_temperature_narrows(context) -> None:
    assert set(context.draw(temperature=0.0)) == {context.top}
    assert len(context.draw(temperature=0.3)) < len(context.draw(temperature=1.5))


def test_top_k_keeps_the_k_most_likely(context) -> None:
    top3 = set(context.probs.argsort()[-3:].tolist())
    drawn = context.draw(top_k=3)
    assert set(drawn) <= top3 and len(drawn) >= 2


def test_top_p_keeps_the_smallest_set_reaching_p(context) -> None:
    order = context.probs.argsort()[::-1]
    cumulative = context.probs[order].cumsum()
    nucleus = set(order[: int((cumulative < 0.5).sum()) + 1].tolist())
    assert set(context.draw(top_p=0.5)) <= nucleus


def test_min_p_drops_tokens_below_a_fraction_of_the_top(context) -> None:
    drawn = context.draw(min_p=0.3)
    assert all(context.probs[t] >= 0.3 * context.probs.max() - 1e-6 for t in drawn)
    assert len(drawn) < len(context.draw())


def test_typical_p_narrows(context) -> None:
    assert len(context.draw(typical_p=0.2)) < len(context.draw())


def test_top_n_sigma_keeps_logits_within_n_deviations_of_the_top(context) -> None:
    finite = context.logits
    limit = finite.max() - 1.0 * finite.std()
    drawn = context.draw(top_n_sigma=1.0)
    assert all(context.logits[t] >= limit - 1e-3 for t in drawn)
    assert len(drawn) < len(context.draw())


def test_xtc_removes_the_top_choices_but_the_least_of_them(context) -> None:
    threshold = 0.05
    above = [int(t) for t in context.probs.argsort()[::-1] if context.probs[t] >= threshold]
    assert len(above) >= 2, "the context needs at least two top choices"
    drawn = context.draw(xtc_probability=1.0, xtc_threshold=threshold)
    assert not set(drawn) & set(above[:-1]), "every top choice but the least likely must go"
    assert above[-1] in drawn
    assert context.top in context.draw(xtc_probability=0.0, xtc_threshold=threshold)


def test_logit_bias_bans_and_forces(context) -> None:
    assert context.top not in context.draw(logit_bias={context.top: -100.0})
    rare = int(context.probs.argsort()[len(context.probs) // 2])
    assert set(context.draw(30, logit_bias={rare: 100.0})) == {rare}


def test_repeat_penalty_sees_the_prompt_history(context) -> None:
    history = context.history + [context.top] * 3
    plain = context.draw(history=history, **SHARP)[context.top]
    penalised = context.draw(history=history, repeat_penalty=3.0, repeat_last_n=64, **SHARP)[context.top]
    assert plain > 40 and penalised < plain / 3
    outside = context.draw(history=history + [11] * 8, repeat_penalty=3.0, repeat_last_n=4, **SHARP)[context.top]
    assert outside == plain  # beyond repeat_last_n the token is not penalised
    presence = context.draw(history=history, presence_penalty=5.0, **SHARP)[context.top]
    assert presence < plain / 3


def _repeat_history(context, run: list[int]) -> list[int]:
    """The prompt, then ``run`` followed by the likeliest next token, then ``run`` again."""
    return context.history + run + [context.top] + context.llm.tokenize(b" and then", add_bos=False) + run


def test_dry_penalises_extending_an_earlier_repeat(context) -> None:
    run = context.llm.tokenize(b" forest was quiet and dark that night, the", add_bos=False)
    history = _repeat_history(context, run)
    plain = context.draw(history=history, **SHARP)[context.top]
    dry = context.draw(history=history, dry_multiplier=0.8, dry_base=1.75, dry_allowed_length=2,
                       dry_penalty_last_n=-1, **SHARP)[context.top]
    assert plain > 40 and dry == 0
    # A repeat shorter than the allowed length is not penalised: the draws are the plain ones.
    short = _repeat_history(context, run[-2:])
    assert context.draw(history=short, dry_multiplier=0.8, dry_allowed_length=3) == context.draw(history=short)


def test_dry_sequence_breakers_stop_a_repeat(context) -> None:
    run = context.llm.tokenize(b" forest was quiet and dark that night|", add_bos=False)
    history = _repeat_history(context, run)
    dry = dict(dry_multiplier=0.8, dry_base=1.75, dry_allowed_length=2, dry_penalty_last_n=-1)
    assert context.draw(history=history, dry_sequence_breakers=["\n"], **dry, **SHARP)[context.top] == 0
    # With "|" a breaker, the repeat ends at it: nothing before it counts, so no penalty.
    assert context.draw(history=history, dry_sequence_breakers=["|"], **dry, **SHARP)[context.top] > 40


def test_mirostat_narrows_with_a_low_target(context) -> None:
    low = context.draw(mirostat_mode=2, mirostat_tau=0.5, mirostat_eta=0.1)
    high = context.draw(mirostat_mode=2, mirostat_tau=8.0, mirostat_eta=0.1)
    assert len(low) < len(high)
    assert context.draw(mirostat_mode=1, mirostat_tau=0.5) == context.draw(mirostat_mode=1, mirostat_tau=0.5)


CHAT = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


async def test_dry_breaks_a_copied_passage_end_to_end(embedded_backend) -> None:
    passage = "the old lighthouse keeper climbed the winding stairs with his lamp held high above his head"
    words = passage.split()
    prompt = CHAT.format(q=f"Repeat this line exactly.\n{passage}") + " ".join(words[:6])
    rest = " ".join(words[6:9])  # "winding stairs with"
    greedy = dict(max_tokens=12, temperature=0.0, top_k=1, repeat_penalty=1.0, seed=1, logit_bias={2: -100.0})
    copied = await collect(embedded_backend, GenerationRequest(prompt=prompt, sampling=Sampling(
        **greedy, dry_multiplier=0.0)))
    assert copied.text.strip().startswith(rest), copied.text
    varied = await collect(embedded_backend, GenerationRequest(prompt=prompt, sampling=Sampling(
        **greedy, dry_multiplier=0.8, dry_base=1.75, dry_allowed_length=2, dry_penalty_last_n=-1)))
    assert not varied.text.strip().startswith(rest), varied.text
    again = await collect(embedded_backend, GenerationRequest(prompt=prompt, sampling=Sampling(
        **greedy, dry_multiplier=0.8, dry_base=1.75, dry_allowed_length=2, dry_penalty_last_n=-1)))
    assert again.text == varied.text  # DRY is deterministic: seeded runs repeat


async def test_seeded_xtc_generation_repeats_end_to_end(embedded_backend) -> None:
    sampling = Sampling(max_tokens=24, seed=5, xtc_probability=0.5, xtc_threshold=0.1, top_n_sigma=2.0,
                        logit_bias={2: -100.0})
    prompt = CHAT.format(q="Describe a market at dawn.")
    first = await collect(embedded_backend, GenerationRequest(prompt=prompt, sampling=sampling))
    second = await collect(embedded_backend, GenerationRequest(prompt=prompt, sampling=sampling))
    assert first.text == second.text and first.stats.completion_tokens == 24
    other = await collect(embedded_backend, GenerationRequest(prompt=prompt, sampling=sampling.model_copy(
        update={"seed": 6})))
    assert other.text != first.text
