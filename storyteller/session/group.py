"""Group chats, as data: who speaks next, the cards a group turn's prompt holds, its greetings.

Pure functions over :class:`~storyteller.story.model.GroupSettings` and loaded cards; nothing here
talks to an engine or writes a story. The semantics are SillyTavern's (``group-chats.js``):

- **Speaker order.** ``natural``: members named in the last message answer, in the order they are
  named (never the member who wrote it, unless ``allow_self_responses``), then every member whose
  talkativeness beats a random draw; when nobody is picked, one random member with talkativeness
  above 0. ``list``: one member per player turn, the next after the one who spoke last.
  ``everyone``: every member, in list order. ``manual``: nobody until the player picks. Muted
  members are never picked. The draws come from a :class:`random.Random` seeded with the group's
  seed (or the story's name) and the path's length, so a story picks the same speakers every time.
- **Cards.** ``join`` puts every unmuted member's description, personality, scenario and examples
  in the prompt, each wrapped in the member's prefix/suffix with ``{{char}}`` expanded to that
  member; ``{{char}}`` anywhere else stands for the member list, so the head of the prompt is the
  same whoever speaks. ``swap`` holds only the speaker's card.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from storyteller.cards import Card
from storyteller.prompt import CharacterInfo, expand_names
from storyteller.story.model import GroupMember, GroupSettings, Node

__all__ = [
    "JOIN_FIELDS",
    "choose_speakers",
    "escape_line",
    "group_character",
    "group_greetings",
    "group_nudge",
    "group_stops",
    "last_speaker",
    "member_list",
    "new_group",
    "nudge_helps",
    "speaker_rng",
    "talkativeness",
    "unique_name",
    "unescape_line",
]

JOIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("description", "Description"),
    ("personality", "Personality"),
    ("scenario", "Scenario"),
    ("mes_example", "Example Messages"),
)
"""Card fields joined in ``join`` modes, with the name ``<FIELDNAME>`` stands for (SillyTavern's)."""

_WORD = re.compile(r"\b\w+\b")
_FIELDNAME = re.compile(r"<FIELDNAME>", re.I)


def _words(text: str) -> list[str]:
    """SillyTavern's ``extractAllWords``: the lower-cased words of a text."""
    return _WORD.findall(text.lower())


def member_list(names: Sequence[str]) -> str:
    """``Alice``, ``Alice and Bob``, ``Alice, Bob and Carol``: what ``{{char}}`` means in a joined head."""
    names = [n for n in names if n]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def talkativeness(member: GroupMember, card: Card | None) -> float:
    """The member's own talkativeness, else the card's (0.5 when the card has none)."""
    if member.talkativeness is not None:
        return member.talkativeness
    return card.talkativeness if card is not None else 0.5


def speaker_rng(group: GroupSettings, story_name: str, path_length: int) -> random.Random:
    """The draws for one turn's speaker choice: the same for the same story (or seed) and length."""
    base = f"seed:{group.seed}" if group.seed is not None else f"story:{story_name}"
    digest = hashlib.sha256(f"group\x00{base}\x00{path_length}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _last_message(path: Sequence[Node]) -> tuple[Node | None, str]:
    """The head of the last message on the path (continuations folded in) and its whole text."""
    if not path:
        return None, ""
    tail: list[Node] = []
    for node in reversed(path):
        tail.append(node)
        if node.kind != "continue":
            break
    tail.reverse()
    return tail[0], "".join(n.text for n in tail)


def last_speaker(group: GroupSettings, path: Sequence[Node]) -> str | None:
    """The member who wrote the newest member message on the path, if any."""
    for node in reversed(path):
        if node.kind in ("generation", "greeting", "continue"):
            member = group.member(node.author)
            if member is not None:
                return member.name
    return None


def choose_speakers(group: GroupSettings, cards_by_name: Mapping[str, Card | None], path: Sequence[Node], *,
                    story_name: str, rng: random.Random | None = None) -> list[str]:
    """Who answers now, in order (member names); empty in manual order or when all are muted.

    Args:
        group: The group.
        cards_by_name: Each member's card by member name (for talkativeness); missing is fine.
        path: The story path so far, the player's newest input last.
        story_name: Seeds the draws when the group has no seed.
        rng: The draws (default: :func:`speaker_rng`).
    """
    active = [m for m in group.members if not m.muted and m.name]
    if group.order == "manual" or not active:
        return []
    if group.order == "everyone":
        return [m.name for m in active]
    if group.order == "list":
        spoke = last_speaker(group, path)
        names = [m.name for m in group.members]
        if spoke is None:
            return [active[0].name]
        start = names.index(spoke) + 1
        for step in range(len(names)):
            member = group.members[(start + step) % len(names)]
            if not member.muted and member.name:
                return [member.name]
        return []
    rng = rng or speaker_rng(group, story_name, len(path))
    last, text = _last_message(path)
    banned = None
    if last is not None and not last.is_player and not group.allow_self_responses:
        banned = last.author.casefold()
    picked: list[str] = []
    for word in _words(text):  # named members first, in the order they are named
        for member in active:
            if member.name.casefold() == banned:
                continue
            if word in _words(member.name):
                picked.append(member.name)
                break
    chatty: list[GroupMember] = []
    shuffled = list(active)
    rng.shuffle(shuffled)
    for member in shuffled:
        if member.name.casefold() == banned:
            continue
        talk = talkativeness(member, cards_by_name.get(member.name))
        if talk >= rng.random():
            picked.append(member.name)
        if talk > 0:
            chatty.append(member)
    if not picked:
        pool = chatty or [m for m in active if m.name.casefold() != banned] or active
        picked.append(pool[int(rng.random() * len(pool))].name)
    return list(dict.fromkeys(picked))


def unique_name(base: str, taken: Sequence[str]) -> str:
    """``base``, or ``base 2``, ``base 3``... whichever no name in ``taken`` is (ignoring case)."""
    used = {x.casefold() for x in taken}
    name, n = base, 2
    while name.casefold() in used:
        name, n = f"{base} {n}", n + 1
    return name


def _unique_names(cards: Sequence[Card]) -> list[str]:
    names: list[str] = []
    for number, card in enumerate(cards, 1):
        names.append(unique_name((card.name or f"Character {number}").strip(), names))
    return names


def new_group(cards: Sequence[Card], refs: Sequence[str], *, name: str = "", order: str = "natural",
              mode: str = "join", scenario: str = "", seed: int | None = None, **extra: Any) -> GroupSettings:
    """A group of these cards (``refs``: how the story names each card file, in the same order).

    Members are named as their cards are (a repeated name gets `` 2``, `` 3``); the group's name
    defaults to SillyTavern's ``Group: A, B, C``.

    Raises:
        ValueError: ``cards`` and ``refs`` differ in length, or an order or mode is unknown.
    """
    if len(cards) != len(refs):
        raise ValueError("a group needs one file reference per card")
    names = _unique_names(cards)
    members = [GroupMember(card=ref, name=member) for ref, member in zip(refs, names, strict=True)]
    return GroupSettings(name=name.strip() or f"Group: {', '.join(names)}", members=members, order=order,
                         cards=mode, scenario=scenario, seed=seed, **extra)


def group_greetings(group: GroupSettings, cards_by_name: Mapping[str, Card | None], user: str) -> list[Node]:
    """The greetings that open a group story: each member's, in list order, as one chain of nodes.

    A card's V3 ``group_only_greetings`` are its group greeting (the first one); else its
    ``first_mes``. Members with neither are left out. Each node's author is the member.
    """
    nodes: list[Node] = []
    for member in group.members:
        card = cards_by_name.get(member.name)
        if card is None:
            continue
        texts = [t for t in card.group_only_greetings if t.strip()] or [card.first_mes]
        text = texts[0].strip()
        if not text:
            continue
        nodes.append(Node.make(expand_names(text, member.name, user), author=member.name, kind="greeting",
                               parent=nodes[-1].id if nodes else None))
    return nodes


def group_stops(group: GroupSettings, speaker: str) -> list[str]:
    """Every other member's line marker (``\\nBob Lee:``, and ``\\nBob:`` as a player would address
    him), so one member never writes another's lines."""
    own = {speaker.casefold(), *speaker.casefold().split()[:1]}
    stops: list[str] = []
    for member in group.members:
        if not member.name or member.name.casefold() == speaker.casefold():
            continue
        stops.append(f"\n{member.name}:")
        first = member.name.split()[0]
        if first != member.name and first.casefold() not in own:
            stops.append(f"\n{first}:")
    return list(dict.fromkeys(stops))


def group_nudge(speaker: str) -> str:
    """SillyTavern's group nudge for chat completion: sent after the history, so it costs nothing cached."""
    return f"[Write the next reply only as {speaker}.]"


def nudge_helps(target: str, mode: str) -> bool:
    """Whether a group prompt needs :func:`group_nudge` to say who speaks.

    A text-completion chat prompt ends with the reply header ``Wren Calloway:``, which already
    says it; a nudge there would only be one more edit for the cache on the next reply (it is
    gone from the next prompt). As in SillyTavern, which sends its nudge with chat completion
    only, the nudge goes to chat-completion requests (``target`` ``messages``), and to prompts
    whose header is the template's bare assistant turn (instruct mode).
    """
    return not (target == "text" and mode == "chat")


def _joined(group: GroupSettings, members: Sequence[GroupMember], cards_by_name: Mapping[str, Card | None],
            attr: str, field_name: str, user: str) -> str:
    parts = []
    for member in members:
        card = cards_by_name.get(member.name)
        value = str(getattr(card, attr, "") or "").strip() if card is not None else ""
        if not value:
            continue
        prefix = group.join_prefix if member.join_prefix is None else member.join_prefix
        suffix = group.join_suffix if member.join_suffix is None else member.join_suffix

        def wrap(text: str, member: GroupMember = member) -> str:
            return expand_names(_FIELDNAME.sub(field_name, text).strip(), member.name, user)

        pre, post = wrap(prefix), wrap(suffix)
        body = expand_names(value, member.name, user)
        parts.append(f"{pre + chr(10) if pre else ''}{body}{chr(10) + post if post else ''}")
    return "\n".join(parts)


def group_character(group: GroupSettings, cards_by_name: Mapping[str, Card | None], speaker: str, *,
                    user: str, nudge: bool = True) -> CharacterInfo:
    """The card a group turn's prompt holds, for ``speaker``.

    ``swap``: the speaker's card (the group's scenario in place of its own when set). ``join`` and
    ``join_muted``: the members' fields joined (the speaker is included even when muted, as in
    SillyTavern), named after the member list, so nothing before the history depends on who
    speaks; the speaker's post-history instructions and, with ``nudge`` (see :func:`nudge_helps`),
    :func:`group_nudge` go after the history.
    """
    card = cards_by_name.get(speaker)
    post = expand_names((card.post_history_instructions if card else "").strip(), speaker, user)
    if nudge:
        post = f"{post}\n{group_nudge(speaker)}" if post else group_nudge(speaker)
    if group.cards == "swap":
        if card is None:
            return CharacterInfo(name=speaker, scenario=group.scenario, post_history_instructions=post)
        return CharacterInfo(
            name=card.name or speaker, nickname=speaker if speaker != card.name else "",
            description=card.description, personality=card.personality,
            scenario=group.scenario.strip() or card.scenario, mes_example=card.mes_example,
            system_prompt=card.system_prompt, post_history_instructions=post,
        )
    members = [m for m in group.members
               if group.cards == "join_muted" or not m.muted or m.name.casefold() == speaker.casefold()]
    fields = {attr: _joined(group, members, cards_by_name, attr, label, user) for attr, label in JOIN_FIELDS}
    return CharacterInfo(
        name=member_list([m.name for m in members]), description=fields["description"],
        personality=fields["personality"], scenario=group.scenario.strip() or fields["scenario"],
        mes_example=fields["mes_example"], post_history_instructions=post,
    )


def escape_line(text: str) -> str:
    """A prefix or suffix as one input line: a line break shows as ``\\n``, a backslash as ``\\\\``."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def unescape_line(line: str) -> str:
    """The text :func:`escape_line` shows (``\\n`` is a line break; any other backslash stays)."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in "\\n":
            out.append("\n" if line[i + 1] == "n" else "\\")
            i += 2
        else:
            out.append(line[i])
            i += 1
    return "".join(out)
