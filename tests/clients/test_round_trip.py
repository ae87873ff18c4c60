"""Every real file in ../shared/fixtures, exported in every format and read back as SillyTavern reads it.

For each card, world and chat: read the input the way SillyTavern 1.12.6 does (see
``sillytavern.py``; also in JavaScript in ``st_parse.js`` when node is installed), export it
with storyteller in every format and version, read the export the same way, and compare every
field and its JSON type. There must be no difference; keys that only the export has must be
among the ones listed here (``ADDED_*``), each with the reason we add it.
Kobold Lite saves are checked against Kobold Lite itself in ``test_kobold_lite.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from storyteller.cards import load_card, save_card
from storyteller.lore import load_lorebook, save_lorebook
from storyteller.story import StoryStore, export_story, import_story
from tests.clients.sillytavern import compare, convert_novel_lorebook, node, read_card, read_chat, run_node
from tests.conftest import SHARED_FIXTURES

CARDS = sorted((SHARED_FIXTURES / "cards").glob("*")) if SHARED_FIXTURES.is_dir() else []
# (name, file suffix, JSON spec, which PNG chunk the reader takes: None = SillyTavern's choice, ccv3)
OUTPUTS = [("png", ".png", "v3", None), ("png-chara", ".png", "v3", "chara"), ("json-v2", ".json", "v2", None),
           ("json-v3", ".json", "v3", None), ("charx", ".charx", "v3", None)]

ADDED_CARD_KEYS = {
    r"\.data\.group_only_greetings": "required by V3; written as [] when a V2 card lacks it",
    r"\.data\.character_book\.extensions": "required by the V2/V3 book spec; written as {}",
    r"\.data\.character_book\.entries\[\]\.use_regex": "required by V3 entries; written as false",
    r"\.data\.assets": "CHARX only: the PNG avatar travels as the main icon asset",
    # A V1 card (Aqua) becomes V2/V3: the spec wrapper and the V2 fields with their defaults,
    # and the top-level copies SillyTavern writes for old readers.
    r"\.data": "V1 upgrade",
    r"\.(creatorcomment|tags|talkativeness|fav)": "V1 upgrade: SillyTavern's top-level copies",
}
ADDED_WORLD_KEYS = {
    r"\.entries\.\d+\.\w+": "every SillyTavern entry field, with SillyTavern's default, where the file had none",
    r"\.(name|extensions)": "the book's name and extensions",
}
ADDED_CHAT_KEYS: dict[str, str] = {}


def _unlisted(added: list[str], listed: dict[str, str]) -> list[str]:
    return [path for path in added if not any(re.fullmatch(pattern, path) for pattern in listed)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    if not CARDS:
        pytest.skip("../shared/fixtures not found next to the project root")
    folder = tmp_path_factory.mktemp("exports")
    out = {}
    for path in CARDS:
        card, _report = load_card(path)
        for name, suffix, spec, _how in OUTPUTS:
            target = folder / f"{path.name}.{name}{suffix}"
            if not target.exists():
                save_card(card, target, spec)  # type: ignore[arg-type]
            out[(path.name, name)] = target
    return out


@pytest.mark.parametrize("output", [o[0] for o in OUTPUTS])
@pytest.mark.parametrize("card", [p.name for p in CARDS])
def test_card_survives_every_format(exported: dict[tuple[str, str], Path], card: str, output: str) -> None:
    how = next(o[3] for o in OUTPUTS if o[0] == output)
    before = read_card(SHARED_FIXTURES / "cards" / card)["char"]
    after = read_card(exported[(card, output)], how)["char"]
    # The version is the one asked for (the chara chunk and JSON v2 are V2, the rest V3)...
    wanted = "v2" if output in ("png-chara", "json-v2") else "v3"
    assert (after.pop("spec"), after.pop("spec_version")) == (f"chara_card_{wanted}", f"{wanted[1]}.0")
    before.pop("spec", None), before.pop("spec_version", None)
    # ...and everything else is as it was, value and type.
    diffs, added = compare(before, after)
    assert diffs == [], f"{card} -> {output}: {diffs}"
    assert _unlisted(added, ADDED_CARD_KEYS) == [], "keys we add must be listed in ADDED_CARD_KEYS"


def test_cli_convert_writes_the_same_files(exported: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    source = SHARED_FIXTURES / "cards" / "default_Seraphina.png"
    for name, suffix, spec, how in OUTPUTS:
        target = tmp_path / f"cli-{name}{suffix}"
        done = subprocess.run([sys.executable, "-m", "storyteller.cli", "card", "convert", str(source), str(target),
                               "--spec", spec], capture_output=True, text=True, timeout=120, env=os.environ.copy())
        assert done.returncode == 0, done.stderr
        assert read_card(target, how) == read_card(exported[(source.name, name)], how)


def test_sillytavern_keeps_its_own_types() -> None:
    """The two things that used to change: CRLF text and the string talkativeness."""
    if not CARDS:
        pytest.skip("../shared/fixtures not found next to the project root")
    card, report = load_card(SHARED_FIXTURES / "cards" / "default_Seraphina.png")
    assert card.extensions["talkativeness"] == "0.5" and "\r\n" in card.description
    assert not [line for line in report.lines() if "CRLF" in line or "talkativeness" in line]


@pytest.mark.skipif(node() is None, reason="node is not installed; the JavaScript twin is not run")
def test_javascript_reads_what_python_reads(exported: dict[tuple[str, str], Path]) -> None:
    args, expected = [], []
    for path in CARDS:
        args.append(str(path))
        expected.append(read_card(path))
        for name, _suffix, _spec, how in OUTPUTS:
            target = exported[(path.name, name)]
            args.append(f"{target}::{how}" if how else str(target))
            expected.append(read_card(target, how))
    assert run_node("card", args) == expected


def _world_exports(tmp_path: Path) -> list[tuple[str, object, Path]]:
    out = []
    for path in sorted((SHARED_FIXTURES / "worlds").glob("*")):
        book, _report = load_lorebook(path)
        target = save_lorebook(book, tmp_path / f"{path.stem}.json", "sillytavern")
        raw = json.loads(path.read_text(encoding="utf-8"))
        before = convert_novel_lorebook(raw) if "lorebookVersion" in raw else raw  # SillyTavern's import
        out.append((path.name, before, target))
    return out


def test_worlds_survive_the_sillytavern_format(tmp_path: Path) -> None:
    if not CARDS:
        pytest.skip("../shared/fixtures not found next to the project root")
    for name, before, target in _world_exports(tmp_path):
        after = json.loads(target.read_text(encoding="utf-8"))
        diffs, added = compare(before, after)
        assert diffs == [], f"{name}: {diffs}"
        assert _unlisted(added, ADDED_WORLD_KEYS) == [], name
    if node() is not None:
        exports = [str(t) for _n, _b, t in _world_exports(tmp_path)]
        assert run_node("world", exports) == [json.loads(Path(p).read_text(encoding="utf-8")) for p in exports]


def test_chats_survive_import_and_export(tmp_path: Path) -> None:
    if not CARDS:
        pytest.skip("../shared/fixtures not found next to the project root")
    for path in sorted((SHARED_FIXTURES / "chats").glob("*.jsonl")):
        story, _report = import_story(StoryStore(), path)
        try:
            target = tmp_path / path.name
            export_story(story, target, "st")
        finally:
            story.close()
        before, after = read_chat(path), read_chat(target)
        diffs, added = compare(before, after)
        assert diffs == [], f"{path.name}: {diffs}"
        assert _unlisted(added, ADDED_CHAT_KEYS) == [], path.name
        if node() is not None:
            assert run_node("chat", [str(path), str(target)]) == [before, after]


def test_the_prompt_normalises_what_the_card_keeps(tmp_path: Path) -> None:
    """CRLF stays in the card and leaves only in the prompt (``storyteller prompt``, the real CLI)."""
    if not CARDS:
        pytest.skip("../shared/fixtures not found next to the project root")
    source = SHARED_FIXTURES / "cards" / "default_Seraphina.png"
    done = subprocess.run([sys.executable, "-m", "storyteller.cli", "prompt", "--card", str(source), "--estimate",
                           "--json"], capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    prompt = json.loads(done.stdout)
    text = prompt["text"] or json.dumps(prompt["messages"])
    description = read_card(source)["char"]["description"]
    assert "\r\n" in description
    assert "\r" not in text and description.replace("\r\n", "\n")[:200] in text
