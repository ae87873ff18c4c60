"""Kiosk settings: a TOML file (``--config FILE`` or ``<config dir>/kiosk.toml``) read into pydantic.

The operator PIN is stored only as a salted PBKDF2 hash (``hash_pin``); the kiosk refuses to
start without one, because a kiosk with no PIN could never be left. Everything else has a
default. The admin screen saves changed settings back to the same file, atomically.

This module is UI-free so the command line and tests can use it without Textual.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from storyteller.config import Settings
from storyteller.errors import ConfigError
from storyteller.fileio import atomic_write
from storyteller.paths import Paths

__all__ = [
    "ArchiveSettings",
    "KioskSettings",
    "LowPowerSettings",
    "ModerationSettings",
    "apply_low_power",
    "config_path",
    "dump_toml",
    "hash_pin",
    "load_kiosk_settings",
    "save_kiosk_settings",
    "verify_pin",
]

PIN_ITERATIONS = 200_000
_HASH = re.compile(r"^pbkdf2_sha256\$(\d+)\$([0-9a-f]{16,})\$([0-9a-f]{64})$")


def hash_pin(pin: str, *, iterations: int = PIN_ITERATIONS, salt: str | None = None) -> str:
    """A storable hash of the operator PIN: ``pbkdf2_sha256$<iterations>$<salt>$<hex>``.

    Raises:
        ConfigError: The PIN is shorter than 4 characters.
    """
    if len(pin) < 4:
        raise ConfigError("the operator PIN needs at least 4 characters.")
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt.encode("ascii"), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${digest.hex()}"


def verify_pin(pin: str, stored: str) -> bool:
    """True when ``pin`` matches the stored hash (compared in constant time)."""
    match = _HASH.match(stored)
    if match is None:
        return False
    iterations, salt, expected = int(match[1]), match[2], match[3]
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt.encode("ascii"), iterations)
    return hmac.compare_digest(digest.hex(), expected)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModerationSettings(_Section):
    """Word and pattern lists applied to visitor input and model output (off by default)."""

    enabled: bool = False
    """Apply the lists at all."""
    words: list[str] = Field(default_factory=list)
    """Words or phrases matched as whole words, ignoring case."""
    patterns: list[str] = Field(default_factory=list)
    """Regular expressions (Python syntax), matched ignoring case."""
    word_file: Path | None = None
    """A text file with one more word or phrase per line (``#`` starts a comment)."""
    input_message: str = "Let's keep the story friendly for everyone. Could you say that another way?"
    """What a visitor reads when their text is refused."""
    output_action: Literal["regenerate", "cut"] = "regenerate"
    """What to do with a reply that matches: write another one, or cut it before the match."""
    max_regenerations: int = Field(default=2, ge=0, le=5)
    """Replies tried before falling back to cutting."""
    cut_mark: str = "[…]"
    """Put where a reply was cut."""

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression ({exc})") from None
        return value


class ArchiveSettings(_Section):
    """The nightly archive: Markdown and SillyTavern JSONL copies of the story."""

    enabled: bool = True
    """Write the archive once a day."""
    folder: Path | None = None
    """Where to write; unset = ``<data dir>/kiosk-archive``."""
    time: str = "03:00"
    """Local time (HH:MM) after which the day's archive is written."""

    @field_validator("time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError(f"{value!r} is not a time of day; write it as HH:MM, e.g. 03:00")
        return f"{int(match[1]):02d}:{match[2]}"


class LowPowerSettings(_Section):
    """The low-power profile for a Raspberry Pi-class computer."""

    enabled: bool = False
    """Use the profile: small context, threads = cores, plain text rendering."""
    context: int = Field(default=2048, ge=256)
    """Context size in tokens."""
    threads: int | None = Field(default=None, ge=1)
    """CPU threads; unset = all cores."""
    model: str | None = None
    """GGUF path or name in the models folder; unset = the engine's model (or the default)."""


class KioskSettings(_Section):
    """Everything about the kiosk; the engine itself is configured in ``config.toml``."""

    pin_hash: str
    """The operator PIN as made by ``python -m storyteller.kiosk --hash-pin``; never the PIN itself."""
    title: str | None = None
    """Shown on the attract screen; unset = the story's name."""
    idle_seconds: int = Field(default=90, ge=5)
    """Back to the attract screen after this long without a key press."""
    turn_seconds: int = Field(default=300, ge=10)
    """The most a visitor's turn may last (typing and deciding; a reply in progress finishes)."""
    cooldown_seconds: int = Field(default=20, ge=0)
    """Seconds after a turn before the next one can start."""
    max_input_chars: int = Field(default=280, ge=10, le=4000)
    """The longest text a visitor may add."""
    max_name_chars: int = Field(default=24, ge=1, le=80)
    """The longest visitor name."""
    recap_every: int = Field(default=5, ge=0)
    """Write a new recap of the whole story every N visitor turns (0 = never)."""
    recap_tokens: int = Field(default=120, ge=16, le=1024)
    """The longest recap, in tokens."""
    attract_passages: int = Field(default=4, ge=1, le=50)
    """How many of the last passages the attract screen shows."""
    visitor_retries: int = Field(default=1, ge=0, le=5)
    """How many times a visitor may ask for another reply."""
    admin_key: str = "f12"
    """The key that asks for the operator PIN."""
    pin_attempts: int = Field(default=3, ge=1)
    """Wrong PINs allowed before the PIN screen locks for ``pin_lockout_seconds``."""
    pin_lockout_seconds: int = Field(default=60, ge=0)
    """How long the PIN screen stays locked after too many wrong PINs."""
    render_markdown: bool = True
    """Render finished passages as Markdown (off in the low-power profile)."""
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)
    """Word and pattern filters."""
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    """The nightly archive."""
    low_power: LowPowerSettings = Field(default_factory=LowPowerSettings)
    """The Raspberry Pi profile."""

    @field_validator("pin_hash")
    @classmethod
    def _is_hash(cls, value: str) -> str:
        if not _HASH.match(value):
            raise ValueError("is not a PIN hash; make one with `python -m storyteller.kiosk --hash-pin` "
                             "and paste the whole line (never write the PIN itself)")
        return value

    def archive_folder(self, paths: Paths) -> Path:
        """Where the archive goes."""
        return self.archive.folder or paths.data_dir / "kiosk-archive"

    def markdown(self) -> bool:
        """Whether finished passages are rendered as Markdown."""
        return self.render_markdown and not self.low_power.enabled


def config_path(paths: Paths, config_file: str | Path | None = None) -> Path:
    """The kiosk settings file: the one given, else ``<config dir>/kiosk.toml``."""
    return Path(config_file).expanduser() if config_file else paths.config_dir / "kiosk.toml"


def _describe(exc: ValidationError, path: Path) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(file)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing" and key == "pin_hash":
            msg = ("missing: add pin_hash = \"...\" made by `python -m storyteller.kiosk --hash-pin` "
                   "(a kiosk needs an operator PIN)")
        problems.append(f"{key}: {msg}")
    return f"invalid kiosk settings in {path}: " + "; ".join(problems)


def load_kiosk_settings(paths: Paths, config_file: str | Path | None = None) -> KioskSettings:
    """Read and check the kiosk settings file.

    Raises:
        ConfigError: The file is missing, not TOML, or has a bad or unknown value.
    """
    path = config_path(paths, config_file)
    if not path.is_file():
        raise ConfigError(
            f"no kiosk settings at {path}. Create it with at least a PIN hash: "
            f"python -m storyteller.kiosk --hash-pin >> {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}).") from exc
    try:
        settings = KioskSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc
    word_file = settings.moderation.word_file
    if word_file is not None and not word_file.is_file():
        raise ConfigError(f"{path}: moderation.word_file {str(word_file)!r} does not exist.")
    return settings


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(data: dict[str, Any]) -> str:
    """Write a dict of scalars, lists and one level of tables as TOML (``None`` values left out)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        lines.append(f"\n[{key}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None)
    return "\n".join(lines) + "\n"


def save_kiosk_settings(settings: KioskSettings, path: Path) -> None:
    """Write the settings to ``path`` atomically (temp file, fsync, rename).

    Raises:
        ConfigError: The file cannot be written.
    """
    text = "# storyteller kiosk settings (rewritten by the admin screen)\n" + dump_toml(settings.model_dump())
    try:
        atomic_write(path, text.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot save the kiosk settings to {path}: {exc}") from exc


def apply_low_power(settings: Settings, kiosk: KioskSettings) -> Settings:
    """The engine settings with the low-power profile applied (a copy; unchanged when it is off)."""
    if not kiosk.low_power.enabled:
        return settings
    profile = kiosk.low_power
    engine = settings.engine.model_copy(update={
        "n_ctx": profile.context,
        "max_ctx": max(profile.context, 256),
        "n_threads": profile.threads or os.cpu_count() or 1,
        "model": profile.model or settings.engine.model,
    })
    remote = settings.remote.model_copy(update={"context_length": settings.remote.context_length or profile.context})
    return settings.model_copy(update={"engine": engine, "remote": remote})
