"""Group activated entries by insertion position, in SillyTavern's order."""

from __future__ import annotations

from collections.abc import Sequence

from storyteller.lore.model import Position
from storyteller.lore.results import ActivatedEntry, DepthInjection, WorldInfoPrompt

__all__ = ["build_prompt"]


def build_prompt(entries: Sequence[ActivatedEntry]) -> WorldInfoPrompt:
    """Place entries by position.

    SillyTavern sorts by ``order`` descending and *unshifts* each entry into its list, so every
    list ends up ascending: a higher ``order`` sits later, closer to the chat. Entries with equal
    order end up in reverse scan order, exactly as there. Empty contents are left out.
    """
    prompt = WorldInfoPrompt()
    ranked = sorted(entries, key=lambda e: -e.order)
    depth_groups: dict[tuple[int, int], DepthInjection] = {}
    for entry in ranked:
        if not entry.content:
            continue
        text = entry.content
        match entry.position:
            case Position.BEFORE_CHAR:
                prompt.before.insert(0, text)
            case Position.AFTER_CHAR:
                prompt.after.insert(0, text)
            case Position.AN_TOP:
                prompt.an_top.insert(0, text)
            case Position.AN_BOTTOM:
                prompt.an_bottom.insert(0, text)
            case Position.EM_TOP:
                prompt.em_top.insert(0, text)
            case Position.EM_BOTTOM:
                prompt.em_bottom.insert(0, text)
            case Position.AT_DEPTH:
                slot = (entry.depth, int(entry.role))
                group = depth_groups.get(slot)
                if group is None:
                    group = depth_groups[slot] = DepthInjection(depth=entry.depth, role=entry.role)
                    prompt.depth.append(group)
                group.entries.insert(0, text)
            case Position.OUTLET:
                prompt.outlets.setdefault(entry.outlet_name, []).insert(0, text)
    return prompt
