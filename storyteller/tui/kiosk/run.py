"""Starting the kiosk: settings, low-power profile, engine, story, then the app until the operator quits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from storyteller.config import Settings
from storyteller.session import Backend
from storyteller.kiosk.settings import apply_low_power, config_path, load_kiosk_settings
from storyteller.paths import Paths

__all__ = ["run_kiosk"]

_IGNORED = ("SIGINT", "SIGQUIT", "SIGTSTP")


@contextlib.contextmanager
def _no_keyboard_signals() -> Iterator[None]:
    """Ignore the signals a keyboard could send; Textual also switches ISIG off on its terminal."""
    os.environ.pop("TEXTUAL_ALLOW_SIGNALS", None)
    saved = {}
    for name in _IGNORED:
        number = getattr(signal, name, None)
        if number is not None:
            saved[number] = signal.signal(number, signal.SIG_IGN)
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def run_kiosk(
    settings: Settings,
    paths: Paths,
    *,
    story: str,
    card: str | None = None,
    worlds: Sequence[str] | None = None,
    config_file: str | Path | None = None,
    backend: Backend | None = None,
    clock: Callable[[], float] | None = None,
    cards: Sequence[str] | None = None,
    group: Any | None = None,
) -> int:
    """Run the kiosk on ``story`` (opened, or started with ``card`` and ``worlds``) until the
    operator quits from the admin screen; returns the exit code.

    Args:
        settings: The engine settings (the kiosk's low-power profile is applied on top).
        paths: Storyteller's folders.
        story: The story's name.
        card: Character card for a new story (default: the bundled adventure narrator).
        worlds: World info for a new story.
        config_file: The kiosk settings file (default ``<config dir>/kiosk.toml``).
        backend: An engine to use instead of opening the configured one (tests).
        clock: Seconds since the epoch (tests); default ``time.time``.
        cards: Two or more cards: a new story is a group chat of them.
        group: A saved group (its members, order and card mode) for a new group story.

    Raises:
        ConfigError: The kiosk settings are missing or invalid.
        StoryError: The story cannot be opened (for example another process writes it).
        ModelError, EngineError: The engine cannot start.
    """
    kiosk = load_kiosk_settings(paths, config_file)
    settings = apply_low_power(settings, kiosk)
    paths.ensure()
    from storyteller.crashlog import arm, previous_crash

    notice = previous_crash(paths.cache_dir)
    if notice:  # into the journal (systemd) before the screen is taken
        print(f"storyteller kiosk: {notice}", file=sys.stderr, flush=True)
    arm(paths.cache_dir)
    path = config_path(paths, config_file)
    return asyncio.run(_main(settings, paths, kiosk, path, story=story, card=card, worlds=worlds,
                             backend=backend, clock=clock or time.time, cards=cards, group=group))


async def _main(settings, paths, kiosk, path, *, story, card, worlds, backend, clock, cards=None, group=None) -> int:
    from storyteller.session import open_engine
    from storyteller.tui.kiosk.app import KioskApp
    from storyteller.kiosk.controller import KioskController

    own = backend is None
    if backend is None:
        backend = await open_engine(settings, paths)
    try:
        controller = await KioskController.open(story, kiosk=kiosk, settings=settings, paths=paths,
                                                backend=backend, card=card, worlds=worlds, clock=clock, cards=cards,
                                                group=group)
        try:
            app = KioskApp(controller, config_file=path)
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                # systemd stops the service with SIGTERM: close cleanly (snapshot, KV state).
                loop.add_signal_handler(signal.SIGTERM, app.quit_kiosk)
            with _no_keyboard_signals():
                await app.run_async()
            return app.exit_status
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
            await controller.close()
    finally:
        if own:
            await backend.aclose()
