"""The play loop: one :class:`Session` per open story, used by the TUI, the kiosk and the CLI.

A turn: the player's input becomes a node of the story tree (journaled at once); world info is
activated on the current path; the prompt builder fits everything into the context; the engine
streams; a :class:`~storyteller.prompt.StopFilter` holds back anything that could begin a stop
string; the finished reply becomes a new node, journaled before the next turn can start.
Nothing is ever overwritten: retry makes a sibling (a swipe), continue makes a child holding
only the added text, edit makes an edited copy.

Listeners receive small past-tense event dataclasses (``TextReceived``, ``GenerationFinished``).
The session is the only thing that talks to an engine for play: recaps and summaries go through
:meth:`Session.aside`, which streams under the same lock and writes nothing to the story.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storyteller.engines.base import Backend, Finished, GenerationRequest, GenerationStats, PromptProgress, TextChunk
from storyteller.engines.capabilities import KVPersistence
from storyteller.errors import EngineError, StoryError, StorytellerError
from storyteller.lore import ActivationResult
from storyteller.prompt import Prompt, StopFilter, TurnReport
from storyteller.session.events import (
    GenerationFailed,
    GenerationFinished,
    GenerationStarted,
    PromptBuilt,
    PromptProcessed,
    SessionEvent,
    StoryChanged,
    TextReceived,
)
from storyteller.session.group_play import GroupPlay
from storyteller.session.playing_with import PlayingWith
from storyteller.session.player import edit_target, expand_sent_text, greeting_nodes
from storyteller.session.reply import restore_cut, trim_reply, turn_filter, turn_report
from storyteller.memory import Maintenance, StoryMemory
from storyteller.memory.hook import recall_of, remember
from storyteller.session.turn import SessionParts, build_turn
from storyteller.story.model import AUTHOR_USER, PLAYER_KINDS, Generation, Mode, Node
from storyteller.story.store import Story
from storyteller.story.tree import Message

__all__ = ["Session"]

EMPTY_RETRIES = 2
"""Times to ask again when a reply is cut by a stop string before its first character."""


@dataclass(slots=True)
class _Running:
    request: GenerationRequest | None = None
    stopped: bool = False
    speaker: str = ""


class Session(PlayingWith, GroupPlay):
    """One open story with its card, worlds and engine.

    Build it with :func:`storyteller.session.open_session`.

    Args:
        story: The open story (writable).
        backend: The engine.
        parts: Card, books, builder and settings resolved for this story.
    """

    def __init__(self, story: Story, backend: Backend, parts: SessionParts) -> None:
        self.story = story
        self.backend = backend
        self.parts = parts
        self._listeners: list[Callable[[SessionEvent], None]] = []
        self._running: _Running | None = None
        self._aside: _Running | None = None
        self._lock = asyncio.Lock()
        self.last_prompt: Any | None = None
        self.last_lore: Any | None = None
        self.last_stats: GenerationStats | None = None
        self.last_report: TurnReport | None = None
        """What the last reply cost and why the prompt changed (see :class:`TurnReport`)."""
        self.memory = StoryMemory.of(story)
        """Scene summaries and pinned facts, stored next to the story (see :mod:`storyteller.memory`)."""
        self.last_memory: Maintenance | None = None
        """What memory did after the last reply (summaries written, merged, failed)."""
        self.last_stopped = False
        """The last reply was stopped (Esc, ctrl+c): a group turn's other speakers do not follow."""

    # -- listeners ---------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[SessionEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: SessionEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # -- state -------------------------------------------------------------------------------

    @property
    def generating(self) -> bool:
        """A reply is being generated."""
        return self._running is not None

    @property
    def character_name(self) -> str:
        """Who speaks the replies (in a group: who spoke last, else the group's name)."""
        return self.group_character_name() if self.group is not None else self.parts.speaker

    def path(self) -> list[Node]:
        """The current path of the story (hidden passages left out)."""
        return self.story.current_path()

    def last_reply(self) -> Node | None:
        """The newest generated (or greeting) node on the path, if it is the last message."""
        messages = self.story.messages()
        if not messages:
            return None
        head = messages[-1].head
        return head if head.kind in ("generation", "greeting") else None

    def swipe_position(self) -> tuple[int, int]:
        """(index, count) of the last reply among its siblings; (0, 0) when there is none."""
        reply = self.last_reply()
        if reply is None:
            return 0, 0
        kinds = {reply.kind} if reply.parent is not None else {"greeting", "generation"}  # greetings: first swipes
        siblings = [n for n in self.story.siblings(reply.id) if n.kind in kinds]
        ids = [n.id for n in siblings]
        return (ids.index(reply.id) if reply.id in ids else 0), len(ids)

    # -- prompts and asides (the card, worlds, sampler and template: PlayingWith) ---------------

    async def next_prompt(self) -> Prompt:
        """The prompt the next reply would be sent with (what ``submit("")`` sends), built without
        generating or changing anything."""
        parent = self.story.tree.current
        messages = self.story.tree.messages(self.story.tree.path_to(parent) if parent else [])
        prompt, _lore = await build_turn(self.parts, self.story.name, self.story.settings, messages, continuing=False,
                                         recall=recall_of(self, messages), speaker=self.default_speaker("reply", messages))
        return prompt

    async def aside(self, instruction: str, *, max_tokens: int | None = None) -> str:
        """Ask the model something about the story without adding to it: a recap, a summary.

        The prompt is the story's own prompt for its next reply with ``instruction`` as one more
        player message at the end, so an engine that reuses its cached prefix only reads the
        instruction; the request is marked ``keep_cache``, so the embedded engine puts the story's
        cache back afterwards and the next reply reads only its new tokens. It streams under the
        session's lock (never beside a reply), sends no events
        and writes nothing to the story. :meth:`stop` or :meth:`stop_aside` end it early.

        Args:
            instruction: What to ask, in the player's voice.
            max_tokens: The longest answer (default: the story's sampler setting).

        Returns:
            The answer (stop strings cut, no surrounding space); "" when it was stopped.

        Raises:
            StoryError: A reply is being generated.
            EngineError: The engine failed.
        """
        if self._running is not None:
            raise StoryError("a reply is being generated; stop it first (Esc) or wait for it.")
        running = self._aside = _Running()
        try:
            async with self._lock:
                if running.stopped:
                    return ""
                kind = "story" if self.story.settings.mode == Mode.ADVENTURE else "say"
                # Marked as an aside: story and adventure prompts send it as a user turn of its own.
                extra = Node.make(instruction, author=AUTHOR_USER, kind=kind, parent=None, extra={"aside": True})
                messages = self.story.messages()
                prompt, _lore = await build_turn(self.parts, self.story.name, self.story.settings,
                                                 [*messages, Message((extra,))], continuing=False,
                                                 recall=recall_of(self, messages))
                request = self.parts.request_for(prompt, self.story.settings)
                request.keep_cache = True  # a side road: the story's cached prompt stays for the next reply
                if max_tokens:
                    request.sampling = request.sampling.model_copy(update={"max_tokens": max_tokens})
                text = ""
                for attempt in range(EMPTY_RETRIES + 1):
                    if attempt:  # nothing came (a stop string or the end at once): ask again, another seed
                        seed = request.sampling.seed
                        request = GenerationRequest(prompt=request.prompt, messages=request.messages,
                                                    sampling=request.sampling.model_copy(
                                                        update={"seed": None if seed is None else seed + 7919 * attempt}),
                                                    keep_cache=True)
                    text = await self._aside_once(request, prompt, running)
                    if running.stopped:
                        return ""
                    if text.strip():
                        break
                return self.parts.clean_reply(text, continuing=False)
        finally:
            self._aside = None

    async def _aside_once(self, request: GenerationRequest, prompt: Prompt, running: _Running) -> str:
        """One aside request through the stop filter."""
        running.request = request
        if running.stopped:
            request.cancel.set()
            return ""
        stop_filter = self.parts.stop_filter(prompt)
        pieces: list[str] = []
        async for chunk in self.backend.stream(request):
            if isinstance(chunk, TextChunk):
                pieces.append(stop_filter.feed(chunk.text))
                if stop_filter.stopped:
                    request.cancel.set()  # no hidden generation after a stop string
        # Engines set request.cancel themselves when a stream ends; only our own flag means "stopped".
        if not stop_filter.stopped:
            pieces.append(stop_filter.flush())
        return "".join(pieces)

    # -- actions -----------------------------------------------------------------------------

    async def submit(self, text: str, kind: str = "say", *, author: str | None = None) -> Node | None:
        """Add the player's input and generate a reply; returns the reply node.

        In a group the speaker order picks who answers, and each of them replies in turn (the last
        reply is returned; ``None`` when nobody answers, as in manual order).

        Args:
            text: What the player wrote (empty text just asks for a reply).
            kind: ``say``, ``do`` or ``story``.
            author: Who wrote it (default ``user``; the kiosk passes ``kiosk:<name>``).
        """
        if kind not in PLAYER_KINDS:
            raise StoryError(f"unknown input kind {kind!r}; use one of {', '.join(PLAYER_KINDS)}.")
        self._require_idle()
        if text.strip():
            self.story.add_node(self.expand_input(text.strip()), author=author or "user", kind=kind)
            self._emit(StoryChanged("input"))
        if self.group is not None:
            return await self.group_replies()
        return await self._generate("reply", parent=self.story.tree.current)

    async def regenerate(self) -> Node | None:
        """Generate another reply in place of the last one (kept as a swipe)."""
        self._require_idle()
        reply = self.last_reply()
        parent = reply.parent if reply is not None else self.story.tree.current
        return await self._generate("regenerate", parent=parent, speaker=self.speaker_of(reply))

    async def continue_(self) -> Node | None:
        """Extend the last reply; the added text is a ``continue`` node of its own."""
        self._require_idle()
        if not self.story.messages():
            return await self._generate("reply", parent=None)
        return await self._generate("continue", parent=self.story.tree.current)

    async def swipe(self, step: int) -> Node | None:
        """Show the previous / next alternative of the last reply; past the last one, make a new one."""
        self._require_idle()
        reply = self.last_reply()
        if reply is None:
            return None
        if reply.kind == "greeting" and reply.parent is None:
            self._add_greetings()
        index, count = self.swipe_position()
        if step > 0 and index + step >= count:
            return await self.regenerate()
        moved = self.story.swipe(reply.id, step)
        self._emit(StoryChanged("swipe"))
        return moved

    def expand_input(self, text: str) -> str:
        """The player's text with its macros expanded, as it is stored and shown (see
        :func:`~storyteller.session.player.expand_sent_text`)."""
        return expand_sent_text(text, parts=self.parts, story=self.story)

    def _add_greetings(self) -> None:
        """Give a story opened before greetings were swipes the card's other greetings as swipes."""
        if self.parts.card is None or self.story.read_only or self.group is not None:
            return
        have = {n.text for n in self.story.tree.children(None)}
        nodes = greeting_nodes(self.parts.card, self.parts.speaker, self.story.settings.persona.name or "User")
        if missing := [n for n in nodes if n.text not in have]:
            self.story.add_nodes(missing, select=None)

    def edit(self, node_id: str, text: str) -> Node:
        """Replace a passage's text; the old text stays in the tree."""
        self._require_idle()
        node = self.story.edit(node_id, text)
        self._emit(StoryChanged("edit"))
        return node

    def edit_message(self, message: Message, text: str) -> Node:
        """Replace the whole text of a message (a reply and the parts Continue added to it).

        A change inside one part edits that part; anything else saves the whole text as one
        edited passage in place of them all. The old version stays in the tree as a swipe.
        """
        self._require_idle()
        target = edit_target(message.nodes, text)
        if target is not None:
            return self.edit(*target)
        node = self.story.edit(message.nodes[0].id, text, replaces=len(message.nodes) - 1)
        self._emit(StoryChanged("edit"))
        return node

    def undo(self) -> Node | None:
        """Step back one node on the current path; the greeting that opens a story stays."""
        self._require_idle()
        messages = self.story.messages()
        if len(messages) == 1 and messages[0].nodes[0].kind == "greeting":
            return None
        node = self.story.undo()
        self._emit(StoryChanged("undo"))
        return node

    def redo(self) -> Node | None:
        """Step forward again."""
        self._require_idle()
        node = self.story.redo()
        self._emit(StoryChanged("redo"))
        return node

    def stop(self) -> None:
        """Stop the reply (or aside) being generated; what arrived of a reply so far is kept."""
        for running in (self._running, self._aside):
            if running is not None:
                running.stopped = True
                if running.request is not None:
                    running.request.cancel.set()

    def stop_aside(self) -> None:
        """Stop an aside (a recap or summary) being written; a reply in progress goes on."""
        if self._aside is not None:
            self._aside.stopped = True
            if self._aside.request is not None:
                self._aside.request.cancel.set()

    async def close(self) -> None:
        """Save the engine state if so configured, then close the story (not the backend)."""
        self.stop()
        async with self._lock:
            if self.parts.settings.engine.kv_state in ("turn", "exit"):
                await self._save_kv_state()
            self.story.close()

    # -- generation --------------------------------------------------------------------------

    def _require_idle(self) -> None:
        if self._running is not None:
            raise StoryError("a reply is being generated; stop it first (Esc) or wait for it.")
        if self.story.read_only:
            raise StoryError(
                f"the story {self.story.name!r} is open read-only (another storyteller is writing it); "
                "close the other one to play here."
            )

    async def _generate(self, action: str, *, parent: str | None, speaker: str | None = None) -> Node | None:
        running = self._running = _Running(speaker=speaker or "")
        try:
            async with self._lock:
                node = await self._generate_locked(action, parent, running)
        finally:
            self._running = None
            self.last_stopped = running.stopped
        if node is not None and not running.stopped and node.generation is not None \
                and not node.generation.interrupted:
            await self.remember()
        return node

    async def remember(self) -> Maintenance:
        """Write the summaries the next prompts need (done after every reply); never fails a turn."""
        try:
            self.last_memory = await remember(self)
        except (StorytellerError, OSError) as exc:
            self.last_memory = Maintenance(failed=[str(exc)])
        return self.last_memory

    async def _generate_locked(self, action: str, parent: str | None, running: _Running) -> Node | None:
        path = self.story.tree.path_to(parent) if parent else []
        messages = self.story.tree.messages(path)
        running.speaker = running.speaker or self.default_speaker(action, messages) or ""
        speaker = running.speaker or self.parts.speaker
        self._emit(GenerationStarted(action, parent, running.speaker))
        cut = ""
        if action == "continue":  # text trimmed off the last reply: the prompt ends with it again
            messages, cut = restore_cut(messages)
        parts = self.parts
        try:
            prompt, lore = await build_turn(parts, self.story.name, self.story.settings, messages,
                                            continuing=action == "continue", recall=recall_of(self, messages),
                                            speaker=running.speaker or None)
        except StorytellerError as exc:
            self._emit(GenerationFailed(str(exc), None))
            return None
        previous = self.last_prompt
        self.last_prompt, self.last_lore = prompt, lore
        self._emit(PromptBuilt(prompt, lore))
        request = parts.request_for(prompt, self.story.settings)
        if action == "regenerate" and request.sampling.seed is not None:
            # A fixed seed would give the same reply again: vary it by the number of alternatives.
            alternatives = len(self.story.children(parent))
            request.sampling = request.sampling.model_copy(update={"seed": request.sampling.seed + alternatives})
        started = time.perf_counter()
        for attempt in range(EMPTY_RETRIES + 1):
            if attempt:
                # The model opened with a stop string (a small model writing the player's next
                # action at once): nothing was shown, so ask again rather than return nothing.
                seed = request.sampling.seed
                request = GenerationRequest(prompt=request.prompt, messages=request.messages,
                                            sampling=request.sampling.model_copy(
                                                update={"seed": None if seed is None else seed + 7919 * attempt}))
            stop_filter = turn_filter(prompt, self.story.settings, messages, speaker=speaker, prefix=cut)
            shown, finished, error = await self._stream(request, stop_filter, running, action, parent)
            if shown or not stop_filter.stopped or running.stopped or error is not None:
                break
        stats = finished.stats if finished else GenerationStats(seconds_total=time.perf_counter() - started)
        if stop_filter.stopped:
            reason = "stop"
        elif running.stopped:
            reason = "cancelled"
        elif finished is not None:
            reason = finished.finish_reason
        else:
            reason = "error"
        node = self._save_partial(action, parent, shown, stats, reason, request, author=speaker)
        self.last_stats = stats
        self.last_report = turn_report(previous, prompt, stats)
        if lore is not None and reason != "error":
            self._remember_lore(lore)
        if error is not None:
            self._emit(GenerationFailed(str(error), node))
            return node
        if node is None:
            if running.stopped:  # stopped before the first word (Esc while the prompt was read): quietly
                self._emit(GenerationFinished(None, stats, "cancelled"))
                return None
            self._emit(GenerationFailed("the model returned no text; try again (retry) or change the settings.", None))
            return None
        if parts.settings.engine.kv_state == "turn":
            await self._save_kv_state()
        self._emit(GenerationFinished(node, stats, reason))
        return node

    async def _stream(self, request: GenerationRequest, stop_filter: StopFilter, running: _Running,
                      action: str, parent: str | None) -> tuple[list[str], Finished | None, EngineError | None]:
        """Stream one request through the stop filter, emitting the text as it comes."""
        running.request = request
        if running.stopped:
            request.cancel.set()
        shown: list[str] = []
        finished: Finished | None = None
        error: EngineError | None = None
        try:
            async for chunk in self.backend.stream(request):
                if isinstance(chunk, TextChunk):
                    out = stop_filter.feed(chunk.text)
                    if out:
                        shown.append(out)
                        self._emit(TextReceived(out, "".join(shown)))
                    if stop_filter.stopped:
                        request.cancel.set()  # no hidden generation after a stop string
                elif isinstance(chunk, PromptProgress):
                    self._emit(PromptProcessed(chunk.done, chunk.total))
                elif isinstance(chunk, Finished):
                    finished = chunk
        except EngineError as exc:
            error = exc
        except asyncio.CancelledError:
            request.cancel.set()
            running.stopped = True
            self._save_partial(action, parent, shown, None, "cancelled", request, author=running.speaker or None)
            raise
        if not stop_filter.stopped:
            tail = stop_filter.flush()
            if tail:
                shown.append(tail)
                self._emit(TextReceived(tail, "".join(shown)))
        return shown, finished, error

    def _save_partial(self, action: str, parent: str | None, shown: list[str], stats: GenerationStats | None,
                      reason: str, request: GenerationRequest, *, author: str | None = None) -> Node | None:
        text = self.parts.clean_reply("".join(shown), continuing=action == "continue")
        if not text.strip():
            return None
        text, cut = trim_reply(text, setting=self.parts.settings.reply.trim_sentences,
                               mode=self.story.settings.mode, reason=reason)
        info = self.backend.info()
        stats = stats or GenerationStats()
        generation = Generation(
            engine=info.engine, model=info.model,
            sampler=request.sampling.model_dump(exclude={"logit_bias", "grammar", "stop"}),
            prompt_tokens=stats.prompt_tokens, tokens_reused=stats.tokens_reused,
            timings={k: v for k, v in {
                "seconds_to_first_token": stats.seconds_to_first_token,
                "seconds_total": stats.seconds_total,
                "tokens_per_second": stats.tokens_per_second,
                "tokens_evaluated": stats.tokens_evaluated,
                "tokens_shifted": stats.tokens_shifted,
                "completion_tokens": stats.completion_tokens,
            }.items() if v is not None},
            finish_reason=reason, interrupted=reason in ("cancelled", "error"), trimmed=cut,
        )
        kind = "continue" if action == "continue" else "generation"
        return self.story.add_node(text, author=author or self.parts.speaker, kind=kind, parent=parent,
                                   generation=generation)

    def _remember_lore(self, lore: ActivationResult) -> None:
        """Keep world info's timed effects with the story for the next turn."""
        state = lore.timed.model_dump(mode="json")
        if state != self.story.settings.timed_effects and not self.story.read_only:
            self.story.set_settings(timed_effects=state)

    async def _save_kv_state(self) -> None:
        if not isinstance(self.backend, KVPersistence) or self.story.read_only:
            return
        try:
            await self.backend.save_state(self.story.folder / "engine.kv")
        except (EngineError, OSError):
            pass  # a cache, not the story: losing it only costs a re-read on the next start

