"""The engines storyteller knows, in one place: the settings' ``engine.kind`` values, the CLI's
``--engine`` choices and the factory all come from :data:`ENGINES`.

Plain data with no imports from the rest of storyteller, so that :mod:`storyteller.config` can
derive its ``Literal`` from it without importing any engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ENGINES", "ENGINE_NAMES", "EngineEntry", "EngineKind"]


@dataclass(frozen=True, slots=True)
class EngineEntry:
    """One engine.

    Attributes:
        name: The ``engine.kind`` value.
        summary: What it is, in a few words (for help texts).
        opener: ``module:function`` of its async opener ``(settings, paths) -> Backend``.
    """

    name: str
    summary: str
    opener: str


ENGINES: dict[str, EngineEntry] = {
    entry.name: entry
    for entry in (
        EngineEntry("embedded", "llama.cpp in this process (a GGUF model)", "storyteller.engines.factory:_open_embedded"),
        EngineEntry("kobold", "a KoboldAI API server (koboldcpp)", "storyteller.engines.factory:_open_kobold"),
        EngineEntry("openai", "an OpenAI-compatible server", "storyteller.engines.factory:_open_openai"),
        EngineEntry("fake", "a scripted fake (demos and tests)", "storyteller.engines.factory:_open_fake"),
    )
}
"""Every engine, by ``engine.kind``."""

ENGINE_NAMES: tuple[str, ...] = tuple(ENGINES)
"""The engine names, in order: the CLI's ``--engine`` choices."""

EngineKind = Literal[ENGINE_NAMES]  # type: ignore[valid-type]
"""The type of ``engine.kind``: one of :data:`ENGINE_NAMES`."""
