"""Sampler settings: the bottom of the house, read by config, presets, the session and every engine.

It lives here, beside :mod:`storyteller.config` and :mod:`storyteller.paths`, so that config does
not import the engines; :mod:`storyteller.engines.base` re-exports it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Sampling"]


class Sampling(BaseModel):
    """Sampler settings. ``None`` means "the engine's default"; engines drop what they lack."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(default=200, ge=1)
    """Most tokens to generate."""
    temperature: float | None = Field(default=0.8, ge=0)
    """Randomness; 0 picks the most likely token every time."""
    top_p: float | None = Field(default=0.95, ge=0, le=1)
    """Nucleus sampling: keep the smallest set of tokens whose probability sums to this."""
    top_k: int | None = Field(default=40, ge=0)
    """Keep only the K most likely tokens (0 = off)."""
    min_p: float | None = Field(default=0.05, ge=0, le=1)
    """Drop tokens less likely than this fraction of the most likely one."""
    typical_p: float | None = Field(default=1.0, ge=0, le=1)
    """Locally typical sampling (1 = off)."""
    repeat_penalty: float | None = Field(default=1.1, ge=0)
    """Penalty for tokens seen in the last ``repeat_last_n`` tokens (1 = off)."""
    repeat_last_n: int | None = Field(default=64, ge=-1)
    """How many recent tokens the repeat penalty looks at (-1 = whole context)."""
    presence_penalty: float | None = Field(default=0.0)
    """OpenAI-style presence penalty."""
    frequency_penalty: float | None = Field(default=0.0)
    """OpenAI-style frequency penalty."""
    mirostat_mode: int | None = Field(default=0, ge=0, le=2)
    """Mirostat version (0 = off, 1 or 2)."""
    mirostat_tau: float | None = 5.0
    """Mirostat target entropy."""
    mirostat_eta: float | None = 0.1
    """Mirostat learning rate."""
    top_n_sigma: float | None = None
    """Top-nσ: keep only tokens within this many standard deviations of the top logit (0 = off)."""
    dry_multiplier: float | None = 0.8
    """DRY ("don't repeat yourself") strength: penalises tokens that would extend a repeat of
    earlier text (0 = off). 0.8 is the usual value."""
    dry_base: float | None = Field(default=1.75, ge=1)
    """DRY: how fast the penalty grows with the repeat's length (penalty = multiplier × base ^
    (length - allowed length)); 1.75 is usual."""
    dry_allowed_length: int | None = Field(default=2, ge=0)
    """DRY: repeats up to this many tokens are not penalised (2 is usual)."""
    dry_penalty_last_n: int | None = Field(default=-1, ge=-1)
    """DRY: how many recent tokens it looks back over (-1 = the whole context, 0 = none)."""
    dry_sequence_breakers: list[str] | None = None
    """DRY: a repeat never runs across these strings (default: newline, colon, quote, asterisk)."""
    xtc_probability: float | None = Field(default=None, ge=0, le=1)
    """XTC ("exclude top choices"): chance, per token, of removing every likely token but the
    least likely of them (0 = off)."""
    xtc_threshold: float | None = Field(default=None, ge=0, le=1)
    """XTC: a token counts as a top choice from this probability up (0.1 is usual; over 0.5 = off)."""
    logit_bias: dict[int, float] = Field(default_factory=dict)
    """Token id to bias added to its logit (-100 bans it)."""
    grammar: str | None = None
    """A GBNF grammar constraining the output."""
    seed: int | None = None
    """Random seed; the same seed, prompt and settings give the same text."""
    stop: list[str] = Field(default_factory=list)
    """Strings that end generation; they are not included in the output."""
