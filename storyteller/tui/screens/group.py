"""Group chats in the app: the speaker picker, the new-group dialog, the group's status line.

The picker (ctrl+g on the story screen) lists the members with their mute state; Enter makes the
highlighted member reply now (:meth:`~storyteller.session.Session.reply_as`), ``m`` mutes or
unmutes it and ``o`` changes the speaker order, ``a`` adds a member from the library, ``x`` (or
Delete) takes the highlighted one out after a yes/no, ``e`` opens the group's settings
(:mod:`storyteller.tui.screens.group_settings`); every change is saved with the story at once. The new-group
dialog (ctrl+g in the library) picks two or more cards, a name, a scenario, the order and the card
mode. Names come from cards: they are shown as :class:`~rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from storyteller.errors import StorytellerError

__all__ = ["CARD_MODE_LABELS", "ORDER_LABELS", "GroupChoice", "NewGroupDialog", "SpeakerPicker", "group_status",
           "member_card_saved"]

ORDER_LABELS = {
    "natural": "natural: who is named answers, else the talkative",
    "list": "list: one member per turn, in turn",
    "everyone": "everyone: every unmuted member answers",
    "manual": "manual: nobody answers until you pick (ctrl+g)",
}
"""The speaker orders, as the dialogs explain them."""

CARD_MODE_LABELS = {
    "join": "join: every unmuted member's card (cached)",
    "join_muted": "join, muted members' cards too",
    "swap": "swap: only the speaker's card",
}
"""The card modes, as the dialogs explain them."""


def group_status(group: Any, *, speaking: str = "", upcoming: Sequence[str] = ()) -> str:
    """The group's part of the status bar: who speaks now or next, the order, who is muted.

    Args:
        group: The story's :class:`~storyteller.story.model.GroupSettings`.
        speaking: The member whose reply is streaming ("" when none is).
        upcoming: Who the order picks next (list order and everyone can tell; natural order
            depends on what the player writes).
    """
    parts = [f"{speaking} speaking" if speaking else ""]
    if not speaking:
        if group.order == "manual":
            parts.append("manual: ctrl+g picks")
        elif group.order == "natural":
            parts.append("natural order")
        elif upcoming:
            parts.append(f"{group.order} · next: {', '.join(upcoming)}")
        else:
            parts.append(f"{group.order} · all muted")
    else:
        parts.append(group.order)
    muted = [m.name for m in group.members if m.muted]
    if muted:
        parts.append(f"muted: {', '.join(muted)}")
    return " · ".join(p for p in parts if p)


def member_card_saved(session: Any, library: Any, source: Path, target: Path) -> bool:
    """A card was saved from ``source`` to ``target``: when it is a member's of the open group,
    the group names ``target`` (a bundled card's saved copy) and every member's card is read again,
    so the next reply uses it. Returns whether a member uses the card.

    Raises:
        StorytellerError: The story cannot be saved (read-only) or a card cannot be read.
    """
    members, used = [], False
    for member in session.group.members:
        try:
            found = library.find_card(member.card).resolve()
        except StorytellerError:
            found = None
        if found in (source.resolve(), target.resolve()):
            used = True
            if found != target.resolve():
                member = member.model_copy(update={"card": library.ref_for(target)})
        members.append(member)
    if used:
        session.update_group(members=members)
    return used


class SpeakerPicker(ModalScreen[str | None]):
    """The members of the open group: Enter makes one reply now; ``m`` mutes, ``o`` changes the order,
    ``a`` adds a member, ``x`` / Delete removes one, ``e`` edits the group's settings.

    Dismissed with the member's name to reply now, or ``None``.

    Args:
        session: The open group :class:`~storyteller.session.Session`.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Close"),
        Binding("m", "toggle_mute", "Mute / unmute"),
        Binding("o", "cycle_order", "Order"),
        Binding("a", "add_member", "Add"),
        Binding("delete,x", "remove_member", "Remove"),
        Binding("e", "edit_group", "Settings"),
    ]
    DEFAULT_CSS = """
    SpeakerPicker { align: center middle; }
    SpeakerPicker > Vertical { width: 80%; max-width: 90; height: auto; max-height: 90%;
                               border: thick $primary; background: $surface; padding: 0 1; }
    SpeakerPicker OptionList { height: auto; max-height: 14; }
    SpeakerPicker .hint { color: $text-muted; }
    """

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="group-title", markup=False)
            yield OptionList(id="members")
            yield Static("Enter: reply now · m: mute / unmute · o: speaker order · a: add · x / Del: remove · "
                         "e: group settings · Esc: close", classes="hint", markup=False)

    def on_mount(self) -> None:
        self._fill()
        self.query_one("#members", OptionList).focus()

    @property
    def members(self) -> OptionList:
        """The member list."""
        return self.query_one("#members", OptionList)

    def _fill(self, highlight: int | None = None) -> None:
        group = self.session.group
        self.query_one("#group-title", Static).update(
            Text(f"{group.name} · {ORDER_LABELS.get(group.order, group.order)}"))
        options = []
        for member in group.members:
            line = Text(member.name)
            if member.muted:
                line.append("  (muted)", style="italic")
            options.append(Option(line, id=member.name))
        members = self.members
        members.clear_options()
        members.add_options(options)
        if options:
            members.highlighted = highlight if highlight is not None else 0

    def _highlighted(self) -> str | None:
        members = self.members
        if members.highlighted is None:
            return None
        return members.get_option_at_index(members.highlighted).id

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_toggle_mute(self) -> None:
        """Mute or unmute the highlighted member (saved with the story)."""
        name = self._highlighted()
        group = self.session.group
        member = group.member(name) if name else None
        if member is None:
            return
        try:
            self.session.set_muted(member.name, not member.muted)
        except StorytellerError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self._fill(self.members.highlighted)

    def action_cycle_order(self) -> None:
        """Change the speaker order to the next one (saved with the story)."""
        orders = list(ORDER_LABELS)
        group = self.session.group
        order = orders[(orders.index(group.order) + 1) % len(orders)] if group.order in orders else orders[0]
        try:
            self.session.update_group(order=order)
        except StorytellerError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self._fill(self.members.highlighted)

    def action_add_member(self) -> None:
        """Pick a character from the library to join the group (from the next reply on)."""
        from storyteller.tui.screens.group_settings import AddMemberDialog

        def add(card: str | None) -> None:
            if not card:
                return
            try:
                name = self.session.add_member(card)
            except StorytellerError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self._fill(len(self.session.group.members) - 1)
            self.notify(f"{name} joins the group.", markup=False)

        self.app.push_screen(AddMemberDialog(self.app.library, self.session.members), add)

    def action_remove_member(self) -> None:
        """Take the highlighted member out of the group, after a yes/no (their messages stay)."""
        from storyteller.tui.screens.dialogs import Confirm

        name = self._highlighted()
        if name is None:
            return
        if len(self.session.members) == 1:
            self.notify(f"{name} is the group's only member; add another (a) before taking them out.",
                        severity="warning", markup=False)
            return
        index = self.members.highlighted or 0

        def remove(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.session.remove_member(name)
            except StorytellerError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self._fill(min(index, len(self.session.group.members) - 1))
            self.notify(f"{name} left the group; their messages stay in the story.", markup=False)

        self.app.push_screen(Confirm(f"Take {name} out of the group? Their messages stay in the story, under "
                                     "their name."), remove)

    def action_edit_group(self) -> None:
        """Open the group's settings: name, scenario, order, card mode, join prefix/suffix, each member's own."""
        from storyteller.tui.screens.group_settings import GroupSettingsDialog

        def saved(changed: bool | None) -> None:
            if changed:
                self._fill(self.members.highlighted)
                self.notify("The group's settings are saved; the next reply uses them.", markup=False)

        self.app.push_screen(GroupSettingsDialog(self.session), saved)

    def action_cancel(self) -> None:
        """Close without anyone replying."""
        self.dismiss(None)


@dataclass
class GroupChoice:
    """What the new-group dialog returns.

    Attributes:
        story: The new story's name.
        cards: The members' card files, in list order.
        name: The group's name ("" for SillyTavern's ``Group: A, B, C``).
        scenario: Replaces the cards' scenarios when set.
        order: The speaker order.
        mode: The card mode.
    """

    story: str
    cards: list[str] = field(default_factory=list)
    name: str = ""
    scenario: str = ""
    order: str = "natural"
    mode: str = "join"


class NewGroupDialog(ModalScreen[GroupChoice | None]):
    """Pick two or more cards (in the order ticked), a group name, a scenario, the order and card mode.

    Args:
        cards: ``(name, path)`` of the cards that can join.
        story: A suggested story name.
        ticked: Files ticked at first (the card highlighted in the library).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "start", "Start")]
    DEFAULT_CSS = """
    NewGroupDialog { align: center middle; }
    NewGroupDialog > Vertical { width: 90%; max-width: 100; height: auto; max-height: 100%;
                                border: thick $primary; background: $surface; padding: 0 1; overflow-y: auto; }
    NewGroupDialog SelectionList { height: auto; max-height: 10; }
    NewGroupDialog .field { height: 1; margin-top: 1; }
    NewGroupDialog .field Label { width: 13; }
    NewGroupDialog #group-help { width: 1fr; }
    NewGroupDialog .field Input, NewGroupDialog .field Select { width: 1fr; }
    NewGroupDialog .dialog-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    NewGroupDialog .dialog-buttons Button { margin-left: 2; }
    """

    def __init__(self, cards: Sequence[tuple[str, Path]], story: str, ticked: Sequence[str] = ()) -> None:
        super().__init__()
        self._cards = list(cards)
        self._story = story
        self._ticked = [str(t) for t in ticked]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New group chat: Space ticks two or more characters, in the order they speak; "
                        "ctrl+s starts", id="group-help")
            yield SelectionList[str](*((Text(f"{name}  ({path.name})"), str(path), str(path) in self._ticked)
                                       for name, path in self._cards), id="group-cards")
            with Horizontal(classes="field"):
                yield Label("Story")
                yield Input(self._story, id="group-story", placeholder="story name", compact=True)
            with Horizontal(classes="field"):
                yield Label("Group name")
                yield Input("", id="group-name", placeholder="blank: Group: A, B, C", compact=True)
            with Horizontal(classes="field"):
                yield Label("Scenario")
                yield Input("", id="group-scenario", placeholder="optional: replaces the cards' scenarios",
                            compact=True)
            with Horizontal(classes="field"):
                yield Label("Who answers")
                yield Select([(label, key) for key, label in ORDER_LABELS.items()], value="natural",
                             allow_blank=False, id="group-order", compact=True)
            with Horizontal(classes="field"):
                yield Label("Cards")
                yield Select([(label, key) for key, label in CARD_MODE_LABELS.items()], value="join",
                             allow_blank=False, id="group-mode", compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start", id="start", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        cards = self.query_one("#group-cards", SelectionList)
        if cards.option_count:
            cards.highlighted = 0
        cards.focus()

    def choice(self) -> GroupChoice | str:
        """The dialog's values, or what is missing."""
        cards = list(self.query_one("#group-cards", SelectionList).selected)
        story = self.query_one("#group-story", Input).value.strip()
        if len(cards) < 2:
            return "Tick two or more characters for a group (Space ticks)."
        if not story:
            return "Give the story a name."
        return GroupChoice(story=story, cards=cards, name=self.query_one("#group-name", Input).value.strip(),
                           scenario=self.query_one("#group-scenario", Input).value.strip(),
                           order=str(self.query_one("#group-order", Select).value),
                           mode=str(self.query_one("#group-mode", Select).value))

    def action_start(self) -> None:
        """Start the group story (when two or more characters are ticked)."""
        choice = self.choice()
        if isinstance(choice, str):
            self.notify(choice, severity="warning", markup=False)
            return
        self.dismiss(choice)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_start() if event.button.id == "start" else self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without starting."""
        self.dismiss(None)
