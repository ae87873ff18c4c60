"""Build the configured backend from :data:`~storyteller.engines.registry.ENGINES`.

Engine modules are imported only when chosen.
"""

from __future__ import annotations

import importlib

from storyteller.config import Settings
from storyteller.engines.base import Backend
from storyteller.engines.registry import ENGINE_NAMES, ENGINES
from storyteller.errors import ConfigError
from storyteller.paths import Paths

__all__ = ["open_backend"]


async def open_backend(settings: Settings, paths: Paths) -> Backend:
    """Open the engine named by ``settings.engine.kind``.

    Raises:
        ConfigError: No engine has that name.
        ModelError: The embedded engine has no usable model.
        EngineError: A remote server cannot be reached or understood.
    """
    kind = settings.engine.kind
    entry = ENGINES.get(kind)
    if entry is None:
        raise ConfigError(f"engine.kind = {kind!r} is not an engine; use one of {', '.join(ENGINE_NAMES)}.")
    module, _, function = entry.opener.partition(":")
    opener = getattr(importlib.import_module(module), function)
    return await opener(settings, paths)


async def _open_embedded(settings: Settings, paths: Paths) -> Backend:
    from storyteller.engines.llamacpp import LlamaCppBackend
    from storyteller.model_sources import apply_model_defaults

    # ollama:/lmstudio:/hf: names; an Ollama model's params fill sampler values left unset
    found = apply_model_defaults(settings, paths)
    backend = await LlamaCppBackend.open(found.path, settings.engine)
    backend.template_hint = found.template
    return backend


async def _open_kobold(settings: Settings, paths: Paths) -> Backend:
    from storyteller.engines.kobold import KoboldBackend

    return await KoboldBackend.open(settings.remote)


async def _open_openai(settings: Settings, paths: Paths) -> Backend:
    from storyteller.engines.openai import OpenAIBackend

    return await OpenAIBackend.open(settings.remote, context_length=settings.remote.context_length)


async def _open_fake(settings: Settings, paths: Paths) -> Backend:
    from storyteller.engines.fake import ScriptedBackend

    return ScriptedBackend()
