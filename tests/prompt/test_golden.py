"""Golden tests: the exact text of each mode and each bundled instruct template."""

from __future__ import annotations

import pytest

from storyteller.engines.base import Message
from storyteller.prompt import (
    AuthorsNote,
    CharacterInfo,
    HistoryMessage,
    Persona,
    PromptBuilder,
    PromptOptions,
    WorldInfoInsert,
    load_library,
    tiktoken_counter,
)

LIBRARY = load_library()
CARD = CharacterInfo(
    name="Mira",
    description="{{char}} is a fox.",
    personality="sly",
    scenario="A forest.",
    mes_example="<START>\n{{user}}: hi\n{{char}}: hello",
)
PERSONA = Persona("Ann", "Ann is tall.")
WORLD = [
    WorldInfoInsert("Foxes lie.", source="w/1"),
    WorldInfoInsert("It is night.", position="at_depth", depth=1, source="w/2"),
]
NOTE = AuthorsNote("Be brief.", depth=2)
CHAT = [
    HistoryMessage("assistant", "Hello {{user}}."),
    HistoryMessage("user", "Hi."),
    HistoryMessage("assistant", "Why here?"),
    HistoryMessage("user", "Lost."),
]
STORY = [
    HistoryMessage("user", "Once upon a time"),
    HistoryMessage("assistant", ", a fox lived in the woods."),
    HistoryMessage("user", " One day"),
]
ADVENTURE = [
    HistoryMessage("assistant", "You stand at a gate."),
    HistoryMessage("user", "open it", kind="do"),
    HistoryMessage("assistant", "It creaks open."),
    HistoryMessage("user", "hello?", kind="say"),
    HistoryMessage("user", "The wind howls.", kind="story"),
]
CASES = {
    "chat-none": ("chat", "none", CHAT),
    "chat-chatml": ("chat", "chatml", CHAT),
    "story": ("story", "none", STORY),
    "adventure": ("adventure", "none", ADVENTURE),
    "adventure-chatml": ("adventure", "chatml", ADVENTURE),
    "story-chatml": ("story", "chatml", STORY),
    "instruct-llama3": ("instruct", "llama3", CHAT[1:]),
}

