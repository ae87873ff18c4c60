"""Engines: the Backend protocol and its implementations.

Implementations are imported lazily by :func:`storyteller.engines.factory.make_backend` so that
importing this package never loads llama.cpp or opens a connection.
"""

from storyteller.engines.base import (
    Backend,
    BackendInfo,
    Chunk,
    Finished,
    GenerationRequest,
    GenerationResult,
    GenerationStats,
    Message,
    PromptProgress,
    Sampling,
    TextChunk,
    collect,
)

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
