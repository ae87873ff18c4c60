"""Per-activation view of an entry: decorators applied, keys substituted, trace record attached."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storyteller.lore._decorators import ENDLESS, Decorated, parse_decorators
from storyteller.lore.model import Lorebook, Position, Role, WorldEntry
from storyteller.lore.results import EntryTrace
from storyteller.lore.timed import entry_key

__all__ = ["Item", "build_items"]


@dataclass(slots=True, eq=False)
class Item:
    """One entry as the engine sees it during one activation."""

    key: str
    book: str
    index: int
    entry: WorldEntry
    deco: Decorated
    keys: tuple[str, ...]
    secondary: tuple[str, ...]
    exclude: tuple[str, ...]
    position: Position
    depth: int
    role: Role
    scan_depth: int | None
    sticky: int | None
    cooldown: int | None
    trace: EntryTrace

    @property
    def groups(self) -> list[str]:
        """Inclusion group names."""
        return self.entry.groups


def _subst(values: Sequence[str], substitute: Callable[[str], str] | None) -> tuple[str, ...]:
    out = []
    for value in values:
        text = substitute(value) if substitute else value
        text = text.strip()
        if text:
            out.append(text)
    return tuple(out)


def build_items(
    books: Sequence[Lorebook], strategy: str, substitute: Callable[[str], str] | None
) -> list[Item]:
    """Flatten books into scan order.

    ``in_order`` keeps the books in the order given (pass the character book first for
    SillyTavern's "character first" default) and sorts each by ``order``, descending;
    ``evenly`` sorts all entries together. Python's sort is stable, so ties keep file order.
    """
    per_book: list[list[tuple[str, WorldEntry]]] = []
    seen: set[str] = set()
    for number, book in enumerate(books):
        name = book.name or f"book{number}"
        if name in seen:
            name = f"{name}#{number}"
        seen.add(name)
        per_book.append([(name, e) for e in sorted(book.entries, key=lambda e: -e.order)])
    if strategy == "evenly":
        flat = sorted((pair for group in per_book for pair in group), key=lambda p: -p[1].order)
    else:
        flat = [pair for group in per_book for pair in group]
    items = []
    for index, (book_name, entry) in enumerate(flat):
        deco = parse_decorators(entry.content)
        position = deco.position if deco.position is not None else entry.position
        if deco.depth is not None:
            position = Position.AT_DEPTH
        key = entry_key(book_name, entry.uid)
        items.append(
            Item(
                key=key,
                book=book_name,
                index=index,
                entry=entry,
                deco=deco,
                keys=_subst([*entry.keys, *deco.additional_keys], substitute),
                secondary=_subst(entry.secondary_keys, substitute),
                exclude=_subst(deco.exclude_keys, substitute),
                position=Position(position),
                depth=deco.depth if deco.depth is not None else entry.depth,
                role=deco.role if deco.role is not None else entry.role,
                scan_depth=deco.scan_depth if deco.scan_depth is not None else entry.scan_depth,
                sticky=ENDLESS if deco.keep_after_match else entry.sticky,
                cooldown=ENDLESS if deco.dont_after_match else entry.cooldown,
                trace=EntryTrace(
                    key=key,
                    book=book_name,
                    uid=entry.uid,
                    title=entry.title,
                    position=Position(position),
                    order=entry.order,
                ),
            )
        )
    return items
