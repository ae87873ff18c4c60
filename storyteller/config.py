"""Settings: a TOML file in the config folder plus ``STORYTELLER_*`` environment variables.

Environment variables win over the file; nested fields use ``__``, for example
``STORYTELLER_ENGINE__N_GPU_LAYERS=-1``. Settings are loaded once by the entry point and passed
down; nothing reads them from a global.

An invalid file or variable raises :class:`~storyteller.errors.ConfigError` naming the file, the
key and the problem, so the app never starts half-configured.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from storyteller.engines.registry import EngineKind
from storyteller.sampling import Sampling
from storyteller.errors import ConfigError
from storyteller.paths import Paths, get_paths

__all__ = ["EngineSettings", "MemorySettings", "ModelsSettings", "RemoteSettings", "ReplySettings", "Settings", "apply_overrides", "load_settings"]

MIN_CONTEXT = 256
"""Smallest context size accepted (a card and a reply need more than this anyway)."""
SECRET_FIELDS = frozenset({"api_key", "headers"})
"""Settings whose values are never printed, in any error, log or report."""

KVCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EngineSettings(_Section):
    """How to run the embedded llama.cpp engine, and which engine to use."""

    kind: EngineKind = "embedded"
    """Which engine generates: the embedded llama.cpp, a koboldcpp server, an OpenAI-compatible
    server, or a scripted fake (demos and tests)."""
    model: str | None = None
    """GGUF path, a name from ``storyteller models`` (``ollama:NAME:TAG``, ``lmstudio:NAME``,
    ``hf:ORG/NAME``, or a bare name unique across sources); unset = the bundled default."""
    n_ctx: int | None = Field(default=None, ge=0)
    """Context size in tokens (at least 256); unset or 0 = the model's trained context, capped by ``max_ctx``."""

    @field_validator("n_ctx")
    @classmethod
    def _usable_context(cls, value: int | None) -> int | None:
        if value is not None and 0 < value < MIN_CONTEXT:
            raise ValueError(f"a context of {value} tokens cannot hold a prompt; use at least {MIN_CONTEXT} (or 0 = the model's own)")
        return value
    max_ctx: int = Field(default=8192, ge=256)
    """Upper bound for the automatic context size (a big context costs memory)."""
    n_gpu_layers: Annotated[int, Field(ge=-1)] | Literal["auto"] = "auto"
    """Layers to put on the GPU: "auto" (all that fit in free GPU memory; 0 on a CPU build),
    -1 = all, or a number. Needs a GPU build of llama-cpp-python (``GPU=cuda make run``)."""
    n_threads: int | None = Field(default=None, ge=1)
    """CPU threads for generation; unset = llama.cpp's choice."""
    n_threads_batch: int | None = Field(default=None, ge=1)
    """CPU threads for prompt evaluation; unset = same as ``n_threads``."""
    n_batch: int = Field(default=512, ge=1)
    """Prompt tokens evaluated per batch."""
    flash_attn: bool = False
    """Use flash attention (faster on GPUs; required for a quantised V cache)."""
    use_mmap: bool = True
    """Memory-map the model file instead of reading it into memory."""
    use_mlock: bool = False
    """Lock the model in RAM so the OS never swaps it out."""
    cache_type_k: KVCacheType | None = None
    """KV cache type for keys; unset = f16."""
    cache_type_v: KVCacheType | None = None
    """KV cache type for values; unset = f16 (a quantised V cache needs flash attention)."""
    seed: int | None = None
    """Default seed when a request sets none; unset = random."""
    prefix_reuse: bool = True
    """Reuse the KV cache for a prompt that shares a prefix with the previous one."""
    context_shift: bool = True
    """Shift the KV cache when old history was trimmed from the middle of the prompt."""
    cache_reuse: Literal["exact", "balanced", "fast"] = "balanced"
    """How much stale cache the embedded engine may keep when the prompt changed in the middle
    (cached tokens after an edit hold values computed without it): ``exact`` reuses only the
    unchanged prefix plus a span removed right after it (koboldcpp's ContextShift); ``fast``
    reuses every cached run that is still in the prompt; ``balanced`` does too, but evaluates
    again the tokens right after each edit, and everything from the first stale token once the
    stale tokens have missed too many edits."""
    kv_state: Literal["turn", "exit", "off"] = "turn"
    """Save the engine's KV cache with the story after every turn, only on exit, or never; a
    reopened story then resumes without re-reading its prompt."""


