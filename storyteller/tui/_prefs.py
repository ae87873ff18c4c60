"""Files the app writes: ``config.toml`` (from the settings screen) and ``tui.json`` (theme).

``config.toml`` is read by :func:`storyteller.config.load_settings`; it is written here with a
tiny TOML writer (tables of strings, numbers, booleans, lists of strings), atomically, keeping
any key the settings screen does not show.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from storyteller.errors import ConfigError
from storyteller.fileio import atomic_write
from storyteller.paths import Paths

__all__ = ["atomic_write_text", "dump_toml", "load_prefs", "save_prefs", "update_config"]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`storyteller.fileio.atomic_write`)."""
    atomic_write(path, text.encode("utf-8"))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{value} cannot be written to config.toml")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {type(value).__name__} values to config.toml")


def dump_toml(data: dict[str, Any]) -> str:
    """TOML text for a dict of top-level values and one level of tables (``None`` left out)."""
    lines = [f"{key} = {_value(v)}" for key, v in data.items() if not isinstance(v, dict) and v is not None]
    for table, values in data.items():
        if isinstance(values, dict):
            lines.append(f"\n[{table}]")
            lines.extend(f"{key} = {_value(v)}" for key, v in values.items() if v is not None)
    return "\n".join(lines).lstrip("\n") + "\n"


def update_config(paths: Paths, changes: dict[str, dict[str, Any]]) -> Path:
    """Merge ``{section: {key: value}}`` into ``config.toml`` (``None`` removes a key).

    Raises:
        ConfigError: The existing file is not valid TOML (it is left as it is).
    """
    path = paths.config_file
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} cannot be updated: {exc}. Fix or delete the file, then save again.") from exc
    for section, values in changes.items():
        table = data.setdefault(section, {})
        for key, value in values.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
    atomic_write_text(path, dump_toml(data))
    return path


def _prefs_file(paths: Paths) -> Path:
    return paths.config_dir / "tui.json"


def load_prefs(paths: Paths) -> dict[str, Any]:
    """The app's own preferences (the theme); an unreadable file counts as empty."""
    try:
        data = json.loads(_prefs_file(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_prefs(paths: Paths, **changes: Any) -> None:
    """Merge ``changes`` into the preferences file."""
    atomic_write_text(_prefs_file(paths), json.dumps({**load_prefs(paths), **changes}, indent=1) + "\n")
