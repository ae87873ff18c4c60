"""The admin screen's dialogs: pick a passage, edit one, confirm, and the settings form."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static, Switch, TextArea
from textual.widgets.option_list import Option

from storyteller.errors import ConfigError, StorytellerError
from storyteller.kiosk.controller import KIOSK_ORDERS, KioskController
from storyteller.kiosk.settings import KioskSettings, hash_pin

__all__ = ["EditScreen", "GroupScreen", "PassagePicker", "SettingsScreen"]

_DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical, {name} > VerticalScroll {{ width: 90%; max-width: 100; height: auto; max-height: 90%;
    border: thick $primary; background: $panel; padding: 1 2; }}
{name} .hint {{ color: $text-muted; }}
{name} .problem {{ color: $error; }}
"""


class _Dialog(ModalScreen[Any], inherit_bindings=False):
    BINDINGS = [Binding("escape", "cancel", show=False), Binding("tab", "app.focus_next", show=False),
                Binding("shift+tab", "app.focus_previous", show=False)]

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)


class PassagePicker(_Dialog):
    """Choose one of the story's passages; dismisses with its node id (or None)."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="PassagePicker")

    def __init__(self, title: str, passages: list[tuple[str, str]]) -> None:
        super().__init__()
        self._title = title
        self._passages = passages

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title, markup=False)
            options = [Option(" ".join(label.split())[:90], id=node_id) for node_id, label in self._passages]
            yield OptionList(*options, id="passages")
            yield Static("Enter: choose · Esc: back", classes="hint", markup=False)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if options.option_count:
            options.highlighted = options.option_count - 1

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


class EditScreen(_Dialog):
    """Edit a passage's text; Ctrl+S saves (dismisses with the new text), Esc cancels."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="EditScreen") + "EditScreen TextArea { height: 12; }"
    BINDINGS = [*_Dialog.BINDINGS, Binding("ctrl+s", "save", show=False, priority=True)]

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Edit the passage (the original is kept in the story file)", markup=False)
            yield TextArea(self._text, id="editor")
            yield Static("Ctrl+S: save · Esc: cancel", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        """Save the edited text."""
        text = self.query_one(TextArea).text.strip()
        self.dismiss(text or None)


_NUMBERS = ("idle_seconds", "turn_seconds", "cooldown_seconds", "max_input_chars", "recap_every", "attract_passages")


class SettingsScreen(_Dialog):
    """The settings operators change most; dismisses with new :class:`KioskSettings` (or None)."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="SettingsScreen") + """
    SettingsScreen Input { width: 1fr; }
    SettingsScreen .row { height: auto; }
    """
    BINDINGS = [*_Dialog.BINDINGS, Binding("ctrl+s", "save", show=False, priority=True)]

    def __init__(self, current: KioskSettings) -> None:
        super().__init__()
        self._current = current

    def compose(self) -> ComposeResult:
        current = self._current
        with VerticalScroll():
            yield Static("Kiosk settings (Tab: next field · Ctrl+S: save · Esc: cancel)", markup=False)
            yield Static("Title", classes="hint", markup=False)
            yield Input(current.title or "", id="title")
            for field in _NUMBERS:
                yield Static(field.replace("_", " "), classes="hint", markup=False)
                yield Input(str(getattr(current, field)), id=field, type="integer")
            yield Static("moderation on", classes="hint", markup=False)
            yield Switch(current.moderation.enabled, id="moderation")
            yield Static("moderation words (comma-separated)", classes="hint", markup=False)
            yield Input(", ".join(current.moderation.words), id="words")
            yield Static("output action: regenerate or cut", classes="hint", markup=False)
            yield Input(current.moderation.output_action, id="output_action")
            yield Static("low-power profile (takes effect after a restart)", classes="hint", markup=False)
            yield Switch(current.low_power.enabled, id="low_power")
            yield Static("new PIN (leave empty to keep the current one)", classes="hint", markup=False)
            yield Input("", id="new_pin", password=True)
            yield Static("", id="problem", classes="problem", markup=False)

    def on_mount(self) -> None:
        self.query_one("#title", Input).focus()

    def build(self) -> KioskSettings:
        """The settings as filled in.

        Raises:
            ConfigError: A value is invalid.
        """
        data = self._current.model_dump()
        data["title"] = self.query_one("#title", Input).value.strip() or None
        for field in _NUMBERS:
            raw = self.query_one(f"#{field}", Input).value.strip()
            if not raw.lstrip("-").isdigit():
                raise ConfigError(f"{field.replace('_', ' ')} must be a whole number")
            data[field] = int(raw)
        words = [w.strip() for w in self.query_one("#words", Input).value.split(",") if w.strip()]
        data["moderation"] = {**data["moderation"], "enabled": self.query_one("#moderation", Switch).value,
                              "words": words, "output_action": self.query_one("#output_action", Input).value.strip()}
        data["low_power"] = {**data["low_power"], "enabled": self.query_one("#low_power", Switch).value}
        new_pin = self.query_one("#new_pin", Input).value
        if new_pin:
            data["pin_hash"] = hash_pin(new_pin)
        try:
            return KioskSettings.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(problems) from exc

    def action_save(self) -> None:
        """Check and return the settings."""
        try:
            settings = self.build()
        except ConfigError as exc:
            self.query_one("#problem", Static).update(str(exc))
            return
        self.dismiss(settings)


ORDER_HELP = {
    "natural": "natural: a member the visitor names answers, then maybe the talkative ones",
    "list": "list: one member per visitor turn, in turn",
    "everyone": "everyone: every unmuted member answers, in list order",
    "manual": "manual (set in the app): answered as natural here, since visitors cannot pick",
}
"""The speaker orders, as the Group dialog explains them."""


class GroupScreen(_Dialog):
    """The group's members (muted ones marked): Enter or space mutes / unmutes the highlighted
    member, ``o`` changes the speaker order; each change is saved with the story at once and
    applies from the next visitor turn. Dismisses with ``None``.

    Args:
        controller: The kiosk, whose story is a group.
    """

    DEFAULT_CSS = _DIALOG_CSS.format(name="GroupScreen") + "GroupScreen OptionList { height: auto; max-height: 14; }"
    BINDINGS = [*_Dialog.BINDINGS, Binding("space", "toggle", show=False), Binding("o", "order", show=False)]

    def __init__(self, controller: KioskController) -> None:
        super().__init__()
        self.controller = controller

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="group-order", markup=False)
            yield OptionList(id="members")
            yield Static("Enter / space: mute or unmute · o: speaker order · Esc: back", classes="hint",
                         markup=False)
            yield Static("", id="group-status", markup=False)

    def on_mount(self) -> None:
        self._fill(0)
        self.query_one(OptionList).focus()

    def _fill(self, highlight: int | None) -> None:
        group = self.controller.session.group
        if group is None:
            return
        self.query_one("#group-order", Static).update(
            Text(f"{group.name} · speaker order {ORDER_HELP.get(group.order, group.order)}"))
        members = self.query_one(OptionList)
        members.clear_options()
        for member in group.members:
            line = Text(member.name)  # a card's name: shown as text, never parsed as markup
            if member.muted:
                line.append("  (muted)", style="bold")
            members.add_option(Option(line, id=member.name))
        if members.option_count:
            members.highlighted = min(highlight or 0, members.option_count - 1)

    def status(self, text: str, *, problem: bool = False) -> None:
        """Say what happened (a refusal in the error colour)."""
        line = self.query_one("#group-status", Static)
        line.set_class(problem, "problem")
        line.update(text)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_toggle()

    def action_toggle(self) -> None:
        """Mute or unmute the highlighted member."""
        members = self.query_one(OptionList)
        group = self.controller.session.group
        if members.highlighted is None or group is None:
            return
        name = members.get_option_at_index(members.highlighted).id or ""
        member = group.member(name)
        if member is None:
            return
        try:
            said = self.controller.set_muted(member.name, not member.muted)
        except StorytellerError as exc:
            self.status(str(exc), problem=True)
            return
        self._fill(members.highlighted)
        self.status(said)

    def action_order(self) -> None:
        """The next speaker order the kiosk offers (natural, list, everyone)."""
        group = self.controller.session.group
        if group is None:
            return
        orders = list(KIOSK_ORDERS)
        order = orders[(orders.index(group.order) + 1) % len(orders)] if group.order in orders else orders[0]
        try:
            said = self.controller.set_order(order)
        except StorytellerError as exc:
            self.status(str(exc), problem=True)
            return
        self._fill(self.query_one(OptionList).highlighted)
        self.status(said)
