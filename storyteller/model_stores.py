"""Where Ollama, LM Studio, Jan, GPT4All and the Hugging Face cache keep their models, per platform.

Each app's own environment variable wins where it has one (``OLLAMA_MODELS``, ``HF_HUB_CACHE``,
``HF_HOME``); LM Studio's home pointer and ``downloadsFolder`` setting and GPT4All's
``modelPath`` setting are read when present. Folders that do not exist are left for the caller
to skip: an app that is not installed is not a problem.
"""

from __future__ import annotations

import configparser
import json
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Store", "read_small", "store_roots"]

_MAX_SMALL = 1024 * 1024  # manifests, templates, params, settings files


@dataclass(frozen=True, slots=True)
class Store:
    """A folder where one app keeps its models."""

    source: str
    root: Path


def store_roots(environ: Mapping[str, str] | None = None, *, system: str | None = None,
                folders: Sequence[str] = ()) -> list[Store]:
    """The folders to search on this machine, in the order they are listed.

    Args:
        environ: The environment (``HOME``, ``OLLAMA_MODELS``, ``HF_HOME``, ``XDG_*``,
            ``APPDATA``, ``STORYTELLER_MODEL_PATH``, ...); defaults to ``os.environ``.
        system: ``Linux``, ``Darwin`` or ``Windows``; defaults to this machine's.
        folders: Extra folders (the ``models.folders`` setting).
    """
    env = os.environ if environ is None else environ
    system = system or platform.system()
    home = Path(env.get("USERPROFILE" if system == "Windows" else "HOME") or Path.home())

    def env_path(name: str, default: Path) -> Path:
        value = env.get(name)
        return Path(value).expanduser() if value else default

    if system == "Windows":
        roaming = env_path("APPDATA", home / "AppData" / "Roaming")
        local = env_path("LOCALAPPDATA", home / "AppData" / "Local")
        data, config, cache = roaming, roaming, home / ".cache"
    elif system == "Darwin":
        data = config = home / "Library" / "Application Support"
        local = roaming = data
        cache = home / ".cache"
    else:
        data = env_path("XDG_DATA_HOME", home / ".local" / "share")
        config = env_path("XDG_CONFIG_HOME", home / ".config")
        cache = env_path("XDG_CACHE_HOME", home / ".cache")
        local = roaming = data
    stores: list[Store] = []
    add = lambda source, root: stores.append(Store(source, Path(root)))  # noqa: E731

    if env.get("OLLAMA_MODELS"):
        add("ollama", Path(env["OLLAMA_MODELS"]).expanduser())
    else:
        add("ollama", home / ".ollama" / "models")
        if system == "Linux":  # the system service's store (install.sh makes an `ollama` user)
            add("ollama", Path("/usr/share/ollama/.ollama/models"))

    pointer = read_small(home / ".lmstudio-home-pointer")
    if pointer and pointer.strip():
        add("lmstudio", Path(pointer.strip()).expanduser() / "models")
    add("lmstudio", home / ".lmstudio" / "models")
    add("lmstudio", home / ".cache" / "lm-studio" / "models")
    app_config = roaming if system == "Windows" else config
    for settings_file in (home / ".lmstudio" / "settings.json", app_config / "LM Studio" / "settings.json"):
        chosen = _json_value(settings_file, "downloadsFolder")
        if isinstance(chosen, str) and chosen:
            add("lmstudio", Path(chosen).expanduser())

    add("jan", home / "jan" / "models")
    jan_data = [data / "Jan" / "data"] + ([config / "Jan" / "data"] if system == "Linux" else [])
    for base in jan_data:
        add("jan", base / "llamacpp" / "models")
        add("jan", base / "models")

    ini = (roaming if system == "Windows" else (home / ".config" if system == "Darwin" else config))
    custom = _ini_value(ini / "nomic.ai" / "GPT4All.ini", "modelPath")
    if custom:
        add("gpt4all", Path(custom).expanduser())
    add("gpt4all", (local if system == "Windows" else data) / "nomic.ai" / "GPT4All")

    hub = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if hub:
        add("hf", Path(hub).expanduser())
    else:
        add("hf", env_path("HF_HOME", cache / "huggingface") / "hub")

    extra = [f for f in (env.get("STORYTELLER_MODEL_PATH") or "").split(os.pathsep) if f.strip()]
    for folder in [*folders, *extra]:
        add("folder", Path(folder).expanduser())

    unique: list[Store] = []
    seen: set[tuple[str, str]] = set()
    for store in stores:
        key = (store.source, os.path.normcase(os.path.abspath(store.root)))
        if key not in seen:
            seen.add(key)
            unique.append(store)
    return unique


def read_small(path: Path, limit: int = _MAX_SMALL) -> str | None:
    """A small text file's contents, or ``None`` when it is missing, unreadable or too big."""
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _json_value(path: Path, key: str) -> object:
    text = read_small(path)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None


def _ini_value(path: Path, key: str) -> str | None:
    text = read_small(path)
    if not text:
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    for section in parser.sections():
        if parser.has_option(section, key):
            return parser.get(section, key).strip().strip('"') or None
    return None
