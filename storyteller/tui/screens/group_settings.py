"""Changing a group after it is made: the add-member dialog and the group settings dialog.

Both are opened from the speaker picker (ctrl+g on a group story: ``a`` adds, ``e`` edits) and
change the group through the session (:meth:`~storyteller.session.Session.add_member`,
:meth:`~storyteller.session.Session.update_group`), which saves it with the story at once.
Names, scenarios and prefixes come from cards or the player: they are shown as
:class:`~rich.text.Text` or as input values, never parsed as markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from storyteller.errors import StorytellerError
from storyteller.session.group import escape_line, talkativeness, unescape_line
from storyteller.tui.screens.group import CARD_MODE_LABELS, ORDER_LABELS

__all__ = ["AddMemberDialog", "GroupSettingsDialog", "escape_line", "unescape_line"]


class AddMemberDialog(ModalScreen[str | None]):
    """The library's characters; Enter adds the highlighted one to the group.

    Dismissed with the card's file (as a string), or ``None``.

    Args:
        library: The app's :class:`~storyteller.session.library.Library`.
        members: The group's member names (their cards are marked; adding one again gives a
            numbered name, as in SillyTavern).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    AddMemberDialog { align: center middle; }
    AddMemberDialog > Vertical { width: 80%; max-width: 90; height: auto; max-height: 90%;
                                 border: thick $primary; background: $surface; padding: 0 1; }
    AddMemberDialog OptionList { height: auto; max-height: 14; }
    AddMemberDialog .hint { color: $text-muted; }
    """

    def __init__(self, library: Any, members: list[str]) -> None:
        super().__init__()
        self.library = library
        self._members = {m.casefold() for m in members}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Add a character to the group", classes="dialog-title")
            yield OptionList(id="add-cards")
            yield Static("Reading the library…", id="add-hint", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#add-cards", OptionList).focus()
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, name="list cards")
    def _load(self) -> None:
        """List the library's cards (reads files: a thread)."""
        try:
            cards = [(name, path) for name, path, error, _bundled in self.library.cards() if not error]
        except (OSError, StorytellerError) as exc:
            self.app.call_from_thread(self._fill, [], f"The library cannot be read: {exc}")
            return
        self.app.call_from_thread(self._fill, cards, "")

    def _fill(self, cards: list[tuple[str, Any]], problem: str) -> None:
        if not self.is_attached:  # closed before the library was read
            return
        options, first_new = [], None
        for index, (name, path) in enumerate(cards):
            line = Text(f"{name}  ({path.name})")
            if name.casefold() in self._members:
                line.append("  (in the group)", style="italic")
            elif first_new is None:
                first_new = index
            options.append(Option(line, id=str(path)))
        found = self.query_one("#add-cards", OptionList)
        found.clear_options()
        found.add_options(options)
        if options:
            found.highlighted = first_new or 0
        hint = problem or ("Enter: add · Esc: cancel · the new member speaks from the next reply on, without a "
                           "greeting; a character already in the group joins again under a numbered name"
                           if options else "The library has no characters: import some first (F6, ctrl+o).")
        self.query_one("#add-hint", Static).update(hint)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close without adding anyone."""
        self.dismiss(None)


@dataclass
class _Checked:
    """What the settings dialog would save, or the first problem."""

    changes: dict[str, Any]
    problem: str = ""


class GroupSettingsDialog(ModalScreen[bool]):
    """The group's settings and each member's own; ctrl+s saves them all at once, Esc cancels.

    Dismissed with ``True`` when something was saved.

    Args:
        session: The open group :class:`~storyteller.session.Session`.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save", priority=True)]
    DEFAULT_CSS = """
    GroupSettingsDialog { align: center middle; }
    GroupSettingsDialog > Vertical { width: 95%; max-width: 110; height: 90%;
                                     border: thick $primary; background: $surface; padding: 0 1; }
    GroupSettingsDialog VerticalScroll { height: 1fr; }
    GroupSettingsDialog .dialog-title { text-style: bold; color: $accent; }
    GroupSettingsDialog .hint { color: $text-muted; }
    GroupSettingsDialog .field { height: auto; margin-top: 1; }
    GroupSettingsDialog .field > Label { width: 14; }
    GroupSettingsDialog .field Input, GroupSettingsDialog .field Select { width: 1fr; }
    GroupSettingsDialog #gs-scenario { height: 4; width: 1fr; }
    GroupSettingsDialog .member-name { margin-top: 1; text-style: bold; }
    GroupSettingsDialog .member { height: auto; }
    GroupSettingsDialog .member Input { width: 1fr; }
    GroupSettingsDialog .member .talk { width: 14; }
    GroupSettingsDialog .member-head { margin-top: 1; color: $text-muted; }
    GroupSettingsDialog .member-head .wide { width: 1fr; }
    GroupSettingsDialog .member-head .lore { width: 27; }
    GroupSettingsDialog .dialog-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    GroupSettingsDialog .dialog-buttons Button { margin-left: 2; }
    """

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self._group = session.group

    def compose(self) -> ComposeResult:
        group = self._group
        with Vertical():
            yield Label("Group settings: ctrl+s saves, Esc cancels", classes="dialog-title")
            with VerticalScroll():
                with Horizontal(classes="field"):
                    yield Label("Group name")
                    yield Input(group.name, id="gs-name", placeholder="the group's name", compact=True)
                with Horizontal(classes="field"):
                    yield Label("Scenario")
                    yield TextArea(group.scenario, id="gs-scenario", soft_wrap=True, compact=True,
                                   placeholder="blank: each member's own scenario")
                with Horizontal(classes="field"):
                    yield Label("Who answers")
                    yield Select([(label, key) for key, label in ORDER_LABELS.items()], value=group.order,
                                 allow_blank=False, id="gs-order", compact=True)
                with Horizontal(classes="field"):
                    yield Label("Cards")
                    yield Select([(label, key) for key, label in CARD_MODE_LABELS.items()], value=group.cards,
                                 allow_blank=False, id="gs-cards", compact=True)
                with Horizontal(classes="field"):
                    yield Label("Join prefix")
                    yield Input(escape_line(group.join_prefix), id="gs-prefix", compact=True,
                                placeholder="before each member's card fields (join modes)")
                with Horizontal(classes="field"):
                    yield Label("Join suffix")
                    yield Input(escape_line(group.join_suffix), id="gs-suffix", compact=True,
                                placeholder="after each member's card fields")
                yield Checkbox("a member may answer its own message (natural order)", group.allow_self_responses,
                               id="gs-self", compact=True)
                yield Static("Members: talkativeness 0 to 1 (blank: the card's), own join prefix and suffix "
                             "(blank: the group's). In a prefix or suffix, \\n is a line break; {{char}} is the "
                             "member, <FIELDNAME> the field.", classes="hint", markup=False)
                with Horizontal(classes="member member-head"):
                    yield Label("talkativeness", classes="talk")
                    yield Label("own join prefix", classes="wide")
                    yield Label("own join suffix", classes="wide")
                    yield Label("", classes="lore")
                for index, member in enumerate(group.members):
                    yield Static(Text(member.name), classes="member-name")
                    with Horizontal(classes="member"):
                        yield Input("" if member.talkativeness is None else f"{member.talkativeness:g}",
                                    id=f"gs-talk-{index}", classes="talk", compact=True,
                                    placeholder=f"card: {self._card_talkativeness(member):g}")
                        yield Input(escape_line(member.join_prefix or ""), id=f"gs-mprefix-{index}", compact=True,
                                    placeholder="own prefix")
                        yield Input(escape_line(member.join_suffix or ""), id=f"gs-msuffix-{index}", compact=True,
                                    placeholder="own suffix")
                        yield Checkbox("lore only when speaking", member.lore_only_when_speaking,
                                       id=f"gs-lore-{index}", compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#gs-name", Input).focus()

    def _card_talkativeness(self, member: Any) -> float:
        card = self.session.parts.members.get(member.name)
        return talkativeness(member.model_copy(update={"talkativeness": None}), card)

    def checked(self) -> _Checked:
        """The changes the dialog's values make to the group, or the first value that is not allowed."""
        group = self._group
        wanted: dict[str, Any] = {
            "name": self.query_one("#gs-name", Input).value.strip(),
            "scenario": self.query_one("#gs-scenario", TextArea).text.strip(),
            "order": str(self.query_one("#gs-order", Select).value),
            "cards": str(self.query_one("#gs-cards", Select).value),
            "join_prefix": unescape_line(self.query_one("#gs-prefix", Input).value),
            "join_suffix": unescape_line(self.query_one("#gs-suffix", Input).value),
            "allow_self_responses": self.query_one("#gs-self", Checkbox).value,
        }
        changes = {key: value for key, value in wanted.items() if getattr(group, key) != value}
        members, changed = [], False
        for index, member in enumerate(group.members):
            raw = self.query_one(f"#gs-talk-{index}", Input).value.strip()
            talk: float | None = None
            if raw:
                try:
                    talk = float(raw.replace(",", "."))
                except ValueError:
                    talk = math.nan
                if not 0.0 <= talk <= 1.0:  # NaN fails too
                    return _Checked({}, f"Talkativeness of {member.name}: {raw!r} is not allowed; give a number "
                                        f"from 0 to 1 (0 never speaks unless named, 1 always), or leave it blank "
                                        f"for the card's {self._card_talkativeness(member):g}. Nothing was saved.")
            prefix = unescape_line(self.query_one(f"#gs-mprefix-{index}", Input).value)
            suffix = unescape_line(self.query_one(f"#gs-msuffix-{index}", Input).value)
            own = {"talkativeness": talk, "join_prefix": prefix or None, "join_suffix": suffix or None,
                   "lore_only_when_speaking": self.query_one(f"#gs-lore-{index}", Checkbox).value}
            if any(getattr(member, key) != value for key, value in own.items()):
                changed = True
                member = member.model_copy(update=own)
            members.append(member)
        if changed:
            changes["members"] = members
        return _Checked(changes)

    def action_save(self) -> None:
        """Save the changes (all or nothing); a value that is not allowed is named and nothing is saved."""
        checked = self.checked()
        if checked.problem:
            self.notify(checked.problem, severity="warning", markup=False, timeout=8)
            return
        if not checked.changes:
            self.dismiss(False)
            return
        if self.session.generating:  # update_group itself does not wait for the reply
            self.notify("The group was not changed: a reply is being generated; stop it (Esc on the story) or wait, "
                        "then save again.", severity="warning", markup=False, timeout=8)
            return
        if self.session.group != self._group:
            self.notify("The group was changed elsewhere while this dialog was open; close it and open it again.",
                        severity="error", markup=False)
            return
        try:
            self.session.update_group(**checked.changes)
        except (StorytellerError, ValueError) as exc:  # a reply is being generated, read-only, a bad value
            self.notify(f"The group was not changed: {exc}", severity="error", markup=False, timeout=8)
            return
        self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(False)
