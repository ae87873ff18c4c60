"""Plain text and Markdown exports of the current path, for reading and sharing.

Hidden nodes are left out, ``continue`` nodes are joined to the message they extend, and names
follow the story mode: chat transcripts get ``Name: text``, stories are plain prose, adventures
mark the player's actions with ``>``.
"""

from __future__ import annotations

from storyteller.story.model import AUTHOR_NARRATOR, Node
from storyteller.story.tree import StoryTree

__all__ = ["display_author", "export_markdown", "export_text"]


def display_author(node: Node, tree: StoryTree) -> str:
    """The name to show for a node's author."""
    if node.visitor_name is not None:
        return node.visitor_name or "Visitor"
    if node.is_user:
        return tree.settings.persona.name
    if node.author == AUTHOR_NARRATOR:
        return "Narrator"
    return node.author


def _blocks(tree: StoryTree, markdown: bool) -> list[str]:
    mode = tree.settings.mode
    blocks = []
    for message in tree.messages():
        head, text = message.head, message.text.strip("\n")
        if mode == "story" or head.kind == "story" or (mode == "adventure" and not head.is_user):
            blocks.append(text)
        elif mode == "adventure" or head.kind == "do":
            blocks.append("> " + text.replace("\n", "\n> "))
        elif markdown:
            blocks.append(f"**{display_author(head, tree)}:** {text}")
        else:
            blocks.append(f"{display_author(head, tree)}: {text}")
    return blocks


def export_text(tree: StoryTree) -> str:
    """The current path as plain text, one blank line between messages."""
    return "\n\n".join(_blocks(tree, markdown=False)) + "\n"


def export_markdown(tree: StoryTree, *, title: str = "") -> str:
    """The current path as Markdown, with an optional ``# title``."""
    blocks = _blocks(tree, markdown=True)
    if title:
        blocks.insert(0, f"# {title}")
    return "\n\n".join(blocks) + "\n"
