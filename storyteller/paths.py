"""Where storyteller keeps its files.

Config, data and cache folders come from platformdirs. When ``STORYTELLER_HOME`` is set, all
three live under it instead (``config/``, ``data/``, ``cache/``): tests always set it, and a
kiosk or a portable install can too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["Paths", "get_paths"]

APP_NAME = "storyteller"


@dataclass(frozen=True, slots=True)
class Paths:
    """The folders storyteller uses.

    Attributes:
        config_dir: Holds ``config.toml``.
        data_dir: Holds characters, worlds, stories and models.
        cache_dir: Holds things that can be rebuilt (KV states, thumbnails).
    """

    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        """The settings file."""
        return self.config_dir / "config.toml"

    @property
    def models_dir(self) -> Path:
        """Users drop their own GGUF files here."""
        return self.data_dir / "models"

    @property
    def characters_dir(self) -> Path:
        """Imported character cards."""
        return self.data_dir / "characters"

    @property
    def worlds_dir(self) -> Path:
        """Imported lorebooks (world info)."""
        return self.data_dir / "worlds"

    @property
    def stories_dir(self) -> Path:
        """One folder per story."""
        return self.data_dir / "stories"

    def ensure(self) -> Paths:
        """Create the folders that do not exist yet, and return self."""
        for folder in (self.config_dir, self.data_dir, self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def get_paths(environ: dict[str, str] | None = None) -> Paths:
    """Work out the folders from ``STORYTELLER_HOME`` or the platform's conventions.

    Args:
        environ: The environment to read (defaults to ``os.environ``).
    """
    env = os.environ if environ is None else environ
    home = env.get("STORYTELLER_HOME")
    if home:
        root = Path(home).expanduser().resolve()
        if root.exists() and not root.is_dir():
            from storyteller.errors import ConfigError

            raise ConfigError(f"STORYTELLER_HOME={home} is a file, not a folder; point it at a folder "
                              "(it is created when missing) or unset it")
        return Paths(root / "config", root / "data", root / "cache")
    return Paths(
        Path(platformdirs.user_config_dir(APP_NAME)),
        Path(platformdirs.user_data_dir(APP_NAME)),
        Path(platformdirs.user_cache_dir(APP_NAME)),
    )
