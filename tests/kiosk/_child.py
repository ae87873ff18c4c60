"""A kiosk process for the restart test: plays one visitor turn, then waits to be killed.

Run as ``python -m tests.kiosk._child MODE`` with STORYTELLER_HOME set. MODE ``done`` finishes
the turn and goes back to the attract screen; ``mid`` is killed while the reply is being written.
"""

from __future__ import annotations

import asyncio
import sys

from storyteller.engines.fake import ScriptedBackend

from tests.kiosk.helpers import kiosk_app, settle, type_text


async def main(mode: str) -> None:
    delay = 30.0 if mode == "mid" else 0.0
    backend = ScriptedBackend(["The door opens onto a garden.", "Bees hum."], delay=delay)
    async with kiosk_app(backend=backend) as (app, pilot, clock):
        await pilot.press("a")
        await type_text(pilot, "ada")
        await pilot.press("enter")
        await type_text(pilot, "open the door")
        await pilot.press("enter")
        if mode == "done":
            await settle(app, pilot)
            await pilot.press("enter")
        await pilot.pause(0.2)
        print("READY", type(app.screen).__name__, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
