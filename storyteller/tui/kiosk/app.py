"""The kiosk app: wires the screens, the clock tick, the generation workers and the locked-down keys.

Visitors can never leave it: the quit, command palette, suspend and copy keys are swallowed
before Textual sees them, the command palette is off, and no screen binds a way out. Only the
operator PIN opens the admin screen, which can quit.
"""

from __future__ import annotations

from pathlib import Path

from textual import events, work
from textual.app import App
from textual.screen import Screen

from storyteller.errors import StorytellerError
from storyteller.tui.kiosk.admin import AdminScreen
from storyteller.tui.kiosk.attract import AttractScreen
from storyteller.kiosk.controller import KioskController
from storyteller.tui.kiosk.messages import (
    InvitationAccepted,
    RecapWritten,
    ReplyStarted,
    ReplyStreamed,
    RetryPressed,
    TurnFinished,
    VisitEnded,
    VisitorSubmitted,
)
from storyteller.tui.kiosk.pin import PinScreen
from storyteller.tui.kiosk.visitor import VisitorScreen
from storyteller.session import GenerationStarted, SessionEvent, TextReceived

__all__ = ["BLOCKED_KEYS", "KioskApp"]

BLOCKED_KEYS = frozenset({
    "ctrl+q",          # quit
    "ctrl+c",          # copy (and the old quit)
    "ctrl+p",          # command palette
    "ctrl+z",          # suspend
    "ctrl+backslash",  # SIGQUIT on a terminal that still sends it
    "ctrl+o",          # file dialogs
    "f1",              # help / key panel
})
"""Keys that never reach a screen. Textual also gets no ISIG, so Ctrl+C sends no signal."""

ADMIN_IDLE_SECONDS = 300


def _kiosk_driver() -> type | None:
    """The hardened Linux driver (no SIGTSTP, no crash on bytes that are not UTF-8) where it exists."""
    try:
        from storyteller.tui.kiosk.driver import KioskDriver
    except ImportError:  # Windows: Textual's own driver
        return None
    return KioskDriver


