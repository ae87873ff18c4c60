"""Build the configured backend. Engine modules are imported only when chosen."""

from __future__ import annotations

from storyteller.config import Settings
from storyteller.engines.base import Backend
from storyteller.errors import ConfigError
from storyteller.paths import Paths

__all__ = ["open_backend"]


async def open_backend(settings: Settings, paths: Paths) -> Backend:
    """Open the engine named by ``settings.engine.kind``.

    Raises:
        ModelError: The embedded engine has no usable model.
        EngineError: A remote server cannot be reached or understood.
    """
    kind = settings.engine.kind
    if kind == "embedded":
        from storyteller.engines.llamacpp import LlamaCppBackend
        from storyteller.models import resolve_model

        return await LlamaCppBackend.open(resolve_model(settings.engine.model, paths), settings.engine)
    if kind == "kobold":
        from storyteller.engines.kobold import KoboldBackend

        return await KoboldBackend.open(settings.remote)
    if kind == "openai":
        from storyteller.engines.openai import OpenAIBackend

        return await OpenAIBackend.open(settings.remote, context_length=settings.remote.context_length)
    if kind == "fake":
        from storyteller.engines.fake import ScriptedBackend

        return ScriptedBackend()
    raise ConfigError(f"engine.kind = {kind!r} is not an engine; use embedded, kobold, openai or fake.")
