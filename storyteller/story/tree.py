"""The story tree in memory: nodes, the current-path pointer, and the events that change them.

Everything that changes a story is an *event*, a small JSON object; the same :meth:`StoryTree.apply`
runs when an event is made and when a journal is replayed, so what is on disk and what is in
memory cannot drift apart. Events:

``{"t": "add", "nodes": [node, ...], "select": id | null}``
    New nodes (a turn, a swipe, an edit, an import); ``select`` moves the pointer to one of
    them (absent or ``null``: the pointer stays).
``{"t": "select", "node": id | null}``
    The pointer moved (undo, redo, swipe); ``null`` is the empty story before the first node.
``{"t": "hide", "node": id, "hidden": bool}``
    A node was hidden or shown again (kiosk moderation). Nothing is deleted.
``{"t": "settings", "changes": {field: value}}``
    Story settings changed (top-level fields replaced).

The pointer is the *current node* plus, for every node, the child chosen last: undo moves to
the parent, redo follows the chosen child, and a swipe chooses another sibling, so no move ever
loses a turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from storyteller.story.model import Node, StorySettings

__all__ = ["Message", "StoryTree"]

_ROOT_KEY = ""  # JSON object keys must be strings; "" stands for the virtual root


@dataclass(frozen=True, slots=True)
class Message:
    """A node together with the ``continue`` nodes that extend it on the current path.

    Attributes:
        nodes: The head node first, then its continuations in order.
    """

    nodes: tuple[Node, ...]

    @property
    def head(self) -> Node:
        """The node that started the message."""
        return self.nodes[0]

    @property
    def text(self) -> str:
        """The full text: the head's text followed by every continuation."""
        return "".join(n.text for n in self.nodes)