class KioskApp(App[int], inherit_bindings=False):
    """The kiosk.

    Args:
        controller: The kiosk's rules around an open session.
        config_file: The kiosk settings file (the admin screen saves to it).
        tick_seconds: How often the clock is checked (idle, time limit, cooldown, archive).
    """

    TITLE = "storyteller kiosk"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = []

    def __init__(self, controller: KioskController, *, config_file: Path, tick_seconds: float = 1.0) -> None:
        super().__init__(driver_class=_kiosk_driver())
        self.controller = controller
        self.operator_quit = False
        """True once the operator quit from the admin screen (or systemd stopped the service)."""
        self.config_file = config_file
        self.tick_seconds = tick_seconds
        self.last_key = controller.now()
        self.busy = False
        self.archive_note = ""
        self._pending_text: str | None = None
        controller.subscribe(self._on_session_event)

    # -- set-up ----------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return AttractScreen(self.controller)

    def on_mount(self) -> None:
        self.set_interval(self.tick_seconds, self.tick)
        self.call_after_refresh(self._start_background)

    def _start_background(self) -> None:
        """After a restart: finish an interrupted turn, or write a recap if one is due."""
        if self.controller.pending_input() is not None:
            self.run_resume()
        elif self.controller.recap_due() or (self.controller.kiosk.recap_every and not self.controller.state.recap
                                              and len(self.controller.messages()) > 1):
            self.run_recap()

    @property
    def attract(self) -> AttractScreen:
        """The attract screen (always at the bottom of the stack)."""
        return self.screen_stack[0]  # type: ignore[return-value]

    # -- keys ------------------------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self.last_key = self.controller.now()
            if event.key in BLOCKED_KEYS:
                event.stop()
                event.prevent_default()
                return
            if event.key == self.controller.kiosk.admin_key:
                event.stop()
                self.ask_pin()
                return
        elif isinstance(event, events.MouseDown):
            self.last_key = self.controller.now()
        await super().on_event(event)

    def action_quit(self) -> None:  # type: ignore[override]
        """Quitting is only possible from the admin screen."""

    def action_suspend_process(self) -> None:
        """Suspending is never allowed."""

    def action_command_palette(self) -> None:
        """There is no command palette."""

    def open_url(self, url: str, *, new_tab: bool = True) -> None:
        """Links in the story (model output) never open anything."""

    # -- screens ---------------------------------------------------------------------------------

    def start_visit(self) -> None:
        """A key on the attract screen: start a turn unless the cooldown or a reply is running."""
        if self.busy or self.controller.cooldown_left() > 0 or not isinstance(self.screen, AttractScreen):
            self.attract.update_invite()
            return
        self.push_screen(VisitorScreen(self.controller))

    def end_visit(self, *, added: bool) -> None:
        """A turn is over: cooldown (when something was added), recap when due, attract screen."""
        if added:
            self.controller.end_turn()
        self.back_to_attract()
        if added and self.controller.recap_due():
            self.run_recap()

    def back_to_attract(self) -> None:
        """Close every screen above the attract screen."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.attract.refresh_story()

    def ask_pin(self) -> None:
        """Open the PIN prompt, then the admin screen when the PIN is right."""
        if isinstance(self.screen, PinScreen | AdminScreen) or self.busy:
            return

        def opened(ok: bool | None) -> None:
            if ok:
                while len(self.screen_stack) > 1:
                    self.pop_screen()
                self.push_screen(AdminScreen())

        self.push_screen(PinScreen(), opened)

    def quit_kiosk(self) -> None:
        """Leave (admin only, or SIGTERM from systemd)."""
        self.operator_quit = True
        self.exit(0)

    @property
    def exit_status(self) -> int:
        """The process exit code: 0 only when the operator quit; any other end is a failure, so
        systemd restarts the kiosk."""
        if self.operator_quit:
            return 0
        return self.return_code or 1

    # -- the clock -------------------------------------------------------------------------------

    def tick(self) -> None:
        """Check the clock: idle return, time limit, cooldown display, nightly archive."""
        now = self.controller.now()
        screen = self.screen
        if isinstance(screen, VisitorScreen):
            screen.check_time(now, self.last_key)
        elif len(self.screen_stack) > 1:
            # PIN prompt and admin screens: close them when nobody is there any more.
            limit = self.controller.kiosk.idle_seconds if isinstance(screen, PinScreen) else ADMIN_IDLE_SECONDS
            if now - self.last_key >= max(limit, self.controller.kiosk.idle_seconds):
                self.back_to_attract()
        else:
            self.attract.update_invite()
        try:
            files = self.controller.archive_if_due()
        except StorytellerError as exc:
            self.archive_note = f"Last nightly archive failed: {exc}"
        else:
            if files:
                self.archive_note = f"Last nightly archive: {files[0].parent}"

    # -- workers ---------------------------------------------------------------------------------

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def run_turn(self, text: str, kind: str, visitor: str) -> None:
        """Generate the continuation of a visitor's text."""
        self.busy = True
        try:
            result = await self.controller.submit(text, kind, visitor)
        finally:
            self.busy = False
        self.post_message(TurnFinished(result))

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def run_retry(self) -> None:
        """Another reply in place of the last one."""
        self.busy = True
        try:
            result = await self.controller.retry()
        finally:
            self.busy = False
        self.post_message(TurnFinished(result))

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def run_resume(self) -> None:
        """Finish a turn that a crash or power cut interrupted."""
        self.busy = True
        self.attract.update_invite()
        try:
            result = await self.controller.resume_pending()
        finally:
            self.busy = False
        if result is not None:
            self.post_message(TurnFinished(result, resumed=True))

    @work(exclusive=True, group="recap", exit_on_error=False)
    async def run_recap(self) -> None:
        """Write a new recap while nobody is playing."""
        text = await self.controller.write_recap()
        self.post_message(RecapWritten(text or ""))

    def _on_session_event(self, event: SessionEvent) -> None:
        if isinstance(event, TextReceived):
            self.post_message(ReplyStreamed(event.text))
        elif isinstance(event, GenerationStarted):
            self.post_message(ReplyStarted(event.action, event.speaker))

    # -- messages --------------------------------------------------------------------------------

    def on_reply_started(self, message: ReplyStarted) -> None:
        self._pending_text = None
        if isinstance(self.screen, VisitorScreen):
            self.screen.reply_started(message.action, message.speaker)

    def on_reply_streamed(self, message: ReplyStreamed) -> None:
        # Batch redraws: a fast engine sends far more tokens than a screen can show.
        first = self._pending_text is None
        self._pending_text = message.text
        if first:
            self.set_timer(0.03, self._show_pending)

    def _show_pending(self) -> None:
        text, self._pending_text = self._pending_text, None
        if text is not None and isinstance(self.screen, VisitorScreen) and self.screen.stage == "streaming":
            self.screen.show_reply(text)

    def on_turn_finished(self, message: TurnFinished) -> None:
        self._pending_text = None
        screen = self.screen
        if isinstance(screen, VisitorScreen) and not message.resumed:
            screen.turn_finished(message.result)
        elif isinstance(screen, AttractScreen):
            screen.refresh_story()
            if message.resumed and self.controller.recap_due():
                self.run_recap()

    def on_recap_written(self, message: RecapWritten) -> None:
        if isinstance(self.screen, AttractScreen) and message.text:
            self.screen.refresh_story()

    # -- what the screens report -------------------------------------------------------------------

    def on_invitation_accepted(self, message: InvitationAccepted) -> None:
        self.start_visit()

    def on_visitor_submitted(self, message: VisitorSubmitted) -> None:
        self.run_turn(message.text, message.kind, message.visitor)

    def on_retry_pressed(self, message: RetryPressed) -> None:
        self.run_retry()

    def on_visit_ended(self, message: VisitEnded) -> None:
        self.end_visit(added=message.added)

