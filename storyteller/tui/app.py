"""The Textual app: opens the engine and the story in named workers, and wires the screens.

``run_app(settings, paths)`` is the entry point. With no story named it reopens the most recent
story, or on the very first run starts a new one with the bundled adventure narrator and its
world on the default model. The engine is opened in an async worker (the embedded one loads in a
thread) while a loading screen shows what is happening; a failure shows what to do next
(settings, library, retry) instead of a traceback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from storyteller.config import Settings
from storyteller.errors import StorytellerError
from storyteller.paths import Paths
from storyteller.tui._prefs import load_prefs
from storyteller.tui.editors import EditorOpener
from storyteller.session import Session
from storyteller.session.library import Library
from storyteller.tui.messages import (
    BranchNamed,
    CardSaved,
    EngineFailed,
    EngineLoaded,
    EngineReloadRequested,
    PresetsRequested,
    SessionFailed,
    SessionOpened,
    SettingsSaved,
    StartupImportsFinished,
    StoryChosen,
    WorldSaved,
)
from storyteller.tui.screens.loading import LoadingScreen
from storyteller.tui.screens.story import StoryScreen

__all__ = ["ACTIONS", "StorytellerApp", "run_app"]

ACTIONS: list[tuple[str, str, str, str]] = [
    # (key, action, palette name, help) -- the help screen and the command palette list these.
    ("Enter", "submit", "Send", "send the input (adventure: Do / Say / Story)"),
    ("ctrl+t", "screen.cycle_kind", "Switch input kind", "switch the input between Do, Say and Story"),
    ("Esc", "screen.stop", "Stop", "stop the reply being generated at once (the text so far is kept)"),
    ("ctrl+r", "screen.retry", "Retry", "another reply in place of the last (the old one stays as a swipe)"),
    ("ctrl+n", "screen.continue", "Continue", "let the model continue its last reply"),
    ("alt+←", "screen.swipe(-1)", "Swipe left", "show the previous alternative reply"),
    ("alt+→", "screen.swipe(1)", "Swipe right", "show the next alternative; past the last, generate one"),
    ("ctrl+z", "screen.undo", "Undo", "step back one passage (nothing is lost)"),
    ("ctrl+y", "screen.redo", "Redo", "step forward again"),
    ("F2", "screen.edit", "Edit message", "edit the focused (or last) message in place"),
    ("alt+b", "screen.branch", "Branch", "start a new story from this point"),
    ("alt+c", "screen.copy_message", "Copy message", "copy the focused (or last) message (OSC 52)"),
    ("ctrl+g", "screen.speakers", "Speaker picker (group)",
     "group chat: a member replies now, mute / unmute, speaker order, add (a) or remove (x), settings (e)"),
    ("F3", "inspector", "Prompt inspector", "the last prompt: segments, budget, trimmed parts, cache reuse"),
    ("F4", "trace", "World info trace", "which world info fired or was skipped on the last turn, and why"),
    ("F5", "notes", "Author's note, memory, persona", "edit the story's author's note, memory and persona"),
    ("F6", "library", "Library", "characters, worlds and stories: import, start, open"),
    ("F7", "character", "Character", "view, edit and export the story's character card"),
    ("alt+w", "worlds", "Attach or detach worlds", "tick the worlds the open story uses (Space toggles)"),
    ("F8", "world_info", "World info editor", "edit the entries of the story's worlds"),
    ("F9", "settings", "Settings", "engine, model, sampler, the story's preset and template, theme"),
    ("F10", "presets", "Sampler presets", "choose, create, edit, delete and import sampler presets"),
    ("F9 ctrl+e", "reload_engine", "Reload engine", "open the engine again with the saved settings (Settings: ctrl+e)"),
    ("F1", "help", "Help", "this list"),
    ("ctrl+p", "command_palette", "Command palette", "search every action"),
    ("ctrl+q", "quit", "Quit", "save and leave (stops a reply in progress)"),
]


class StorytellerApp(EditorOpener, App[int]):
    """The storyteller terminal app.

    Args:
        settings: The loaded settings.
        paths: Where files live.
        story: Open (or start) this story; default: the most recent one, else a new adventure.
        card: Card for a new story (path or library name); default: the bundled narrator.
        worlds: Worlds for a new story.
        mode: Mode for a new story.
        backend: Use this engine instead of opening one (tests pass a ScriptedBackend).
        greeting: Which greeting opens a new story.
        imports: Files (cards, lorebooks, chats) to import into the library at start; the
            reports are shown once the story is open.
    """

    CSS_PATH = "app.tcss"
    TITLE = "storyteller"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("f6,ctrl+l", "library", "Library"),
        Binding("f9", "settings", "Settings", show=False),
        Binding("f10", "presets", "Presets", show=False),
    ]

    def __init__(self, settings: Settings, paths: Paths, *, story: str | None = None, card: str | None = None,
                 worlds: Sequence[str] | None = None, mode: str | None = None, backend: Any | None = None,
                 greeting: int = 0, imports: Sequence[str] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.paths = paths.ensure()
        self.library = Library(self.paths)
        self.backend = backend
        self._owns_backend = backend is None
        self.session: Session | None = None
        """The open story (``None`` until one is open); screens are given it when they are made."""
        self._request = {"name": story, "card": card, "worlds": worlds, "mode": mode, "greeting": greeting}
        self._closing = False
        self.engine_seconds: float | None = None
        self.imports = [str(p) for p in imports or []]
        self.import_reports: list[tuple[str, list[str]]] | None = None
        self._pending_reports: list[tuple[str, list[str]]] = []

    # -- start-up ----------------------------------------------------------------------------

    crash_notice: str | None = None
    """Set by :func:`run_app` when the previous run ended in a native crash (see storyteller.crashlog)."""

    def on_mount(self) -> None:
        prefs = load_prefs(self.paths)
        if prefs.get("theme") in self.available_themes:
            self.theme = prefs["theme"]
        if self.crash_notice:
            self.notify(self.crash_notice, severity="error", markup=False, timeout=30)
        self.push_screen(LoadingScreen(self._engine_label()))
        if self.imports:
            self.import_startup_files(self.imports)
        if self.backend is None:
            self.open_engine()
        else:
            self.post_message(EngineLoaded(self.backend, 0.0))

    def _engine_label(self) -> str:
        engine = self.settings.engine
        if engine.kind == "embedded":
            return f"Loading the model {engine.model or '(the default SmolLM2)'}…"
        if engine.kind in ("kobold", "openai"):
            return f"Connecting to {self.settings.remote.url}…"
        return "Starting the engine…"

    @work(exclusive=True, group="engine", exit_on_error=False, name="open engine")
    async def open_engine(self) -> None:
        """Open the configured engine (the embedded one loads in a thread)."""
        from storyteller.session import open_engine

        started = time.perf_counter()
        try:
            backend = await open_engine(self.settings, self.paths)
        except StorytellerError as exc:
            self.post_message(EngineFailed(str(exc)))
            return
        except Exception as exc:  # an engine bug must not end the app with a traceback
            self.post_message(EngineFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(EngineLoaded(backend, time.perf_counter() - started))

    def on_engine_loaded(self, message: EngineLoaded) -> None:
        self.backend = message.backend
        self.engine_seconds = message.seconds
        for warning in message.backend.info().warnings:
            self.notify(warning, severity="warning", markup=False, timeout=10)
        request = self._request
        name = request["name"] or self._default_story_name()
        if isinstance(self.screen, LoadingScreen):
            self.screen.set_detail(f"Opening the story {name!r}…")
        self.open_story(name, card=request["card"], worlds=request["worlds"], mode=request["mode"],
                        greeting=request["greeting"])

    def on_engine_failed(self, message: EngineFailed) -> None:
        self._show_start_error(f"The engine could not be opened: {message.message}\n\n"
                               "Change the engine or model in Settings (F9), or retry.")

    def _show_start_error(self, text: str) -> None:
        if isinstance(self.screen, LoadingScreen):
            self.screen.show_error(text)
        else:
            self.notify(text, severity="error", markup=False, timeout=12)
        self._show_pending_reports()

    # -- files named on the command line -----------------------------------------------------

    @work(thread=True, exclusive=True, group="startup-import", exit_on_error=False, name="import files")
    def import_startup_files(self, raws: list[str]) -> None:
        """Import the files given at start into the library (a thread; reports come back as a message)."""
        from storyteller.session.importing import import_paths

        self.post_message(StartupImportsFinished(import_paths(raws, self.paths)))

    def on_startup_imports_finished(self, message: StartupImportsFinished) -> None:
        self.import_reports = message.reports
        self._pending_reports.extend(message.reports)
        # The loading screen is replaced when the story opens; the reports wait for that.
        if not isinstance(self.screen, LoadingScreen) or self.screen.failed:
            self._show_pending_reports()

    def _show_pending_reports(self) -> None:
        if not self._pending_reports:
            return
        from storyteller.tui.screens.dialogs import Report

        reports, self._pending_reports = self._pending_reports, []
        if len(reports) == 1:
            self.push_screen(Report(*reports[0]))
            return
        lines: list[str] = []
        for title, body in reports:
            lines += [title, *(f"  {line}" if line else "" for line in body), ""]
        self.push_screen(Report(f"Imported {len(reports)} files", lines))

    def _default_story_name(self) -> str:
        return self.library.default_story_name(self._request["card"])

    def action_retry_engine(self) -> None:
        """Try to open the engine (and the story) again."""
        if self.backend is not None:
            self.post_message(EngineLoaded(self.backend, 0.0))
            return
        if isinstance(self.screen, LoadingScreen):
            self.screen.set_detail(self._engine_label())
        self.open_engine()

    def reload_engine(self) -> None:
        """Close the story and the engine, then open both again with the current settings."""
        self._reload()

    @work(exclusive=True, group="reload", exit_on_error=False, name="reload engine")
    async def _reload(self) -> None:
        if self.session is not None:
            self._request = {"name": self.session.story.name, "card": None, "worlds": None, "mode": None,
                             "greeting": 0}
        await self._close_session()
        await self._close_backend()
        self.backend = None
        self._owns_backend = True
        self.post_message(EngineReloadRequested())

    async def on_engine_reload_requested(self, message: EngineReloadRequested) -> None:
        while len(self.screen_stack) > 2:
            await self.pop_screen()
        await self.switch_screen(LoadingScreen(self._engine_label()))
        self.open_engine()

    # -- stories -----------------------------------------------------------------------------

    @work(exclusive=True, group="session", exit_on_error=False, name="open story")
    async def open_story(self, name: str, *, card: str | None = None, worlds: Sequence[str] | None = None,
                         mode: str | None = None, greeting: int = 0, group: Any | None = None) -> None:
        """Close the open story (if any) and open or start ``name`` (``group``: a new group chat's
        :class:`~storyteller.tui.screens.group.GroupChoice`)."""
        from storyteller.session import GroupSettings, open_session

        if self.backend is None:
            self.post_message(SessionFailed("the engine is not open yet"))
            return
        await self._close_session()
        extra: dict[str, Any] = {}
        if group is not None:
            extra = {"cards": list(group.cards),
                     "group": GroupSettings(name=group.name, order=group.order, cards=group.mode,
                                            scenario=group.scenario)}
        try:
            session = await open_session(name, settings=self.settings, paths=self.paths, backend=self.backend,
                                         card=card, worlds=worlds, mode=mode, greeting=greeting, **extra)
        except StorytellerError as exc:
            self.post_message(SessionFailed(f"The story {name!r} could not be opened: {exc}"))
            return
        self.post_message(SessionOpened(session))

    async def on_session_opened(self, message: SessionOpened) -> None:
        self.session = message.session
        while len(self.screen_stack) > 2:
            await self.pop_screen()
        await self.switch_screen(StoryScreen(message.session))
        self._show_pending_reports()

    def on_session_failed(self, message: SessionFailed) -> None:
        self._show_start_error(message.message + "\n\nOpen the Library (F6) to pick another story or card.")

    def branch_story(self, name: str) -> None:
        """Branch the open story at its current node into a new story ``name``, and open it."""
        session = self.session
        if session is None or session.story.current is None:
            return
        try:
            self.library.branch(session, name)
        except StorytellerError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=8)
            return
        self.notify(f"Branched into {name!r}.", markup=False)
        self.open_story(name)

    async def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        session.stop()
        try:
            await asyncio.wait_for(session.close(), timeout=10)
        except (StorytellerError, OSError, TimeoutError) as exc:
            self.notify(f"The story was not closed cleanly: {exc}", severity="warning", markup=False)

    # -- edits that the open story picks up -------------------------------------------------

    def reload_lore(self) -> bool:
        """Read the open story's worlds (and its card's embedded book) again; the next turn uses them."""
        session = self.session
        if session is None:
            return False
        try:
            session.reload_lore()
        except StorytellerError as exc:
            self.notify(f"The story keeps its old world info: {exc}", severity="warning", markup=False, timeout=8)
            return False
        return True

    def world_saved(self, source: Path, target: Path) -> bool:
        """A world was saved from ``source`` to ``target`` (a bundled world's copy, or itself).

        When the open story uses it, the story is pointed at ``target`` and its worlds are read
        again. Returns whether the story uses the world.
        """
        session = self.session
        if session is None:
            return False
        used, replaced = False, None
        for ref in session.story.settings.worlds:
            try:
                found = self.library.find_world(ref).resolve()
            except StorytellerError:
                found = None
            if found == Path(target).resolve():
                used = True
            elif found == Path(source).resolve():
                used, replaced = True, ref
        if not used:
            return False
        if replaced is not None:
            try:
                session.attach_world(self.library.ref_for(target), replacing=replaced)
                return True
            except StorytellerError as exc:
                self.notify(f"The story still names the old world: {exc}", severity="warning", markup=False)
        return self.reload_lore()

    def card_saved(self, source: Path, target: Path, card: Any) -> bool:
        """A card was saved from ``source`` to ``target``; when it is the open story's, use it from now on."""
        session = self.session
        if session is None or not session.story.settings.cards:
            return False
        if session.group is not None:
            from storyteller.tui.screens.group import member_card_saved

            try:
                return member_card_saved(session, self.library, Path(source), Path(target))
            except StorytellerError as exc:
                self.notify(f"The group keeps its old cards: {exc}", severity="warning", markup=False, timeout=8)
                return False
        cards = list(session.story.settings.cards)
        try:
            current = self.library.find_card(cards[0]).resolve()
        except StorytellerError:
            return False
        if current not in (Path(source).resolve(), Path(target).resolve()):
            return False
        try:
            session.use_card(card, path=self.library.ref_for(target) if current != Path(target).resolve() else None)
        except StorytellerError as exc:
            self.notify(f"The story keeps its old card or world info: {exc}", severity="warning", markup=False,
                        timeout=8)
            return False
        return True

    # -- what the screens report ---------------------------------------------------------------

    def on_story_chosen(self, message: StoryChosen) -> None:
        self.open_story(message.name, card=message.card, greeting=message.greeting, worlds=message.worlds,
                        group=message.group)

    def set_story_worlds(self, refs: Sequence[str]) -> None:
        """Attach and detach worlds so that the open story uses ``refs``; the next reply uses them."""
        session = self.session
        if session is None:
            return
        current = session.story.settings.worlds
        have = set(self.library.world_files(current))
        wanted = set(self.library.world_files(list(refs)))
        attached: list[str] = []
        detached: list[str] = []
        try:
            for ref in current:
                if set(self.library.world_files([ref])) - wanted and session.detach_world(ref):
                    detached.append(ref)
            for ref in refs:
                if not set(self.library.world_files([ref])) & have:
                    session.attach_world(ref)
                    attached.append(ref)
        except StorytellerError as exc:
            self.notify(f"The worlds were not all changed: {exc}", severity="error", markup=False, timeout=8)
            return
        if not attached and not detached:
            self.notify("The story's worlds are unchanged.", markup=False)
            return
        said = [f"attached {', '.join(attached)}" if attached else "", f"detached {', '.join(detached)}" if detached
                else ""]
        self.notify(f"Worlds: {'; '.join(s for s in said if s)}. The next reply uses them.", markup=False)

    def on_branch_named(self, message: BranchNamed) -> None:
        self.branch_story(message.name)

    def on_card_saved(self, message: CardSaved) -> None:
        if self.card_saved(message.source, message.target, message.card):
            self.notify("The story uses the saved card from the next reply.", markup=False)

    def on_world_saved(self, message: WorldSaved) -> None:
        if self.world_saved(message.source, message.target):
            self.notify("The story uses the saved world from the next reply.", markup=False)

    def on_settings_saved(self, message: SettingsSaved) -> None:
        self.settings = message.settings
        if message.reload:
            self.reload_engine()
        elif self.session is not None:  # sampler values need no reload: the next reply uses them
            self.session.apply_sampling(base=message.settings.sampling)

    def action_reload_engine(self) -> None:
        """Open the engine again with the saved settings (the story reopens where it was)."""
        self.notify("Reloading the engine…", markup=False)
        self.reload_engine()

    # -- screens -----------------------------------------------------------------------------

    def _need_session(self) -> Session | None:
        if self.session is None:
            self.notify("Open a story first (Library: F6).", markup=False)
        return self.session

    def action_help(self) -> None:
        """Show every key and action."""
        from storyteller.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(ACTIONS))

    def action_inspector(self) -> None:
        """Show the prompt inspector."""
        if session := self._need_session():
            from storyteller.tui.screens.inspector import PromptInspector

            self.push_screen(PromptInspector(session))

    def action_trace(self) -> None:
        """Show the world-info trace of the last turn."""
        if session := self._need_session():
            from storyteller.tui.screens.inspector import WorldTrace

            self.push_screen(WorldTrace(session))

    def action_notes(self) -> None:
        """Edit the author's note, memory and persona."""
        if session := self._need_session():
            from storyteller.tui.screens.notes import NotesScreen

            self.push_screen(NotesScreen(session))

    def action_library(self) -> None:
        """Open the library."""
        from storyteller.tui.screens.library import LibraryScreen

        if not isinstance(self.screen, LibraryScreen):
            self.push_screen(LibraryScreen(self.paths))

    def action_character(self) -> None:
        """View and edit the story's character card."""
        if session := self._need_session():
            if session.parts.card is None:
                self.notify("This story has no character card.", markup=False)
                return
            ref = session.story.settings.cards[0]
            group = session.group
            if group is not None and group.members:  # a group: the card of the member who spoke last
                member = group.member(session.character_name) or group.members[0]
                ref = member.card
            try:
                path = self.library.find_card(ref)
            except StorytellerError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self.edit_card(path)  # read in a thread, then the character screen opens

    def action_world_info(self) -> None:
        """Edit the story's worlds (read in a thread, then the editor opens)."""
        self.edit_worlds(list(self.session.story.settings.worlds) if self.session is not None else [])

    def action_worlds(self) -> None:
        """Attach or detach the open story's worlds."""
        if session := self._need_session():
            from storyteller.tui.screens.worlds import WorldsDialog

            chosen = self.library.world_files(session.story.settings.worlds)
            self.push_screen(WorldsDialog(f"Worlds of the story {session.story.name!r}", self.library.world_choices(),
                                          chosen),
                             lambda refs: self.set_story_worlds(refs) if refs is not None else None)

    def action_settings(self) -> None:
        """Open the settings."""
        from storyteller.tui.screens.settings import SettingsScreen

        if not isinstance(self.screen, SettingsScreen):
            self.push_screen(SettingsScreen(self.settings, self.paths, self.session))

    def on_presets_requested(self, message: PresetsRequested) -> None:
        self.action_presets()

    def action_presets(self) -> None:
        """Choose, edit and import sampler presets."""
        from storyteller.tui.screens.presets import PresetsScreen

        if not isinstance(self.screen, PresetsScreen):
            self.push_screen(PresetsScreen(self.paths, self.session))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, action, name, help_text in ACTIONS:
            if action in ("submit", "command_palette", "quit"):
                continue
            if action.startswith("screen.") and not isinstance(screen, StoryScreen):
                continue
            yield SystemCommand(name, f"{help_text} ({key})", partial(self.call_later, self.run_action, action))

    # -- leaving -----------------------------------------------------------------------------

    def action_quit(self) -> None:
        """Stop any reply and leave; the story and the engine are closed on the way out."""
        if self.session is not None:
            self.session.stop()  # at once, before anything else gets a turn
        self.exit(0)

    async def on_unmount(self) -> None:
        # Every way out passes here, after the screens (and their workers) are gone.
        await self.shutdown()

    async def shutdown(self) -> None:
        """Close the story and the engine (if this app opened it); safe to call twice."""
        if self._closing:
            return
        self._closing = True
        if self.session is not None:
            self.session.stop()
        await self._close_session()
        await self._close_backend()

    async def _close_backend(self) -> None:
        """Close the engine if this app opened it (a test's engine belongs to the test)."""
        if self._owns_backend and self.backend is not None:
            backend, self.backend = self.backend, None
            try:
                await asyncio.wait_for(backend.aclose(), timeout=10)
            except (StorytellerError, OSError, TimeoutError):
                pass  # leaving or reopening anyway; the OS frees what is left


