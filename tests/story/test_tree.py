"""Tree semantics: swipes, edits, continues, undo/redo and branches never lose text."""

from __future__ import annotations

import pytest

from storyteller.errors import StoryError
from storyteller.story import Generation, StoryStore


@pytest.fixture
def store() -> StoryStore:
    return StoryStore()


def texts(story) -> list[str]:
    return [n.text for n in story.current_path()]


def test_turns_form_the_current_path_and_keep_generation_records(store: StoryStore) -> None:
    story = store.create("t")
    story.add_node("Hello there.", author="Aria", kind="greeting")
    story.add_node("Hi!", author="user", kind="say")
    gen = Generation(engine="fake", model="m", sampler={"temperature": 0.7}, prompt_tokens=12, tokens_reused=4,
                     timings={"seconds_total": 0.5}, finish_reason="stop")
    reply = story.add_node("How are you?", author="Aria", kind="generation", generation=gen)
    assert texts(story) == ["Hello there.", "Hi!", "How are you?"]
    assert story.current == reply
    assert reply.generation is not None and reply.generation.sampler["temperature"] == 0.7
    with pytest.raises(TypeError):
        reply.generation.sampler["temperature"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        reply.text = "changed"  # type: ignore[misc]


def test_regenerate_makes_a_swipe_and_swiping_keeps_both(store: StoryStore) -> None:
    story = store.create("t")
    user = story.add_node("Hi", author="user", kind="say")
    first = story.add_node("Reply one", author="Aria", kind="generation")
    second = story.add_node("Reply two", author="Aria", kind="generation", parent=user.id)
    assert [n.text for n in story.siblings(first.id)] == ["Reply one", "Reply two"]
    assert texts(story) == ["Hi", "Reply two"]
    assert story.swipe(second.id, -1) == first
    assert texts(story) == ["Hi", "Reply one"]
    assert story.swipe(first.id, -1) is None  # past the left end: nothing moves
    assert story.swipe(first.id, index=1) == second
    assert story.swipe(second.id, +1) is None  # past the right end: a play loop would generate
    with pytest.raises(StoryError, match="no alternative 5"):
        story.swipe(second.id, index=5)


def test_swipe_back_restores_the_turns_after_that_alternative(store: StoryStore) -> None:
    story = store.create("t")
    user = story.add_node("Hi", author="user", kind="say")
    a = story.add_node("A", author="Aria", kind="generation")
    story.add_node("after A", author="user", kind="say")
    b = story.add_node("B", author="Aria", kind="generation", parent=user.id)
    assert texts(story) == ["Hi", "B"]
    story.swipe(b.id, -1)
    assert texts(story) == ["Hi", "A", "after A"]
    assert story.current is not None and story.current.parent == a.id


def test_continue_is_a_child_node_and_messages_join_it(store: StoryStore) -> None:
    story = store.create("t")
    story.add_node("Hi", author="user", kind="say")
    reply = story.add_node("The door", author="Aria", kind="generation")
    story.add_node(" creaks open.", author="Aria", kind="continue")
    messages = story.messages()
    assert [m.text for m in messages] == ["Hi", "The door creaks open."]
    assert messages[-1].head == reply
    story.undo()  # the continuation is undone, the reply it extended is untouched
    assert [m.text for m in story.messages()] == ["Hi", "The door"]
    story.redo()
    assert story.messages()[-1].text == "The door creaks open."


def test_edit_keeps_the_original_as_a_swipe_and_the_later_turns(store: StoryStore) -> None:
    story = store.create("t")
    first = story.add_node("Once upon a tme", author="user", kind="story")
    story.add_node("there was a fox.", author="narrator", kind="generation")
    story.add_node("It ran.", author="user", kind="story")
    edited = story.edit(first.id, "Once upon a time")
    assert edited.edited_from == first.id and edited.parent is None
    assert texts(story) == ["Once upon a time", "there was a fox.", "It ran."]
    assert [n.text for n in story.siblings(edited.id)] == ["Once upon a tme", "Once upon a time"]
    story.swipe(edited.id, -1)
    assert texts(story) == ["Once upon a tme", "there was a fox.", "It ran."]


def test_undo_and_redo_always_work(store: StoryStore) -> None:
    story = store.create("t")
    nodes = [story.add_node(f"t{i}", author="user", kind="say") for i in range(3)]
    assert not story.can_redo
    assert story.undo() == nodes[1]
    assert story.undo() == nodes[0]
    assert story.undo() is None and story.current_path() == []
    assert story.undo() is None  # nothing left to undo: harmless
    assert story.redo() == nodes[0]
    story.redo()
    story.redo()
    assert texts(story) == ["t0", "t1", "t2"]
    assert story.redo() == nodes[2]  # nothing left to redo: harmless
    # A new turn after undo does not destroy what was undone; it stays reachable as a swipe.
    story.undo()
    fresh = story.add_node("t2 bis", author="user", kind="say")
    assert [n.text for n in story.siblings(fresh.id)] == ["t2", "t2 bis"]


def test_hidden_nodes_are_kept_but_left_out(store: StoryStore) -> None:
    story = store.create("t")
    story.add_node("Hi", author="kiosk:visitor-7", kind="say")
    bad = story.add_node("rude reply", author="narrator", kind="generation")
    story.hide(bad.id)
    assert texts(story) == ["Hi"]
    assert [n.text for n in story.current_path(include_hidden=True)] == ["Hi", "rude reply"]
    assert bad.id in story.nodes and story.is_hidden(bad.id)
    story.hide(bad.id, False)
    assert texts(story) == ["Hi", "rude reply"]


def test_branch_shares_history_and_keeps_swipes(store: StoryStore) -> None:
    story = store.create("main")
    user = story.add_node("Hi", author="user", kind="say")
    story.add_node("A", author="Aria", kind="generation")
    b = story.add_node("B", author="Aria", kind="generation", parent=user.id)
    story.add_node("later", author="user", kind="say")
    story.set_settings(memory="remember this")
    branch = store.branch(story, b.id, "side")
    assert [n.text for n in branch.current_path()] == ["Hi", "B"]
    assert [n.text for n in branch.siblings(b.id)] == ["A", "B"]
    assert "later" not in {n.text for n in branch.nodes.values()}
    assert branch.settings.memory == "remember this"
    branch.add_node("only in the branch", author="user", kind="say")
    assert "only in the branch" not in {n.text for n in story.nodes.values()}
    assert [i.branched_from for i in store.list() if i.name == "side"] == [{"story": "main", "node": b.id}]


def test_settings_are_validated_and_journaled(store: StoryStore) -> None:
    story = store.create("t")
    story.set_settings(cards=["aria.png"], worlds=["Eldoria"], mode="adventure",
                       authors_note={"text": "Be brief.", "depth": 2, "interval": 3, "role": "user"},
                       persona={"name": "Sam", "description": "a sailor"}, variables={"gold": 3})
    with pytest.raises(StoryError, match="invalid story settings"):
        story.set_settings(no_such_field=1)
    with pytest.raises(StoryError):
        story.set_settings(authors_note={"depth": -1})
    story.close()
    again = store.open("t")
    s = again.settings
    assert (s.cards, s.mode, s.authors_note.depth, s.authors_note.role, s.persona.name, s.variables) == (
        ["aria.png"], "adventure", 2, "user", "Sam", {"gold": 3})


def test_unknown_nodes_and_kinds_are_refused(store: StoryStore) -> None:
    story = store.create("t")
    with pytest.raises(StoryError, match="unknown node kind"):
        story.add_node("x", author="user", kind="shout")
    with pytest.raises(StoryError, match="unknown parent"):
        story.add_node("x", author="user", kind="say", parent="nope")
    with pytest.raises(StoryError, match="no node"):
        story.edit("nope", "x")
    assert story.nodes == {}


def test_edit_does_not_bring_back_hidden_passages(tmp_path) -> None:
    from storyteller.story.store import StoryStore

    with StoryStore(tmp_path).create("hide-edit") as story:
        first = story.add_node("A visitor writes.", author="kiosk:ann", kind="story")
        bad = story.add_node("A reply to hide.", author="narrator", kind="generation")
        story.add_node("Next visitor.", author="kiosk:bo", kind="story")
        story.hide(bad.id)
        story.edit(first.id, "A visitor writes, edited.")
        texts = [n.text for n in story.current_path()]
        assert texts == ["A visitor writes, edited.", "Next visitor."]
        assert story.node(bad.id).text == "A reply to hide."  # still in the tree, still hidden
        assert story.is_hidden(bad.id)
