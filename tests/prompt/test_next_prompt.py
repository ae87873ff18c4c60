"""``storyteller prompt --story S --json`` is byte for byte what the next turn sends.

The command is run as a user runs it (a real process); the turn is played by the session itself.
Both take the same road (the session's own parts and turn builder), so nothing may differ: not
the text, not a segment, not a token count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from storyteller.config import Settings
from storyteller.engines.fake import ScriptedBackend
from storyteller.paths import get_paths
from storyteller.session import open_session
from storyteller.textsafe import safe_json


def _prompt_cli(story: str, **env: str) -> str:
    done = subprocess.run([sys.executable, "-m", "storyteller.cli", "prompt", "--story", story, "--json"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_prompt_json_is_what_the_next_turn_sends_on_the_fake_engine(monkeypatch) -> None:
    monkeypatch.setenv("STORYTELLER_ENGINE__KIND", "fake")
    settings = Settings(engine={"kind": "fake", "kv_state": "off"})
    paths = get_paths().ensure()
    session = await open_session("bell", settings=settings, paths=paths, backend=ScriptedBackend(["The bell rings."]),
                                 card="narrator_of_hollowmere")
    await session.submit("ring the bell", "do")
    await session.close()

    shown = _prompt_cli("bell")

    backend = ScriptedBackend(["It rings again."])
    session = await open_session("bell", settings=settings, paths=paths, backend=backend)
    try:
        await session.submit("", "do")  # the next turn: a reply to what is there
    finally:
        await session.close()
    sent = session.last_prompt
    assert shown == safe_json(sent.to_dict(), indent=2) + "\n"
    assert json.loads(shown)["text"] == backend.requests[-1].prompt
    assert any(s["kind"] == "world_info" for s in json.loads(shown)["segments"])


async def test_prompt_json_is_the_next_prompt_on_the_real_model(embedded_backend, monkeypatch) -> None:
    # The subprocess opens its own llama.cpp on the same model and context as the shared backend.
    monkeypatch.setenv("STORYTELLER_ENGINE__N_CTX", "2048")
    settings = Settings(engine={"n_ctx": 2048, "kv_state": "off"})
    paths = get_paths().ensure()
    session = await open_session("gate", settings=settings, paths=paths, backend=embedded_backend)
    session.story.add_node("open the gate", author="user", kind="do")
    await session.close()

    shown = _prompt_cli("gate")

    session = await open_session("gate", settings=settings, paths=paths, backend=embedded_backend, read_only=True)
    try:
        expected = await session.next_prompt()
    finally:
        session.story.close()
    assert shown == safe_json(expected.to_dict(), indent=2) + "\n"
    data = json.loads(shown)
    assert data["budget"]["counter"].startswith("embedded:") and not data["budget"]["estimate"]
    assert "open the gate" in data["text"].lower() or "> you open the gate" in data["text"].lower()
