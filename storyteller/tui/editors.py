"""Opening the character screen and the world-info editor: the file is read off the UI thread.

:class:`EditorOpener` is a part of :class:`~storyteller.tui.app.StorytellerApp`. A screen that
wants an editor posts :class:`~storyteller.tui.messages.CardEditChosen` or
:class:`~storyteller.tui.messages.WorldEditChosen`; the app reads the card or the worlds in a
thread worker through :mod:`storyteller.session.editing` and opens the screen on what it read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual import work
from textual.worker import get_current_worker

from storyteller.errors import StorytellerError
from storyteller.paths import Paths
from storyteller.session import editing
from storyteller.tui.messages import CardEditChosen, CardRead, WorldEditChosen, WorldsRead

__all__ = ["EditorOpener"]


class EditorOpener:
    """The app's handlers and workers that open the card and world editors (a mixin of the app)."""

    paths: Paths

    @work(thread=True, exclusive=True, group="edit", exit_on_error=False, name="read card")
    def edit_card(self, path: Path) -> None:
        """Read the card at ``path`` in a thread, then open the character screen on it."""
        try:
            card, error = editing.read_card(path), None
        except StorytellerError as exc:
            card, error = None, str(exc)
        except OSError as exc:
            card, error = None, f"cannot read {path}: {exc.strerror or exc}"
        if not get_current_worker().is_cancelled:  # another editor was asked for meanwhile
            self.post_message(CardRead(Path(path), card, error))  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="edit", exit_on_error=False, name="read worlds")
    def edit_worlds(self, refs: Sequence[str]) -> None:
        """Read the worlds (names or paths) in a thread, then open the world-info editor on them."""
        books, errors = editing.read_worlds(list(refs), self.paths)
        if not get_current_worker().is_cancelled:  # another editor was asked for meanwhile
            self.post_message(WorldsRead(list(books), errors))  # type: ignore[attr-defined]

    def on_card_edit_chosen(self, message: CardEditChosen) -> None:
        self.edit_card(Path(message.path))

    def on_world_edit_chosen(self, message: WorldEditChosen) -> None:
        self.edit_worlds(list(message.refs))

    def on_card_read(self, message: CardRead) -> None:
        from storyteller.tui.screens.character import CharacterScreen

        self.push_screen(CharacterScreen(message.path, self.paths, message.card, message.error))  # type: ignore[attr-defined]

    def on_worlds_read(self, message: WorldsRead) -> None:
        from storyteller.tui.screens.worldinfo import WorldInfoScreen

        self.push_screen(WorldInfoScreen(self.paths, message.books, message.errors))  # type: ignore[attr-defined]