class StoryTree:
    """The nodes of one story, its pointer, hidden set and settings.

    Attributes:
        nodes: Every node ever added, by id, in the order they were added.
        current: The id of the node the story currently ends at (``None``: empty path).
        hidden: Ids of hidden nodes.
        settings: The story settings.
        seq: The sequence number of the last event applied.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._children: dict[str | None, list[str]] = {None: []}
        self._chosen: dict[str | None, str] = {}
        self.current: str | None = None
        self.hidden: set[str] = set()
        self.settings = StorySettings()
        self.seq = 0

    # -- queries -----------------------------------------------------------------------------

    def node(self, node_id: str) -> Node:
        """The node with this id.

        Raises:
            KeyError: No such node.
        """
        return self.nodes[node_id]

    def children(self, node_id: str | None) -> list[Node]:
        """The children of a node (``None``: the first messages), oldest first."""
        return [self.nodes[c] for c in self._children.get(node_id, ())]

    def siblings(self, node_id: str) -> list[Node]:
        """The node and its alternatives (swipes), oldest first."""
        return self.children(self.nodes[node_id].parent)

    def chosen_child(self, node_id: str | None) -> str | None:
        """The child that redo would move to from this node."""
        return self._chosen.get(node_id)

    def path_to(self, node_id: str | None) -> list[Node]:
        """The nodes from the first message down to ``node_id`` (inclusive)."""
        path: list[Node] = []
        while node_id is not None:
            node = self.nodes[node_id]
            path.append(node)
            node_id = node.parent
        path.reverse()
        return path

    def current_path(self, *, include_hidden: bool = False) -> list[Node]:
        """The nodes of the current path, first message first.

        Args:
            include_hidden: Keep hidden nodes (moderated away) in the result.
        """
        path = self.path_to(self.current)
        if include_hidden:
            return path
        return [n for n in path if n.id not in self.hidden]

    def chosen_leaf(self, node_id: str | None) -> str | None:
        """Follow the chosen children from a node down as far as they go."""
        seen: set[str | None] = set()
        while node_id not in seen:
            seen.add(node_id)
            nxt = self._chosen.get(node_id)
            if nxt is None:
                break
            node_id = nxt
        return node_id

    def messages(self, path: list[Node] | None = None) -> list[Message]:
        """The path as messages: each ``continue`` node is folded into the message before it."""
        result: list[list[Node]] = []
        for node in self.current_path() if path is None else path:
            if node.kind == "continue" and result:
                result[-1].append(node)
            else:
                result.append([node])
        return [Message(tuple(nodes)) for nodes in result]

    def iter_nodes(self) -> Iterator[Node]:
        """Every node, in the order added (parents always come before their children)."""
        return iter(self.nodes.values())

    # -- events ------------------------------------------------------------------------------

    def check(self, event: dict[str, Any]) -> None:
        """Raise ``ValueError`` if ``event`` cannot be applied to this tree; change nothing."""
        kind = event.get("t")
        if kind == "add":
            raw = event.get("nodes")
            if not isinstance(raw, list) or not raw:
                raise ValueError("an add event needs a non-empty list of nodes")
            known = set(self.nodes)
            for item in raw:
                node = item if isinstance(item, Node) else Node.from_dict(item)
                if node.id in known:
                    raise ValueError(f"node {node.id} already exists")
                if node.parent is not None and node.parent not in known:
                    raise ValueError(f"node {node.id} names an unknown parent {node.parent}")
                known.add(node.id)
            select = event.get("select")
            if select is not None and select not in known:
                raise ValueError(f"cannot select unknown node {select}")
        elif kind == "select":
            target = event.get("node")
            if target is not None and target not in self.nodes:
                raise ValueError(f"cannot select unknown node {target}")
        elif kind == "hide":
            if event.get("node") not in self.nodes:
                raise ValueError(f"cannot hide unknown node {event.get('node')}")
        elif kind == "settings":
            self._merged_settings(event.get("changes"))
        else:
            raise ValueError(f"unknown event type {kind!r}")

    def apply(self, event: dict[str, Any]) -> None:
        """Check and apply one event. ``seq`` is taken from the event when it has one.

        Raises:
            ValueError: The event does not fit this tree (nothing was changed).
        """
        self.check(event)
        kind = event["t"]
        if kind == "add":
            for item in event["nodes"]:
                self._add(item if isinstance(item, Node) else Node.from_dict(item))
            if event.get("select") is not None:
                self._select(event["select"])
        elif kind == "select":
            self._select(event.get("node"))
        elif kind == "hide":
            if event.get("hidden", True):
                self.hidden.add(event["node"])
            else:
                self.hidden.discard(event["node"])
        elif kind == "settings":
            self.settings = self._merged_settings(event["changes"])
        if isinstance(event.get("seq"), int):
            self.seq = event["seq"]

    def _add(self, node: Node) -> None:
        self.nodes[node.id] = node
        self._children.setdefault(node.id, [])
        self._children.setdefault(node.parent, []).append(node.id)

    def _select(self, node_id: str | None) -> None:
        self.current = node_id
        # Record the choice at every level so that redo and swipes come back along this path.
        while node_id is not None:
            parent = self.nodes[node_id].parent
            self._chosen[parent] = node_id
            node_id = parent

    def _merged_settings(self, changes: Any) -> StorySettings:
        if not isinstance(changes, dict):
            raise ValueError("a settings event needs a 'changes' object")
        try:
            return StorySettings.model_validate({**self.settings.model_dump(), **changes})
        except ValidationError as exc:
            raise ValueError(f"invalid story settings: {exc}") from None

    # -- snapshots ---------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The whole tree as JSON-ready data (what a snapshot holds)."""
        return {
            "seq": self.seq,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "chosen": {(_ROOT_KEY if k is None else k): v for k, v in self._chosen.items()},
            "current": self.current,
            "hidden": sorted(self.hidden),
            "settings": self.settings.model_dump(mode="json"),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StoryTree:
        """Rebuild a tree from :meth:`to_state` data.

        Raises:
            ValueError: The data is inconsistent.
        """
        tree = cls()
        try:
            for item in state["nodes"]:
                node = Node.from_dict(item)
                if node.id in tree.nodes or (node.parent is not None and node.parent not in tree.nodes):
                    raise ValueError(f"node {node.id} is duplicated or comes before its parent")
                tree._add(node)
            for key, value in dict(state.get("chosen") or {}).items():
                parent = None if key == _ROOT_KEY else key
                if value in tree.nodes and tree.nodes[value].parent == parent:
                    tree._chosen[parent] = value
            current = state.get("current")
            if current is not None and current not in tree.nodes:
                raise ValueError(f"the current node {current} does not exist")
            tree.current = current
            tree.hidden = {h for h in state.get("hidden") or () if h in tree.nodes}
            tree.settings = StorySettings.model_validate(state.get("settings") or {})
            tree.seq = int(state.get("seq") or 0)
        except (KeyError, TypeError, ValidationError) as exc:
            raise ValueError(f"snapshot state is malformed: {exc}") from None
        return tree