def run_app(settings: Settings, paths: Paths, *, story: str | None = None, card: str | None = None,
            worlds: Sequence[str] | None = None, mode: str | None = None, backend: Any | None = None,
            greeting: int = 0, imports: Sequence[str] | None = None) -> int:
    """Run the terminal app until the user quits; returns the exit code.

    Args:
        settings: The loaded settings.
        paths: Where files live.
        story: Open (or start) this story; default: the most recent, else a new adventure.
        card: Card for a new story; default: the bundled adventure narrator.
        worlds: Worlds for a new story.
        mode: Mode for a new story.
        backend: An engine to use instead of opening the configured one.
        greeting: Which greeting opens a new story.
        imports: Cards, lorebooks or chats to import into the library first (``storyteller
            play FILE...``); the import reports are shown in the app.
    """
    from storyteller.crashlog import arm, previous_crash

    notice = previous_crash(paths.cache_dir)
    arm(paths.cache_dir)
    app = StorytellerApp(settings, paths, story=story, card=card, worlds=worlds, mode=mode, backend=backend,
                         greeting=greeting, imports=imports)
    app.crash_notice = notice
    code = app.run()
    if app.session is not None:  # left without ctrl+q (e.g. the terminal closed): close the story at least
        app.session.story.close()
    return code if isinstance(code, int) else 0
