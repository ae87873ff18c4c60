"""What the player's own actions need: greetings as swipes, macros in sent text, whole-message edits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storyteller.content import find_world
from storyteller.errors import StorytellerError
from storyteller.prompt import MacroContext, expand_macros, expand_names
from storyteller.story.model import Node

__all__ = ["edit_target", "expand_sent_text", "greeting_nodes", "world_file"]


def greeting_nodes(card: Any, speaker: str, user: str) -> list[Node]:
    """The card's greetings (first message, then the alternates) as first-message nodes: each is a
    swipe of the first message, as in SillyTavern. Empty greetings are left out."""
    return [Node.make(expand_names(text, speaker, user), author=speaker, kind="greeting", parent=None)
            for text in [card.first_mes, *card.alternate_greetings] if text.strip()]


def expand_sent_text(text: str, *, parts: Any, story: Any) -> str:
    """The player's text with its macros expanded, as SillyTavern stores and shows a sent message
    ("Hi {{char}}!" is saved as "Hi Seraphina!"; ``{{roll:d20}}`` as the number)."""
    if "{{" not in text and "<" not in text:
        return text
    character = parts.character
    persona = story.settings.persona
    messages = story.messages()
    context = MacroContext(
        char=parts.speaker, user=persona.name or "User", description=character.description,
        personality=character.personality, scenario=character.scenario, persona=persona.description or "",
        input=text, last_message=messages[-1].text if messages else "", story_id=story.name,
    )
    return expand_macros(text, context)


def edit_target(nodes: Any, text: str) -> tuple[str, str] | None:
    """For a new full text of a message made of ``nodes`` (a reply and its continuations): the one
    node whose text alone changed and its new text, or ``None`` when the change spans parts."""
    if len(nodes) == 1:
        return nodes[0].id, text
    for i, part in enumerate(nodes):
        before = "".join(n.text for n in nodes[:i])
        after = "".join(n.text for n in nodes[i + 1:])
        if text.startswith(before) and text.endswith(after) and len(text) >= len(before) + len(after):
            middle = text[len(before): len(text) - len(after)]
            if middle.strip():
                return part.id, middle
    return None


def world_file(ref: str, paths: Any) -> Path | None:
    """The file a world reference names, or ``None`` when it cannot be found."""
    try:
        return find_world(ref, paths).resolve()
    except StorytellerError:
        return None
