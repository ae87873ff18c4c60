"""World-info layout: what fires turn by turn goes after what is always there, in one stable order."""

from __future__ import annotations

from storyteller.prompt import CharacterInfo, HistoryMessage, PromptBuilder, PromptOptions, WorldInfoInsert, tiktoken_counter

CARD = CharacterInfo(name="Mira", description="Mira guards the old forest.", scenario="A forest at night.")
HISTORY = [HistoryMessage("assistant", "The trees lean close."), HistoryMessage("user", "I walk to the ford.")]
ALWAYS = WorldInfoInsert("The forest is old and listens.", order=120, source="w/0", constant=True)
FORD = WorldInfoInsert("The ford is shallow at dusk.", order=100, source="w/1")
MILL = WorldInfoInsert("The mill has been silent for years.", order=100, source="w/2")
LATE = WorldInfoInsert("Wolves den past the mill.", order=150, source="w/3")


async def _head(world: list[WorldInfoInsert], volatile_last: bool = True) -> str:
    builder = PromptBuilder(tiktoken_counter(), PromptOptions(context_length=2048, reply_tokens=64,
                                                              volatile_last=volatile_last))
    prompt = await builder.build(HISTORY, character=CARD, world_info=world)
    return prompt.text.split("The trees lean close.")[0]


async def test_entries_that_fire_turn_by_turn_come_after_the_constant_ones() -> None:
    head = await _head([FORD, ALWAYS, LATE])
    assert head.index(ALWAYS.content) < head.index(FORD.content) < head.index(LATE.content)
    # SillyTavern's plain order puts the constant entry among the others by order alone.
    plain = await _head([LATE, FORD, ALWAYS], volatile_last=False)
    assert plain.index(FORD.content) < plain.index(ALWAYS.content) < plain.index(LATE.content)


async def test_equal_order_entries_keep_their_place_whatever_the_scan_order() -> None:
    one = await _head([ALWAYS, FORD, MILL, LATE])
    other = await _head([MILL, LATE, ALWAYS, FORD])
    assert one == other
    assert one.index(FORD.content) < one.index(MILL.content)
    # An entry that starts firing changes the prompt only from its own place on.
    fewer = await _head([ALWAYS, MILL, LATE])
    cut = one.index(FORD.content)
    assert fewer[:cut] == one[:cut]
