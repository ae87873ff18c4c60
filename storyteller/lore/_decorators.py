"""Character Card V3 ``@@`` decorators at the start of an entry's content.

SillyTavern honours only ``@@activate`` and ``@@dont_activate``. We honour every decorator of
the V3 spec that has a meaning in this engine and strip the rest, reporting them:

| decorator | effect here |
|---|---|
| ``@@activate`` / ``@@dont_activate`` | force / forbid activation (as SillyTavern) |
| ``@@depth N`` | insert at depth N (position @depth) |
| ``@@role system|user|assistant`` | role of the @depth insertion |
| ``@@scan_depth N`` | per-entry scan depth |
| ``@@position before_desc|after_desc`` | before / after the character |
| ``@@activate_only_after N`` | only once the chat has at least N messages |
| ``@@activate_only_every N`` | only when the chat length is a multiple of N |
| ``@@keep_activate_after_match`` | stays active for good once it fires (endless sticky) |
| ``@@dont_activate_after_match`` | never fires again once it fired (endless cooldown) |
| ``@@ignore_on_max_context`` | never bypasses the budget, even with ``ignoreBudget`` |
| ``@@additional_keys a,b`` | extra primary keys |
| ``@@exclude_keys a,b`` | does not fire when any of these keys is present |

Not applicable here, stripped and reported: ``@@instruct_depth``, ``@@reverse_depth``,
``@@reverse_instruct_depth``, ``@@instruct_scan_depth``, ``@@is_greeting``, ``@@is_user_icon``,
``@@disable_ui_prompt``, ``@@position personality|scenario`` and any unknown name. A line
starting ``@@@`` is a fallback: it applies only when the decorator before it was not honoured.

Unlike SillyTavern, content made only of decorator lines is stripped too (SillyTavern leaves
the decorators in the text that goes to the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from storyteller.lore.model import Position, Role

__all__ = ["ENDLESS", "Decorated", "parse_decorators"]

ENDLESS = 10**9
_ROLES = {"system": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}


@dataclass(frozen=True, slots=True)
class Decorated:
    """An entry's content with its decorators applied.

    Attributes:
        content: The content without decorator lines.
        activate: ``@@activate``.
        dont_activate: ``@@dont_activate``.
        depth: ``@@depth``.
        role: ``@@role``.
        scan_depth: ``@@scan_depth``.
        position: ``@@position``.
        only_after: ``@@activate_only_after``.
        only_every: ``@@activate_only_every``.
        keep_after_match: ``@@keep_activate_after_match``.
        dont_after_match: ``@@dont_activate_after_match``.
        ignore_on_max_context: ``@@ignore_on_max_context``.
        additional_keys: ``@@additional_keys``.
        exclude_keys: ``@@exclude_keys``.
        ignored: Decorator lines stripped without effect.
    """

    content: str
    activate: bool = False
    dont_activate: bool = False
    depth: int | None = None
    role: Role | None = None
    scan_depth: int | None = None
    position: Position | None = None
    only_after: int | None = None
    only_every: int | None = None
    keep_after_match: bool = False
    dont_after_match: bool = False
    ignore_on_max_context: bool = False
    additional_keys: tuple[str, ...] = ()
    exclude_keys: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


def _number(arg: str) -> int | None:
    arg = arg.strip()
    return int(arg) if arg.isdigit() else None


def _apply(name: str, arg: str, out: dict) -> bool:  # noqa: C901 - a flat table of cases
    """Apply one decorator to ``out``; return False when it is not honoured."""
    if name == "activate":
        out["activate"] = True
    elif name == "dont_activate":
        out["dont_activate"] = True
    elif name in ("depth", "scan_depth", "activate_only_after", "activate_only_every"):
        value = _number(arg)
        if value is None or (name == "activate_only_every" and value == 0):
            return False
        field = {"activate_only_after": "only_after", "activate_only_every": "only_every"}.get(name, name)
        out[field] = min(value, 1000) if name in ("depth", "scan_depth") else value
    elif name == "role":
        role = _ROLES.get(arg.strip().lower())
        if role is None:
            return False
        out["role"] = role
    elif name == "position":
        where = arg.strip().lower()
        if where == "before_desc":
            out["position"] = Position.BEFORE_CHAR
        elif where == "after_desc":
            out["position"] = Position.AFTER_CHAR
        else:
            return False
    elif name == "keep_activate_after_match":
        out["keep_after_match"] = True
    elif name == "dont_activate_after_match":
        out["dont_after_match"] = True
    elif name == "ignore_on_max_context":
        out["ignore_on_max_context"] = True
    elif name in ("additional_keys", "exclude_keys"):
        keys = tuple(k.strip() for k in arg.split(",") if k.strip())
        if not keys:
            return False
        out[name] = out.get(name, ()) + keys
    else:
        return False
    return True


@lru_cache(maxsize=16384)
def parse_decorators(content: str) -> Decorated:
    """Split leading ``@@`` lines off ``content`` and interpret them."""
    if not content.startswith("@@"):
        return Decorated(content=content)
    lines = content.split("\n")
    out: dict = {}
    ignored: list[str] = []
    previous_honoured = True
    rest_start = len(lines)
    for index, line in enumerate(lines):
        if not line.startswith("@@"):
            rest_start = index
            break
        fallback = line.startswith("@@@")
        if fallback and previous_honoured:
            continue  # a fallback for a decorator we honoured: not needed
        body = line[3:] if fallback else line[2:]
        name, _, arg = body.strip().partition(" ")
        previous_honoured = _apply(name.strip().lower(), arg, out)
        if not previous_honoured:
            ignored.append(line)
    return Decorated(content="\n".join(lines[rest_start:]), ignored=tuple(ignored), **out)
