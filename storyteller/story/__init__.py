"""Stories: a tree of immutable turns, saved so that nothing is ever lost.

A story is a tree of :class:`Node` objects. Every input, generation, swipe, edit and continue
adds a node; nothing is ever overwritten. Swipes are siblings. The *current path* is a pointer
(the current node plus the child chosen last at every node), so undo, redo and swipes only move
the pointer and always work. Settings that live with the story (cards, worlds, mode, template,
author's note, memory, persona, sampler preset, engine, macro variables, timed world-info state)
are a :class:`StorySettings` and are journaled like turns. Full guide: ``docs/stories.md``.

The API the play loop uses::

    store = StoryStore()                              # get_paths().stories_dir
    story = store.create("tale", StorySettings(mode="adventure"))   # or store.open("tale")
    story.read_only / story.warnings                  # another writer? torn tail repaired?
    user = story.add_node("look around", author="user", kind="do")
    reply = story.add_node(text, author="narrator", kind="generation",
                           generation=Generation(engine="embedded", model="SmolLM2", ...))
    again = story.add_node(text2, author="narrator", kind="generation", parent=user.id)  # regenerate = swipe
    story.add_node(" more", author="narrator", kind="continue")   # continue: a child holding the added text
    story.swipe(again.id, -1) / story.swipe(again.id, index=0)   # -> Node | None
    story.edit(node_id, "new text") -> Node           # a new sibling; later turns are copied after it
    story.undo() / story.redo() -> Node | None; story.select(node_id); story.hide(node_id)
    story.set_settings(memory="...", authors_note={"text": "...", "depth": 4})
    story.current_path() -> list[Node]; story.messages() -> list[Message]  # continues folded in
    store.branch(story, node_id, "tale-2") -> Story; store.list() -> list[StoryInfo]
    story.close()                                     # or ``with store.open(name) as story:``

Each change is appended to the story's journal and fsynced before the call returns. One
process writes a story at a time; others get it read-only, and writing then raises
:class:`~storyteller.errors.StoryLockedError`. Import and export: :mod:`storyteller.story.convert`
(SillyTavern chat JSONL, Kobold Lite save JSON, Markdown and plain text).
"""

from storyteller.story.convert import export_story, import_story, read_story_file
from storyteller.story.model import (
    AUTHOR_NARRATOR,
    AUTHOR_USER,
    AuthorsNote,
    Generation,
    GroupMember,
    GroupSettings,
    ImportReport,
    Node,
    Persona,
    StorySettings,
)
from storyteller.story.store import CURRENT, Story, StoryInfo, StoryStore
from storyteller.story.tree import Message, StoryTree

__all__ = [
    "AUTHOR_NARRATOR",
    "AUTHOR_USER",
    "CURRENT",
    "AuthorsNote",
    "Generation",
    "GroupMember",
    "GroupSettings",
    "ImportReport",
    "Message",
    "Node",
    "Persona",
    "Story",
    "StoryInfo",
    "StorySettings",
    "StoryStore",
    "StoryTree",
    "export_story",
    "import_story",
    "read_story_file",
]
