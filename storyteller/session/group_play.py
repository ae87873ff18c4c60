"""The group side of a :class:`~storyteller.session.Session`: who answers, ``reply_as``, mute, changes.

A mixin, so the session's core stays about one reply: a group turn is the same reply made once
per speaker, with the speaker passed down to :func:`~storyteller.session.turn.build_turn` (the
prompt) and to the saved node (its ``author``). The choice itself is pure
(:mod:`storyteller.session.group`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from storyteller.cards import load_card
from storyteller.content import content_ref, find_card
from storyteller.errors import StoryError
from storyteller.session.group import choose_speakers, last_speaker, unique_name
from storyteller.session.resources import card_book, load_books, load_members
from storyteller.session.turn import group_of, next_speaker
from storyteller.story.model import GroupMember, GroupSettings, Node
from storyteller.story.tree import Message

if TYPE_CHECKING:
    from storyteller.session.turn import SessionParts
    from storyteller.story.store import Story

__all__ = ["GroupPlay"]


class GroupPlay:
    """Group-chat methods of the session (every one of them is harmless outside a group)."""

    story: Story
    parts: SessionParts
    last_stopped: bool

    if TYPE_CHECKING:
        async def _generate(self, action: str, *, parent: str | None, speaker: str | None = None) -> Node | None: ...
        def _require_idle(self) -> None: ...

    @property
    def group(self) -> GroupSettings | None:
        """The story's group, or ``None`` for a single-card story."""
        return group_of(self.parts, self.story.settings)

    @property
    def members(self) -> list[str]:
        """The group's member names in list order (empty outside a group)."""
        group = self.group
        return [m.name for m in group.members] if group is not None else []

    def group_character_name(self) -> str:
        """In a group: the member who spoke last, else the group's name."""
        group = self.group
        if group is None:
            return self.parts.speaker
        return last_speaker(group, self.story.current_path()) or group.name or ", ".join(self.members)

    def next_speakers(self) -> list[str]:
        """Who the speaker order picks to answer now (empty outside a group, or in manual order)."""
        group = self.group
        if group is None:
            return []
        return choose_speakers(group, self.parts.members, self.story.current_path(), story_name=self.story.name)

    def speaker_of(self, node: Node | None) -> str | None:
        """The member who wrote ``node`` (a reply keeps its speaker on retry, swipe and continue)."""
        group = self.group
        if group is None or node is None:
            return None
        member = group.member(node.author)
        return member.name if member is not None else None

    def default_speaker(self, action: str, messages: Sequence[Message]) -> str | None:
        """The speaker of a reply nobody named: Continue goes on as the last message's author;
        otherwise the speaker order's first pick (see :func:`~storyteller.session.turn.next_speaker`)."""
        if self.group is None:
            return None
        if action == "continue" and messages:
            spoke = self.speaker_of(messages[-1].head)
            if spoke is not None:
                return spoke
        return next_speaker(self.parts, self.story.name, self.story.settings, messages)

    def _member(self, name: str) -> str:
        group = self.group
        if group is None:
            raise StoryError("this story is not a group chat; start one with --card A --card B.")
        member = group.member(name)
        if member is None:
            raise StoryError(f"no member called {name.strip()!r} in {group.name or 'this group'}; "
                             f"the members are {', '.join(self.members)}.")
        return member.name

    async def group_replies(self) -> Node | None:
        """Every speaker the order picks replies in turn; returns the last reply (``None`` if none)."""
        last = None
        for name in self.next_speakers():
            node = await self._generate("reply", parent=self.story.tree.current, speaker=name)
            if self.last_stopped or node is None:
                return node or last
            last = node
        return last

    async def reply_as(self, name: str) -> Node | None:
        """The member ``name`` replies now (manual order, ``/as NAME``); muted members too.

        Raises:
            StoryError: No such member, not a group, or a reply is being generated.
        """
        member = self._member(name)
        self._require_idle()
        return await self._generate("reply", parent=self.story.tree.current, speaker=member)

    def set_muted(self, name: str, muted: bool) -> None:
        """Mute (never picked to speak) or unmute a member; saved with the story.

        Raises:
            StoryError: No such member, or the story cannot be saved.
        """
        member = self._member(name)
        group = self.group
        assert group is not None
        members = [m.model_copy(update={"muted": bool(muted)}) if m.name == member else m for m in group.members]
        self.update_group(members=members)

    def update_group(self, **changes: Any) -> GroupSettings:
        """Change the group's settings (order, cards mode, scenario, members...); saved with the story.

        New members' cards are loaded; the story's card list follows the members.

        Raises:
            StoryError: Not a group, a reply is being generated, or the story is read-only.
            pydantic.ValidationError: A value is not allowed (an unknown order...).
        """
        group = self.group
        if group is None:
            raise StoryError("this story is not a group chat; start one with --card A --card B.")
        self._require_idle()
        data = group.model_dump()
        data.update({k: ([m.model_dump() if hasattr(m, "model_dump") else m for m in v] if k == "members" else v)
                     for k, v in changes.items()})
        new = GroupSettings.model_validate(data)
        if "members" in changes:
            self.story.set_settings(group=new, cards=[m.card for m in new.members])
            members, warnings = load_members(new, self.parts.paths)
            books = {name: book for name, card in members.items() if (book := card_book(card)) is not None}
            first = members[new.members[0].name] if new.members else self.parts.card
            self.parts = self.parts.replace(members=members, member_books=books, card=first,
                                            warnings=(*self.parts.warnings, *warnings),
                                            books=tuple(load_books(self.story.settings.worlds, None, self.parts.paths)))
        else:
            self.story.set_settings(group=new)
        return new

    def add_member(self, card: str) -> str:
        """Add the card ``card`` (a path or library name) to the group; returns the new member's name.

        The member joins from the next reply on, without a greeting (as in SillyTavern). A card
        already in the group joins again under a numbered name (``Wren 2``).

        Raises:
            StorytellerError: The card cannot be found or read, not a group, or the story is read-only.
        """
        group = self._editable_group()
        path = find_card(card, self.parts.paths)
        loaded = load_card(path)[0]
        name = unique_name((loaded.name or f"Character {len(group.members) + 1}").strip(), self.members)
        member = GroupMember(card=content_ref(path, self.parts.paths), name=name)
        self.update_group(members=[*group.members, member])
        return name

    def remove_member(self, name: str) -> str:
        """Take the member ``name`` out of the group; their messages stay in the story under their name.

        Raises:
            StoryError: No such member, the last member, not a group, or the story is read-only.
        """
        member = self._member(name)
        group = self._editable_group()
        if len(group.members) == 1:
            raise StoryError(f"{member} is the group's only member; add another before taking them out.")
        self.update_group(members=[m for m in group.members if m.name != member])
        return member

    def set_member(self, name: str, **changes: Any) -> GroupMember:
        """Change one member's own settings: ``talkativeness`` (0..1, ``None`` for the card's),
        ``join_prefix`` / ``join_suffix`` (``None`` for the group's), ``lore_only_when_speaking``,
        ``muted``; saved with the story.

        Raises:
            StoryError: No such member, a setting members do not have, not a group, or read-only.
            pydantic.ValidationError: A value is not allowed (talkativeness above 1...).
        """
        member = self._member(name)
        group = self._editable_group()
        allowed = {"talkativeness", "join_prefix", "join_suffix", "lore_only_when_speaking", "muted"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise StoryError(f"a member has no setting {', '.join(unknown)}; they have {', '.join(sorted(allowed))}.")
        members = [GroupMember.model_validate({**m.model_dump(), **changes}) if m.name == member else m
                   for m in group.members]
        self.update_group(members=members)
        return next(m for m in members if m.name == member)

    def _editable_group(self) -> GroupSettings:
        group = self.group
        if group is None:
            raise StoryError("this story is not a group chat; start one with --card A --card B.")
        self._require_idle()
        return group
