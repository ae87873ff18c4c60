"""The play loop: one :class:`Session` per open story, used by the TUI, the kiosk and the CLI.

A turn: the player's input becomes a node of the story tree (journaled at once); world info is
activated on the current path; the prompt builder fits everything into the context; the engine
streams; a :class:`~storyteller.prompt.StopFilter` holds back anything that could begin a stop
string; the finished reply becomes a new node, journaled before the next turn can start.
Nothing is ever overwritten: retry makes a sibling (a swipe), continue makes a child holding
only the added text, edit makes an edited copy.

Listeners receive small past-tense event dataclasses (``TextReceived``, ``GenerationFinished``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storyteller.engines.base import Backend, Finished, GenerationRequest, GenerationStats, PromptProgress, TextChunk
from storyteller.errors import EngineError, StoryError, StorytellerError
from storyteller.prompt import StopFilter
from storyteller.session_setup import SessionParts, TurnReport, explain_prompt_change
from storyteller.story.model import Generation, Node
from storyteller.story.store import Story

__all__ = [
    "GenerationFailed",
    "GenerationFinished",
    "GenerationStarted",
    "PromptBuilt",
    "PromptProcessed",
    "Session",
    "SessionEvent",
    "StoryChanged",
    "TextReceived",
]

USER_KINDS = ("say", "do", "story")
EMPTY_RETRIES = 2
"""Times to ask again when a reply is cut by a stop string before its first character."""


@dataclass(frozen=True, slots=True)
class GenerationStarted:
    """A reply started. ``action`` is ``reply``, ``regenerate`` or ``continue``."""

    action: str
    parent: str | None


@dataclass(frozen=True, slots=True)
class PromptBuilt:
    """The prompt for this reply, with the world-info activation that fed it."""

    prompt: Any
    lore: Any | None


@dataclass(frozen=True, slots=True)
class PromptProcessed:
    """The engine evaluated ``done`` of ``total`` prompt tokens."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class TextReceived:
    """New reply text (already stop-filtered); ``text`` is the reply so far."""

    delta: str
    text: str


@dataclass(frozen=True, slots=True)
class GenerationFinished:
    """The reply is saved as ``node``."""

    node: Node
    stats: GenerationStats
    finish_reason: str


@dataclass(frozen=True, slots=True)
class GenerationFailed:
    """The engine failed; any partial text was saved as an interrupted ``node``."""

    message: str
    node: Node | None


@dataclass(frozen=True, slots=True)
class StoryChanged:
    """The current path changed (undo, redo, swipe, edit, new input)."""

    reason: str


SessionEvent = GenerationStarted | PromptBuilt | PromptProcessed | TextReceived | GenerationFinished | GenerationFailed | StoryChanged


@dataclass(slots=True)
class _Running:
    request: GenerationRequest | None = None
    stopped: bool = False


