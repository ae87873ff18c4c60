"""Instruct and context templates, kept as data.

Bundled templates live in ``storyteller/prompt/templates/*.json``; users add their own as JSON or
TOML files in ``<config>/templates/``, and SillyTavern's instruct and context preset JSON files
can be dropped there (or read with :func:`parse_template`) as they are. ``auto`` picks the bundled
preset whose markers appear in the model's own Jinja chat template, and otherwise derives the
sequences by rendering that template in a sandbox (see ``_jinja.py``).
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from storyteller.errors import FormatError

__all__ = [
    "NONE_TEMPLATE",
    "ContextTemplate",
    "InstructTemplate",
    "TemplateLibrary",
    "detect_preset",
    "load_library",
    "parse_template",
]

log = logging.getLogger(__name__)

MAX_TEMPLATE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class InstructTemplate:
    """How turns are wrapped for an instruction-tuned model.

    Attributes:
        name: Identifier (``chatml``, ``llama3``, ...); ``none`` means plain text.
        label: Human-readable name.
        system_prefix: Text before a system turn.
        system_suffix: Text after a system turn.
        user_prefix: Text before a user turn.
        user_suffix: Text after a user turn.
        assistant_prefix: Text before an assistant turn (also ends the prompt).
        assistant_suffix: Text after an assistant turn.
        system_same_as_user: The model has no system role; system turns use the user wrappers.
        stops: End-of-turn strings that stop generation.
        fingerprints: Markers that identify this format in a Jinja chat template (all must occur).
        priority: Lower is tried first when fingerprinting (more specific formats first).
        source: Where the template came from (``bundled``, a file path, ``jinja``).
    """

    name: str
    label: str = ""
    system_prefix: str = ""
    system_suffix: str = ""
    user_prefix: str = ""
    user_suffix: str = ""
    assistant_prefix: str = ""
    assistant_suffix: str = ""
    system_same_as_user: bool = False
    stops: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    priority: int = 100
    source: str = "bundled"

    @property
    def is_plain(self) -> bool:
        """True for the plain-text template (no wrapping at all)."""
        return self.name == "none"

    def wrappers(self, role: str) -> tuple[str, str]:
        """The (prefix, suffix) pair for a role."""
        if role == "system" and not self.system_same_as_user:
            return self.system_prefix, self.system_suffix
        if role == "assistant":
            return self.assistant_prefix, self.assistant_suffix
        return self.user_prefix, self.user_suffix

    def turn(self, role: str, content: str) -> str:
        """One whole turn: prefix, content, suffix."""
        prefix, suffix = self.wrappers(role)
        return prefix + content + suffix


NONE_TEMPLATE = InstructTemplate(name="none", label="Plain text (no instruct wrapping)")


@dataclass(frozen=True, slots=True)
class ContextTemplate:
    """The story string: how card fields, persona and world info open the prompt.

    Attributes:
        name: Identifier.
        story_string: Template with ``{{#if field}}...{{/if}}`` blocks and ``{{field}}``
            placeholders (SillyTavern's fields: system, description, personality, scenario,
            persona, wiBefore/loreBefore, wiAfter/loreAfter, char, user).
        example_separator: Heading line before each example block.
        chat_start: Line between the examples and the chat.
        label: Human-readable name.
        source: Where it came from.
    """

    name: str
    story_string: str
    example_separator: str = "***"
    chat_start: str = "***"
    label: str = ""
    source: str = "bundled"


@dataclass(slots=True)
class TemplateLibrary:
    """All known templates by name (user files override bundled ones of the same name)."""

    instruct: dict[str, InstructTemplate] = field(default_factory=dict)
    context: dict[str, ContextTemplate] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def get_instruct(self, name: str) -> InstructTemplate:
        """An instruct template by name (``none`` is always there)."""
        if name.lower() == "none":
            return NONE_TEMPLATE
        try:
            return self.instruct[name.lower()]
        except KeyError:
            known = ", ".join(["auto", "none", *sorted(self.instruct)])
            raise FormatError(f"unknown instruct template {name!r}; known: {known}") from None

    def get_context(self, name: str) -> ContextTemplate:
        """A context template by name."""
        try:
            return self.context[name.lower()]
        except KeyError:
            known = ", ".join(sorted(self.context))
            raise FormatError(f"unknown context template {name!r}; known: {known}") from None

    def resolve(self, name: str, chat_template: str | None = None) -> tuple[InstructTemplate, list[str]]:
        """Turn a template name (or ``auto``) into a template, with warnings for the user.

        Args:
            name: A template name, ``none``, or ``auto``.
            chat_template: The model's Jinja chat template (GGUF ``tokenizer.chat_template``).
        """
        if name.lower() != "auto":
            return self.get_instruct(name), []
        if not chat_template:
            return self.instruct["chatml"], ["the model's chat template is unknown; using ChatML"]
        preset = detect_preset(chat_template, self.instruct.values())
        if preset is not None:
            return preset, []
        from storyteller.prompt._jinja import derive_template

        try:
            return derive_template(chat_template), []
        except FormatError as exc:
            return self.instruct["chatml"], [f"{exc}; using ChatML"]


def detect_preset(chat_template: str, presets: Any) -> InstructTemplate | None:
    """The preset whose fingerprints all occur in a Jinja chat template, most specific first."""
    for preset in sorted(presets, key=lambda t: (t.priority, t.name)):
        if preset.fingerprints and all(mark in chat_template for mark in preset.fingerprints):
            return preset
    return None


def _text(data: dict[str, Any], key: str, source: str, default: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise FormatError(f"{source}: field {key!r} must be text, not {type(value).__name__}")
    return value


def _from_sillytavern_instruct(data: dict[str, Any], name: str, source: str) -> InstructTemplate:
    # ST puts "\n" between a sequence and the text when wrap is on, and an empty suffix
    # becomes "\n" (formatInstructModeChat).
    wrap = bool(data.get("wrap", True))
    sep = "\n" if wrap else ""

    def pair(seq_key: str, suffix_key: str) -> tuple[str, str]:
        seq = _text(data, seq_key, source)
        suffix = _text(data, suffix_key, source)
        return (seq + sep if seq else ""), (suffix or sep)

    user = pair("input_sequence", "input_suffix")
    assistant = pair("output_sequence", "output_suffix")
    system = pair("system_sequence", "system_suffix")
    stops = [_text(data, "stop_sequence", source)]
    stops += [_text(data, key, source).strip() for key in ("input_sequence", "output_sequence")]
    return InstructTemplate(
        name=name,
        label=_text(data, "name", source, name),
        system_prefix=system[0],
        system_suffix=system[1],
        user_prefix=user[0],
        user_suffix=user[1],
        assistant_prefix=assistant[0],
        assistant_suffix=assistant[1],
        system_same_as_user=bool(data.get("system_same_as_user", False)) or not system[0],
        stops=tuple(dict.fromkeys(s for s in stops if s)),
        source=source,
    )


def parse_template(data: dict[str, Any], *, source: str, name: str = "") -> InstructTemplate | ContextTemplate:
    """Read one template from its data: our own format or a SillyTavern preset.

    Args:
        data: The parsed JSON/TOML object.
        source: Where it came from, for messages.
        name: Fallback name (usually the file stem).

    Raises:
        FormatError: The data is neither an instruct nor a context template.
    """
    if not isinstance(data, dict):
        raise FormatError(f"{source}: a template must be an object")
    name = (_text(data, "name", source) if data.get("kind") else "") or name or _text(data, "name", source)
    name = name.strip().lower()
    if not name:
        raise FormatError(f"{source}: the template has no name")
    kind = data.get("kind")
    if kind == "instruct":
        stops = data.get("stops", [])
        fingerprints = data.get("fingerprints", [])
        if not all(isinstance(s, str) for s in [*stops, *fingerprints]):
            raise FormatError(f"{source}: 'stops' and 'fingerprints' must be lists of text")
        return InstructTemplate(
            name=name,
            label=_text(data, "label", source, name),
            **{k: _text(data, k, source) for k in (
                "system_prefix", "system_suffix", "user_prefix", "user_suffix",
                "assistant_prefix", "assistant_suffix",
            )},
            system_same_as_user=bool(data.get("system_same_as_user", False)),
            stops=tuple(stops),
            fingerprints=tuple(fingerprints),
            priority=int(data.get("priority", 100)),
            source=source,
        )
    if kind == "context" or "story_string" in data:
        return ContextTemplate(
            name=name,
            story_string=_text(data, "story_string", source),
            example_separator=_text(data, "example_separator", source, "***"),
            chat_start=_text(data, "chat_start", source, "***"),
            label=_text(data, "label", source, name),
            source=source,
        )
    if "input_sequence" in data or "output_sequence" in data:
        return _from_sillytavern_instruct(data, name, source)
    raise FormatError(
        f"{source}: not a template (expected kind 'instruct'/'context', or a SillyTavern "
        "instruct preset with input_sequence, or a context preset with story_string)"
    )


def _read_file(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_TEMPLATE_BYTES:
        raise FormatError(f"{path}: template files are limited to {MAX_TEMPLATE_BYTES} bytes")
    raw = path.read_bytes()
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(raw.decode("utf-8"))
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{path}: cannot read template: {exc}") from exc


def _add(library: TemplateLibrary, template: InstructTemplate | ContextTemplate) -> None:
    if isinstance(template, InstructTemplate):
        library.instruct[template.name] = template
    else:
        library.context[template.name] = template


def load_library(user_dir: Path | None = None) -> TemplateLibrary:
    """Bundled templates, then the user's folder on top (a bad user file becomes a warning).

    Args:
        user_dir: Folder of user templates; defaults to ``get_paths().config_dir / "templates"``.
    """
    library = TemplateLibrary()
    for entry in sorted(resources.files("storyteller.prompt").joinpath("templates").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            _add(library, parse_template(json.loads(entry.read_text("utf-8")), source="bundled"))
    if user_dir is None:
        from storyteller.paths import get_paths

        user_dir = get_paths().config_dir / "templates"
    if user_dir.is_dir():
        for path in sorted(user_dir.iterdir()):
            if path.suffix.lower() not in (".json", ".toml") or not path.is_file():
                continue
            try:
                _add(library, parse_template(_read_file(path), source=str(path), name=path.stem))
            except FormatError as exc:
                library.warnings.append(str(exc))
                log.warning("%s", exc)
    return library