MODE_GOLDEN = {
    "chat-none": (
        "Write Mira's next reply in this fictional roleplay with Ann. Stay in character, and never write Ann's lines or actions.\nFoxes lie.\nMira is a fox.\nMira's personality: sly\nScenario: A forest.\nAnn is tall.\n***\nAnn: hi\nMira: hello\n***\nMira: Hello Ann.\nAnn: Hi.\nBe brief.\nMira: Why here?\nIt is night.\nAnn: Lost.\nMira:",
        ['\nAnn:', '\nAnn '],
    ),
    "chat-chatml": (
        "<|im_start|>system\nWrite Mira's next reply in this fictional roleplay with Ann. Stay in character, and never write Ann's lines or actions.\nFoxes lie.\nMira is a fox.\nMira's personality: sly\nScenario: A forest.\nAnn is tall.<|im_end|>\n<|im_start|>user\nAnn: hi<|im_end|>\n<|im_start|>assistant\nMira: hello<|im_end|>\n<|im_start|>assistant\nMira: Hello Ann.<|im_end|>\n<|im_start|>user\nAnn: Hi.<|im_end|>\n<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>assistant\nMira: Why here?<|im_end|>\n<|im_start|>system\nIt is night.<|im_end|>\n<|im_start|>user\nAnn: Lost.<|im_end|>\n<|im_start|>assistant\nMira:",
        ['\nAnn:', '\nAnn ', '<|im_end|>', '<|im_start|>'],
    ),
    "story": (
        "Memory here.\nYou are co-writing this story with Ann. Continue it from where it stops, in the same voice and tense. Write only the story's prose: no titles, labels, notes or commentary.\nFoxes lie.\nMira is a fox.\nMira's personality: sly\nScenario: A forest.\nAnn is tall.\nOnce upon a time\n[Author's note: Be brief.]\n, a fox lived in the woods.\nIt is night.\n One day",
        [],
    ),
    "adventure": (
        'Memory here.\nThis is a text adventure and you are its narrator. Ann is the player: lines starting with > are the player\'s actions. Describe what happens next, in the second person, and never decide or write the player\'s actions.\nFoxes lie.\nMira is a fox.\nMira\'s personality: sly\nScenario: A forest.\nAnn is tall.\nYou stand at a gate.\n\n> You open it.\n\nIt creaks open.\n[Author\'s note: Be brief.]\n\n\n> You say "hello?"\n\n\nIt is night.\nThe wind howls.',
        ['\n>', '\nAnn:', '\nYou:'],
    ),
    "adventure-chatml": (
        '<|im_start|>system\nMemory here.\nThis is a text adventure and you are its narrator. Ann is the player: lines starting with > are the player\'s actions. Describe what happens next, in the second person, and never decide or write the player\'s actions.\nFoxes lie.\nMira is a fox.\nMira\'s personality: sly\nScenario: A forest.\nAnn is tall.<|im_end|>\n<|im_start|>user\n> You say "hi"<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>assistant\nYou stand at a gate.<|im_end|>\n<|im_start|>user\n> You open it.<|im_end|>\n<|im_start|>assistant\nIt creaks open.<|im_end|>\n<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n> You say "hello?"<|im_end|>\n<|im_start|>system\nIt is night.<|im_end|>\n<|im_start|>user\nThe wind howls.<|im_end|>\n<|im_start|>assistant\n',
        ['\n>', '\nAnn:', '\nYou:', '<|im_end|>', '<|im_start|>'],
    ),
    "story-chatml": (
        "<|im_start|>system\nMemory here.\nYou are co-writing this story with Ann. Continue it from where it stops, in the same voice and tense. Write only the story's prose: no titles, labels, notes or commentary.\nFoxes lie.\nMira is a fox.\nMira's personality: sly\nScenario: A forest.\nAnn is tall.<|im_end|>\n<|im_start|>assistant\nOnce upon a time<|im_end|>\n<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>assistant\n, a fox lived in the woods.<|im_end|>\n<|im_start|>system\nIt is night.<|im_end|>\n<|im_start|>assistant\n One day",
        ['<|im_end|>', '<|im_start|>'],
    ),
    "instruct-llama3": (
        '<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.\nFoxes lie.\nAnn is tall.\nMemory here.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi.<|eot_id|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nWhy here?<|eot_id|><|start_header_id|>system<|end_header_id|>\n\nIt is night.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nLost.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
        ['<|eot_id|>', '<|start_header_id|>'],
    ),
}

