"""Reading character cards in every community format: one entry point, :func:`load_card`.

Formats are recognised by content, not by file name: PNG (``chara``/``ccv3`` in tEXt, zTXt
or iTXt; ``ccv3`` wins), CHARX (a zip with ``card.json``, also glued after another file), JSON
(V1, V2, V3, SillyTavern's hybrid where ``data`` wins, Pygmalion/Gradio) and oobabooga's YAML.
Every reader is lenient and reports what it changed; anything it cannot use raises
:class:`~storyteller.errors.FormatError` (or :class:`~storyteller.errors.LimitExceededError`
for the limits in :mod:`storyteller.cards.limits`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from storyteller.cards import _charx, _png
from storyteller.cards._normalize import Normaliser
from storyteller.cards.limits import DEFAULT_LIMITS, Limits
from storyteller.cards.model import Card, ImportReport
from storyteller.errors import FormatError, LimitExceededError
from storyteller.fileio import check_json_budget, read_limited
from storyteller.textsafe import SURROGATE_NOTE, repair_surrogates

__all__ = ["CardSource", "asset_path", "load_card", "parse_card_json", "read_bytes"]

CardSource = str | os.PathLike[str] | bytes | bytearray
V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
# Top-level keys SillyTavern writes as copies of data (or data.extensions) in a V2 hybrid.
_MIRRORS = {**{k: k for k in V1_FIELDS}, "creatorcomment": "creator_notes", "tags": "tags"}
_EXT_MIRRORS = ("talkativeness", "fav")
_ST_PLACEHOLDER_NOTE = "Creator's notes go here."
MAX_YAML_CHARS = 2 * 1024 * 1024
"""Largest YAML card read (PyYAML is slow: megabytes of YAML would take minutes)."""
_EMBEDDED_PREFIXES = ("embeded://", "embedded://", "__asset:")


def read_bytes(source: CardSource, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, str | None]:
    """Read a card file (or take bytes) within the size limit.

    Returns:
        The bytes and the file name (``None`` for bytes input).

    Raises:
        FormatError: The path is missing, a symlink, or not a regular file.
        LimitExceededError: The file is larger than ``limits.max_file_bytes``.
    """
    if isinstance(source, bytes | bytearray):
        if len(source) > limits.max_file_bytes:
            raise LimitExceededError(f"the card is {len(source)} bytes; the limit is {limits.max_file_bytes}")
        return bytes(source), None
    path = Path(source)
    data = read_limited(path, limits.max_file_bytes, "card")
    return data, path.name


def load_card(
    source: CardSource, filename: str | None = None, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[Card, ImportReport]:
    """Read a character card from a path or bytes, in any supported format.

    Args:
        source: A file path, or the file's bytes.
        filename: The file name, for bytes input: used only when the card has no name.
        limits: Safety limits (see :mod:`storyteller.cards.limits`).

    Returns:
        The normalised card and the report of what was repaired, defaulted or dropped.

    Raises:
        FormatError: The input is not a card, or is damaged beyond repair.
        LimitExceededError: The input breaks a safety limit.
    """
    buf, name = read_bytes(source, limits)
    filename = filename or name
    report = ImportReport()
    card = _dispatch(buf, filename, report, limits)
    if not card.name.strip():
        fallback = Path(filename).stem.strip() if filename else ""
        fallback = fallback or "Unnamed character"
        card.name = fallback
        report.needs_name = True
        report.defaulted.append(f"name: the card has no name; used {fallback!r}, please give it one")
    return card, report


def _dispatch(buf: bytes, filename: str | None, report: ImportReport, limits: Limits) -> Card:
    if buf.startswith(_png.PNG_MAGIC):
        chunks = _png.read_card_chunks(buf, limits, report)
        if chunks.ccv3 is not None or chunks.chara is not None:
            return _from_png(chunks, report, limits)
        if _charx.is_zip(buf):
            report.repaired.append("found a CHARX archive glued after the PNG")
            return _from_charx(buf, report, limits)
        raise FormatError(
            "the PNG holds no character card (no 'chara' or 'ccv3' text chunk); it is a plain image"
        )
    head = buf.lstrip()[:4]
    if head.startswith((b"{", b"[", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return parse_card_json(_decode_text(buf, report), report, limits, "json")
    if buf.startswith(b"PK\x03\x04") or _charx.is_zip(buf):
        return _from_charx(buf, report, limits)
    text = _decode_text(buf, report)
    lower = (filename or "").lower()
    if lower.endswith((".yaml", ".yml")) or ":" in text[:4096]:
        return _from_yaml(text, report, limits)
    raise FormatError("not a character card: not a PNG, CHARX, JSON or YAML file")


def _decode_text(buf: bytes, report: ImportReport) -> str:
    if buf.startswith((b"\xff\xfe", b"\xfe\xff")):
        report.repaired.append("the file was UTF-16; read it as such")
        try:
            return buf.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise FormatError(f"the file is not valid UTF-16 text ({exc.reason} at byte {exc.start})") from exc
    try:
        text = buf.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"the file is not valid UTF-8 text (bad byte at offset {exc.start}); re-save it as UTF-8"
        ) from exc
    if text.startswith("\ufeff"):
        report.repaired.append("removed a UTF-8 byte-order mark")
        text = text[1:]
    return text


def _check_depth(value: Any, limit: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise LimitExceededError(f"the card nests objects deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _load_json(text: str, limits: Limits, report: ImportReport) -> Any:
    bad_constants: list[str] = []

    def constant(name: str) -> None:
        bad_constants.append(name)

    check_json_budget(text, "the card")
    try:
        value = json.loads(text, parse_constant=constant)
    except RecursionError as exc:
        raise LimitExceededError("the JSON nests too deeply to read") from exc
    except ValueError as exc:
        raise FormatError(f"the card is not valid JSON ({exc})") from exc
    if bad_constants:
        report.dropped.append(f"non-JSON numbers ({', '.join(sorted(set(bad_constants)))}) replaced by null")
    _check_depth(value, limits.max_nesting)
    value, repaired = repair_surrogates(value)
    if repaired:
        report.repaired.append(f"{SURROGATE_NOTE} in {repaired} text field(s) with U+FFFD")
    return value


def parse_card_json(text: str, report: ImportReport, limits: Limits = DEFAULT_LIMITS, where: str = "json") -> Card:
    """Build a card from JSON text of any JSON card flavour (V1/V2/V3/hybrid/Pygmalion)."""
    return card_from_object(_load_json(text, limits, report), report, where)


def card_from_object(obj: Any, report: ImportReport, where: str) -> Card:
    """Build a card from a decoded JSON/YAML object, recognising its flavour."""
    if not isinstance(obj, dict):
        raise FormatError(f"the {where} data is not a character card (expected an object, got {type(obj).__name__})")
    spec = obj.get("spec")
    data = obj.get("data")
    if spec == "lorebook_v3" or ("entries" in obj and "name" not in obj and "data" not in obj):
        raise FormatError(f"the {where} data is a lorebook, not a character card; import it as world info")
    if "spec" in obj or (isinstance(data, dict) and "name" in data):
        if isinstance(data, dict):
            version = str(obj.get("spec_version", ""))
            is_v3 = spec == "chara_card_v3" or (spec != "chara_card_v2" and version.startswith("3"))
            if spec not in ("chara_card_v2", "chara_card_v3"):
                report.repaired.append(f"unknown spec {spec!r:.40}; read it as {'V3' if is_v3 else 'V2'}")
            report.source_format = f"{where}/{'v3' if is_v3 else 'v2'}"
            return _from_wrapped(obj, data, report, is_v3)
        if "name" in obj:
            report.repaired.append(f"spec {spec!r:.40} given but no data object; read it as a V1 card")
            return _from_v1(obj, report, where)
        raise FormatError(f"the {where} card claims spec {spec!r:.40} but has no data object")
    if "char_name" in obj:
        return _from_pygmalion(obj, report, where)
    if "name" in obj:
        return _from_v1(obj, report, where)
    raise FormatError(
        f"the {where} data is not a character card: it has none of the keys spec, name or char_name"
    )


def _validate(data: dict[str, Any], top: dict[str, Any]) -> Card:
    try:
        card = Card.model_validate(data)
    except ValidationError as exc:  # only reachable if normalisation missed a case
        raise FormatError(f"the card has values of the wrong type: {exc.errors()[0]['msg']}") from exc
    card.top_level_extras = top
    return card


def _from_wrapped(obj: dict[str, Any], data: dict[str, Any], report: ImportReport, is_v3: bool) -> Card:
    data = dict(data)
    top = {k: v for k, v in obj.items() if k not in ("spec", "spec_version", "data")}
    mirrored = any(k in top for k in (*_MIRRORS, *_EXT_MIRRORS))
    for legacy, field in _MIRRORS.items():
        if legacy not in top:
            continue
        value = top.pop(legacy)
        if field not in data and value not in (None, "", []):
            data[field] = value
            report.repaired.append(f"data.{field} was missing; took the top-level {legacy!r}")
        elif field in data and isinstance(value, str) and isinstance(data[field], str):
            if value.replace("\r\n", "\n") != data[field].replace("\r\n", "\n"):
                report.repaired.append(f"top-level {legacy!r} differs from data.{field}; data wins")
    for key in _EXT_MIRRORS:
        top.pop(key, None)
    norm = Normaliser(report, strict_v3=is_v3)
    clean = norm.card_data(data)
    norm.finish()
    card = _validate(clean, top)
    card.legacy_fields = mirrored  # a SillyTavern hybrid: write the top-level copies back
    return card


def _from_v1(obj: dict[str, Any], report: ImportReport, where: str) -> Card:
    report.source_format = f"{where}/v1"
    top = dict(obj)
    data: dict[str, Any] = {k: top.pop(k) for k in V1_FIELDS if k in top}
    note = top.pop("creatorcomment", None)
    if isinstance(note, str) and note.strip() == _ST_PLACEHOLDER_NOTE:
        report.dropped.append("creator notes: removed SillyTavern's placeholder text")
    elif note is not None:
        data["creator_notes"] = note
    if "tags" in top:
        data["tags"] = top.pop("tags")
    extensions = {k: top.pop(k) for k in _EXT_MIRRORS if k in top}
    if extensions:
        data["extensions"] = extensions
    report.repaired.append("upgraded a V1 card to V2 (new fields take their defaults)")
    norm = Normaliser(report)
    clean = norm.card_data(data)
    norm.finish(announce_missing=False)
    card = _validate(clean, top)
    card.legacy_fields = True  # its fields were top-level: every export keeps them there too
    return card


def _from_pygmalion(obj: dict[str, Any], report: ImportReport, where: str) -> Card:
    report.source_format = f"{where}/pygmalion"
    mapping = {"char_name": "name", "char_persona": "description", "char_greeting": "first_mes",
               "world_scenario": "scenario", "example_dialogue": "mes_example"}
    top = dict(obj)
    data = {field: top.pop(key) for key, field in mapping.items() if key in top}
    report.repaired.append("converted a Pygmalion/Gradio card (char_name, char_persona, ...) to V2")
    norm = Normaliser(report)
    clean = norm.card_data(data)
    norm.finish(announce_missing=False)
    return _validate(clean, top)


class _NoAliasLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses anchors/aliases (no billion-laughs expansion)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise FormatError("the YAML card uses aliases (*name); they are not allowed in cards")
        return super().compose_node(parent, index)


def _from_yaml(text: str, report: ImportReport, limits: Limits) -> Card:
    if len(text) > MAX_YAML_CHARS:
        raise LimitExceededError(
            f"the YAML card is {len(text) // 1024} KiB; YAML cards over {MAX_YAML_CHARS // 1024} KiB are not read "
            "(an oobabooga character is a few KiB, and a YAML parse of megabytes takes minutes)"
        )
    check_json_budget(text, "the YAML card")
    try:
        obj = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise FormatError(f"the card is neither JSON nor valid YAML ({str(exc)[:200]})") from exc
    except RecursionError as exc:
        raise LimitExceededError("the YAML nests too deeply to read") from exc
    _check_depth(obj, limits.max_nesting)
    obj, repaired = repair_surrogates(obj)
    if repaired:
        report.repaired.append(f"{SURROGATE_NOTE} in {repaired} text field(s) with U+FFFD")
    if not isinstance(obj, dict) or not any(isinstance(k, str) for k in obj):
        raise FormatError("the file is not a character card (YAML without a name or context)")
    obj = {str(k): v for k, v in obj.items()}
    if "spec" in obj or "char_name" in obj:
        return card_from_object(_jsonable(obj), report, "yaml")
    if "name" not in obj and "context" not in obj:
        raise FormatError("the YAML file is not an oobabooga character (no name or context key)")
    report.source_format = "yaml/oobabooga"
    top = _jsonable(obj)
    data = {field: top.pop(key) for key, field in
            (("name", "name"), ("context", "description"), ("greeting", "first_mes"),
             ("example_dialogue", "mes_example")) if key in top}
    report.repaired.append("converted an oobabooga YAML character (context, greeting) to V2")
    norm = Normaliser(report)
    clean = norm.card_data(data)
    norm.finish(announce_missing=False)
    return _validate(clean, top)


def _jsonable(value: Any) -> Any:
    """YAML may hold dates, sets and non-string keys; make it plain JSON data."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        if isinstance(value, float) and value != value:  # NaN would break equality and JSON
            return None
        return value
    return str(value)


