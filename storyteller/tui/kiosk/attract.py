"""The attract screen: the title, a recap, the last passages with who wrote them, and an invitation."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Markdown, Static

from storyteller.kiosk.archive import attribution
from storyteller.kiosk.controller import KioskController
from storyteller.session import PLAYER_KINDS
from storyteller.tui.kiosk.messages import InvitationAccepted

__all__ = ["AttractScreen", "passage_text"]

INVITE = "Press any key to add to the story"


def passage_text(kind: str, text: str, mode: str) -> str:
    """A passage as the kiosk shows it: visitor lines marked with ``>`` in adventures."""
    text = text.strip("\n")
    if kind in ("say", "do") and mode == "adventure":
        from storyteller.session import format_action

        return format_action(kind, text).strip()
    if kind in PLAYER_KINDS:
        return "> " + text.replace("\n", "\n> ")
    return text


class AttractScreen(Screen):
    """Shown between visitors. Any key starts a turn (unless the cooldown or a reply is running)."""

    DEFAULT_CSS = """
    AttractScreen { align: center top; }
    AttractScreen #attract { width: 100%; max-width: 100; height: 1fr; padding: 1 2; }
    AttractScreen #title { text-style: bold; color: $accent; content-align: center middle; width: 100%; padding-bottom: 1; }
    AttractScreen #recap { color: $text-muted; padding-bottom: 1; }
    AttractScreen #passages { height: 1fr; }
    AttractScreen .passage { padding: 0 0 0 0; margin: 0; }
    AttractScreen .by { color: $text-muted; text-style: italic; padding-bottom: 1; text-align: right; }
    AttractScreen #invite { dock: bottom; height: 3; content-align: center middle; text-style: bold;
                            background: $primary; color: $text; width: 100%; }
    """

    def __init__(self, controller: KioskController) -> None:
        super().__init__(id="attract-screen")
        self.controller = controller

    def compose(self) -> ComposeResult:
        with Vertical(id="attract"):
            yield Static("", id="title", markup=False)
            yield Static("", id="recap", markup=False)
            yield VerticalScroll(id="passages")
        yield Static(INVITE, id="invite", markup=False)

    def on_mount(self) -> None:
        self.refresh_story()

    def on_screen_resume(self) -> None:
        self.refresh_story()

    def refresh_story(self) -> None:
        """Show the story as it is now."""
        if not self.is_mounted:
            return  # on_mount will show it
        controller = self.controller
        self.query_one("#title", Static).update(controller.title)
        recap = controller.state.recap
        self.query_one("#recap", Static).update(f"The story so far: {recap}" if recap else "")
        box = self.query_one("#passages", VerticalScroll)
        box.remove_children()
        mode = controller.session.story.settings.mode
        messages = controller.messages()[-controller.kiosk.attract_passages:]
        widgets = []
        markdown = controller.kiosk.markdown()
        for message in messages:
            text = passage_text(message.head.kind, message.text, mode)
            widgets.append(Markdown(text, classes="passage") if markdown else Static(text, classes="passage", markup=False))
            by = attribution(message.head, controller.speaker_for(message.head))
            widgets.append(Static(f"— {by}", classes="by", markup=False))
        if not widgets:
            widgets.append(Static("The story has not begun yet: be the first to write it.", classes="passage", markup=False))
        box.mount_all(widgets)
        box.anchor()
        self.update_invite()

    def update_invite(self) -> None:
        """The bottom line: the invitation, the cooldown, or a reply in progress."""
        if not self.is_mounted:
            return
        left = self.controller.cooldown_left()
        if self.controller.session.generating:
            text = "The story is being written…"
        elif left > 0:
            text = f"The story is catching its breath: the next turn starts in {int(left + 0.999)} s"
        else:
            text = INVITE
        self.query_one("#invite", Static).update(text)

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.post_message(InvitationAccepted())

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(InvitationAccepted())
