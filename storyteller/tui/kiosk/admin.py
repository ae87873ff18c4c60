"""The operator's screen, behind the PIN: undo, hide, edit, export, settings, group, reset, quit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from storyteller.errors import StorytellerError
from storyteller.tui.kiosk.attract import passage_text
from storyteller.tui.kiosk.admin_forms import EditScreen, GroupScreen, PassagePicker, SettingsScreen
from storyteller.tui.screens.dialogs import Confirm
from storyteller.kiosk.archive import attribution
from storyteller.kiosk.settings import save_kiosk_settings

if TYPE_CHECKING:
    from storyteller.tui.kiosk.app import KioskApp

__all__ = ["ACTIONS", "GROUP_ACTION", "AdminScreen", "admin_actions"]

ACTIONS = [
    ("undo", "Undo the last turn"),
    ("hide", "Hide a passage"),
    ("edit", "Edit a passage"),
    ("export", "Export the story now (Markdown + SillyTavern JSONL)"),
    ("settings", "Settings"),
    ("reset", "Reset: archive this story and start a new one"),
    ("back", "Back to the kiosk"),
    ("quit", "Quit the kiosk"),
]
"""The menu of every kiosk; a group story's also has :data:`GROUP_ACTION`, after Settings."""

GROUP_ACTION = ("group", "Group: members, mute / unmute, speaker order")


def admin_actions(group: bool) -> list[tuple[str, str]]:
    """The admin menu's items: :data:`ACTIONS`, with the Group item after Settings in a group story."""
    if not group:
        return list(ACTIONS)
    at = [key for key, _ in ACTIONS].index("settings") + 1
    return [*ACTIONS[:at], GROUP_ACTION, *ACTIONS[at:]]


class AdminScreen(Screen, inherit_bindings=False):
    """The operator's menu. It closes by itself after a while without a key press."""

    DEFAULT_CSS = """
    AdminScreen { align: center middle; }
    AdminScreen #admin { width: 90%; max-width: 90; height: auto; border: thick $error; background: $panel; padding: 1 2; }
    AdminScreen #admin-status { color: $text-muted; padding-top: 1; }
    """
    BINDINGS = [Binding("escape", "back", show=False), Binding("tab", "app.focus_next", show=False)]

    def __init__(self) -> None:
        super().__init__(id="admin-screen")

    @property
    def kiosk(self) -> KioskApp:
        """The app."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="admin"):
            yield Static("Operator", markup=False)
            actions = admin_actions(self.kiosk.controller.session.group is not None)
            yield OptionList(*[Option(label, id=key) for key, label in actions], id="actions")
            yield Static("", id="admin-status", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        controller = self.kiosk.controller
        self.status(f"Story {controller.session.story.name!r}: {len(controller.messages())} passages. "
                    f"{self.kiosk.archive_note}")

    def status(self, text: str) -> None:
        """Tell the operator what happened."""
        self.query_one("#admin-status", Static).update(text)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        getattr(self, f"do_{event.option.id}")()

    def action_back(self) -> None:
        """Back to the attract screen."""
        self.kiosk.back_to_attract()

    # -- actions ---------------------------------------------------------------------------------

    def do_back(self) -> None:
        self.kiosk.back_to_attract()

    def do_undo(self) -> None:
        steps = self.kiosk.controller.undo_last_turn()
        self.status(f"Undid the last turn ({steps} passage(s)); nothing was deleted." if steps else "Nothing to undo.")

    def _passages(self) -> list[tuple[str, str]]:
        controller = self.kiosk.controller
        mode = controller.session.story.settings.mode
        return [(m.head.id, f"{attribution(m.head, controller.speaker_for(m.head))}: "
                            f"{passage_text(m.head.kind, m.text, mode)}")
                for m in controller.messages()[-40:]]

    @work(group="admin", exclusive=True)
    async def do_hide(self) -> None:
        node_id = await self.app.push_screen_wait(PassagePicker("Hide which passage?", self._passages()))
        if node_id:
            self.kiosk.controller.hide(node_id)
            self.status("Hidden: it is out of the story and the prompt, and kept in the story file.")

    @work(group="admin", exclusive=True)
    async def do_edit(self) -> None:
        controller = self.kiosk.controller
        node_id = await self.app.push_screen_wait(PassagePicker("Edit which passage?", self._passages()))
        if not node_id:
            return
        message = next((m for m in controller.messages() if m.head.id == node_id), None)
        if message is None:
            return
        text = await self.app.push_screen_wait(EditScreen(message.text))
        if text and text != message.text:
            try:
                controller.edit(node_id, text)
            except StorytellerError as exc:
                self.status(str(exc))
                return
            self.status("Edited; the original is kept in the story file.")

    def do_export(self) -> None:
        try:
            files = self.kiosk.controller.export()
        except StorytellerError as exc:
            self.status(str(exc))
            return
        self.status("Written: " + ", ".join(str(f) for f in files))

    @work(group="admin", exclusive=True)
    async def do_settings(self) -> None:
        controller = self.kiosk.controller
        settings = await self.app.push_screen_wait(SettingsScreen(controller.kiosk))
        if settings is None:
            return
        try:
            save_kiosk_settings(settings, self.kiosk.config_file)
        except StorytellerError as exc:
            self.status(str(exc))
            return
        controller.apply_settings(settings)
        self.status(f"Settings saved to {self.kiosk.config_file}.")

    @work(group="admin", exclusive=True)
    async def do_group(self) -> None:
        controller = self.kiosk.controller
        if controller.session.group is None:
            return
        await self.app.push_screen_wait(GroupScreen(controller))
        group = controller.session.group
        muted = [m.name for m in group.members if m.muted] if group is not None else []
        self.status(f"Group: speaker order {group.order if group else '-'}; "
                    f"muted: {', '.join(muted) if muted else 'nobody'}.")

    @work(group="admin", exclusive=True)
    async def do_reset(self) -> None:
        if not await self.app.push_screen_wait(Confirm("Archive this story and start a new one?")):
            return
        try:
            archived = await self.kiosk.controller.reset()
        except StorytellerError as exc:
            self.status(str(exc))
            return
        self.status(f"The old story is kept as {archived!r}; a new one has begun.")

    @work(group="admin", exclusive=True)
    async def do_quit(self) -> None:
        if await self.app.push_screen_wait(Confirm("Quit the kiosk?")):
            self.kiosk.quit_kiosk()
