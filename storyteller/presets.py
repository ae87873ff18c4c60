"""Sampler presets: named sets of :class:`~storyteller.engines.base.Sampling` values.

A preset sets only the values it names; the rest come from the global ``[sampling]`` settings.
A story picks one by name (``story.settings.sampler_preset``) and may override single values
on top (``sampler_overrides``); :func:`resolve_sampling` layers the three.

A few presets are bundled (defined here); the user's live in ``<config>/presets`` as JSON
files ``{"name": ..., "sampling": {...}}`` (hand-written ``.toml`` files of the same shape are
read too). A user preset with a bundled preset's name replaces it. SillyTavern text-completion
presets and Kobold Lite / koboldcpp / KoboldAI presets can be imported: unknown keys are
reported, not fatal; a value that cannot be used raises :class:`FormatError`.
"""

from __future__ import annotations

import json
import logging
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from storyteller.sampling import Sampling
from storyteller.errors import ConfigError, FormatError, LimitExceededError
from storyteller.fileio import atomic_write
from storyteller.paths import Paths, get_paths

__all__ = [
    "BUNDLED_PRESETS", "PRESET_FIELDS", "Preset", "PresetImportReport", "delete_preset", "find_preset",
    "import_preset", "list_presets", "parse_preset", "presets_dir", "read_preset_file", "resolve_sampling",
    "save_preset", "validate_values",
]

log = logging.getLogger(__name__)

PRESET_FIELDS: tuple[str, ...] = tuple(Sampling.model_fields)
"""The values a preset may set: every field of :class:`Sampling`."""

MAX_PRESET_BYTES = 1024 * 1024
_MAX_NAME = 100


@dataclass(frozen=True)
class Preset:
    """A named set of sampler values.

    Attributes:
        name: What stories refer to it by (matched without regard to case).
        values: Sampling field -> value, validated; fields not named keep the base value.
        bundled: Defined in storyteller rather than in the user's presets folder.
        path: The user's file, or ``None`` for a bundled preset.
    """

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    bundled: bool = False
    path: Path | None = None

    def apply(self, base: Sampling) -> Sampling:
        """``base`` with this preset's values on top."""
        return type(base).model_validate({**base.model_dump(), **self.values})


