"""SillyTavern's and Kobold Lite's summaries in and out, through the real importers and exporters."""

from __future__ import annotations

import json
from pathlib import Path

from storyteller.memory import PathView, StoryMemory
from storyteller.memory.compat import export_kobold_memory, export_sillytavern_memory, import_memory
from storyteller.story import StoryStore, export_story, import_story


def st_chat(path: Path) -> Path:
    lines = [{"user_name": "You", "character_name": "Aqua", "create_date": 1674559896839, "chat_metadata": {}}]
    for i in range(6):
        message = {"name": "You" if i % 2 else "Aqua", "is_user": bool(i % 2), "send_date": 1674563371558 + i,
                   "mes": f"Message {i}."}
        if i == 3:
            message["extra"] = {"memory": "Aqua met You in Axel and promised help."}
        lines.append(message)
    path.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    return path


def test_sillytavern_summary_round_trip(tmp_path: Path) -> None:
    story, _report = import_story(StoryStore(tmp_path / "stories"), st_chat(tmp_path / "aqua.jsonl"))
    try:
        memory = StoryMemory.of(story)
        done = import_memory(story, memory)
        assert done and "messages 1-4" in done[0]
        [summary] = memory.state.summaries
        assert summary.manual and summary.source == "sillytavern"
        assert summary.keys == PathView.of(story.messages()).keys[:4]
        memory.state.pin_fact("Aqua is a goddess.", anchor=None)
        # Our own summary of the first two messages is added; the export carries what the prompt would use.
        out = export_sillytavern_memory(story, memory, export_story(story, None, "st"))
        rows = [json.loads(line) for line in out.split("\n")]
        assert rows[4]["extra"]["memory"] == "Aqua met You in Axel and promised help."
        assert all("memory" not in (r.get("extra") or {}) for i, r in enumerate(rows) if i != 4)
        view = PathView.of(story.messages())
        memory.state.add_summary(view.keys, view.heads, "All six messages, summed up.")
        rows = [json.loads(line) for line in export_sillytavern_memory(story, memory, export_story(story, None, "st")).split("\n")]
        assert rows[6]["extra"]["memory"] == "All six messages, summed up."
        assert rows[4]["extra"]["memory"] == "Aqua met You in Axel and promised help.", "the imported one is kept"
    finally:
        story.close()


def test_kobold_summary_moves_out_of_the_memory_box_and_back(tmp_path: Path) -> None:
    save = {"prompt": "The tale begins.", "actions": [" Bob walks.", " Bob finds a key."],
            "memory": "You are Bob.\n\n[Summary: Bob lost his dog Rex.]\n\n[Summary Continued: Bob seeks Rex.]",
            "authorsnote": "", "savedsettings": {"opmode": 1}}
    path = tmp_path / "bob.json"
    path.write_text(json.dumps(save), encoding="utf-8")
    story, _report = import_story(StoryStore(tmp_path / "stories"), path)
    try:
        memory = StoryMemory.of(story)
        assert import_memory(story, memory)
        assert story.settings.memory == "You are Bob."
        [summary] = memory.state.summaries
        assert summary.text == "Bob lost his dog Rex.\nBob seeks Rex." and summary.source == "kobold"
        memory.state.pin_fact("Rex has a red collar.", anchor=None)
        box = json.loads(export_kobold_memory(story, memory, export_story(story, None, "kobold")))["memory"]
        assert box == "You are Bob.\n[Pinned: Rex has a red collar.]\n[Summary: Bob lost his dog Rex.\nBob seeks Rex.]"
        again = StoryMemory.of(story)
        assert [s.text for s in again.state.summaries] == [summary.text], "saved with the story"
    finally:
        story.close()


def test_story_import_and_export_carry_the_summary_on_the_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "storyteller.cli", "story", *args], capture_output=True,
                              text=True, timeout=120)

    imported = cli("import", str(st_chat(tmp_path / "aqua.jsonl")), "--name", "aqua")
    assert imported.returncode == 0, imported.stderr
    assert "SillyTavern summary of messages 1-4 kept as a summary" in imported.stdout
    exported = cli("export", "aqua", str(tmp_path / "aqua.json"))
    assert exported.returncode == 0, exported.stderr
    box = json.loads((tmp_path / "aqua.json").read_text(encoding="utf-8"))["memory"]
    assert box == "[Summary: Aqua met You in Axel and promised help.]"


def test_the_app_and_play_imports_carry_the_summary(tmp_path: Path) -> None:
    from storyteller.paths import get_paths
    from storyteller.session.importing import import_path

    paths = get_paths().ensure()
    result = import_path(str(st_chat(tmp_path / "aqua.jsonl")), paths)
    assert any("SillyTavern summary of messages 1-4" in line for line in result.lines)
    saved = json.loads((result.target / "memory.json").read_text(encoding="utf-8"))
    assert saved["summaries"][0]["text"] == "Aqua met You in Axel and promised help."
