"""A scripted backend for tests, demos and UI work without a model.

It answers each request with the next reply from its script, streamed a word at a time, and
honours ``max_tokens`` (in words), stop strings and cancellation like a real engine. It records
every request it was given so tests can look at prompts.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Sequence

from storyteller.engines.base import (
    BackendInfo,
    Chunk,
    Finished,
    GenerationRequest,
    GenerationStats,
    PromptProgress,
    TextChunk,
)
from storyteller.engines.capabilities import Capabilities

__all__ = ["ScriptedBackend"]

_TOKEN = re.compile(r"\s*\S+|\s+")


class ScriptedBackend:
    """A Backend that replays scripted replies.

    Args:
        replies: Replies given in turn; after the last one the script starts again.
        context_length: What ``info()`` reports.
        delay: Seconds to wait between words (0 = as fast as possible).
        honour_stops: Cut at stop strings as engines do; False plays a server that ignores them.
    """

    def __init__(self, replies: Sequence[str] = ("The fog parts.",), *, context_length: int = 4096,
                 delay: float = 0.0, honour_stops: bool = True) -> None:
        if not replies:
            raise ValueError("ScriptedBackend needs at least one reply")
        self._replies = list(replies)
        self._next = 0
        self._context_length = context_length
        self._delay = delay
        self._honour_stops = honour_stops
        self.requests: list[GenerationRequest] = []

    def info(self) -> BackendInfo:
        """Describe the fake engine."""
        return BackendInfo(
            engine="fake",
            model="scripted",
            context_length=self._context_length,
            capabilities=Capabilities(text=True, chat=True, exact_tokens=True),
        )

    async def count_tokens(self, text: str) -> int:
        """Count words and punctuation runs: the fake's own 'tokenizer'."""
        return len(_TOKEN.findall(text))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream the next scripted reply."""
        self.requests.append(request)
        reply = self._replies[self._next % len(self._replies)]
        self._next += 1
        prompt_text = request.prompt if request.prompt is not None else "\n".join(
            m.content for m in request.messages or [])
        prompt_tokens = await self.count_tokens(prompt_text)
        start = time.perf_counter()
        yield PromptProgress(prompt_tokens, prompt_tokens)
        sampling = request.sampling
        cut, stop_hit = len(reply), None
        for stop in sampling.stop if self._honour_stops else ():
            at = reply.find(stop) if stop else -1
            if 0 <= at < cut:
                cut, stop_hit = at, stop
        words = _TOKEN.findall(reply[:cut])
        reason = "stop"
        if len(words) > sampling.max_tokens:
            words, reason, stop_hit = words[: sampling.max_tokens], "length", None
        sent = 0
        first = None
        for word in words:
            if request.cancel.is_set():
                reason, stop_hit = "cancelled", None
                break
            if self._delay:
                await asyncio.sleep(self._delay)
            first = first or time.perf_counter()
            sent += 1
            yield TextChunk(word)
        end = time.perf_counter()
        gen_time = end - (first or end)
        yield Finished(
            reason,
            GenerationStats(
                prompt_tokens=prompt_tokens,
                tokens_reused=0,
                tokens_evaluated=prompt_tokens,
                completion_tokens=sent,
                seconds_to_first_token=(first - start) if first else None,
                seconds_total=end - start,
                tokens_per_second=sent / gen_time if gen_time > 0 else None,
            ),
            stop_hit,
        )

    async def aclose(self) -> None:
        """Nothing to release."""
