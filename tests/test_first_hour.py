"""A player's first hour, as one journey, on the bundled model through the real CLI.

A SillyTavern user arrives with a community card, its lorebook and an old chat. They import them,
play a chat with the card (with the world attached twice over: it must count once), try the line
mode's commands, check what the model saw, play an adventure turn, reopen their last story, bring
in their old chat, and take the story out to SillyTavern and Kobold Lite. Each step asserts what
the player would see; the narrower tests of each item live beside this one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SERAPHINA = FIXTURES / "cards" / "default_Seraphina.png"
ELDORIA = FIXTURES / "worlds" / "Eldoria.json"
AQUA_CARD = FIXTURES / "cards" / "Aqua.png"
AQUA_CHAT = FIXTURES / "chats" / "Aqua_1673181146000.jsonl"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SERAPHINA.exists(), reason="shared fixtures are not beside the checkout")]


def st(*args: str, stdin: str = "", max_tokens: int = 24) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTELLER_SAMPLING__MAX_TOKENS": str(max_tokens), "STORYTELLER_SAMPLING__SEED": "11"}
    out = subprocess.run([sys.executable, "-m", "storyteller.cli", *args], input=stdin, capture_output=True,
                         text=True, timeout=400, env=env)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def test_first_hour(storyteller_home: Path, smollm2_path, tmp_path: Path) -> None:
    # 1. Bring in what they have.
    assert st("card", "import", str(SERAPHINA)).returncode == 0
    assert st("lore", "import", str(ELDORIA)).returncode == 0
    listed = st("card", "list")
    assert "Seraphina" in listed.stdout
    shown = st("card", "inspect", "Seraphina")  # a library name, as the README shows
    assert shown.returncode == 0 and "Lorebook:" in shown.stdout

    # 2. A chat with the card, the world attached too; the line mode's commands.
    script = ("Hi {{char}}! Tell me about the forest and the glade.\n/retry\n/swipe -1\n/continue\n"
              "/undo\n/redo\n/show\n/quit\n")
    chat = st("play", "--plain", "--card", "Seraphina", "--world", "Eldoria", "--story", "glade", stdin=script)
    assert chat.returncode == 0, chat.stderr
    assert "chat mode, with Seraphina" in chat.stdout
    assert ">>> /retry" in chat.stdout and "unknown command" not in chat.stdout

    # 3. What the model saw: the session's own next prompt, lore once, the card's name throughout.
    prompt = json.loads(st("prompt", "--story", "glade", "--json").stdout)
    lore = [" ".join(s["text"].split()) for s in prompt["segments"] if s["kind"] == "world_info"]
    assert lore and len(lore) == len(set(lore))
    assert "Seraphina" in prompt["text"]
    assert "{{char}}" not in prompt["text"]

    # 4. An adventure turn: the narrator answers without playing the player.
    adv = st("play", "--plain", "--story", "hollow", "--mode", "adventure", stdin="look around\n/quit\n")
    assert adv.returncode == 0, adv.stderr
    assert "adventure mode" in adv.stdout
    reply = adv.stdout.split(">>> look around", 1)[1]
    assert "> You" not in reply and "[Author's note" not in reply

    # 5. Coming back: the line mode reopens the last story, as the app does.
    back = st("play", "--plain", stdin="/show\n/quit\n")
    assert "[story 'hollow'" in back.stdout

    # 6. Their old SillyTavern chat goes on as its character.
    assert st("card", "import", str(AQUA_CARD)).returncode == 0
    imported = st("story", "import", str(AQUA_CHAT))
    assert imported.returncode == 0 and "linked to the card" in imported.stdout
    name = imported.stdout.strip().splitlines()[-1]
    aqua = json.loads(st("prompt", "--story", name, "--json").stdout)["text"]
    assert "Aqua" in aqua and "Narrator:" not in aqua and "Assistant:" not in aqua

    # 7. Out to the other clients: SillyTavern JSONL and a Kobold Lite save that knows the character.
    st_file, lite_file = tmp_path / "glade.jsonl", tmp_path / "glade.json"
    assert st("story", "export", "glade", str(st_file)).returncode == 0
    assert st("story", "export", "glade", str(lite_file)).returncode == 0
    header = json.loads(st_file.read_text(encoding="utf-8").splitlines()[0])
    assert header["character_name"] == "Seraphina"
    lite = json.loads(lite_file.read_text(encoding="utf-8"))
    assert lite["savedsettings"]["chatopponent"] == "Seraphina"
    again = st("story", "import", str(st_file), "--name", "glade again")
    assert again.returncode == 0, again.stderr
