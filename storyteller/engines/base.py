"""The Backend protocol every engine implements, and the data that crosses it.

A backend turns a :class:`GenerationRequest` into an async stream of chunks:
zero or more :class:`PromptProgress` while the prompt is evaluated, then :class:`TextChunk`
pieces, and always exactly one final :class:`Finished` carrying :class:`GenerationStats`.
Cancelling the consumer (``aclose()`` on the iterator, or cancelling its task) or setting
``request.cancel`` stops generation within one token.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from storyteller.engines.capabilities import Capabilities
from storyteller.sampling import Sampling

__all__ = [
    "Backend",
    "BackendInfo",
    "Chunk",
    "Finished",
    "GenerationRequest",
    "GenerationResult",
    "GenerationStats",
    "Message",
    "PromptProgress",
    "Sampling",
    "TextChunk",
    "collect",
]

FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat-completion message."""

    role: Literal["system", "user", "assistant"]
    content: str
    name: str | None = None


@dataclass(slots=True)
class GenerationRequest:
    """What to generate.

    Exactly one of ``prompt`` (text completion, our own template) and ``messages`` (chat
    completion, the engine applies the template) is set.

    Attributes:
        prompt: Raw prompt text for text completion.
        messages: Messages for chat completion.
        sampling: Sampler settings, including ``max_tokens`` and ``stop``.
        cancel: Set it from any thread to stop generation within one token.
        add_bos: Whether the engine should add its BOS token to a text prompt.
        keep_cache: A side road (a recap, a summary): an engine that keeps a cache of the story's
            prompt leaves it as it found it, so the next reply only reads its new tokens (the
            embedded engine restores its KV cache afterwards; remote engines ignore it).
    """

    prompt: str | None = None
    messages: list[Message] | None = None
    sampling: Sampling = field(default_factory=Sampling)
    cancel: threading.Event = field(default_factory=threading.Event)
    add_bos: bool = True
    keep_cache: bool = False

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("GenerationRequest needs exactly one of prompt= or messages=")


@dataclass(slots=True)
class GenerationStats:
    """What one generation cost. Remote engines fill in what they can; unknown is ``None``.

    Attributes:
        prompt_tokens: Tokens in the prompt.
        tokens_reused: Prompt tokens taken from the engine's cache, not evaluated again.
        tokens_evaluated: Prompt tokens actually evaluated for this request.
        tokens_shifted: Cached tokens kept by shifting the cache after a span was removed.
        completion_tokens: Tokens generated.
        seconds_to_first_token: From the request to the first generated text.
        seconds_total: From the request to the end.
        tokens_per_second: Generation speed, excluding prompt evaluation.
        prompt_seconds: Time spent evaluating the prompt.
        cache_note: Why the cache could or could not be reused, in words.
    """

    prompt_tokens: int | None = None
    tokens_reused: int | None = None
    tokens_evaluated: int | None = None
    tokens_shifted: int | None = None
    completion_tokens: int | None = None
    seconds_to_first_token: float | None = None
    seconds_total: float | None = None
    tokens_per_second: float | None = None
    prompt_seconds: float | None = None
    cache_note: str = ""


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A piece of generated text."""

    text: str


@dataclass(frozen=True, slots=True)
class PromptProgress:
    """The engine is evaluating the prompt: ``done`` of ``total`` tokens so far."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class Finished:
    """The last chunk of every stream.

    Attributes:
        finish_reason: ``stop`` (EOS or a stop string), ``length`` (max tokens), ``cancelled``
            (the consumer stopped it) or ``error``.
        stats: Token counts and timings.
        stop_string: The stop string that matched, if one did.
    """

    finish_reason: FinishReason
    stats: GenerationStats
    stop_string: str | None = None


Chunk = TextChunk | PromptProgress | Finished


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What a backend is and can do.

    Attributes:
        engine: ``embedded``, ``kobold``, ``openai`` or ``fake``.
        model: The model's name as the engine reports it.
        context_length: Tokens of context available for prompt plus reply.
        capabilities: What the engine can do (:class:`Capabilities`; a set of flag names such
            as ``{"text", "exact_tokens"}`` is accepted and converted).
        chat_template: The model's own Jinja chat template, when known.
        gpu_layers: Layers actually offloaded to a GPU (0 on CPU).
        gpu_backend: ``CUDA``, ``Metal``, ``Vulkan``, ... or ``CPU``.
        warnings: Things the user should know (e.g. GPU layers asked for on a CPU-only build).
        details: Anything else worth showing (file path, server version, ...).
    """

    engine: str
    model: str
    context_length: int
    capabilities: Capabilities = Capabilities()
    chat_template: str | None = None
    gpu_layers: int = 0
    gpu_backend: str = "CPU"
    warnings: tuple[str, ...] = ()
    details: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.capabilities, Capabilities):
            object.__setattr__(self, "capabilities", Capabilities.of(self.capabilities))


@runtime_checkable
class Backend(Protocol):
    """An engine that generates text."""

    def info(self) -> BackendInfo:
        """Describe the engine and model."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Generate, yielding chunks; the last one is always :class:`Finished`."""
        ...

    async def count_tokens(self, text: str) -> int:
        """Count tokens as the model sees them (exact when ``exact_tokens`` is a capability)."""
        ...

    async def aclose(self) -> None:
        """Release the model or connections."""
        ...


@dataclass(slots=True)
class GenerationResult:
    """A whole generation gathered by :func:`collect`."""

    text: str
    finish_reason: FinishReason
    stats: GenerationStats
    stop_string: str | None = None


async def collect(backend: Backend, request: GenerationRequest, *,
                  on_text: Callable[[str], None] | None = None) -> GenerationResult:
    """Run a request to the end and return the whole text with its stats.

    Args:
        backend: The engine.
        request: What to generate.
        on_text: Called with each piece of text as it arrives (to stream it somewhere).
    """
    parts: list[str] = []
    finished: Finished | None = None
    async for chunk in backend.stream(request):
        if isinstance(chunk, TextChunk):
            parts.append(chunk.text)
            if on_text is not None:
                on_text(chunk.text)
        elif isinstance(chunk, Finished):
            finished = chunk
    if finished is None:  # a backend broke the protocol; say so rather than guess
        raise RuntimeError(f"{type(backend).__name__}.stream() ended without a Finished chunk")
    return GenerationResult("".join(parts), finished.finish_reason, finished.stats, finished.stop_string)
