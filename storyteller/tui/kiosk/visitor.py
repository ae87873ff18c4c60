"""A visitor's turn: an optional name, a short text of one of the mode's kinds, the streamed reply,
then keep it or try once more. Idle time and the turn's time limit send the screen back."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from storyteller.kiosk.controller import KioskController, TurnResult
from storyteller.tui.kiosk.attract import passage_text
from storyteller.tui.kiosk.messages import RetryPressed, VisitEnded, VisitorSubmitted

__all__ = ["VisitorScreen"]

KIND_LABELS = {"do": "Do", "say": "Say", "story": "Story"}
KIND_HINTS = {
    "do": "What do you do? (e.g. open the gate)",
    "say": "What do you say?",
    "story": "Write the next line of the story",
}
STAGES = ("name", "write", "streaming", "review")


class VisitorScreen(Screen, inherit_bindings=False):
    """One visitor's turn, in four stages: ``name``, ``write``, ``streaming``, ``review``."""

    BINDINGS = [Binding("tab", "next_kind", show=False, priority=True)]

    DEFAULT_CSS = """
    VisitorScreen { align: center top; }
    VisitorScreen #visitor { width: 100%; max-width: 100; height: 1fr; padding: 1 2; }
    VisitorScreen #context { color: $text-muted; padding-bottom: 1; max-height: 50%; }
    VisitorScreen #stage-title { text-style: bold; color: $accent; padding-bottom: 1; }
    VisitorScreen #kinds { padding-bottom: 1; }
    VisitorScreen #counter { color: $text-muted; text-align: right; }
    VisitorScreen #reply { padding: 1 0; }
    VisitorScreen #notice { color: $warning; padding: 1 0; }
    VisitorScreen #help { dock: bottom; height: 1; color: $text-muted; width: 100%; content-align: center middle; }
    """

    def __init__(self, controller: KioskController) -> None:
        super().__init__(id="visitor-screen")
        self.controller = controller
        self.stage = "name"
        self.kind_index = 0
        self.visitor = ""
        self.retries_left = 0
        self.started = 0.0
        self.over_time = False
        self.text = ""
        self.speaking = ""
        """In a group story: the member whose reply is streaming."""
        self.action = "reply"

    def compose(self) -> ComposeResult:
        kiosk = self.controller.kiosk
        with Vertical(id="visitor"):
            yield Static("", id="context", markup=False)
            yield Static("", id="stage-title", markup=False)
            yield Input(id="name", placeholder="Your name or nickname (optional)", max_length=kiosk.max_name_chars)
            yield Static("", id="kinds", markup=False)
            yield Input(id="text", max_length=kiosk.max_input_chars)
            yield Static("", id="counter", markup=False)
            yield Static("", id="reply", markup=False)
            yield Static("", id="notice", markup=False)
        yield Static("", id="help", markup=False)

    def on_mount(self) -> None:
        controller = self.controller
        self.retries_left = controller.kiosk.visitor_retries
        self.started = controller.now()
        mode = controller.session.story.settings.mode
        last = controller.messages()[-2:]
        self.query_one("#context", Static).update(
            "\n\n".join(self._passage(m, mode) for m in last) or "A new story begins.")
        self.set_stage("name")

    def _passage(self, message, mode: str) -> str:
        """A passage of the story so far; in a group story a reply comes after its member's name."""
        text = passage_text(message.head.kind, message.text, mode)
        if self.controller.members and not message.head.is_player:
            return f"{self.controller.speaker_for(message.head)}: {text}"
        return text

    # -- stages --------------------------------------------------------------------------------

    def set_stage(self, stage: str) -> None:
        """Show the widgets of one stage."""
        assert stage in STAGES
        self.stage = stage
        controller = self.controller
        name, text = self.query_one("#name", Input), self.query_one("#text", Input)
        name.display = stage == "name"
        text.display = self.query_one("#kinds").display = self.query_one("#counter").display = stage == "write"
        self.query_one("#reply").display = stage in ("streaming", "review")
        title = self.query_one("#stage-title", Static)
        help_line = self.query_one("#help", Static)
        if stage == "name":
            title.update("Welcome! What should the story call you?")
            help_line.update("Enter: go on · Esc: leave")
            name.focus()
        elif stage == "write":
            who = self.visitor or "visitor"
            title.update(f"Your turn, {who}. Add a line or two to the story.")
            self._show_kinds()
            self._count()
            help_line.update(("Tab: change kind · " if len(controller.kinds) > 1 else "") + "Enter: add it · Esc: leave")
            text.focus()
        elif stage == "streaming":
            title.update("The story continues…")
            help_line.update("")
            self.set_focus(None)
        else:
            title.update("Here is how the story goes on.")
            options = ["Enter: keep it"]
            if self.retries_left > 0:
                options.append("R: try again")
            help_line.update(" · ".join(options))
            self.set_focus(None)

    def _show_kinds(self) -> None:
        kinds = self.controller.kinds
        labels = [f"[ {KIND_LABELS[k]} ]" if i == self.kind_index else f"  {KIND_LABELS[k]}  "
                  for i, k in enumerate(kinds)]
        self.query_one("#kinds", Static).update("  ".join(labels) if len(kinds) > 1 else "")
        self.query_one("#text", Input).placeholder = KIND_HINTS[kinds[self.kind_index]]

    def _count(self) -> None:
        limit = self.controller.kiosk.max_input_chars
        self.query_one("#counter", Static).update(f"{len(self.query_one('#text', Input).value)}/{limit}")

    @property
    def kind(self) -> str:
        """The chosen input kind."""
        return self.controller.kinds[self.kind_index]

    def notice(self, text: str) -> None:
        """A short message to the visitor."""
        self.query_one("#notice", Static).update(text)

    # -- input ---------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "text":
            self._count()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "name":
            self.visitor = " ".join(event.value.split())
            self.set_stage("write")
            return
        text = event.value.strip()
        if not text:
            self.notice("Write a line or two first, then press Enter.")
            return
        refused = self.controller.check_input(text)
        if refused:
            self.notice(refused)
            return
        self.notice("")
        self.text = text
        self.set_stage("streaming")
        self.post_message(VisitorSubmitted(text, self.kind, self.visitor))

    def action_next_kind(self) -> None:
        """Tab: the next input kind (Do, Say, Story)."""
        if self.stage == "write":
            self.kind_index = (self.kind_index + 1) % len(self.controller.kinds)
            self._show_kinds()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape":
            event.stop()
            if self.stage in ("name", "write", "review"):
                self.finish(leaving=self.stage != "review")
        elif self.stage == "review":
            event.stop()
            if event.key == "enter":
                self.finish()
            elif event.key == "r" and self.retries_left > 0:
                self.retries_left -= 1
                self.set_stage("streaming")
                self.query_one("#reply", Static).update("")
                self.post_message(RetryPressed())

    # -- the reply -----------------------------------------------------------------------------

    def _visitor_line(self) -> str:
        """The visitor's own line, rendered as the attract screen and the admin lists show it."""
        return passage_text(self.kind, self.text, self.controller.session.story.settings.mode)

    def reply_started(self, action: str, speaker: str) -> None:
        """A reply starts streaming (in a group, one per member that answers)."""
        self.action, self.speaking = action, speaker

    def _named(self, node) -> str:
        return f"{self.controller.speaker_for(node)}: {node.text}"

    def show_reply(self, text: str) -> None:
        """The reply so far, as it may be shown (in a group: the turn's earlier replies first, each
        reply after its member's name)."""
        shown = self.controller.shown_text(text)
        if self.speaking:
            done = self.controller.turn_replies()
            if self.action == "regenerate":
                done = done[:-1]  # the reply being replaced
            shown = "\n\n".join([*(self._named(n) for n in done), f"{self.speaking}: {shown}"])
        self.query_one("#reply", Static).update(f"{self._visitor_line()}\n\n{shown}")

    def turn_finished(self, result: TurnResult) -> None:
        """The reply is complete (or failed)."""
        if result.replies:
            replies = "\n\n".join(self._named(n) for n in result.replies)
            self.query_one("#reply", Static).update(f"{self._visitor_line()}\n\n{replies}")
        elif result.reply is not None:
            self.query_one("#reply", Static).update(f"{self._visitor_line()}\n\n{result.reply.text}")
        if result.error:
            self.notice(f"Sorry, something went wrong: {result.error}")
        elif result.moderated == "cut":
            self.notice("Part of the reply was left out by the kiosk's filter.")
        else:
            self.notice("")
        if self.over_time:
            self.finish()
            return
        self.set_stage("review")

    def finish(self, *, leaving: bool = False) -> None:
        """End the turn and go back to the attract screen (a visitor who leaves early adds nothing)."""
        self.post_message(VisitEnded(added=not leaving))

    # -- time ----------------------------------------------------------------------------------

    def check_time(self, now: float, last_key: float) -> None:
        """Called on every tick: idle return and the turn's time limit."""
        kiosk = self.controller.kiosk
        over = now - self.started >= kiosk.turn_seconds
        idle = now - last_key >= kiosk.idle_seconds
        if self.stage == "streaming":
            self.over_time = self.over_time or over
            return
        if over or idle:
            self.finish(leaving=self.stage != "review")
