"""Templates as data: bundled presets, auto-detection, sandboxed Jinja, SillyTavern import, user files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storyteller.errors import FormatError
from storyteller.paths import get_paths
from storyteller.prompt import InstructTemplate, load_library, parse_template
from storyteller.prompt._jinja import derive_template

LLAMA3_JINJA = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
GEMMA_JINJA = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim "
    "+ '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
CUSTOM_JINJA = (
    "{% for m in messages %}{% if m['role'] == 'system' %}<<SYSTEM>>{{ m['content'] }}<</SYSTEM>>\n"
    "{% elif m['role'] == 'user' %}<<USER>>{{ m['content'] }}<</USER>>\n"
    "{% else %}<<BOT>>{{ m['content'] }}<</BOT>>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<<BOT>>{% endif %}"
)


@pytest.mark.parametrize(("jinja", "expected"), [(LLAMA3_JINJA, "llama3"), (GEMMA_JINJA, "gemma")])
def test_auto_picks_the_matching_preset(jinja: str, expected: str) -> None:
    template, warnings = load_library().resolve("auto", jinja)
    assert template.name == expected and warnings == []


def test_auto_with_the_real_smollm2_chat_template(smollm2_llama) -> None:
    chat_template = smollm2_llama.metadata["tokenizer.chat_template"]
    template, warnings = load_library().resolve("auto", chat_template)
    assert template.name == "chatml" and warnings == []


def test_auto_renders_an_unknown_template_in_the_sandbox() -> None:
    template, warnings = load_library().resolve("auto", CUSTOM_JINJA)
    assert warnings == []
    assert template.name == "jinja"
    assert template.turn("user", "hi") == "<<USER>>hi<</USER>>\n"
    assert template.turn("assistant", "yo") == "<<BOT>>yo<</BOT>>\n"
    assert template.turn("system", "be kind") == "<<SYSTEM>>be kind<</SYSTEM>>\n"
    assert template.assistant_prefix == "<<BOT>>"


@pytest.mark.parametrize(
    "hostile",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% for m in messages %}{{ m.update({'content': 'x'}) }}{% endfor %}",
        "{{ raise_exception('no') }}",
        "{% for i in range(10**9) %}x{% endfor %}",
    ],
)
def test_hostile_jinja_falls_back_to_chatml(hostile: str) -> None:
    template, warnings = load_library().resolve("auto", hostile)
    assert template.name == "chatml"
    assert warnings and "ChatML" in warnings[0]


def test_missing_chat_template_warns() -> None:
    template, warnings = load_library().resolve("auto", None)
    assert template.name == "chatml" and "unknown" in warnings[0]


def test_derive_handles_a_preamble_before_the_first_turn() -> None:
    jinja = "Preamble text.\n" + CUSTOM_JINJA
    template = derive_template(jinja)
    assert template.user_prefix == "<<USER>>"


def test_unknown_template_name_lists_the_known_ones() -> None:
    with pytest.raises(FormatError, match="known: auto, none, alpaca"):
        load_library().get_instruct("nope")


def test_sillytavern_instruct_preset_import() -> None:
    st = {
        "name": "My ChatML",
        "input_sequence": "<|im_start|>user",
        "output_sequence": "<|im_start|>assistant",
        "system_sequence": "<|im_start|>system",
        "input_suffix": "<|im_end|>\n",
        "output_suffix": "<|im_end|>\n",
        "system_suffix": "<|im_end|>\n",
        "stop_sequence": "<|im_end|>",
        "wrap": True,
    }
    template = parse_template(st, source="st.json", name="my-chatml")
    assert isinstance(template, InstructTemplate)
    assert template.turn("user", "hi") == "<|im_start|>user\nhi<|im_end|>\n"
    assert template.assistant_prefix == "<|im_start|>assistant\n"
    assert "<|im_end|>" in template.stops


def test_sillytavern_context_preset_import() -> None:
    st = {"name": "Mine", "story_string": "{{#if description}}{{description}}\n{{/if}}", "example_separator": "", "chat_start": ""}
    template = parse_template(st, source="ctx.json")
    assert template.name == "mine" and template.chat_start == ""


def test_user_folder_templates_override_and_bad_files_warn() -> None:
    folder = get_paths().config_dir / "templates"
    folder.mkdir(parents=True)
    (folder / "chatml.json").write_text(json.dumps({"kind": "instruct", "name": "chatml", "user_prefix": "U:"}))
    (folder / "mine.toml").write_text('kind = "instruct"\nname = "mine"\nuser_prefix = "[U]"\nstops = ["[U]"]\n')
    (folder / "broken.json").write_text("{not json")
    (folder / "other.json").write_text(json.dumps({"hello": 1}))
    library = load_library()
    assert library.get_instruct("chatml").user_prefix == "U:"
    assert library.get_instruct("mine").stops == ("[U]",)
    assert len(library.warnings) == 2 and any("broken.json" in w for w in library.warnings)


def test_bundled_templates_are_package_data() -> None:
    folder = Path(__file__).resolve().parents[2] / "storyteller" / "prompt" / "templates"
    names = {p.name for p in folder.glob("*.json")}
    assert "instruct-chatml.json" in names and "context-default.json" in names