class RemoteSettings(_Section):
    """How to reach a koboldcpp or OpenAI-compatible server."""

    url: str = "http://127.0.0.1:5001"
    """Base URL of the server (with or without ``/v1`` for OpenAI-compatible servers)."""
    api_key: SecretStr | None = None
    """API key; prefer ``api_key_env`` so the key never sits in a file. Never shown or logged."""
    api_key_env: str | None = None
    """Name of an environment variable holding the API key."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers sent with every request."""
    model: str | None = None
    """Model name to ask an OpenAI-compatible server for; unset = the first it lists."""
    context_length: int | None = Field(default=None, ge=256)
    """Context size to assume for an OpenAI-compatible server that does not report one."""
    use_chat: bool = False
    """OpenAI-compatible: use chat completion (server applies the template) instead of text."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for a connection."""
    first_token_timeout: float = Field(default=600.0, gt=0)
    """Seconds to wait for the first token (prompt evaluation can be slow on a CPU)."""
    between_tokens_timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait between tokens before giving up."""
    answer_timeout: float = Field(default=30.0, gt=0)
    """Seconds a short request (model list, context size, token count) may take in all, however
    slowly the server sends its answer; a silent server is reported after this long."""
    generation_timeout: float = Field(default=1800.0, gt=0)
    """Seconds one generation may take in all, however the server streams (a server that
    dribbles bytes or never ends is cut off here; the text so far is kept)."""
    retries: int = Field(default=2, ge=0)
    """Retries with backoff on busy (429/503) or refused connections before streaming starts."""


class MemorySettings(_Section):
    """Long-term memory: summaries of history that left the context, and pinned facts."""

    enabled: bool = True
    """Write summaries as history is about to leave the context, and send them and the pins."""
    position: Literal["before_history", "top"] = "before_history"
    """Where memory goes: after the story string, just before the history (it changes only when
    history is trimmed, so the engine's cache survives), or at the very top."""
    summary_share: float = Field(default=0.2, ge=0.0, le=0.8)
    """Share of the prompt room (context minus the reply) summaries may use."""
    pinned_share: float = Field(default=0.1, ge=0.0, le=0.8)
    """Share of the prompt room pinned facts are meant to stay within (they are always sent)."""
    span_messages: int = Field(default=16, ge=2, le=64)
    """Messages one summary covers."""
    lookahead_messages: int = Field(default=16, ge=0, le=256)
    """Summarise this many messages ahead of the trim point, so a summary is ready when they leave."""
    keep_recent: int = Field(default=8, ge=2, le=256)
    """Never summarise the newest messages (they are still being swiped and edited)."""
    summary_tokens: int = Field(default=80, ge=16, le=1024)
    """Most tokens the model may write for one summary."""
    jobs_per_turn: int = Field(default=3, ge=1, le=64)
    """Most summaries written after one reply (a long imported story catches up over turns)."""


class ModelsSettings(_Section):
    """Where to look for GGUF models besides storyteller's own models folder."""

    folders: list[str] = Field(default_factory=list)
    """Extra folders searched for .gguf files (a few levels deep); ``STORYTELLER_MODEL_PATH``
    adds more (separated like ``PATH``)."""
    other_apps: bool = True
    """Also list the models of Ollama, LM Studio, Jan, GPT4All and the Hugging Face cache."""


class ReplySettings(_Section):
    """How a finished reply is tidied before it is shown and saved."""

    trim_sentences: Literal["auto", "on", "off"] = "auto"
    """Cut a reply back to its last complete sentence, as Kobold Lite and SillyTavern do (the cut
    text stays in the story, and Continue finishes it). ``auto``: on in story and adventure
    modes, off in chat and instruct."""


class Settings(BaseSettings):
    """All settings."""

    model_config = SettingsConfigDict(
        env_prefix="STORYTELLER_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    engine: EngineSettings = Field(default_factory=EngineSettings)
    """The engine and its llama.cpp options."""
    remote: RemoteSettings = Field(default_factory=RemoteSettings)
    """Remote servers (koboldcpp, OpenAI-compatible)."""
    sampling: Sampling = Field(default_factory=Sampling)
    """Default sampler settings."""
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    """Where models are looked for."""
    memory: MemorySettings = Field(default_factory=MemorySettings)
    """Scene summaries and pinned facts."""
    reply: ReplySettings = Field(default_factory=ReplySettings)
    """Tidying finished replies (trimming incomplete sentences)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file is passed in as init data by load_settings(); env vars win over it.
        return (env_settings, init_settings)


def _read_toml(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}). Fix the file or delete it to use the defaults.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}).") from exc


def _problems(exc: ValidationError, names: dict[str, str] | None = None) -> list[str]:
    """One phrase per validation error; secret fields never show their value."""
    problems = []
    seen: set[str] = set()
    for err in exc.errors():
        parts = [str(part) for part in err["loc"]]
        label = ".".join(parts)
        for cut in range(len(parts), 0, -1):  # a union adds its branch to the location
            if ".".join(parts[:cut]) in (names or {}):
                label = (names or {})[".".join(parts[:cut])]
                break
        if label in seen:
            continue  # one problem per setting: the first branch of a union says enough
        seen.add(label)
        value = err.get("input")
        if SECRET_FIELDS.intersection(parts):
            shown = " (value not shown: it is a secret)"
        elif isinstance(value, dict):
            shown = ""
        else:
            shown = f" (got {value!r:.80})"
        problems.append(f"{label}: {err['msg']}{shown}")
    return problems


def _describe(exc: ValidationError, path: Path) -> str:
    where = f"{path} or STORYTELLER_* environment variables"
    return f"invalid settings in {where}: " + "; ".join(_problems(exc))


def _env_problem(exc: Exception) -> str:
    """Name the ``STORYTELLER_*`` variables that pydantic-settings could not parse as JSON."""
    import json
    import os
    import re

    found = re.search(r'field "(\w+)"', str(exc))
    field = found.group(1).upper() if found else ""
    bad = []
    for name, value in sorted(os.environ.items()):
        if not name.upper().startswith(f"STORYTELLER_{field}"):
            continue
        try:
            json.loads(value)
        except ValueError:
            if name.upper() == f"STORYTELLER_{field}" or value.lstrip()[:1] in ("{", "[") or name.upper().endswith(
                    ("__HEADERS", "__STOP", "__LOGIT_BIAS")):
                bad.append(name)
    names = ", ".join(bad) if bad else f"a STORYTELLER_{field}* variable"
    return (f"{names} is not valid JSON (a section or a list/table setting needs JSON, "
            f'e.g. STORYTELLER_SAMPLING__STOP=\'["\\n"]\'); fix or unset it')


def apply_overrides(settings: Settings, changes: dict[str, dict[str, Any]],
                    names: dict[str, str] | None = None) -> Settings:
    """``settings`` with ``changes`` applied, validated exactly as the file and environment are.

    Args:
        settings: Loaded settings (not modified).
        changes: Section name (``engine``, ``remote``, ``sampling``) to the fields it changes.
        names: How errors name a field, e.g. ``{"engine.n_threads": "--threads"}``.

    Raises:
        ConfigError: A changed value is invalid; the message names the option, never a secret.
    """
    update: dict[str, Any] = {}
    for section, fields in changes.items():
        current = getattr(settings, section)
        try:
            update[section] = type(current).model_validate({**current.model_dump(), **fields})
        except ValidationError as exc:
            labels = {key.removeprefix(f"{section}."): label for key, label in (names or {}).items()}
            raise ConfigError("invalid option: " + "; ".join(_problems(exc, labels))) from None
    return settings.model_copy(update=update)


def load_settings(paths: Paths | None = None) -> Settings:
    """Load settings from ``config.toml`` and the environment.

    Args:
        paths: Where to look; defaults to :func:`storyteller.paths.get_paths`.

    Raises:
        ConfigError: The file or an environment variable is invalid.
    """
    paths = paths or get_paths()
    data = _read_toml(paths.config_file)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, paths.config_file)) from None
    except SettingsError as exc:
        raise ConfigError(_env_problem(exc)) from None
