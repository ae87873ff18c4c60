"""The kiosk's rules, free of any UI: turns, cooldown, moderation, recap, archive, admin actions.

:class:`KioskController` wraps one :class:`~storyteller.session.Session` and is what the Textual
app drives. Time comes from an injected clock (seconds since the epoch), so tests move time
without sleeping. Session events are passed on to the controller's own listeners, which survive
a story reset (the session is replaced, the listeners are not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from storyteller.config import Settings
from storyteller.engines.base import Backend
from storyteller.errors import StoryError, StorytellerError
from storyteller.kiosk.archive import (
    KioskState,
    archive_due,
    archived_name,
    member_speaker,
    visitor_turns,
    write_archive,
)
from storyteller.kiosk.pinguard import PinGuard
from storyteller.kiosk.moderation import Moderator
from storyteller.kiosk.settings import KioskSettings, verify_pin
from storyteller.paths import Paths
from storyteller.session import Session, SessionEvent, TextReceived, open_session
from storyteller.session.group import choose_speakers
from storyteller.story.model import KIOSK_PREFIX, Node, kinds_for_mode
from storyteller.story.tree import Message

__all__ = ["KIOSK_ORDERS", "KioskController", "TurnResult", "input_kinds"]

KIOSK_ORDERS = ("natural", "list", "everyone")
"""The speaker orders an operator can choose at the kiosk. Manual is left out: a walk-up visitor
cannot pick who speaks (a manual story opened at the kiosk answers as in natural order)."""

ALL_MUTED = ("Nobody in the story can answer just now: every character is muted. "
             "Please ask a member of staff.")

RECAP_INSTRUCTION = ("(Out of the story for a moment: in three short sentences, tell a newcomer what has "
                     "happened in this story so far. Plain prose, no lists.)")


input_kinds = kinds_for_mode
"""The input kinds a visitor can choose in a story mode (the story model's rule)."""


@dataclass(frozen=True, slots=True)
class TurnResult:
    """How a visitor's submission ended.

    Attributes:
        refused: The kind message when moderation refused the input (nothing was added).
        reply: The reply node kept in the story, if any.
        moderated: ``regenerated`` or ``cut`` when the reply was moderated, else "".
        error: An engine or story error message.
        replies: In a group story, every reply of the turn in order (each authored by its
            member); else empty.
    """

    refused: str | None = None
    reply: Node | None = None
    moderated: str = ""
    error: str | None = None
    replies: tuple[Node, ...] = ()


class KioskController:
    """One kiosk: a session plus the kiosk's rules.

    Build it with :meth:`open`.

    Args:
        session: The open session.
        kiosk: The kiosk settings.
        settings: The engine settings (after the low-power profile).
        paths: Storyteller's folders.
        clock: Seconds since the epoch (``time.time`` in production).
    """

    def __init__(self, session: Session, kiosk: KioskSettings, settings: Settings, paths: Paths,
                 clock: Callable[[], float]) -> None:
        self.session = session
        self.kiosk = kiosk
        self.settings = settings
        self.paths = paths
        self.clock = clock
        self.moderator = Moderator(kiosk.moderation)
        self.state = KioskState.load(session.story.folder)
        self.cooldown_until = 0.0
        self._listeners: list[Callable[[SessionEvent], None]] = []
        self._unsubscribe = session.subscribe(self._forward)
        self._flagged = False
        self.pin_guard = PinGuard(paths.data_dir, kiosk.pin_attempts, kiosk.pin_lockout_seconds)

    @classmethod
    async def open(cls, story: str, *, kiosk: KioskSettings, settings: Settings, paths: Paths, backend: Backend,
                   card: str | None = None, worlds: Sequence[str] | None = None,
                   clock: Callable[[], float], cards: Sequence[str] | None = None,
                   group: Any | None = None) -> KioskController:
        """Open (or start) the story and wrap it; two or more ``cards``, or a ``group`` (a saved
        :class:`~storyteller.story.model.GroupSettings`), start a group story."""
        session = await open_session(story, settings=settings, paths=paths, backend=backend, card=card, worlds=worlds,
                                     cards=cards, group=group)
        if session.story.read_only:
            await session.close()
            raise StoryError(f"the story {story!r} is being written by another storyteller process; "
                             "stop it before starting the kiosk.")
        return cls(session, kiosk, settings, paths, clock)

    # -- events --------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[SessionEvent], None]) -> None:
        """Receive every session event, across story resets."""
        self._listeners.append(listener)

    def _forward(self, event: SessionEvent) -> None:
        if isinstance(event, TextReceived) and self.moderator.active and not self._flagged:
            if self.moderator.first(event.text) is not None:
                self._flagged = True
                self.session.stop()  # stop at once: a flagged reply is not worth finishing
        for listener in list(self._listeners):
            listener(event)

    # -- reading -------------------------------------------------------------------------------

    @property
    def title(self) -> str:
        """The title shown on the attract screen."""
        return self.kiosk.title or self.session.story.name

    @property
    def speaker(self) -> str:
        """Who writes the replies."""
        return self.session.character_name

    @property
    def members(self) -> list[str]:
        """The group's members in list order (empty for a single-character story)."""
        return self.session.members

    def speaker_for(self, node: Node) -> str:
        """Who wrote a reply: in a group the member it is authored by, else :attr:`speaker`."""
        return member_speaker(self.session.story, node, self.speaker)

    def turn_replies(self) -> list[Node]:
        """The replies after the newest player input on the path (a group turn has one per member)."""
        replies: list[Node] = []
        for node in reversed(self.session.story.current_path()):
            if node.is_player:
                break
            if node.kind == "generation":
                replies.append(node)
        return replies[::-1]

    @property
    def kinds(self) -> tuple[str, ...]:
        """The input kinds visitors can choose."""
        return input_kinds(self.session.story.settings.mode)

    def messages(self) -> list[Message]:
        """The story so far (hidden passages left out)."""
        return self.session.story.messages()

    def shown_text(self, text: str) -> str:
        """Reply text as it may be shown while streaming: with moderation on, only whole words
        before the first match, so a flagged word never flashes on screen."""
        if not self.moderator.active:
            return text
        flag = self.moderator.first(text)
        if flag is not None:
            text = text[: flag.start]
        cut = max(text.rfind(" "), text.rfind("\n"))
        return text[: cut + 1] if cut >= 0 else ""

    def now(self) -> float:
        """The injected clock."""
        return self.clock()

    def cooldown_left(self) -> float:
        """Seconds before the next turn may start (0 when it may)."""
        return max(0.0, self.cooldown_until - self.now())

    def pending_input(self) -> Node | None:
        """A visitor input left without a reply (the kiosk stopped mid-turn), if any."""
        messages = self.messages()
        if messages and messages[-1].head.is_player:
            return messages[-1].head
        return None

    # -- a visitor's turn --------------------------------------------------------------------

    def check_input(self, text: str) -> str | None:
        """The refusal message for this input, or ``None`` when it may be added."""
        if len(text) > self.kiosk.max_input_chars:
            return f"That is a little long: please keep it under {self.kiosk.max_input_chars} characters."
        group = self.session.group
        if group is not None and group.members and all(m.muted for m in group.members):
            return ALL_MUTED  # muted in the app: the kiosk's own Group dialog never mutes the last one
        return self.moderator.refuses(text)

    async def submit(self, text: str, kind: str, visitor: str) -> TurnResult:
        """Add a visitor's text and generate the continuation (moderated when moderation is on)."""
        refused = self.check_input(text)
        if refused:
            return TurnResult(refused=refused)
        if kind not in self.kinds:
            kind = self.kinds[0]
        await self.cancel_recap()
        name = " ".join(visitor.split())[: self.kiosk.max_name_chars]
        return await self._moderated(lambda: self._answer(text, kind, author=f"{KIOSK_PREFIX}{name}"))

    async def _answer(self, text: str, kind: str, *, author: str | None = None) -> Node | None:
        """Add the input and let the story answer. A group answers in its speaker order; in manual
        order nobody at the kiosk can pick, so the members a visitor names answer (else the
        talkative ones), as in natural order."""
        session = self.session
        node = await session.submit(text, kind, author=author)
        group = session.group
        if node is not None or group is None or group.order != "manual":
            return node
        natural = group.model_copy(update={"order": "natural"})
        for name in choose_speakers(natural, session.parts.members, session.story.current_path(),
                                    story_name=session.story.name):
            reply = await session.reply_as(name)
            if reply is None or session.last_stopped:
                return reply or node
            node = reply
        return node

    async def retry(self) -> TurnResult:
        """Another reply in place of the last one; the old one stays in the story as a swipe."""
        await self.cancel_recap()
        return await self._moderated(self.session.regenerate)

    async def resume_pending(self) -> TurnResult | None:
        """Write the reply to a visitor input left without one; ``None`` when there is none."""
        pending = self.pending_input()
        if pending is None:
            return None
        return await self._moderated(lambda: self._answer("", pending.kind))

    async def _moderated(self, generate: Callable) -> TurnResult:
        result = await self._moderated_reply(generate)
        if self.session.group is not None and result.reply is not None:
            return TurnResult(refused=result.refused, reply=result.reply, moderated=result.moderated,
                              error=result.error, replies=tuple(self.turn_replies()))
        return result

    async def _moderated_reply(self, generate: Callable) -> TurnResult:
        # A flagged reply stops its stream at once, so in a group turn it is always the last one.
        self._flagged = False
        try:
            node = await generate()
        except StorytellerError as exc:
            return TurnResult(error=str(exc))
        if node is None:
            return TurnResult(error="the story could not be continued just now; please try again.")
        if not self.moderator.active:
            return TurnResult(reply=node)
        tries = 0
        while self.moderator.first(node.text) is not None or self._flagged:
            if self.kiosk.moderation.output_action == "regenerate" and tries < self.kiosk.moderation.max_regenerations:
                tries += 1
                flagged = node
                self._flagged = False
                node = await self.session.regenerate()
                self.session.story.hide(flagged.id)
                if node is None:
                    return TurnResult(error="the story could not be continued just now; please try again.",
                                      moderated="regenerated")
                continue
            cut = self.session.edit(node.id, self.moderator.cut(node.text))
            self.session.story.hide(node.id)
            self._flagged = False
            return TurnResult(reply=cut, moderated="cut")
        return TurnResult(reply=node, moderated="regenerated" if tries else "")

    def end_turn(self) -> None:
        """A visitor's turn is over: start the cooldown."""
        self.cooldown_until = self.now() + self.kiosk.cooldown_seconds

    # -- recap ---------------------------------------------------------------------------------

    def recap_due(self) -> bool:
        """True when enough visitor turns passed since the last recap."""
        every = self.kiosk.recap_every
        return every > 0 and visitor_turns(self.session.story) - self.state.recap_turn >= every

    async def write_recap(self) -> str | None:
        """Ask the model for a recap of the whole story and keep it; ``None`` when cancelled or failed.

        It is a :meth:`~storyteller.session.Session.aside`: the story's own prompt with one more
        instruction at the end (an engine that reuses a cached prefix only reads the
        instruction), streamed by the session, and nothing is added to the story.
        """
        session = self.session
        if session.generating or not self.messages():
            return None
        try:
            text = await session.aside(RECAP_INSTRUCTION, max_tokens=self.kiosk.recap_tokens)
        except StorytellerError:
            return None
        text = " ".join(text.split())
        if not text or self.moderator.first(text) is not None:
            return None  # a recap is optional: better none than a flagged one
        self.state.recap = text
        self.state.recap_turn = visitor_turns(session.story)
        self.state.save(session.story.folder)
        return text

    async def cancel_recap(self) -> None:
        """Stop a recap being written (a visitor's turn comes first)."""
        self.session.stop_aside()
        await asyncio.sleep(0)

    # -- archive -------------------------------------------------------------------------------

    def archive_if_due(self) -> list[Path]:
        """Write the nightly archive when it is due; returns the files written (none when not due)."""
        archive = self.kiosk.archive
        now = datetime.fromtimestamp(self.now())
        if not archive.enabled or not archive_due(now, self.state, archive.time):
            return []
        files = self.export(stamp=now.strftime("%Y-%m-%d"))
        self.state.archived_on = now.date().isoformat()
        self.state.save(self.session.story.folder)
        return files

    def export(self, *, stamp: str | None = None) -> list[Path]:
        """Write the story (Markdown and SillyTavern JSONL) into the archive folder now."""
        stamp = stamp or datetime.fromtimestamp(self.now()).strftime("%Y-%m-%d-%H%M%S")
        return write_archive(self.session.story, self.kiosk.archive_folder(self.paths), stamp=stamp,
                             title=self.title, speaker=self.speaker)

    # -- operator actions ----------------------------------------------------------------------

    def try_pin(self, pin: str) -> str | None:
        """Check the operator PIN; ``None`` when it is right, else what to tell the person.

        After ``pin_attempts`` wrong PINs in a row, every PIN is refused for ``pin_lockout_seconds``,
        doubling with every further lockout and kept across restarts (see :mod:`storyteller.kiosk.pinguard`).
        """
        now = self.now()
        left = self.pin_guard.locked_for(now)
        if left > 0:
            return f"Too many wrong PINs. Try again in {_duration(left)}."
        if verify_pin(pin, self.kiosk.pin_hash):
            self.pin_guard.succeeded()
            return None
        lock = self.pin_guard.failed(now)
        if lock:
            return f"Wrong PIN. Locked for {_duration(lock)}."
        return "Wrong PIN."

    def undo_last_turn(self) -> int:
        """Step back over the last visitor turn (their input and the reply); returns nodes undone.

        Nothing is deleted: redo in the full app, or the story file, still has it.
        """
        story = self.session.story
        path = story.current_path()
        inputs = [i for i, node in enumerate(path) if node.is_player]
        target = path[inputs[-1]].parent if inputs else (path[-1].parent if path else None)
        steps = 0
        while story.tree.current is not None and story.tree.current != target:
            self.session.undo()
            steps += 1
        return steps

    def hide(self, node_id: str) -> None:
        """Hide a passage from the story and the prompt (kept in the journal)."""
        self.session.story.hide(node_id)

    def edit(self, node_id: str, text: str) -> Node:
        """Replace a passage's text (the original stays in the tree)."""
        return self.session.edit(node_id, text)

    def set_muted(self, name: str, muted: bool) -> str:
        """Mute or unmute a group member from the next visitor turn on (saved with the story);
        returns what to tell the operator.

        Raises:
            StoryError: Not a group, no such member, the last unmuted member (visitors would get
                no answer), a reply is being written, or the story cannot be saved.
        """
        group = self._idle_group()
        member = group.member(name)
        if member is None:
            raise StoryError(f"no member called {name!r}; the members are {', '.join(self.members)}.")
        if muted and not member.muted and all(m.muted for m in group.members if m.name != member.name):
            raise StoryError(f"{member.name} is the only member who can still answer; unmute another member "
                             "first, or visitors would get no answer.")
        self.session.set_muted(member.name, muted)
        state = "muted: never picked to answer" if muted else "unmuted"
        return f"{member.name} {state} from the next visitor turn on."

    def set_order(self, order: str) -> str:
        """Change the group's speaker order (one of :data:`KIOSK_ORDERS`) from the next visitor turn
        on (saved with the story); returns what to tell the operator.

        Raises:
            StoryError: Not a group, an order the kiosk does not offer, a reply is being written,
                or the story cannot be saved.
        """
        self._idle_group()
        if order not in KIOSK_ORDERS:
            raise StoryError(f"the kiosk's speaker orders are {', '.join(KIOSK_ORDERS)}; manual needs a player "
                             "who picks, which walk-up visitors cannot do.")
        self.session.update_group(order=order)
        return f"Speaker order: {order}, from the next visitor turn on."

    def _idle_group(self) -> Any:
        group = self.session.group
        if group is None:
            raise StoryError("this kiosk's story is not a group; start it with --card A --card B or --group NAME.")
        if self.session.generating:
            raise StoryError("a reply is being written; try again when it is done.")
        return group

    async def reset(self) -> str:
        """Archive the story under a dated name and start a new one with the same card, worlds and
        mode; returns the archived story's name."""
        session = self.session
        story = session.story
        st = story.settings
        root = story.folder.parent
        name = story.name
        self.export()
        await self.cancel_recap()
        self._unsubscribe()
        await session.close()
        archived = archived_name(root, name, datetime.fromtimestamp(self.now()))
        try:
            story.folder.rename(root / archived)
        except OSError as exc:
            raise StoryError(f"the story could not be archived as {archived!r}: {exc}") from exc
        extra = {} if st.group is None else {"group": st.group}  # a group stays a group, members and all
        new = await open_session(name, settings=self.settings, paths=self.paths, backend=session.backend,
                                 card=st.cards[0] if st.cards else None, worlds=st.worlds, mode=st.mode, **extra)
        self.session = new
        self._unsubscribe = new.subscribe(self._forward)
        self.state = KioskState()
        self.cooldown_until = 0.0
        return archived

    def apply_settings(self, kiosk: KioskSettings) -> None:
        """Use changed kiosk settings from now on."""
        self.kiosk = kiosk
        self.moderator = Moderator(kiosk.moderation)

    async def close(self) -> None:
        """Save and close the story (the backend belongs to the caller)."""
        await self.cancel_recap()
        await self.session.close()


def _duration(seconds: float) -> str:
    """``45 s``, ``8 min``, ``3 h``: how long a lockout lasts, for a person."""
    seconds = int(seconds + 0.999)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{(seconds + 59) // 60} min"
    return f"{(seconds + 3599) // 3600} h"
