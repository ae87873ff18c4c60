"""Writing cards: V2 and V3 JSON, PNG (``chara`` V2 + ``ccv3`` V3) and CHARX.

Strict out: the V3 output is true V3 (not SillyTavern's relabelled V2), the V2 output is the
hybrid SillyTavern writes (V1 fields mirrored at the top level for old readers, plus the
unknown top-level keys that came in). Unknown ``data`` keys and every ``extensions`` key are
written back. A PNG keeps the pixels it came with: its image chunks are copied, not
re-encoded. Files are written atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any, Literal

from storyteller.cards import _charx, _png
from storyteller.cards._image import placeholder_png, to_png
from storyteller.cards.limits import DEFAULT_LIMITS, Limits
from storyteller.cards.model import Card, ImportReport
from storyteller.cards.reader import V1_FIELDS, asset_path
from storyteller.errors import FormatError
from storyteller.fileio import atomic_write

__all__ = [
    "Spec",
    "atomic_write",
    "card_to_charx",
    "card_to_json",
    "card_to_png",
    "card_to_v2",
    "card_to_v3",
    "render_card",
    "save_card",
]

Spec = Literal["v2", "v3"]
ICON_PATH = "assets/icon/image/main.png"


def card_to_v3(card: Card) -> dict[str, Any]:
    """The card as a V3 object ``{"spec", "spec_version", "data", ...unknown top-level keys}``.

    A card that came with SillyTavern's top-level V1 copies (:attr:`Card.legacy_fields`) keeps
    them, as SillyTavern's own V3 writer does; a pure V3 card stays pure.
    """
    data = card.model_dump(mode="json")
    legacy = _legacy_fields(data) if card.legacy_fields else {}
    return {**card.top_level_extras, **legacy, "spec": "chara_card_v3", "spec_version": "3.0", "data": data}


def _legacy_fields(data: dict[str, Any]) -> dict[str, Any]:
    """SillyTavern's top-level copies of the V1 fields, made from ``data``."""
    out: dict[str, Any] = {k: data[k] for k in V1_FIELDS}
    out["creatorcomment"] = data["creator_notes"]
    out["tags"] = data["tags"]
    for key in ("talkativeness", "fav"):
        if key in data["extensions"]:
            out[key] = data["extensions"][key]
    return out


def card_to_v2(card: Card, *, legacy_fields: bool = True) -> dict[str, Any]:
    """The card as a V2 object, SillyTavern-style.

    Args:
        card: The card.
        legacy_fields: Also mirror the V1 fields, ``creatorcomment``, ``tags`` and
            talkativeness/fav at the top level, as SillyTavern does for old readers.
    """
    data = card.model_dump(mode="json")
    out: dict[str, Any] = dict(card.top_level_extras)
    if legacy_fields:
        out.update(_legacy_fields(data))
    out.update({"spec": "chara_card_v2", "spec_version": "2.0", "data": data})
    return out


def card_to_json(card: Card, spec: Spec = "v3") -> bytes:
    """UTF-8 JSON text of the card in the chosen spec (4-space indent, like SillyTavern)."""
    obj = card_to_v3(card) if spec == "v3" else card_to_v2(card)
    return (json.dumps(obj, ensure_ascii=False, indent=4) + "\n").encode("utf-8")


def _b64_json(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def _icon_asset(card: Card) -> tuple[int, str] | None:
    """Index and file path of the embedded main icon, if the card has one."""
    found = None
    for index, asset in enumerate(card.assets or []):
        path = asset_path(asset.uri)
        if asset.type == "icon" and path is not None and path in card.files:
            if asset.name == "main":
                return index, path
            found = found or (index, path)
    return found


def card_to_png(card: Card, *, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """PNG bytes carrying the card as ``chara`` (V2) and ``ccv3`` (V3) tEXt chunks.

    The image is the card's own PNG when it came from one (pixels untouched), else its
    embedded main icon (re-encoded to PNG if needed), else a drawn placeholder. Embedded
    files become ``chara-ext-asset_:<path>`` chunks referenced as ``__asset:<path>``.
    """
    v3 = card_to_v3(card)
    files = dict(card.files)
    base = card.image
    if base is None:
        icon = _icon_asset(card)
        if icon is not None:
            index, path = icon
            data = files.pop(path)
            base = data if data.startswith(_png.PNG_MAGIC) else to_png(data, limits)
            v3["data"]["assets"][index]["uri"] = "ccdefault:"
        else:
            base = placeholder_png(card.name)
    image = _png.read_card_chunks(base, limits, ImportReport()).image
    for asset in v3["data"].get("assets") or []:
        path = asset_path(asset["uri"])
        if path is not None:
            asset["uri"] = f"__asset:{path}"
    texts = [("chara", _b64_json(card_to_v2(card))), ("ccv3", _b64_json(v3))]
    texts += [(f"{_png.ASSET_PREFIX}:{path}", base64.b64encode(files[path]).decode("ascii")) for path in sorted(files)]
    return _png.build_png(image, texts)


def card_to_charx(card: Card) -> bytes:
    """CHARX bytes: V3 ``card.json`` plus every embedded file (and the PNG avatar as icon)."""
    v3 = card_to_v3(card)
    files = dict(card.files)
    assets = v3["data"].get("assets")
    if card.image is not None and _icon_asset(card) is None:
        files[ICON_PATH] = card.image
        icon = {"type": "icon", "uri": f"embeded://{ICON_PATH}", "name": "main", "ext": "png"}
        if assets is None:
            assets = v3["data"]["assets"] = [icon]
        else:
            default = next((a for a in assets if a.get("uri") == "ccdefault:"), None)
            if default is not None:
                default["uri"] = icon["uri"]
            else:
                assets.append(icon)
    for asset in assets or []:
        if asset["uri"].startswith("__asset:"):  # PNG-only form; CHARX uses the spec's embeded://
            asset["uri"] = f"embeded://{asset['uri'].removeprefix('__asset:')}"
    card_json = json.dumps(v3, ensure_ascii=False, indent=4).encode("utf-8")
    return _charx.write_charx(card_json, files)


def render_card(card: Card, suffix: str, spec: Spec = "v3", *, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The bytes of ``card`` in the format named by a file suffix (``.png``/``.json``/``.charx``)."""
    suffix = suffix.lower()
    if suffix == ".png":
        return card_to_png(card, limits=limits)
    if suffix == ".json":
        return card_to_json(card, spec)
    if suffix == ".charx":
        return card_to_charx(card)
    raise FormatError(f"cannot write a card as {suffix or 'a file without extension'!r}; use .png, .json or .charx")


def save_card(card: Card, path: str | os.PathLike[str], spec: Spec = "v3", *, limits: Limits = DEFAULT_LIMITS) -> Path:
    """Write ``card`` to ``path``, the format chosen by its extension; atomic.

    Args:
        card: The card.
        path: Destination ending in ``.png``, ``.json`` or ``.charx``.
        spec: ``"v2"`` or ``"v3"`` for JSON output (PNG always carries both).
        limits: Limits for images decoded on the way.
    """
    target = Path(path)
    data = render_card(card, target.suffix, spec, limits=limits)
    atomic_write(target, data)
    return target
