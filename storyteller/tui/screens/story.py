"""The story screen: the transcript, the input with the mode's kinds, and every play action.

Generation runs in one named async worker (group ``generation``); the play loop's events come
back through :meth:`StoryScreen._on_session_event`: streamed text is buffered and flushed to the
transcript at most every :data:`FLUSH_SECONDS`, everything else is posted as a
:class:`~storyteller.tui.messages.SessionEventReceived` message and handled on the screen.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Static
from textual.worker import Worker, WorkerState

from storyteller.errors import StorytellerError
from storyteller.session import (
    GenerationFailed,
    GenerationFinished,
    GenerationStarted,
    Mode,
    PromptBuilt,
    PromptProcessed,
    StoryChanged,
    TextReceived,
    kinds_for_mode,
)
from storyteller.session.library import Library
from storyteller.tui.messages import BranchNamed, SessionEventReceived, StreamFlushed
from storyteller.tui.screens.dialogs import AskText, EditText
from storyteller.tui.screens.group import SpeakerPicker, group_status
from storyteller.tui.widgets.status import StatusBar
from storyteller.tui.widgets.transcript import Transcript, member_colours

__all__ = ["FLUSH_SECONDS", "KINDS_BY_MODE", "StoryScreen"]

FLUSH_SECONDS = 0.03
"""Streamed text reaches the screen at most this often (the UI stays responsive at any speed)."""

KINDS_BY_MODE = {mode.value: kinds_for_mode(mode) for mode in Mode}
_KIND_LABEL = {"do": "Do", "say": "Say", "story": "Story"}
_PLACEHOLDER = {
    "do": "What do you do?  (Enter: act, ctrl+t: Say / Story)",
    "say": "What do you say?  (Enter: send)",
    "story": "Write what happens next, or press Enter to let the story go on",
}


class StoryScreen(Screen):
    """Play one open :class:`~storyteller.session.Session`.

    Args:
        session: The open session.
    """

    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("ctrl+n", "continue", "Continue"),
        Binding("alt+left", "swipe(-1)", "◀ Swipe", show=False),
        Binding("alt+right", "swipe(1)", "Swipe ▶", show=False),
        Binding("ctrl+z", "undo", "Undo"),
        Binding("ctrl+y", "redo", "Redo", show=False),
        Binding("f2", "edit", "Edit"),
        Binding("ctrl+t", "cycle_kind", "Do/Say/Story", show=False),
        Binding("alt+b", "branch", "Branch", show=False),
        Binding("alt+c", "copy_message", "Copy message", show=False),
        Binding("f3", "app.inspector", "Prompt", show=False),
        Binding("f4", "app.trace", "World trace", show=False),
        Binding("f5", "app.notes", "Notes", show=False),
        Binding("f7", "app.character", "Character", show=False),
        Binding("f8", "app.world_info", "World info", show=False),
        Binding("alt+w", "app.worlds", "Worlds", show=False),
        Binding("ctrl+g", "speakers", "Speaker"),
    ]

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.mode = session.story.settings.mode
        self.kinds = kinds_for_mode(self.mode)
        self.kind = self.kinds[0]
        self.state = ""
        self._pending: str | None = None
        self._flush_timer: Timer | None = None
        self.flushes = 0
        self.reply_tokens = 0
        """Tokens of the reply being (or last) generated: the status bar's ``ctx`` counts them."""
        self.speaking = ""
        """In a group: the member whose reply is streaming ("" when none is)."""
        self._unsubscribe = session.subscribe(self._on_session_event)

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        group = self.session.group
        yield Static(self._title(), id="story-title", markup=False)
        yield Transcript(self._author_of, self.mode, id="transcript",
                         colours=self._colours() if group is not None else None)
        with Horizontal(id="input-bar"):
            yield Button(self._kind_label(), id="kind", compact=True)
            yield Input(placeholder=_PLACEHOLDER[self.kind], id="prompt-input")
        yield StatusBar(id="status")
        yield Footer()

    def _colours(self) -> dict[str, str]:
        """The members' name colours; a member who left keeps one for their old messages (given after
        the members', so no member's colour changes)."""
        former = dict.fromkeys(m.head.author for m in self.session.story.messages()
                               if not m.head.is_player and m.head.author not in ("", "narrator"))
        return member_colours([*self.session.members, *former])

    def _title(self) -> str:
        story = self.session.story
        group = self.session.group
        card = group.name if group is not None else self.session.character_name
        return f"{story.name} · {self.mode} · {card}" + (" · read-only" if story.read_only else "")

    def on_mount(self) -> None:
        self.transcript.load(self.session.story.messages())
        self._refresh_counter()
        self._refresh_status()
        self.query_one("#prompt-input", Input).focus()
        for warning in self.session.story.warnings:
            self.notify(warning, severity="warning", markup=False, timeout=8)

    def on_unmount(self) -> None:
        self._unsubscribe()

    @property
    def transcript(self) -> Transcript:
        """The transcript widget."""
        return self.query_one(Transcript)

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self.query_one(StatusBar)

    def _author_of(self, message: Any) -> str:
        head = message.head
        if head.is_player and head.is_user:
            if head.visitor_name is not None:
                return head.visitor_name
            return self.session.story.settings.persona.name or "You"
        return head.author or self.session.character_name

    def _kind_label(self) -> str:
        return f"{_KIND_LABEL[self.kind]} ▸" if len(self.kinds) > 1 else _KIND_LABEL[self.kind]

    # -- session events ----------------------------------------------------------------------

    def _on_session_event(self, event: Any) -> None:
        """Called by the play loop; text is batched, everything else becomes a message."""
        if isinstance(event, TextReceived):
            self.reply_tokens += 1  # the engines stream about a token per chunk; the final count replaces it
            self._pending = event.text
            if self._flush_timer is None:
                self._flush_timer = self.set_timer(FLUSH_SECONDS, self._flush)
        else:
            self.post_message(SessionEventReceived(event))

    def _flush(self) -> None:
        self._flush_timer = None
        if self._pending is None or self.transcript.stream_view is None:
            return
        text, self._pending = self._pending, None
        self.transcript.stream(text)
        if self.state.startswith("reading prompt"):  # the last prompt token is read with the first word
            self.state = "generating… (Esc stops)"
        self._refresh_status()
        self.flushes += 1
        self.post_message(StreamFlushed(text, self.flushes))

    def on_session_event_received(self, message: SessionEventReceived) -> None:
        event = message.event
        transcript = self.transcript
        if isinstance(event, GenerationStarted):
            self.flushes = 0
            self.reply_tokens = 0
            self._pending = None
            self.speaking = event.speaker
            transcript.begin_stream(event.action, event.speaker or self.session.character_name)
            transcript.set_counter("")
            self._set_state("generating… (Esc stops)")
        elif isinstance(event, PromptBuilt):
            self._refresh_status()
        elif isinstance(event, PromptProcessed):
            if event.total and event.done < event.total - 1:  # the engine reads the last token with the first word
                self._set_state(f"reading prompt {100 * event.done // event.total}%")
            else:
                self._set_state("generating… (Esc stops)")
        elif isinstance(event, GenerationFinished | GenerationFailed):
            if isinstance(event, GenerationFinished) and event.stats.completion_tokens is not None:
                self.reply_tokens = event.stats.completion_tokens
            self.speaking = ""
            self._end_stream()
            if isinstance(event, GenerationFailed):
                self.notify(event.message, title="The reply failed", severity="error", markup=False, timeout=10)
                self._set_state("failed")
            else:
                self._set_state("stopped" if event.finish_reason == "cancelled" else "")
        elif isinstance(event, StoryChanged):
            if transcript.stream_view is None:
                transcript.sync(self.session.story.messages())
                self._refresh_counter()
                self._refresh_status()

    def _end_stream(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self._pending = None
        self.transcript.end_stream(self.session.story.messages())
        self._refresh_counter()

    def _set_state(self, state: str) -> None:
        self.state = state
        self._refresh_status()

    def _refresh_status(self) -> None:
        session = self.session
        group = session.group
        line = ""
        if group is not None:
            upcoming = session.next_speakers() if group.order in ("list", "everyone") and not self.speaking else ()
            line = group_status(group, speaking=self.speaking, upcoming=upcoming)
        self.status.show(session.backend.info(), session.last_prompt, session.last_stats, self.state,
                         reply_tokens=self.reply_tokens, group=line)

    def _refresh_counter(self) -> None:
        index, count = self.session.swipe_position()
        self.transcript.set_counter(f"{index + 1}/{count}" if count > 1 else "")

    # -- generation --------------------------------------------------------------------------

    @work(exclusive=True, group="generation", exit_on_error=False, name="generation")
    async def generate(self, action: str, text: str = "", kind: str = "say", step: int = 0) -> None:
        """Run one play action that may generate (submit, retry, continue, swipe)."""
        session = self.session
        try:
            if action == "submit":
                await session.submit(text, kind)
            elif action == "retry":
                await session.regenerate()
            elif action == "continue":
                await session.continue_()
            elif action == "swipe":
                await session.swipe(step)
            elif action == "reply_as":
                await session.reply_as(text)
        except StorytellerError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=8)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "generation" and event.state == WorkerState.ERROR:
            # Anything unexpected: show it, keep playing.
            self.notify(f"{type(event.worker.error).__name__}: {event.worker.error}", title="Something went wrong",
                        severity="error", markup=False, timeout=10)
            if self.transcript.stream_view is not None:
                self._end_stream()
            self._set_state("")

    def _busy(self) -> bool:
        if self.session.generating:
            self.notify("A reply is being generated; press Esc to stop it first.", severity="warning", markup=False)
            return True
        return False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._busy():
            return
        text = event.value
        event.input.value = ""
        self.generate("submit", text, self.kind)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "kind":
            event.stop()
            self.action_cycle_kind()

    # -- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "speakers":
            return self.session.group is not None  # the picker's key is only offered in a group
        return True

    def action_speakers(self) -> None:
        """Group: pick a member to reply now, mute or unmute members, change the speaker order, add or
        remove members, edit the group's settings."""
        if self.session.group is None:  # reached from the command palette
            self.notify("This story is not a group chat; start one in the Library (F6) with ctrl+g.",
                        markup=False)
            return

        def chosen(name: str | None) -> None:
            self.transcript.colours = self._colours()  # members may have changed
            self.query_one("#story-title", Static).update(self._title())  # and the group's name
            self._refresh_status()
            if name and not self._busy():
                self.generate("reply_as", name)

        self.app.push_screen(SpeakerPicker(self.session), chosen)

    def action_stop(self) -> None:
        """Stop the reply being generated (what arrived so far is kept)."""
        if self.session.generating:
            self.session.stop()
            self._set_state("stopping…")

    def action_retry(self) -> None:
        """Generate another reply in place of the last one (kept as a swipe)."""
        if not self._busy():
            self.generate("retry")

    def action_continue(self) -> None:
        """Let the model continue its last reply."""
        if not self._busy():
            self.generate("continue")

    def action_swipe(self, step: int) -> None:
        """Show the previous / next alternative reply; past the last one, generate a new one."""
        if not self._busy():
            self.generate("swipe", step=step)

    def _run(self, action, *args) -> Any:
        try:
            return action(*args)
        except StorytellerError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=8)
            return None

    def action_undo(self) -> None:
        """Step back one passage (nothing is lost; redo brings it back)."""
        if not self._busy():
            self._run(self.session.undo)

    def action_redo(self) -> None:
        """Step forward again."""
        if not self._busy():
            self._run(self.session.redo)

    def action_cycle_kind(self) -> None:
        """Switch the input between the mode's kinds (adventure: Do, Say, Story)."""
        index = self.kinds.index(self.kind)
        self.kind = self.kinds[(index + 1) % len(self.kinds)]
        self.query_one("#kind", Button).label = self._kind_label()
        self.query_one("#prompt-input", Input).placeholder = _PLACEHOLDER[self.kind]

    def action_edit(self) -> None:
        """Edit the focused message (or the last one) in place; the old text stays as a swipe."""
        if self._busy():
            return
        view = self.transcript.selected_view()
        if view is None or view.message is None:
            self.notify("There is nothing to edit yet.", markup=False)
            return
        message = view.message

        def done(text: str | None) -> None:
            if text is None or text == message.text:
                return
            self._run(self.session.edit_message, message, text)

        self.app.push_screen(EditText(f"Edit: {self._author_of(message)}", message.text), done)

    def action_branch(self) -> None:
        """Start a new story from here (the story so far, with its alternatives)."""
        if self._busy():
            return
        story = self.session.story
        if story.current is None:
            self.notify("There is nothing to branch from yet.", markup=False)
            return
        suggestion = Library(self.session.parts.paths).unique_story_name(f"{story.name}-branch")

        def done(name: str | None) -> None:
            if name and name.strip():
                self.post_message(BranchNamed(name.strip()))

        self.app.push_screen(AskText("Name of the new story (a branch from here)", suggestion), done)

    def action_copy_message(self) -> None:
        """Copy the focused (or last) message to the clipboard (OSC 52: works over SSH and tmux)."""
        view = self.transcript.selected_view()
        if view is not None and view.message is not None:
            self.app.copy_to_clipboard(view.message.text)
            self.notify("Message copied to the clipboard.", markup=False)

