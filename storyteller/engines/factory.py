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
        from storyteller.model_sources import apply_model_defaults

        # ollama:/lmstudio:/hf: names; an Ollama model's params fill sampler values left unset
        found = apply_model_defaults(settings, paths)
        backend = await LlamaCppBackend.open(found.path, settings.engine)
        backend.template_hint = found.template
        return backend
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
