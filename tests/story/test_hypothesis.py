"""Random sequences of tree operations never lose a text, and survive a reopen."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storyteller.story import StoryStore

OPS = st.lists(
    st.tuples(st.sampled_from(["say", "regen", "continue", "edit", "swipe", "undo", "redo", "hide", "select"]),
              st.integers(min_value=0, max_value=50), st.text(max_size=8)),
    min_size=5,
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_every_text_ever_created_stays_recoverable(ops, tmp_path_factory) -> None:
    store = StoryStore(tmp_path_factory.mktemp("h"), snapshot_every=7, keep_snapshots=2)
    story = store.create("h")
    created: list[str] = []
    for op, n, text in ops:
        ids = list(story.nodes)
        target = ids[n % len(ids)] if ids else None
        if op == "say":
            created.append(story.add_node(text, author="user", kind="say").id)
        elif op == "regen" and story.current is not None:
            created.append(story.add_node(text, author="Bot", kind="generation", parent=story.current.parent).id)
        elif op == "continue" and story.current is not None:
            created.append(story.add_node(text, author="Bot", kind="continue").id)
        elif op == "edit" and target:
            created.append(story.edit(target, text).id)
            assert story.current_path(include_hidden=True)[-1].text is not None
        elif op == "swipe" and target:
            story.swipe(target, n % 3 - 1)
        elif op == "undo":
            before = story.current
            story.undo()
            if before is not None:
                assert story.can_redo
                assert story.redo() == before
                story.undo()
        elif op == "redo":
            story.redo()
        elif op == "hide" and target:
            story.hide(target, n % 2 == 0)
        elif op == "select" and target:
            story.select(target)
            assert story.current is not None and story.current.id == target
        path = story.current_path(include_hidden=True)
        assert all(b.parent == a.id for a, b in zip(path, path[1:], strict=False))
    texts = {i: story.nodes[i].text for i in created}
    state = (story.tree.current, set(story.tree.hidden), list(story.nodes))
    story.close()
    again = store.open("h")
    assert {i: again.nodes[i].text for i in created} == texts
    assert (again.tree.current, set(again.tree.hidden), list(again.nodes)) == state
    assert again.warnings == []
    again.close()
