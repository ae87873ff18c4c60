"""Inclusion groups: at most one entry of a group fires (SillyTavern's ``filterByInclusionGroups``).

Steps per group, on the entries that matched in this pass: a sticky member wins outright; with
group scoring only the members with the most matching keys stay; a group that already fired in
an earlier pass drops all new members; otherwise the "prioritise" member with the highest order
wins, else a weighted random roll over ``groupWeight`` picks one.

Deliberate differences: "already fired" checks membership properly (SillyTavern compares the
whole comma-separated ``group`` string, so an entry in two groups slips through), and an entry
removed by one group no longer takes part in another group's roll (SillyTavern can pick an
already removed entry, leaving the other group empty).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from storyteller.lore._items import Item

__all__ = ["filter_groups"]


def filter_groups(
    candidates: list[Item],
    earlier: Iterable[Item],
    *,
    is_sticky: Callable[[Item], bool],
    score: Callable[[Item], int],
    global_scoring: bool,
    rng: random.Random,
) -> dict[Item, str]:
    """Decide the groups among ``candidates``.

    Args:
        candidates: Entries matched in this pass, in scan order.
        earlier: Entries activated in earlier passes.
        is_sticky: Whether an entry's sticky effect is running.
        score: Number of matching keys (group scoring).
        global_scoring: The global group-scoring setting.
        rng: Random source for the weighted roll.

    Returns:
        The losers, each with the sentence that explains why.
    """
    grouped: dict[str, list[Item]] = {}
    for item in candidates:
        for name in item.groups:
            grouped.setdefault(name, []).append(item)
    losers: dict[Item, str] = {}
    if not grouped:
        return losers
    earlier_groups: dict[str, Item] = {}
    for item in earlier:
        for name in item.groups:
            earlier_groups.setdefault(name, item)

    def alive(group: list[Item]) -> list[Item]:
        return [x for x in group if x not in losers]

    sticky_groups = set()
    for name, group in grouped.items():
        stickies = [x for x in group if is_sticky(x)]
        if stickies:
            sticky_groups.add(name)
            for item in group:
                if item not in stickies:
                    losers.setdefault(item, f"group '{name}': sticky entry {stickies[0].entry.uid} holds it")

    for name, group in grouped.items():
        group = alive(group)
        scored = [x for x in group if (x.entry.use_group_scoring if x.entry.use_group_scoring is not None else global_scoring)]
        if name in sticky_groups or not scored or len(group) < 2:
            continue
        scores = {x: score(x) for x in group}
        best = max(scores.values())
        for item in scored:
            if scores[item] < best:
                losers.setdefault(item, f"group '{name}': score {scores[item]} below the best {best}")

    for name, group in grouped.items():
        group = alive(group)
        if name in sticky_groups or not group:
            continue
        if name in earlier_groups:
            for item in group:
                losers.setdefault(item, f"group '{name}' already fired (entry {earlier_groups[name].entry.uid})")
            continue
        if len(group) < 2:
            continue
        prioritised = sorted((x for x in group if x.entry.group_override), key=lambda x: -x.entry.order)
        if prioritised:
            winner = prioritised[0]
            how = f"prioritised entry {winner.entry.uid} won group '{name}'"
        else:
            weights = [max(float(x.entry.group_weight), 0.0) for x in group]
            total = sum(weights)
            if total <= 0:
                continue
            roll = rng.random() * total
            running = 0.0
            winner = group[-1]
            for item, weight in zip(group, weights, strict=True):
                running += weight
                if roll <= running:
                    winner = item
                    break
            how = f"entry {winner.entry.uid} won the weighted roll of group '{name}' ({roll:.1f} of {total:g})"
        for item in group:
            if item is not winner:
                losers.setdefault(item, how)
    return losers
