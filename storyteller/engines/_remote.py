"""What the koboldcpp and OpenAI-compatible backends share: opening, info, closing, count cache."""

from __future__ import annotations

from typing import Any, Self

import httpx

from storyteller.config import RemoteSettings
from storyteller.engines._http import RemoteClient
from storyteller.engines.base import BackendInfo

__all__ = ["RemoteBackend"]

_COUNT_CACHE_LIMIT = 2048


class RemoteBackend:
    """Base of the server backends. Subclasses set ``_client`` and implement :meth:`connect`."""

    _client: RemoteClient

    def __init__(self) -> None:
        self._info: BackendInfo | None = None
        self._count_cache: dict[str, int] = {}

    @classmethod
    async def open(cls, settings: RemoteSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                   **options: Any) -> Self:
        """Connect, discover what the server runs, and return a ready backend."""
        backend = cls(settings, transport=transport, **options)  # type: ignore[call-arg]
        try:
            await backend.connect()
        except BaseException:
            await backend.aclose()
            raise
        return backend

    async def connect(self) -> None:
        """Ask the server what it runs; :meth:`info` works afterwards."""
        raise NotImplementedError

    def info(self) -> BackendInfo:
        """What the server runs (after :meth:`open` / :meth:`connect`)."""
        if self._info is None:
            name = type(self).__name__
            raise RuntimeError(f"{name}.info() before connect(); create it with {name}.open()")
        return self._info

    async def aclose(self) -> None:
        """Close connections."""
        await self._client.aclose()

    def _cached_count(self, text: str) -> int | None:
        return self._count_cache.get(text)

    def _remember_count(self, text: str, count: int) -> int:
        if len(self._count_cache) > _COUNT_CACHE_LIMIT:
            self._count_cache.clear()
        self._count_cache[text] = count
        return count
