"""Sampler presets: bundled ones, the user's files, imports from SillyTavern and Kobold, layering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storyteller.engines.base import Sampling
from storyteller.errors import ConfigError, FormatError, LimitExceededError
from storyteller.paths import get_paths
from storyteller.presets import (
    BUNDLED_PRESETS,
    delete_preset,
    find_preset,
    import_preset,
    list_presets,
    parse_preset,
    presets_dir,
    read_preset_file,
    resolve_sampling,
    save_preset,
)

# A SillyTavern text-completion preset as SillyTavern writes it (the shape of its
# default/content/presets/textgen files): every knob, many that storyteller has no use for.
SILLYTAVERN_PRESET = {
    "temp": 1.25, "temperature_last": True, "top_p": 0.9, "top_k": 0, "top_a": 0, "tfs": 1,
    "epsilon_cutoff": 0, "eta_cutoff": 0, "typical_p": 1, "min_p": 0.05, "rep_pen": 1.1, "rep_pen_range": 1024,
    "rep_pen_decay": 0, "rep_pen_slope": 1, "no_repeat_ngram_size": 0, "penalty_alpha": 0, "num_beams": 1,
    "length_penalty": 1, "min_length": 0, "encoder_rep_pen": 1, "freq_pen": 0.2, "presence_pen": 0.1,
    "skew": 0, "do_sample": True, "early_stopping": False, "dynatemp": False, "min_temp": 0, "max_temp": 2,
    "dynatemp_exponent": 1, "smoothing_factor": 0, "smoothing_curve": 1, "dry_allowed_length": 2,
    "dry_multiplier": 0.8, "dry_base": 1.75, "dry_sequence_breakers": "[\"\\n\", \":\", \"\\\"\", \"*\"]",
    "dry_penalty_last_n": 0, "add_bos_token": True, "ban_eos_token": False, "skip_special_tokens": True,
    "mirostat_mode": 0, "mirostat_tau": 5, "mirostat_eta": 0.1, "guidance_scale": 1, "negative_prompt": "",
    "grammar_string": "", "json_schema": {}, "banned_tokens": "",
    "sampler_priority": ["repetition_penalty", "presence_penalty", "top_k", "top_p", "min_p", "temperature"],
    "samplers": ["top_k", "tfs_z", "typical_p", "top_p", "min_p", "temperature"],
    "ignore_eos_token": False, "spaces_between_special_tokens": True, "speculative_ngram": False,
    "sampler_order": [6, 0, 1, 3, 4, 2, 5], "logit_bias": [], "xtc_threshold": 0.1, "xtc_probability": 0.5,
    "rep_pen_size": 0, "genamt": 350, "max_length": 8192, "seed": -1,
}

# koboldcpp's /api/v1/generate settings (what Kobold Lite sends), as a saved preset.
KOBOLD_PRESET = {
    "max_context_length": 4096, "max_length": 240, "rep_pen": 1.07, "rep_pen_range": 360, "rep_pen_slope": 0.7,
    "temperature": 0.75, "tfs": 1, "top_a": 0, "top_k": 100, "top_p": 0.92, "min_p": 0.02, "typical": 1,
    "sampler_order": [6, 0, 1, 3, 4, 2, 5], "sampler_seed": 1234, "stop_sequence": ["\nYou:", "\n### "],
    "mirostat": 0, "mirostat_tau": 5.0, "mirostat_eta": 0.1, "presence_penalty": 0, "dynatemp_range": 0,
    "smoothing_factor": 0, "banned_tokens": [], "render_special": False, "logit_bias": {},
    "dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2, "dry_penalty_last_n": 320,
    "dry_sequence_breakers": ["\n", ":", "*"], "xtc_threshold": 0.15, "xtc_probability": 0.4, "nsigma": 1.2,
}

# A KoboldAI (United) preset file: named inside, "temp" and "genamt", and Kobold's "typical".
KOBOLDAI_PRESET = {
    "preset": "Godlike", "description": "Makes the AI fluent but unpredictable.", "temp": 0.7, "genamt": 80,
    "top_k": 0, "top_p": 0.5, "top_a": 0.75, "typical": 0.19, "tfs": 0.97, "rep_pen": 1.1,
    "rep_pen_range": 1024, "rep_pen_slope": 0.7, "sampler_order": [6, 5, 4, 3, 2, 1, 0],
}


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_bundled_presets_are_listed_and_valid() -> None:
    names = [p.name for p in list_presets()]
    assert names == sorted(BUNDLED_PRESETS, key=str.casefold)
    for preset in BUNDLED_PRESETS.values():
        assert preset.bundled and preset.values
        preset.apply(Sampling())  # every bundled value passes validation
    assert find_preset("creative").name == "Creative"
    with pytest.raises(ConfigError, match="no sampler preset named 'Nope'.*Balanced"):
        find_preset("Nope")


def test_sillytavern_preset_import_maps_values_and_reports_the_rest(tmp_path: Path) -> None:
    preset, report = read_preset_file(_write(tmp_path / "Universal-Super-Creative.json", SILLYTAVERN_PRESET))
    assert report.source_format == "sillytavern" and preset.name == "Universal-Super-Creative"
    values = preset.values
    assert values["temperature"] == 1.25 and values["top_p"] == 0.9 and values["top_k"] == 0
    assert values["min_p"] == 0.05 and values["repeat_penalty"] == 1.1 and values["repeat_last_n"] == 1024
    assert values["frequency_penalty"] == 0.2 and values["presence_penalty"] == 0.1
    assert values["dry_multiplier"] == 0.8 and values["dry_base"] == 1.75 and values["dry_allowed_length"] == 2
    assert values["xtc_probability"] == 0.5 and values["xtc_threshold"] == 0.1
    assert values["dry_sequence_breakers"] == ["\n", ":", '"', "*"]  # SillyTavern's JSON text, read as a list
    assert values["dry_penalty_last_n"] == -1  # SillyTavern's 0: the whole context
    assert values["mirostat_mode"] == 0 and values["mirostat_tau"] == 5.0
    assert values["max_tokens"] == 350 and values["seed"] is None
    assert "grammar" not in values  # an empty grammar string is no grammar
    assert isinstance(values["mirostat_tau"], float) and isinstance(values["top_k"], int)
    lines = report.lines()
    assert any(line.startswith("ignored: max_length: the context size") for line in lines)
    assert any(line.startswith("ignored: top_a") for line in lines)
    assert "renamed: temp -> temperature" in lines and "renamed: genamt -> max_tokens" in lines
    assert not any("ignored: temp:" in line for line in lines)


def test_kobold_presets_import(tmp_path: Path) -> None:
    preset, report = read_preset_file(_write(tmp_path / "kobold.json", KOBOLD_PRESET))
    assert report.source_format == "kobold"
    assert preset.values["max_tokens"] == 240  # max_length is the reply length to Kobold
    assert preset.values["typical_p"] == 1.0 and preset.values["seed"] == 1234
    assert preset.values["stop"] == ["\nYou:", "\n### "] and preset.values["repeat_last_n"] == 360
    assert any(line.startswith("ignored: max_context_length") for line in report.lines())
    values = preset.values  # koboldcpp's DRY, XTC and top-n-sigma carry over
    assert values["dry_multiplier"] == 0.8 and values["dry_base"] == 1.75 and values["dry_allowed_length"] == 2
    assert values["dry_penalty_last_n"] == 320 and values["dry_sequence_breakers"] == ["\n", ":", "*"]
    assert values["xtc_probability"] == 0.4 and values["xtc_threshold"] == 0.15 and values["top_n_sigma"] == 1.2
    assert "renamed: nsigma -> top_n_sigma" in report.lines()
    lite, lite_report = parse_preset({"savedsettings": {"temperature": 0.6, "typ_s": 0.9, "miro_type": 2,
                                                        "miro_tau": 4, "max_length": 120}}, name="lite")
    assert lite.values == {"temperature": 0.6, "typical_p": 0.9, "mirostat_mode": 2, "mirostat_tau": 4.0,
                           "max_tokens": 120}
    assert lite_report.source_format == "kobold"
    united, united_report = read_preset_file(_write(tmp_path / "godlike.json", KOBOLDAI_PRESET))
    assert united.name == "Godlike" and united.values["temperature"] == 0.7 and united.values["max_tokens"] == 80
    assert united.values["typical_p"] == 0.19 and united_report.source_format == "kobold"


def test_bad_values_are_clear_format_errors(tmp_path: Path) -> None:
    for data, expected in (
        ({**SILLYTAVERN_PRESET, "temp": "hot"}, "temp = 'hot' is not a number"),
        ({**SILLYTAVERN_PRESET, "top_p": 7}, "top_p = 7"),
        ({**SILLYTAVERN_PRESET, "rep_pen": True}, "rep_pen = True is not a usable number"),
        ({**KOBOLD_PRESET, "stop_sequence": [1, 2]}, "stop_sequence should be a list of strings"),
        ({**SILLYTAVERN_PRESET, "mirostat_mode": 5}, "mirostat_mode = 5"),
        ([1, 2, 3], "a preset is a JSON object"),
    ):
        with pytest.raises(FormatError, match=expected):
            read_preset_file(_write(tmp_path / "bad.json", data))
    (tmp_path / "broken.json").write_text("{ not json")
    with pytest.raises(FormatError, match="not a valid JSON preset"):
        read_preset_file(tmp_path / "broken.json")
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"temp": 1, "pad": "x" * (1024 * 1024)}))
    with pytest.raises(LimitExceededError):
        read_preset_file(big)
    # Numbers written as text are read leniently, and said so.
    preset, report = parse_preset({"temp": "0.9", "top_k": 40.0}, name="lenient")
    assert preset.values == {"temperature": 0.9, "top_k": 40}
    assert any("read as the number 0.9" in line for line in report.lines())


def test_import_saves_under_a_free_name_and_reports(tmp_path: Path) -> None:
    source = _write(tmp_path / "Creative.json", SILLYTAVERN_PRESET)
    preset, report = import_preset(source)
    assert preset.name == "Creative (2)"  # the bundled Creative keeps its name
    assert preset.path is not None and preset.path.parent == presets_dir()
    assert any("saved as 'Creative (2)'" in line for line in report.lines())
    again, _ = import_preset(source, name="Mine")
    assert again.name == "Mine"
    assert find_preset("mine").values["temperature"] == 1.25
    with pytest.raises(FormatError, match="no preset file"):
        import_preset(tmp_path / "missing.json")
    before = sorted(presets_dir().iterdir())
    with pytest.raises(FormatError):
        import_preset(_write(tmp_path / "bad.json", {"temp": "hot"}))
    assert sorted(presets_dir().iterdir()) == before  # nothing written


def test_create_edit_rename_and_delete() -> None:
    saved = save_preset("Night owl", {"temperature": 0.65, "top_k": 30})
    assert saved.path is not None and saved.path.name == "Night owl.json"
    on_disk = json.loads(saved.path.read_text())
    assert on_disk == {"name": "Night owl", "sampling": {"temperature": 0.65, "top_k": 30}}
    edited = save_preset("Night owl", {"temperature": 0.7})
    assert edited.path == saved.path and find_preset("night owl").values == {"temperature": 0.7}
    renamed = save_preset("Early bird", {"temperature": 0.7}, old_name="Night owl")
    assert not saved.path.exists() and renamed.path.is_file()
    assert [p.name for p in list_presets() if not p.bundled] == ["Early bird"]
    with pytest.raises(FormatError, match="top_p = 2"):
        save_preset("Early bird", {"top_p": 2})
    assert find_preset("Early bird").values == {"temperature": 0.7}  # the old file is intact
    with pytest.raises(FormatError, match="unknown sampler value 'warmth'"):
        save_preset("Early bird", {"warmth": 1})
    with pytest.raises(ConfigError, match="needs a name"):
        save_preset("  ", {})
    # Saving a bundled name makes the user's copy, which replaces it; deleting brings it back.
    save_preset("Precise", {"temperature": 0.3})
    assert not find_preset("Precise").bundled and find_preset("Precise").values == {"temperature": 0.3}
    delete_preset("precise")
    assert find_preset("Precise").bundled
    with pytest.raises(ConfigError, match="bundled preset"):
        delete_preset("Precise")
    with pytest.raises(ConfigError, match="no preset of yours"):
        delete_preset("Nobody")
    assert delete_preset("Early bird") == renamed.path and not renamed.path.exists()


def test_toml_presets_are_read_and_bad_files_skipped_with_a_warning() -> None:
    folder = presets_dir()
    folder.mkdir(parents=True)
    (folder / "hand.toml").write_text('name = "By hand"\n[sampling]\ntemperature = 0.55\nstop = ["\\nYou:"]\n')
    (folder / "broken.json").write_text("{")
    warnings: list[str] = []
    presets = {p.name: p for p in list_presets(warnings=warnings)}
    assert presets["By hand"].values == {"temperature": 0.55, "stop": ["\nYou:"]}
    assert len(warnings) == 1 and "broken.json" in warnings[0]
    saved = save_preset("By hand", {"temperature": 0.6})  # replaces the TOML with JSON
    assert saved.path.suffix == ".json" and not (folder / "hand.toml").exists()


def test_resolve_sampling_layers_base_preset_and_overrides() -> None:
    base = Sampling(temperature=0.8, top_k=40, max_tokens=200, seed=7)
    save_preset("Story", {"temperature": 1.2, "top_k": 0, "max_tokens": 300})
    result = resolve_sampling(base, "story", {"top_k": 20}, get_paths())
    assert (result.temperature, result.top_k, result.max_tokens, result.seed) == (1.2, 20, 300, 7)
    assert resolve_sampling(base, None, {}) == base
    warnings: list[str] = []
    missing = resolve_sampling(base, "Gone", {"temperature": 0.1}, warnings=warnings)
    assert missing.temperature == 0.1 and missing.top_k == 40
    assert warnings and "'Gone' was not used" in warnings[0]
    with pytest.raises(ConfigError, match="top_p"):
        resolve_sampling(base, None, {"top_p": 3})