def asset_path(uri: str) -> str | None:
    """The embedded file path an asset URI points to, or ``None`` for external URIs."""
    for prefix in _EMBEDDED_PREFIXES:
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return None


def _from_png(chunks: _png.CardChunks, report: ImportReport, limits: Limits) -> Card:
    candidates = [(k, t) for k, t in (("ccv3", chunks.ccv3), ("chara", chunks.chara)) if t is not None]
    card: Card | None = None
    first_error: FormatError | None = None
    for keyword, text in candidates:
        try:
            payload = _png.decode_payload(text, keyword, report)
            try:
                decoded = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FormatError(f"the {keyword} chunk does not hold UTF-8 text (byte {exc.start})") from exc
            card = parse_card_json(decoded.lstrip("\ufeff"), report, limits, f"png/{keyword}")
            break
        except LimitExceededError:
            raise
        except FormatError as exc:
            first_error = first_error or exc
            if keyword == "ccv3" and chunks.chara is not None:
                report.dropped.append(f"the ccv3 chunk is unreadable ({exc}); used the chara chunk")
    if card is None:
        assert first_error is not None
        raise first_error
    card.image = chunks.image
    files = {}
    for path, text in chunks.assets.items():
        try:
            files[path] = _png.decode_payload(text, f"asset {path!r}", report)
        except FormatError as exc:
            report.dropped.append(str(exc))
    card.files = files
    _check_assets(card, report)
    return card


def _from_charx(buf: bytes, report: ImportReport, limits: Limits) -> Card:
    files = _charx.read_charx(buf, limits)
    name = next((p for p in files if p.lower() == "card.json"), None)
    if name is None:
        raise FormatError("the CHARX archive has no card.json; it is not a character card")
    raw = files.pop(name)
    card = parse_card_json(_decode_text(raw, report), report, limits, "charx")
    card.files = files
    _check_assets(card, report)
    return card


def _check_assets(card: Card, report: ImportReport) -> None:
    for asset in card.assets or []:
        path = asset_path(asset.uri)
        if path is not None and path not in card.files:
            report.dropped.append(f"asset {asset.name!r}: embedded file {path!r} is missing from the card")
