"""Issue 14 items 6 and 7, as a player meets them: one book that arrives twice is one book, and an
imported SillyTavern chat goes on as its character. Real fixtures, the real CLI in subprocesses.
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

pytestmark = pytest.mark.skipif(not SERAPHINA.exists(), reason="shared fixtures are not beside the checkout")


def st(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTELLER_ENGINE__KIND": "fake"}
    return subprocess.run([sys.executable, "-m", "storyteller.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=300, env=env)


def _prompt_json(*args: str) -> dict:
    out = st("prompt", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _text(prompt: dict) -> str:
    return json.dumps(prompt, ensure_ascii=False)


def test_the_cards_book_and_the_same_world_count_once(storyteller_home: Path) -> None:
    assert st("card", "import", str(SERAPHINA)).returncode == 0
    assert st("lore", "import", str(ELDORIA)).returncode == 0
    both = st("play", "--plain", "--card", "Seraphina", "--world", "Eldoria", "--story", "glade",
              stdin="tell me about the forest, the beasts, the glade and your magic\n/quit\n")
    assert both.returncode == 0, both.stderr
    prompt = _prompt_json("--story", "glade")
    text = _text(prompt)
    assert "Eldoria#1" not in text
    # every world-info text appears at most once in what is sent
    lore_segments = [s for s in prompt["segments"] if s["kind"] == "world_info"]
    assert len(lore_segments) >= 2, "the player's words name several entries: they must fire"
    contents = [" ".join(s["text"].split()) for s in lore_segments]
    assert len(contents) == len(set(contents)), "an entry was inserted twice"


def test_an_imported_chat_goes_on_as_its_character(storyteller_home: Path) -> None:
    assert st("card", "import", str(AQUA_CARD)).returncode == 0
    imported = st("story", "import", str(AQUA_CHAT))
    assert imported.returncode == 0, imported.stderr
    assert "linked to the card" in imported.stdout
    name = imported.stdout.strip().splitlines()[-1]
    text = _text(_prompt_json("--story", name))
    assert "Aqua" in text
    assert "Narrator:" not in text and "Write Assistant's" not in text and "Assistant:" not in text


def test_a_chat_without_its_card_says_what_to_do_and_keeps_the_name(storyteller_home: Path) -> None:
    imported = st("story", "import", str(AQUA_CHAT))
    assert imported.returncode == 0, imported.stderr
    assert "no card called 'Aqua' in the library" in imported.stdout
    name = imported.stdout.strip().splitlines()[-1]
    text = _text(_prompt_json("--story", name))
    assert "Narrator:" not in text and "Assistant:" not in text
    assert "Aqua:" in text or "Aqua" in text