class Session:
    """One open story with its card, worlds and engine.

    Build it with :func:`storyteller.session_setup.open_session`.

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
        self._lock = asyncio.Lock()
        self.last_prompt: Any | None = None
        self.last_lore: Any | None = None
        self.last_stats: GenerationStats | None = None
        self.last_report: TurnReport | None = None
        """What the last reply cost and why the prompt changed (see :class:`TurnReport`)."""

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
        """Who speaks the replies."""
        return self.parts.speaker

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
        siblings = [n for n in self.story.siblings(reply.id) if n.kind == reply.kind]
        ids = [n.id for n in siblings]
        return (ids.index(reply.id) if reply.id in ids else 0), len(ids)

    # -- actions -----------------------------------------------------------------------------

    async def submit(self, text: str, kind: str = "say", *, author: str | None = None) -> Node | None:
        """Add the player's input and generate a reply; returns the reply node.

        Args:
            text: What the player wrote (empty text just asks for a reply).
            kind: ``say``, ``do`` or ``story``.
            author: Who wrote it (default ``user``; the kiosk passes ``kiosk:<name>``).
        """
        if kind not in USER_KINDS:
            raise StoryError(f"unknown input kind {kind!r}; use one of {', '.join(USER_KINDS)}.")
        self._require_idle()
        if text.strip():
            self.story.add_node(text.strip(), author=author or "user", kind=kind)
            self._emit(StoryChanged("input"))
        return await self._generate("reply", parent=self.story.tree.current)

    async def regenerate(self) -> Node | None:
        """Generate another reply in place of the last one (kept as a swipe)."""
        self._require_idle()
        reply = self.last_reply()
        parent = reply.parent if reply is not None else self.story.tree.current
        return await self._generate("regenerate", parent=parent)

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
        index, count = self.swipe_position()
        if step > 0 and index + step >= count:
            return await self.regenerate()
        moved = self.story.swipe(reply.id, step)
        self._emit(StoryChanged("swipe"))
        return moved

    def edit(self, node_id: str, text: str) -> Node:
        """Replace a passage's text; the old text stays in the tree."""
        self._require_idle()
        node = self.story.edit(node_id, text)
        self._emit(StoryChanged("edit"))
        return node

    def undo(self) -> Node | None:
        """Step back one node on the current path."""
        self._require_idle()
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
        """Stop the reply being generated; what arrived so far is kept."""
        if self._running is not None:
            self._running.stopped = True
            if self._running.request is not None:
                self._running.request.cancel.set()

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

    async def _generate(self, action: str, *, parent: str | None) -> Node | None:
        running = self._running = _Running()
        try:
            async with self._lock:
                return await self._generate_locked(action, parent, running)
        finally:
            self._running = None

    async def _generate_locked(self, action: str, parent: str | None, running: _Running) -> Node | None:
        self._emit(GenerationStarted(action, parent))
        path = self.story.tree.path_to(parent) if parent else []
        messages = self.story.tree.messages(path)
        parts = self.parts
        try:
            prompt, lore = await parts.build_prompt(self.story, messages, continuing=action == "continue")
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
            stop_filter = parts.stop_filter(prompt)
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
        node = self._save_partial(action, parent, shown, stats, reason, request)
        self.last_stats = stats
        self.last_report = _report(previous, prompt, stats)
        if lore is not None and reason != "error":
            parts.remember_lore(self.story, lore)
        if error is not None:
            self._emit(GenerationFailed(str(error), node))
            return node
        if node is None:
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
            self._save_partial(action, parent, shown, None, "cancelled", request)
            raise
        if not stop_filter.stopped:
            tail = stop_filter.flush()
            if tail:
                shown.append(tail)
                self._emit(TextReceived(tail, "".join(shown)))
        return shown, finished, error
    def _save_partial(self, action: str, parent: str | None, shown: list[str], stats: GenerationStats | None,
                      reason: str, request: GenerationRequest) -> Node | None:
        text = self.parts.clean_reply("".join(shown), continuing=action == "continue")
        if not text.strip():
            return None
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
            finish_reason=reason, interrupted=reason in ("cancelled", "error"),
        )
        kind = "continue" if action == "continue" else "generation"
        return self.story.add_node(text, author=self.parts.speaker, kind=kind, parent=parent, generation=generation)

    async def _save_kv_state(self) -> None:
        save = getattr(self.backend, "save_state", None)
        if save is None or self.story.read_only:
            return
        try:
            await save(self.story.folder / "engine.kv")
        except (EngineError, OSError):
            pass  # a cache, not the story: losing it only costs a re-read on the next start


def _report(previous: Any, prompt: Any, stats: GenerationStats) -> TurnReport:
    changed_at, why = explain_prompt_change(previous, prompt)
    return TurnReport(
        prompt_tokens=stats.prompt_tokens, stable_prefix_tokens=prompt.stable_prefix_tokens,
        changed_at=changed_at, why=why, cache_note=stats.cache_note,
        tokens_evaluated=stats.tokens_evaluated, tokens_reused=stats.tokens_reused,
        tokens_shifted=stats.tokens_shifted, seconds_to_first_token=stats.seconds_to_first_token,
        tokens_per_second=stats.tokens_per_second,
    )