# DRY 0.8 / 1.75 / 2 over the whole context is the value DRY's author recommends and SillyTavern
# and koboldcpp users run; XTC 0.5 / 0.1 likewise. XTC trades coherence for variety, so only the
# presets meant for loose prose have it. Adventure mode's action lines start with ">", so that
# preset also breaks DRY's runs there: "> You look around" may repeat, the narration may not.
_DRY = {"dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2, "dry_penalty_last_n": -1}
_BUNDLED_VALUES: dict[str, dict[str, Any]] = {
    "Balanced": {"temperature": 0.8, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, **_DRY},
    "Precise": {"temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.1, "repeat_penalty": 1.1, **_DRY},
    "Creative": {"temperature": 1.1, "top_p": 1.0, "top_k": 0, "min_p": 0.05, "repeat_penalty": 1.05, **_DRY,
                 "xtc_probability": 0.5, "xtc_threshold": 0.1},
    "Deterministic": {"temperature": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0,
                      "dry_multiplier": 0.0, "xtc_probability": 0.0},
    "Mirostat": {"mirostat_mode": 2, "mirostat_tau": 5.0, "mirostat_eta": 0.1, "temperature": 1.0, **_DRY},
    "Story": {"temperature": 0.9, "top_p": 1.0, "top_k": 0, "min_p": 0.05, "repeat_penalty": 1.05, **_DRY,
              "xtc_probability": 0.3, "xtc_threshold": 0.1},
    "Adventure": {"temperature": 0.7, "top_p": 0.95, "top_k": 40, "min_p": 0.1, "repeat_penalty": 1.1, **_DRY,
                  "dry_sequence_breakers": ["\n", ":", '"', "*", ">"], "xtc_probability": 0.0},
}
BUNDLED_PRESETS: dict[str, Preset] = {name: Preset(name, dict(values), bundled=True)
                                      for name, values in _BUNDLED_VALUES.items()}
"""The presets every install has, by name."""


# -- validation -----------------------------------------------------------------------------

def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a preset needs a name")
    name = " ".join(name.split())
    if len(name) > _MAX_NAME or any(ord(c) < 32 for c in name):
        raise ConfigError(f"preset name {name[:40]!r}… is too long or has control characters; pick a shorter one")
    return name


def validate_values(values: Mapping[str, Any], *, where: str = "preset",
                    sources: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Check sampler values and return them in their proper types.

    Args:
        values: Sampling field -> value.
        where: Named in error messages (``"preset 'Creative'"``).
        sources: Field -> the key it was read from, so errors name the user's key.

    Raises:
        FormatError: An unknown field, a value of the wrong type or out of range.
    """
    sources = sources or {}
    unknown = [key for key in values if key not in Sampling.model_fields]
    if unknown:
        raise FormatError(f"{where}: unknown sampler value {unknown[0]!r}; known: {', '.join(PRESET_FIELDS)}")
    for key, value in values.items():
        numeric = key not in ("logit_bias", "grammar", "stop", "dry_sequence_breakers")
        if numeric and (isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value))):
            raise FormatError(f"{where}: {sources.get(key, key)} = {value!r} is not a usable number")
    try:
        checked = Sampling.model_validate(dict(values))
    except ValidationError as exc:
        problem = exc.errors()[0]
        key = str(problem["loc"][0]) if problem["loc"] else "?"
        shown = values.get(key, problem.get("input"))
        raise FormatError(f"{where}: {sources.get(key, key)} = {shown!r}: {problem['msg']}") from None
    return {key: getattr(checked, key) for key in values}


# -- storage --------------------------------------------------------------------------------

def presets_dir(paths: Paths | None = None) -> Path:
    """The user's presets folder (``<config>/presets``)."""
    return (paths or get_paths()).config_dir / "presets"


def _read_data(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_PRESET_BYTES:
            raise LimitExceededError(f"{path} is {size} bytes; a preset is at most {MAX_PRESET_BYTES}")
        raw = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read the preset {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
        return tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{path} is not a valid {path.suffix.lstrip('.').upper() or 'JSON'} preset: {exc}") from None


def _user_presets(paths: Paths | None, warnings: list[str] | None) -> list[Preset]:
    folder = presets_dir(paths)
    if not folder.is_dir():
        return []
    found: list[Preset] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in (".json", ".toml") or not path.is_file():
            continue
        try:
            preset, _report = read_preset_file(path)
        except FormatError as exc:
            log.warning("%s", exc)
            if warnings is not None:
                warnings.append(str(exc))
            continue
        found.append(Preset(preset.name, preset.values, path=path))
    return found


def list_presets(paths: Paths | None = None, *, warnings: list[str] | None = None) -> list[Preset]:
    """Every preset, bundled and the user's, sorted by name; a user preset replaces a bundled namesake.

    Args:
        paths: Where the presets folder is; defaults to :func:`get_paths`.
        warnings: Receives one line per user file that could not be read (it is skipped).
    """
    by_name = {name.casefold(): preset for name, preset in BUNDLED_PRESETS.items()}
    for preset in _user_presets(paths, warnings):
        by_name[preset.name.casefold()] = preset
    return sorted(by_name.values(), key=lambda p: p.name.casefold())


def find_preset(name: str, paths: Paths | None = None) -> Preset:
    """The preset called ``name`` (case does not matter).

    Raises:
        ConfigError: There is none; the message lists the names there are.
    """
    presets = list_presets(paths)
    for preset in presets:
        if preset.name.casefold() == name.strip().casefold():
            return preset
    known = ", ".join(p.name for p in presets)
    raise ConfigError(f"there is no sampler preset named {name!r}; known: {known}")


def _file_for(name: str, paths: Paths | None) -> Path:
    from storyteller.cards import safe_file_stem

    folder = presets_dir(paths)
    stem = safe_file_stem(name)
    target, n = folder / f"{stem}.json", 1
    while target.exists():
        n += 1
        target = folder / f"{stem} ({n}).json"
    return target


def save_preset(name: str, values: Mapping[str, Any], paths: Paths | None = None, *,
                old_name: str | None = None) -> Preset:
    """Create or replace the user's preset ``name`` (atomically); saving a bundled name makes a user copy.

    Args:
        name: The preset's name.
        values: Sampling field -> value (only the fields the preset sets).
        paths: Where the presets folder is.
        old_name: The preset's name before an edit; its file is removed when the name changed.

    Raises:
        ConfigError: The name is empty or too long.
        FormatError: A value is unknown, of the wrong type or out of range (nothing is written).
    """
    name = _check_name(name)
    checked = validate_values(values, where=f"preset {name!r}")
    mine = {p.name.casefold(): p for p in _user_presets(paths, None)}
    existing = mine.get(name.casefold())
    target = existing.path if existing is not None and existing.path is not None else _file_for(name, paths)
    if target.suffix.lower() != ".json":
        target = _file_for(name, paths)  # a hand-written TOML preset is replaced by a JSON one
    dumped = Sampling.model_validate(checked).model_dump(mode="json", include=set(checked))
    body = {"name": name, "sampling": {key: dumped[key] for key in checked}}
    atomic_write(target, (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    stale = [existing.path] if existing is not None and existing.path not in (None, target) else []
    if old_name and old_name.strip().casefold() != name.casefold():
        old = mine.get(old_name.strip().casefold())
        if old is not None and old.path is not None:
            stale.append(old.path)
    for path in stale:
        path.unlink(missing_ok=True)
    return Preset(name, checked, path=target)


def delete_preset(name: str, paths: Paths | None = None) -> Path:
    """Remove the user's preset ``name``; returns the removed file.

    Raises:
        ConfigError: There is no user preset of that name (bundled presets cannot be deleted).
    """
    for preset in _user_presets(paths, None):
        if preset.name.casefold() == name.strip().casefold() and preset.path is not None:
            preset.path.unlink(missing_ok=True)
            return preset.path
    if name.strip().casefold() in {n.casefold() for n in BUNDLED_PRESETS}:
        raise ConfigError(f"{name!r} is a bundled preset and cannot be deleted (save a copy to change it)")
    raise ConfigError(f"there is no preset of yours named {name!r}")


def resolve_sampling(base: Sampling, preset_name: str | None, overrides: Mapping[str, Any] | None = None,
                     paths: Paths | None = None, *, warnings: list[str] | None = None) -> Sampling:
    """The sampler values for a turn: ``base``, then the named preset, then the story's overrides.

    A preset that no longer exists (or whose file broke) is skipped with a warning rather than
    stopping the story; the preset file is read on every call, so edits apply on the next turn.

    Args:
        base: The global ``[sampling]`` settings.
        preset_name: The story's ``sampler_preset`` (``None`` or empty: no preset).
        overrides: The story's ``sampler_overrides``.
        paths: Where the presets folder is.
        warnings: Receives a line when the preset is missing or unreadable.

    Raises:
        ConfigError: The overrides are invalid.
    """
    result = base
    if preset_name:
        try:
            result = find_preset(preset_name, paths).apply(base)
        except (ConfigError, FormatError, ValidationError) as exc:
            message = f"the sampler preset {preset_name!r} was not used: {exc}"
            log.warning("%s", message)
            if warnings is not None:
                warnings.append(message)
    if overrides:
        try:
            checked = validate_values(overrides, where="the story's sampler overrides")
        except FormatError as exc:
            raise ConfigError(str(exc)) from None
        result = type(result).model_validate({**result.model_dump(), **checked})
    return result


# -- import ---------------------------------------------------------------------------------

@dataclass
class PresetImportReport:
    """What an import read, used and left out.

    Attributes:
        source_format: ``storyteller``, ``sillytavern`` or ``kobold``.
        name: The preset's name.
        applied: Sampling field -> value taken from the file.
        renamed: Lines such as ``temp -> temperature``.
        ignored: Keys that were not used, each with the reason.
        repaired: Values that were changed to be usable.
    """

    source_format: str = ""
    name: str = ""
    applied: dict[str, Any] = field(default_factory=dict)
    renamed: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as lines a person reads."""
        out = [f"read as a {self.source_format} preset named {self.name!r}"]
        out += [f"{key} = {value!r}" for key, value in self.applied.items()]
        out += [f"renamed: {line}" for line in self.renamed]
        out += [f"repaired: {line}" for line in self.repaired]
        out += [f"ignored: {line}" for line in self.ignored]
        return out


# Where each foreign key goes. Shared by SillyTavern and the Kobolds unless a table says otherwise.
_COMMON_KEYS: dict[str, str] = {
    "temp": "temperature", "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
    "typical_p": "typical_p", "typical": "typical_p", "typ_s": "typical_p",
    "rep_pen": "repeat_penalty", "repeat_penalty": "repeat_penalty", "repetition_penalty": "repeat_penalty",
    "rep_pen_range": "repeat_last_n", "repeat_last_n": "repeat_last_n",
    "presence_pen": "presence_penalty", "presence_penalty": "presence_penalty",
    "freq_pen": "frequency_penalty", "frequency_penalty": "frequency_penalty",
    "mirostat_mode": "mirostat_mode", "mirostat": "mirostat_mode", "miro_type": "mirostat_mode",
    "mirostat_tau": "mirostat_tau", "miro_tau": "mirostat_tau",
    "mirostat_eta": "mirostat_eta", "miro_eta": "mirostat_eta",
    "dry_multiplier": "dry_multiplier", "dry_base": "dry_base", "dry_allowed_length": "dry_allowed_length",
    "dry_penalty_last_n": "dry_penalty_last_n",
    "dry_sequence_breakers": "dry_sequence_breakers",
    "xtc_probability": "xtc_probability", "xtc_threshold": "xtc_threshold",
    "nsigma": "top_n_sigma", "top_n_sigma": "top_n_sigma",
    "genamt": "max_tokens", "seed": "seed", "sampler_seed": "seed",
    "grammar_string": "grammar", "grammar": "grammar",
    "stopping_strings": "stop", "stop_sequence": "stop",
}
# ``max_length`` is the reply length to Kobold but the context size to SillyTavern.
_KOBOLD_KEYS = {**_COMMON_KEYS, "max_length": "max_tokens"}
_WHY_NOT: dict[str, str] = {
    "max_length": "the context size is an engine setting (Settings, F9)",
    "max_context_length": "the context size is an engine setting (Settings, F9)",
    "truncation_length": "the context size is an engine setting (Settings, F9)",
    "logit_bias": "biases by text cannot be turned into token ids here",
    "sampler_order": "the engine decides the sampler order",
    "sampler_priority": "the engine decides the sampler order",
    "samplers": "the engine decides the sampler order",
    "preset": "used as the name",
    "name": "used as the name",
}
_KOBOLD_ONLY = {"typical", "typ_s", "miro_type", "mirostat", "sampler_seed", "stop_sequence",
                "max_context_length", "rep_pen_slope", "preset", "savedsettings"}
_SILLYTAVERN_ONLY = {"temp", "genamt", "temperature_last", "sampler_priority", "rep_pen_decay", "freq_pen",
                     "presence_pen", "mirostat_mode", "typical_p", "grammar_string", "dynatemp"}


def _detect_format(data: Mapping[str, Any]) -> str:
    """``sillytavern`` or ``kobold`` from the keys of a foreign preset."""
    if "savedsettings" in data:
        return "kobold"
    kobold = len(_KOBOLD_ONLY.intersection(data))
    tavern = len(_SILLYTAVERN_ONLY.intersection(data))
    if kobold > tavern or ("temperature" in data and "temp" not in data and not tavern):
        return "kobold"
    return "sillytavern"


def _foreign_value(key: str, target: str, value: Any, report: PresetImportReport) -> tuple[bool, Any]:
    """(use it?, value) for one foreign key: the special cases of each format."""
    if target == "seed" and isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        report.repaired.append(f"{key} = {value}: a random seed each time (no fixed seed)")
        return True, None
    if target == "grammar" and (value is None or (isinstance(value, str) and not value.strip())):
        return False, None
    if target == "dry_penalty_last_n" and value == 0:
        # SillyTavern ships 0 as DRY's range next to its DRY switch: there 0 is the whole context
        # (llama.cpp, and storyteller, read 0 as "look at nothing", which would turn DRY off).
        report.repaired.append(f"{key} = 0: the whole context (-1), as SillyTavern and koboldcpp mean it")
        return True, -1
    if target in ("stop", "dry_sequence_breakers"):
        if isinstance(value, str):  # SillyTavern keeps its lists as JSON text
            try:
                value = json.loads(value) if value.strip() else []
            except ValueError:
                value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FormatError(f"{key} should be a list of strings, not {value!r}")
        return bool(value), value
    if isinstance(value, str) and target not in ("grammar",):
        try:
            number = float(value.strip())
        except ValueError:
            raise FormatError(f"{key} = {value!r} is not a number; fix it in the file") from None
        report.repaired.append(f"{key}: the text {value!r} read as the number {number:g}")
        value = int(number) if number.is_integer() else number
    if isinstance(value, float) and value.is_integer() and Sampling.model_fields[target].annotation in (int, int | None):
        value = int(value)
    return True, value


def _map_foreign(data: Mapping[str, Any], report: PresetImportReport) -> tuple[dict[str, Any], dict[str, str]]:
    """Sampling values (and the key each came from) from a SillyTavern or Kobold preset."""
    if isinstance(data.get("savedsettings"), dict):
        report.renamed.append("read the settings of a Kobold Lite save file")
        data = data["savedsettings"]
    table = _KOBOLD_KEYS if report.source_format == "kobold" else _COMMON_KEYS
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in data.items():
        target = table.get(key)
        if target is None:
            report.ignored.append(f"{key}: {_WHY_NOT.get(key, 'not a sampler storyteller has')}")
            continue
        if value is None:
            report.ignored.append(f"{key}: empty")
            continue
        if target in values:
            report.ignored.append(f"{key}: {sources[target]} already set {target}")
            continue
        use, value = _foreign_value(key, target, value, report)
        if not use:
            report.ignored.append(f"{key}: empty")
            continue
        values[target], sources[target] = value, key
        if key != target:
            report.renamed.append(f"{key} -> {target}")
    return values, sources


def parse_preset(data: Any, *, name: str = "") -> tuple[Preset, PresetImportReport]:
    """A preset from parsed JSON/TOML: storyteller's own shape, SillyTavern's or Kobold's.

    Args:
        data: The parsed file.
        name: The name to use when the data has none (usually the file's stem).

    Raises:
        FormatError: Not an object, or a value cannot be used; the message names the key.
    """
    if not isinstance(data, dict):
        raise FormatError(f"a preset is a JSON object of sampler values, not {type(data).__name__}")
    report = PresetImportReport()
    if isinstance(data.get("sampling"), dict):
        report.source_format = "storyteller"
        values, sources = {}, {}
        for key, value in data["sampling"].items():
            if key in Sampling.model_fields:
                values[key], sources[key] = value, key
            else:
                report.ignored.append(f"{key}: not a sampler value storyteller knows")
        for key in data:
            if key not in ("name", "sampling"):
                report.ignored.append(f"{key}: not part of a preset")
        own_name = data.get("name")
    else:
        report.source_format = _detect_format(data)
        values, sources = _map_foreign(data, report)
        own_name = data.get("name") if isinstance(data.get("name"), str) else data.get("preset")
    report.name = _check_name(own_name if isinstance(own_name, str) and own_name.strip() else name or "imported")
    checked = validate_values(values, where=f"preset {report.name!r}", sources=sources)
    report.applied = dict(checked)
    return Preset(report.name, checked), report


def read_preset_file(path: str | Path) -> tuple[Preset, PresetImportReport]:
    """Read a preset file (``.json`` or ``.toml``) without saving it anywhere.

    Raises:
        FormatError: Unreadable, not JSON/TOML, or a value cannot be used.
        LimitExceededError: The file is over 1 MiB.
    """
    path = Path(path)
    data = _read_data(path)
    try:
        return parse_preset(data, name=path.stem)
    except (ConfigError, FormatError) as exc:
        raise FormatError(f"{path.name}: {exc}") from None


def import_preset(path: str | Path, paths: Paths | None = None, *, name: str | None = None
                  ) -> tuple[Preset, PresetImportReport]:
    """Import a preset file into the user's presets, under a name no other preset has.

    Args:
        path: A storyteller, SillyTavern or Kobold preset file.
        paths: Where the presets folder is.
        name: The name to give it (default: the name in the file, else the file's stem).

    Raises:
        FormatError: The file cannot be used; nothing is written.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FormatError(f"there is no preset file at {path}; check the path")
    preset, report = read_preset_file(path)
    wanted = _check_name(name) if name else preset.name
    taken = {p.name.casefold() for p in list_presets(paths)}
    final, n = wanted, 1
    while final.casefold() in taken:
        n += 1
        final = f"{wanted} ({n})"
    if final != wanted:
        report.repaired.append(f"a preset named {wanted!r} exists; saved as {final!r}")
    report.name = final
    return save_preset(final, preset.values, paths), report
