"""The story transcript: one :class:`MessageView` per message, mounted lazily from the end.

A 5,000-message story must open at once, so only the newest :data:`PAGE` messages are mounted;
scrolling to the top (or Home / clicking the banner) mounts the page before. While a reply
streams it is plain text; once finished it is rendered as Markdown. Text from the player, the
card or the model is never parsed as markup: it goes into ``rich.text.Text`` or Rich's
Markdown renderer, neither of which reads ``[tags]``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.events import Click
from textual.widgets import Static

__all__ = ["MEMBER_COLOURS", "PAGE", "MessageView", "Transcript", "display_text", "member_colours"]

PAGE = 50
"""Messages mounted at a time."""

MEMBER_COLOURS = ("#d8468f", "#2a84c5", "#1f9245", "#b56d26", "#9764de", "#1e8c8c", "#d6553b", "#6e881d")
"""Author colours of a group's members: eight hues of one luminance (about 0.21), so each has at
least 3:1 contrast (WCAG's level for bold text) on the background of every built-in theme, dark
or light."""


def member_colours(names: Sequence[str]) -> dict[str, str]:
    """A colour for each member name: the same name gets the same colour in every group (a hash of
    the name picks it), unless an earlier member of this group took it (then the next free one).

    Args:
        names: The members, in list order.
    """
    taken: dict[str, str] = {}
    for name in names:
        key = name.casefold()
        if not key or key in taken:
            continue
        start = zlib.crc32(key.encode("utf-8")) % len(MEMBER_COLOURS)
        free = [MEMBER_COLOURS[(start + i) % len(MEMBER_COLOURS)] for i in range(len(MEMBER_COLOURS))]
        used = set(taken.values())
        taken[key] = next((c for c in free if c not in used), free[0])
    return taken

def display_text(message: Any, mode: str) -> str:
    """The text a message shows: adventure inputs as ``> You open the door.``."""
    head = message.head
    text = message.text
    if head.is_player and head.is_user and mode == "adventure":
        if head.kind in ("do", "say"):
            from storyteller.session import format_action

            return "> " + format_action(head.kind, text).strip().lstrip("> ").strip()
    return text


def is_player(message: Any) -> bool:
    """True for the player's own inputs."""
    head = message.head
    return head.is_player and head.is_user


class MessageView(Static, can_focus=True):
    """One message: an author line and the text (Markdown once finished).

    Args:
        message: The story message (``None`` for a reply still streaming).
        author: The name on the author line.
        mode: The story mode (adventure inputs are shown as actions).
        streaming: Show plain text that is still growing.
        colour: The author line's colour (a group member's), else the theme's accent.
    """

    COMPONENT_CLASSES = {"message--author", "message--meta", "message--action"}

    DEFAULT_CSS = """
    MessageView { height: auto; padding: 0 1; margin: 0 0 1 0; }
    MessageView:focus { background: $boost; }
    MessageView.-player { color: $text-muted; }
    MessageView > .message--author { color: $accent; text-style: bold; }
    MessageView > .message--meta { color: $text-muted; }
    MessageView > .message--action { color: $secondary; text-style: italic; }
    """

    def __init__(self, message: Any | None, *, author: str, mode: str, streaming: bool = False,
                 key: tuple[str, ...] = (), colour: str | None = None) -> None:
        super().__init__(markup=False)
        self.message = message
        self.author = author
        self.colour = colour
        self.mode = mode
        self.streaming = streaming
        self.key = key
        self.text = "" if message is None else display_text(message, mode)
        self.counter = ""
        self.player = message is not None and is_player(message)
        self.set_class(self.player, "-player")

    @property
    def node_ids(self) -> tuple[str, ...]:
        """Ids of the nodes shown (head first, then continuations)."""
        return tuple(n.id for n in self.message.nodes) if self.message is not None else ()

    def show(self, message: Any, *, key: tuple[str, ...], author: str, colour: str | None = None) -> None:
        """Show a finished message (used when a streamed reply is saved)."""
        self.message, self.key, self.author, self.streaming = message, key, author, False
        self.colour = colour
        self.text = display_text(message, self.mode)
        self.player = is_player(message)
        self.set_class(self.player, "-player")
        self.refresh(layout=True)

    def stream(self, text: str) -> None:
        """Show ``text`` (the reply so far) as plain text."""
        self.streaming = True
        self.text = text
        self.refresh(layout=True)

    def set_counter(self, counter: str) -> None:
        """Show a swipe counter such as ``2/3`` on the author line ('' hides it)."""
        if counter != self.counter:
            self.counter = counter
            self.refresh()

    def render(self) -> RenderableType:
        if self.player and self.mode == "adventure" and self.message.head.kind in ("do", "say"):
            return Text(self.text, style=self.get_component_rich_style("message--action"))
        style = self.get_component_rich_style("message--author")
        if self.colour:
            style += Style(color=self.colour)
        header = Text(self.author or "", style=style)
        if self.counter:
            header.append(f"  ‹ {self.counter} ›", style=self.get_component_rich_style("message--meta"))
        if self.streaming:
            header.append("  …", style=self.get_component_rich_style("message--meta"))
            return Group(header, Text(self.text))
        if self.player:
            return Group(header, Text(self.text))
        return Group(header, Markdown(self.text))


class _MoreAbove(Static):
    """The banner above the first mounted message when older ones are not mounted yet."""

    DEFAULT_CSS = """
    _MoreAbove { color: $text-muted; text-align: center; height: 1; }
    """

    def on_click(self, event: Click) -> None:
        event.stop()
        self.parent.load_earlier()  # type: ignore[union-attr]


class Transcript(VerticalScroll, can_focus=True):
    """The messages of the current path, newest at the bottom.

    Args:
        author_of: Gives the author line for a message.
        mode: The story mode.
        colours: Author colours by case-folded name (a group's members); others use the accent.
    """

    BINDINGS = [Binding("home", "load_earlier", "Earlier", show=False)]

    DEFAULT_CSS = """
    Transcript { height: 1fr; padding: 0 1; }
    """

    def __init__(self, author_of: Callable[[Any], str], mode: str, *, colours: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.author_of = author_of
        self.mode = mode
        self.colours: dict[str, str] = dict(colours or {})
        self._messages: list[Any] = []
        self._keys: list[tuple[str, ...]] = []
        self._first = 0
        self._views: list[MessageView] = []
        self._stream_view: MessageView | None = None
        self._more = _MoreAbove("", markup=False)
        self._loading_earlier = False

    @property
    def first_mounted(self) -> int:
        """Index of the first mounted message."""
        return self._first

    @property
    def views(self) -> list[MessageView]:
        """The mounted message views, oldest first."""
        return list(self._views)

    @property
    def stream_view(self) -> MessageView | None:
        """The view receiving streamed text, if a reply is streaming."""
        return self._stream_view

    def on_mount(self) -> None:
        self.mount(self._more)
        self._more.display = False
        self.anchor()

    def colour_of(self, author: str) -> str | None:
        """The colour of an author's name (a group member's), or ``None`` for the theme's accent."""
        return self.colours.get(author.casefold()) if author else None

    def _view_for(self, message: Any, key: tuple[str, ...]) -> MessageView:
        author = self.author_of(message)
        colour = None if is_player(message) else self.colour_of(author)
        return MessageView(message, author=author, mode=self.mode, key=key, colour=colour)

    def load(self, messages: Sequence[Any]) -> None:
        """Show ``messages`` from scratch, mounting only the newest page."""
        self._clear_views()
        self._messages = list(messages)
        self._keys = [tuple(n.id for n in m.nodes) for m in self._messages]
        self._first = max(0, len(self._messages) - PAGE)
        self._views = [self._view_for(m, k) for m, k in zip(self._messages[self._first:], self._keys[self._first:])]
        if self._views:
            self.mount_all(self._views)
        self._update_more()
        self.scroll_end(animate=False, immediate=False)

    def _clear_views(self) -> None:
        for view in self._views:
            view.remove()
        if self._stream_view is not None and self._stream_view not in self._views:
            self._stream_view.remove()
        self._stream_view = None
        self._views = []

    def _update_more(self) -> None:
        self._more.display = self._first > 0
        if self._first:
            self._more.update(f"↑ {self._first:,} earlier messages (Home, or scroll up)")

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new <= 0 < self._first and not self._loading_earlier and self._views:
            self._loading_earlier = True
            self.call_after_refresh(self.load_earlier)

    def action_load_earlier(self) -> None:
        """Mount the page of messages before the first mounted one."""
        self.load_earlier()

    def load_earlier(self) -> None:
        """Mount the page of messages before the first mounted one."""
        self._loading_earlier = False
        if self._first == 0 or not self._views:
            return
        start = max(0, self._first - PAGE)
        new = [self._view_for(m, k) for m, k in zip(self._messages[start:self._first], self._keys[start:self._first])]
        self.mount_all(new, before=self._views[0])
        self._views = new + self._views
        self._first = start
        self._update_more()

    def sync(self, messages: Sequence[Any]) -> None:
        """Bring the transcript in line with the story's current path, changing only the tail."""
        messages = list(messages)
        keys = [tuple(n.id for n in m.nodes) for m in messages]
        same = 0
        limit = min(len(keys), len(self._keys))
        while same < limit and keys[same] == self._keys[same]:
            same += 1
        if same < self._first:
            self._messages, self._keys = messages, keys
            self.load(messages)
            return
        stream = self._stream_view
        self._stream_view = None
        keep = same - self._first
        for view in self._views[keep:]:
            if view is not stream:
                view.remove()
        self._views = self._views[:keep]
        self._messages, self._keys = messages, keys
        fresh: list[MessageView] = []
        for message, key in zip(messages[same:], keys[same:]):
            if stream is not None:
                author = self.author_of(message)
                stream.show(message, key=key, author=author, colour=None if is_player(message) else self.colour_of(author))
                self._views.append(stream)
                stream = None
                continue
            view = self._view_for(message, key)
            fresh.append(view)
            self._views.append(view)
        if stream is not None:
            stream.remove()
        if fresh:
            self.mount_all(fresh)
        self._update_more()

    def begin_stream(self, action: str, author: str) -> MessageView:
        """Show a reply about to stream; ``regenerate`` hides the reply it replaces."""
        if action == "continue" and self._views:
            view = self._views[-1]
            base = view.message.text if view.message is not None else ""
            view.stream(base)
            view._stream_base = base  # type: ignore[attr-defined]
            self._stream_view = view
            return view
        if action == "regenerate" and self._views and not self._views[-1].player:
            self._views[-1].display = False
        view = MessageView(None, author=author, mode=self.mode, streaming=True, colour=self.colour_of(author))
        view._stream_base = ""  # type: ignore[attr-defined]
        self._stream_view = view
        self.mount(view)
        return view

    def stream(self, text: str) -> None:
        """Show the reply so far in the streaming view."""
        view = self._stream_view
        if view is not None:
            view.stream(view._stream_base + text)  # type: ignore[attr-defined]

    def end_stream(self, messages: Sequence[Any]) -> None:
        """The reply is over (saved, stopped or failed): show the story as it now is."""
        for view in self._views:
            view.display = True
        self.sync(messages)

    def set_counter(self, counter: str) -> None:
        """Show the swipe counter on the last message only."""
        for view in self._views[:-1]:
            view.set_counter("")
        if self._views:
            self._views[-1].set_counter(counter)

    def selected_view(self) -> MessageView | None:
        """The focused message, else the last one."""
        focused = self.screen.focused
        if isinstance(focused, MessageView) and focused in self._views:
            return focused
        return self._views[-1] if self._views else None