TEMPLATE_GOLDEN = {
    "alpaca": 'S\n\n### Instruction:\nHi\n\n### Response:\nYo\n\n### Instruction:\nQ\n\n### Response:\n',
    "chatml": '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n',
    "command-r": '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>S<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Yo<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Q<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>',
    "gemma": '<start_of_turn>user\nS<end_of_turn>\n<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>\n<start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\n',
    "llama2": '[INST] <<SYS>>\nS\n<</SYS>> [/INST][INST] Hi [/INST]Yo </s>[INST] Q [/INST]',
    "llama3": '<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nYo<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    "mistral": '[INST] S [/INST][INST] Hi [/INST]Yo</s>[INST] Q [/INST]',
    "mistral-v7": '[SYSTEM_PROMPT]S[/SYSTEM_PROMPT][INST]Hi[/INST]Yo</s>[INST]Q[/INST]',
    "phi3": '<|system|>\nS<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nYo<|end|>\n<|user|>\nQ<|end|>\n<|assistant|>\n',
    "vicuna": 'S\n\nUSER: Hi\nASSISTANT: Yo</s>\nUSER: Q\nASSISTANT: ',
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_mode_golden(case: str) -> None:
    mode, template, history = CASES[case]
    builder = PromptBuilder(tiktoken_counter(exact=True), PromptOptions(mode=mode, template=LIBRARY.get_instruct(template)))
    prompt = await builder.build(
        history,
        character=CARD if mode != "instruct" else None,
        persona=PERSONA,
        memory="Memory here." if mode != "chat" else "",
        world_info=WORLD,
        authors_note=NOTE,
    )
    expected_text, expected_stops = MODE_GOLDEN[case]
    assert prompt.text == expected_text
    assert prompt.stops == expected_stops
    assert "".join(s.text for s in prompt.segments) == prompt.text


@pytest.mark.parametrize("name", sorted(TEMPLATE_GOLDEN))
async def test_template_golden(name: str) -> None:
    history = [HistoryMessage("user", "Hi"), HistoryMessage("assistant", "Yo"), HistoryMessage("user", "Q")]
    options = PromptOptions(mode="instruct", template=LIBRARY.get_instruct(name), system_prompt="S")
    prompt = await PromptBuilder(tiktoken_counter(exact=True), options).build(history)
    assert prompt.text == TEMPLATE_GOLDEN[name]
    assert set(LIBRARY.get_instruct(name).stops) <= set(prompt.stops)


def test_every_issue_template_is_bundled() -> None:
    wanted = {"chatml", "llama3", "llama2", "mistral", "mistral-v7", "alpaca", "vicuna", "gemma", "phi3", "command-r"}
    assert wanted <= set(LIBRARY.instruct)


async def test_chat_completion_messages() -> None:
    options = PromptOptions(mode="chat", target="messages")
    prompt = await PromptBuilder(tiktoken_counter(exact=True), options).build(
        CHAT, character=CARD, persona=PERSONA, world_info=WORLD, authors_note=NOTE
    )
    assert prompt.text is None
    assert prompt.messages == [
        Message("system", "Write Mira's next reply in this fictional roleplay with Ann. Stay in character, "
                "and never write Ann's lines or actions.\nFoxes lie.\nMira is a fox.\nMira's personality: sly\n"
                "Scenario: A forest.\nAnn is tall."),
        Message("system", "Ann: hi\nMira: hello"),
        Message("assistant", "Hello Ann.", name="Mira"),
        Message("user", "Hi.", name="Ann"),
        Message("system", "Be brief."),
        Message("assistant", "Why here?", name="Mira"),
        Message("system", "It is night."),
        Message("user", "Lost.", name="Ann"),
    ]
    assert prompt.budget.used == sum(s.tokens for s in prompt.segments) + 1


async def test_continue_extends_the_last_reply() -> None:
    options = PromptOptions(mode="chat", continue_last=True)
    prompt = await PromptBuilder(tiktoken_counter(exact=True), options).build(
        [HistoryMessage("user", "Hi."), HistoryMessage("assistant", "Well, I")], character=CARD, persona=PERSONA
    )
    assert prompt.text.endswith("***\nAnn: Hi.\nMira: Well, I")


async def test_card_prompts_replace_defaults_with_original() -> None:
    card = CharacterInfo(name="Mira", system_prompt="Card rules. {{original}}", post_history_instructions="Stay sly.")
    options = PromptOptions(mode="chat", system_prompt="Global for {{char}}.")
    prompt = await PromptBuilder(tiktoken_counter(exact=True), options).build([HistoryMessage("user", "Hi.")], character=card)
    assert prompt.text == "Card rules. Global for Mira.\n***\nUser: Hi.\nStay sly.\nMira:"


@pytest.mark.parametrize(("interval", "users", "present"), [(0, 2, False), (1, 0, True), (2, 1, False), (2, 2, True), (3, 4, False)])
async def test_authors_note_interval(interval: int, users: int, present: bool) -> None:
    history = [HistoryMessage("assistant", "Hey.")] + [HistoryMessage("user", f"u{i}") for i in range(users)]
    note = AuthorsNote("NOTE", interval=interval, depth=0)
    top = WorldInfoInsert("TOP", position="an_top")
    prompt = await PromptBuilder(tiktoken_counter(exact=True), PromptOptions(mode="chat")).build(
        history, character=CARD, authors_note=note, world_info=[top]
    )
    assert ("TOP\nNOTE\n" in prompt.text) is present
    assert ("TOP" in prompt.text) is present  # an_top entries vanish with the note


async def test_outlet_entries_only_via_macro() -> None:
    card = CharacterInfo(name="Mira", description="Lore: {{outlet::Deep}}")
    entry = WorldInfoInsert("hidden text", position="outlet", outlet="Deep")
    prompt = await PromptBuilder(tiktoken_counter(exact=True), PromptOptions(mode="chat")).build(
        [HistoryMessage("user", "Hi.")], character=card, world_info=[entry]
    )
    assert prompt.text.count("hidden text") == 1 and "Lore: hidden text\n" in prompt.text
