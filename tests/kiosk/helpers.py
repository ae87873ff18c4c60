"""Shared set-up for the kiosk tests: a fake clock, settings with a test PIN, an app factory."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.tui.kiosk.app import KioskApp
from storyteller.kiosk.controller import KioskController
from storyteller.kiosk.settings import KioskSettings, dump_toml, hash_pin
from storyteller.paths import get_paths

PIN = "2468"
PIN_HASH = hash_pin(PIN, iterations=1000, salt="00112233445566778899aabbccddeeff")
START = 1_750_000_000.0  # a fixed moment (June 2025)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = START) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def kiosk_settings(**changes: Any) -> KioskSettings:
    """Test settings: a cheap PIN hash, no recap and no archive unless asked."""
    data: dict[str, Any] = {"pin_hash": PIN_HASH, "recap_every": 0, "cooldown_seconds": 30, "idle_seconds": 60,
                            "turn_seconds": 200, "archive": {"enabled": False}}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return KioskSettings.model_validate(data)


def write_config(path: Path, kiosk: KioskSettings) -> Path:
    """Write kiosk settings as a TOML file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_toml(kiosk.model_dump()), encoding="utf-8")
    return path


@asynccontextmanager
async def kiosk_app(replies: Sequence[str] = ("The fog parts.",), *, story: str = "cafe", clock: FakeClock | None = None,
                    backend: ScriptedBackend | None = None, size: tuple[int, int] = (100, 40),
                    settings: Settings | None = None, **changes: Any):
    """A running KioskApp with a Pilot: ``async with kiosk_app() as (app, pilot, clock): ...``."""
    clock = clock or FakeClock()
    paths = get_paths().ensure()
    kiosk = kiosk_settings(**changes)
    config = write_config(paths.config_dir / "kiosk.toml", kiosk)
    backend = backend or ScriptedBackend(replies)
    settings = settings or Settings(engine={"kind": "fake"})
    controller = await KioskController.open(story, kiosk=kiosk, settings=settings, paths=paths, backend=backend,
                                            clock=clock)
    app = KioskApp(controller, config_file=config, tick_seconds=3600)
    try:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            yield app, pilot, clock
    finally:
        await controller.close()


async def settle(app: KioskApp, pilot) -> None:
    """Wait until generation and recap workers are done and the screen caught up."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()
    await pilot.pause(0.05)


async def type_text(pilot, text: str, *, keys: bool = False) -> None:
    """Type into the focused input: key by key with ``keys=True`` (as a visitor would, about
    85 ms a key under Pilot), else all at once where typing itself is not what is tested."""
    from textual.widgets import Input

    focused = pilot.app.focused
    if not keys and isinstance(focused, Input):
        focused.insert_text_at_cursor(text)
        await pilot.pause()
        return
    for char in text:
        await pilot.press("space" if char == " " else char)


def screen_text(app: KioskApp) -> str:
    """All the text the current screen shows (Static widgets)."""
    from textual.widgets import Markdown, Static

    parts = []
    for widget in app.screen.query(Static):
        if widget.display:
            parts.append(str(widget.render()))
    for widget in app.screen.query(Markdown):
        parts.append(widget.source)
    return "\n".join(parts)


class GatedBackend(ScriptedBackend):
    """The scripted engine, but each reply waits until the test opens the gate."""

    def __init__(self, replies: Sequence[str], **kwargs: Any) -> None:
        super().__init__(replies, **kwargs)
        import asyncio

        self.gate = asyncio.Event()

    async def stream(self, request):
        await self.gate.wait()
        async for chunk in super().stream(request):
            yield chunk
