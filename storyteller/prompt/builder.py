"""PromptBuilder: fit the story into the context window, exactly, and explain the result.

Order of claims on the window (what is sent when space runs out):

1. fixed parts: template wrappers, system prompt, card fields, persona, memory, constant world
   info, the author's note, post-history instructions, the reply header;
2. world info, highest ``order`` first, within its own budget (a share of the context);
3. history, newest first, trimmed in chunks of :attr:`PromptOptions.trim_chunk` messages so
   the start of the window (and the engine's cache) stays put for many turns;
4. example dialogue, with whatever is left.

Counts come from a :class:`TokenCounter`; each piece is counted alone and cached, so the next
turn only counts what is new.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from storyteller.engines.base import Message
from storyteller.prompt import _render
from storyteller.prompt._render import DEFAULT_SYSTEM_PROMPTS, Inputs, Piece
from storyteller.prompt.macros import MacroContext, expand_macros
from storyteller.prompt.model import (
    AuthorsNote,
    Budget,
    CharacterInfo,
    HistoryMessage,
    Mode,
    Persona,
    Prompt,
    PromptTooLongError,
    Recall,
    Segment,
    WorldInfoInsert,
)
from storyteller.prompt.stops import ACTION_MARKER, name_stops, unique_stops
from storyteller.prompt.templates import NONE_TEMPLATE, ContextTemplate, InstructTemplate, load_library
from storyteller.prompt.tokens import TokenCounter

__all__ = ["PromptBuilder", "PromptOptions"]

_CHATML = InstructTemplate(
    name="chatml",
    system_prefix="<|im_start|>system\n",
    system_suffix="<|im_end|>\n",
    user_prefix="<|im_start|>user\n",
    user_suffix="<|im_end|>\n",
    assistant_prefix="<|im_start|>assistant\n",
    assistant_suffix="<|im_end|>\n",
    stops=("<|im_end|>", "<|im_start|>"),
)


@dataclass(frozen=True, slots=True)
class PromptOptions:
    """How to build prompts.

    Attributes:
        mode: ``chat``, ``story``, ``adventure`` or ``instruct``.
        target: ``text`` (text completion) or ``messages`` (chat completion).
        context_length: Tokens of context (from ``Backend.info()``).
        reply_tokens: Tokens kept free for the reply (the sampling ``max_tokens``).
        template: Instruct template; plain text when ``NONE_TEMPLATE`` (instruct mode and chat
            completion then count with ChatML).
        context_template: The story string; ``None`` uses the bundled ``default``.
        system_prompt: Default system prompt; ``None`` uses the mode's default.
        post_history: Default post-history instructions.
        wi_budget_ratio: Share of ``context_length - reply_tokens`` world info may use.
        wi_budget_cap: Absolute cap on world-info tokens (0 = none).
        trim_chunk: History is cut only at message numbers divisible by this (1 = per message).
        volatile_last: Within each world-info position, constant entries go first and the
            entries that fire turn by turn after them (each group by ``order``), so a change
            leaves more of the prompt before it untouched in the engine's cache; ``False`` keeps
            SillyTavern's plain ``order``.
        extra_stops: User stop strings, added in every mode.
        names_as_stops: Stop when the model starts writing the user's line (chat mode).
        bos_tokens: Tokens the engine adds in front (BOS).
        margin_tokens: Safety tokens kept free on top of the reply reservation.
        story_id: Seeds ``{{pick}}``.
        continue_last: Chat: extend the last assistant message instead of starting a new one.
        speaker: Who the reply header names when it is not ``{{char}}`` (a group member, while
            ``{{char}}`` in the head stands for the whole group); empty: the character.
        members: A group's member names: example lines starting ``Name:`` are theirs (assistant turns).
    """

    mode: Mode = "chat"
    target: str = "text"
    context_length: int = 4096
    reply_tokens: int = 200
    template: InstructTemplate = NONE_TEMPLATE
    context_template: ContextTemplate | None = None
    system_prompt: str | None = None
    post_history: str = ""
    wi_budget_ratio: float = 0.25
    wi_budget_cap: int = 0
    trim_chunk: int = 16
    volatile_last: bool = True
    extra_stops: tuple[str, ...] = ()
    names_as_stops: bool = True
    bos_tokens: int = 1
    margin_tokens: int = 0
    story_id: str = ""
    continue_last: bool = False
    speaker: str = ""
    members: tuple[str, ...] = ()


@dataclass(slots=True)
class _State:
    """One build's working set."""

    inputs: Inputs
    selected_wi: list[WorldInfoInsert]
    dropped: list[str] = field(default_factory=list)


class PromptBuilder:
    """Builds a :class:`Prompt` per turn; keep one per story so token counts stay cached.

    Args:
        counter: Counts tokens (wrap ``Backend.count_tokens`` with ``TokenCounter``).
        options: Defaults for every build.
    """

    def __init__(self, counter: TokenCounter, options: PromptOptions | None = None) -> None:
        self.counter = counter
        self.options = options or PromptOptions()
        self._default_context: ContextTemplate | None = None

    async def build(
        self,
        history: Sequence[HistoryMessage],
        *,
        character: CharacterInfo | None = None,
        persona: Persona | None = None,
        memory: str = "",
        world_info: Sequence[WorldInfoInsert] = (),
        authors_note: AuthorsNote | None = None,
        variables: dict[str, str] | None = None,
        user_input: str = "",
        now: datetime | None = None,
        last_user_time: datetime | None = None,
        rng: random.Random | None = None,
        options: PromptOptions | None = None,
        recall: Recall | None = None,
    ) -> Prompt:
        """Assemble the prompt for the next reply.

        Args:
            history: The story so far, oldest first (the user's newest message included).
            character: The card (narrator card in adventure mode).
            persona: The user's name and description.
            memory: Pinned text at the top.
            world_info: Activated entries from the lore engine.
            authors_note: The note; inserted on turns its interval allows.
            variables: Story variables for ``{{setvar}}``/``{{getvar}}``; changed in place.
            user_input: The text being submitted, for ``{{input}}``.
            now: The time for date macros.
            last_user_time: When the user last wrote, for ``{{idle_duration}}``.
            rng: Randomness for ``{{random}}``/``{{roll}}``.
            options: Overrides this builder's options for one build.
            recall: Pinned facts and summaries of trimmed history (``storyteller.memory``).

        Raises:
            PromptTooLongError: The fixed parts, or the newest message, do not fit.
        """
        opts = options or self.options
        state = self._prepare(
            opts, history, character or CharacterInfo(), persona or Persona(), memory, world_info,
            authors_note, variables, user_input, now, last_user_time, rng,
        )
        available = opts.context_length - opts.reply_tokens - opts.margin_tokens - opts.bos_tokens
        pinned = [_render.recall_piece(state.inputs, "pinned", source, text, number)
                  for number, (source, text) in enumerate(recall.pinned if recall else ())]
        available -= await self._count(pinned)
        constant = [w for w in state.selected_wi if w.constant]
        optional = sorted((w for w in state.selected_wi if not w.constant), key=lambda w: -w.order)

        state.selected_wi = constant
        fixed = await self._fixed_tokens(state, opts.volatile_last)
        if fixed.total > available:
            self._too_long(fixed.pieces, fixed.total, available, opts)
        wi_budget = math.floor(opts.wi_budget_ratio * (opts.context_length - opts.reply_tokens))
        if opts.wi_budget_cap:
            wi_budget = min(wi_budget, opts.wi_budget_cap)
        newest = 0
        if history:  # the newest message must never lose its place to world info
            newest_piece = _render.history_piece(state.inputs, len(history) - 1, history[-1], last=True)
            newest = await self.counter.count(newest_piece.text)
        wi_budget = min(wi_budget, available - fixed.total - newest)
        chosen, spent = [], 0
        for entry in optional:
            cost = await self.counter.count(state.inputs.expand(entry.content) + "\n")
            if spent + cost <= wi_budget:
                chosen.append(entry)
                spent += cost
            else:
                state.dropped.append(f"world info {entry.source or entry.content[:30]!r} ({cost} tokens, over budget)")
        while True:
            state.selected_wi = constant + chosen
            fixed = await self._fixed_tokens(state, opts.volatile_last)
            if fixed.total <= available or not chosen:
                break
            gone = chosen.pop()  # boundary effects made it too big: drop the least important
            state.dropped.append(f"world info {gone.source or gone.content[:30]!r} (no room)")
        room = available - fixed.total
        kept, summaries = await self._select_with_summaries(state, room, opts, recall)
        room -= sum(p.tokens for p in kept) + sum(p.tokens for p in summaries)
        shown_examples = []
        trimmed = bool(kept) and kept[0].index > 0
        for piece in fixed.examples:
            # Once history is being trimmed, examples stay out: letting them back into the
            # room a chunk trim frees would change the prompt's start every few turns.
            if piece.tokens <= room and not trimmed:
                shown_examples.append(piece)
                room -= piece.tokens
            else:
                state.dropped.append(f"example block {piece.index + 1} ({piece.tokens} tokens)")
                room = -1  # keep the examples that fit as a prefix, in order
        while True:
            if recall is not None and recall.position == "top":
                ordered = pinned + summaries + fixed.head + shown_examples + fixed.start
            else:
                ordered = fixed.head + pinned + shown_examples + summaries + fixed.start
            ordered += self._interleave(kept, fixed.depth) + fixed.tail
            whole = await self._whole_if_glued(ordered, opts)
            if whole is None or whole <= available or len(kept) <= 1:
                break
            gone = kept.pop(0)  # parts glued mid-word tokenised longer together: drop the oldest
            state.dropped.append(f"message history:{gone.index} (joined text was longer than its parts)")
        prompt = self._finish(ordered, state, opts, whole)
        if recall is not None and recall.pinned_budget and sum(p.tokens for p in pinned) > recall.pinned_budget:
            prompt.warnings.append(f"pinned facts use {sum(p.tokens for p in pinned)} tokens, over their budget "
                                   f"of {recall.pinned_budget}: unpin some (/memory lists them)")
        return prompt

    async def _select_with_summaries(self, state: _State, room: int, opts: PromptOptions,
                                     recall: Recall | None) -> tuple[list[Piece], list[Piece]]:
        """History that fits, and the summaries standing for what was trimmed.

        Summaries take room from history, which may trim more of it, which may call for more
        summaries: room is set aside for them until it covers what they need (a few rounds, as
        the summaries have their own budget).
        """
        if recall is None or recall.summaries is None:
            return await self._select_history(state, room, opts), []
        reserve = 0
        for _ in range(6):
            try:
                kept = await self._select_history(state, room - reserve, opts)
            except PromptTooLongError:
                if not reserve:
                    raise
                state.dropped.append("summaries (the newest message needs their room)")
                return await self._select_history(state, room, opts), []
            trimmed = kept[0].index if kept else len(state.inputs.history)
            pieces = [_render.recall_piece(state.inputs, "summary", source, text, number)
                      for number, (source, text) in enumerate(recall.summaries(trimmed))]
            need = await self._count(pieces)
            while pieces and need > recall.summary_budget:
                gone = pieces.pop(0)
                need -= gone.tokens
                state.dropped.append(f"summary {gone.source} ({gone.tokens} tokens, over the summary budget)")
            if need <= reserve:
                break
            reserve = need
        while pieces and sum(p.tokens for p in pieces) > reserve:
            state.dropped.append(f"summary {pieces.pop(0).source} (no room)")
        return kept, pieces

    async def _whole_if_glued(self, ordered: list[Piece], opts: PromptOptions) -> int | None:
        """The whole text's count when pieces join mid-word (story text), else ``None``.

        Pieces that meet at whitespace or a template marker tokenise the same apart as
        together (checked with real tokenizers in the tests); only glued joins, as in story
        mode, can merge into more tokens, so only then is the whole text counted once.
        """
        if opts.target != "text":
            return None
        glued = any(
            a.text and b.text and not a.text[-1].isspace() and not b.text[0].isspace()
            and a.text[-1] not in ">]" and b.text[0] not in "<["
            for a, b in zip(ordered, ordered[1:], strict=False)
        )
        if not glued:
            return None
        return await self.counter.count("".join(p.text for p in ordered))

    # -- preparation --------------------------------------------------------------------------

    def _prepare(
        self, opts: PromptOptions, history: Sequence[HistoryMessage], character: CharacterInfo,
        persona: Persona, memory: str, world_info: Sequence[WorldInfoInsert],
        note: AuthorsNote | None, variables: dict[str, str] | None, user_input: str,
        now: datetime | None, last_user_time: datetime | None, rng: random.Random | None,
    ) -> _State:
        template = opts.template
        if template.is_plain and (opts.mode == "instruct" or opts.target == "messages"):
            template = _CHATML  # a chat model needs turns; counting needs some wrapping
        if opts.context_template is None and self._default_context is None:
            self._default_context = load_library().get_context("default")
        context = opts.context_template or self._default_context
        assert context is not None
        macros = MacroContext(
            char=character.display_name or "Assistant",
            user=persona.name or "User",
            input=user_input,
            last_message=history[-1].text if history else "",
            story_id=opts.story_id,
            variables=variables if variables is not None else {},
            now=now,
            last_user_time=last_user_time,
            outlets={},
            rng=rng or random.Random(),
        )
        for entry in world_info:
            if entry.position == "outlet" and entry.outlet:
                joined = macros.outlets.get(entry.outlet, "")
                macros.outlets[entry.outlet] = (joined + "\n" if joined else "") + entry.content
        fields = {
            "description": expand_macros(character.description, macros),
            "personality": expand_macros(character.personality, macros),
            "scenario": expand_macros(character.scenario, macros),
            "persona": expand_macros(persona.description, macros),
        }
        macros.description, macros.personality = fields["description"], fields["personality"]
        macros.scenario, macros.persona = fields["scenario"], fields["persona"]
        fields["mesexamplesraw"] = expand_macros(character.mes_example, macros)
        macros.mes_examples = fields["mesexamplesraw"]
        default_system = opts.system_prompt if opts.system_prompt is not None else DEFAULT_SYSTEM_PROMPTS[opts.mode]
        fields["system"] = self._override(character.system_prompt, default_system, macros)
        post = self._override(character.post_history_instructions, opts.post_history, macros)
        fields["char"], fields["user"] = macros.char, macros.user
        active_note = note if note is not None and note.text and _note_due(note, history) else None
        wanted = [
            w for w in world_info
            if w.content.strip() and w.position != "outlet"
            and (active_note is not None or w.position not in ("an_top", "an_bottom"))
        ]
        inputs = Inputs(
            mode=opts.mode, target=opts.target, template=template, context=context,
            character=character, persona=persona, memory=memory, history=history,
            world_info=[], authors_note=active_note, macros=macros, system_prompt=fields["system"],
            post_history=post, continue_last=opts.continue_last, fields=fields, speaker=opts.speaker,
            members=opts.members,
        )
        return _State(inputs, wanted)

    @staticmethod
    def _override(card_value: str, default: str, macros: MacroContext) -> str:
        """A card's prompt replaces the default; ``{{original}}`` inside it brings it back."""
        if not card_value.strip():
            return expand_macros(default, macros)
        macros.original = expand_macros(default, macros)
        return expand_macros(card_value, macros)

    # -- counting -----------------------------------------------------------------------------

    async def _count(self, pieces: list[Piece]) -> int:
        total = 0
        for piece in pieces:
            piece.tokens = await self.counter.count(piece.text)
            total += piece.tokens
        return total

    async def _fixed_tokens(self, state: _State, volatile_last: bool = False) -> _Fixed:
        inputs = state.inputs
        selected = state.selected_wi
        # Higher order sits closer to the chat; with volatile_last, what fires turn by turn
        # comes after what is always there, so fewer cached tokens go stale when it changes, and
        # entries of equal order keep one place whatever order the scan found them in this turn.
        ordered = sorted(selected, key=(lambda w: (not w.constant, w.order, w.source, w.content)) if volatile_last
                         else (lambda w: w.order))
        inputs.world_info = ordered
        by = {pos: [w for w in ordered if w.position == pos] for pos in ("before_char", "after_char", "em_top", "em_bottom")}
        fixed = _Fixed(
            head=_render.head(inputs, by["before_char"], by["after_char"]),
            examples=_render.examples(inputs, by["em_top"], by["em_bottom"]),
            start=_render.chat_start(inputs),
            depth=_render.depth_inserts(inputs),
            tail=_render.tail(inputs),
        )
        fixed.total = await self._count(fixed.head + fixed.start + fixed.depth + fixed.tail)
        await self._count(fixed.examples)
        return fixed

    def _too_long(self, pieces: list[Piece], total: int, available: int, opts: PromptOptions) -> None:
        excess = total - available
        candidates = [p for p in pieces if p.kind not in ("template", "reply_header")] or pieces
        biggest = max(candidates, key=lambda p: p.tokens)
        raise PromptTooLongError(
            f"the parts that are always sent need {total} tokens, but only {available} fit "
            f"(context {opts.context_length} minus {opts.reply_tokens} for the reply): shorten the "
            f"{biggest.kind.replace('_', ' ')} ({biggest.tokens} tokens, from {biggest.source}) by at "
            f"least {excess} tokens, or use a larger context",
            part=biggest.kind,
            excess=excess,
        )

    async def _select_history(self, state: _State, room: int, opts: PromptOptions) -> list[Piece]:
        inputs = state.inputs
        history = inputs.history
        n = len(history)
        pieces: list[Piece] = []
        used, first_fit = 0, n
        for index in range(n - 1, -1, -1):
            piece = _render.history_piece(inputs, index, history[index], last=index == n - 1)
            piece.tokens = await self.counter.count(piece.text)
            if used + piece.tokens > room:
                break
            used += piece.tokens
            pieces.append(piece)
            first_fit = index
        if n and first_fit == n:
            newest = _render.history_piece(inputs, n - 1, history[-1], last=True)
            newest.tokens = await self.counter.count(newest.text)
            raise PromptTooLongError(
                f"the newest message needs {newest.tokens} tokens but only {room} are left after "
                f"the fixed parts: shorten it by at least {newest.tokens - room} tokens",
                part="history",
                excess=newest.tokens - room,
            )
        pieces.reverse()
        start = first_fit
        # Cut only at multiples of the chunk, so the window's start stays put while the story
        # grows, instead of moving (and invalidating the cache) every turn. A chunk never
        # exceeds a quarter of the messages that fit, so small windows are not emptied.
        chunk = min(opts.trim_chunk, max(1, (n - first_fit) // 4))
        chunk = 1 << (chunk.bit_length() - 1)  # powers of two nest, so cut points rarely move
        if start > 0 and chunk > 1:
            start = min(-(-start // chunk) * chunk, n - 1)
        if start > 0:
            state.dropped.append(f"{start} oldest messages (history:0-{start - 1})")
        return [p for p in pieces if p.index >= start]

    @staticmethod
    def _interleave(kept: list[Piece], depth: list[Piece]) -> list[Piece]:
        """Place depth pieces before the message ``depth`` places from the end."""
        count = len(kept)
        slots: dict[int, list[Piece]] = {}
        for piece in depth:
            slots.setdefault(max(count - piece.depth, 0), []).append(piece)
        out: list[Piece] = []
        for position in range(count + 1):
            out += slots.get(position, [])
            if position < count:
                out.append(kept[position])
        return out

    # -- output -------------------------------------------------------------------------------

    def _finish(self, ordered: list[Piece], state: _State, opts: PromptOptions, whole: int | None) -> Prompt:
        inputs = state.inputs
        segments = [Segment(p.kind, p.source, p.text, p.tokens) for p in ordered]
        stable = 0
        for piece in ordered:
            if piece.volatile:
                break
            stable += piece.tokens
        parts = sum(p.tokens for p in ordered)
        used = max(parts, whole or 0) + opts.bos_tokens
        budget = Budget(
            context=opts.context_length,
            reserved=opts.reply_tokens,
            used=used,
            margin=opts.margin_tokens,
            estimate=not self.counter.exact,
            counter=self.counter.name,
        )
        stops = self._stops(inputs, opts)
        text = messages = None
        if opts.target == "messages":
            messages = _messages(ordered)
        else:
            text = "".join(s.text for s in segments)
        return Prompt(
            segments=segments,
            text=text,
            messages=messages,
            stops=stops,
            budget=budget,
            stable_prefix_tokens=stable,
            dropped=state.dropped,
            template=inputs.template.name,
        )

    @staticmethod
    def _stops(inputs: Inputs, opts: PromptOptions) -> list[str]:
        stops: list[str] = []
        if opts.mode == "chat" and opts.names_as_stops:
            stops += name_stops(inputs.user)
        if opts.mode == "adventure":
            # The player's turn markers: an action line, or a line in the player's name.
            stops += [ACTION_MARKER, *name_stops(inputs.user)[:1], "\nYou:"]
        stops += inputs.template.stops
        stops += opts.extra_stops
        return unique_stops(stops)


@dataclass(slots=True)
class _Fixed:
    head: list[Piece]
    examples: list[Piece]
    start: list[Piece]
    depth: list[Piece]
    tail: list[Piece]
    total: int = 0

    @property
    def pieces(self) -> list[Piece]:
        return self.head + self.start + self.depth + self.tail


def _note_due(note: AuthorsNote, history: Sequence[HistoryMessage]) -> bool:
    """SillyTavern's frequency rule, counted in user messages."""
    if note.interval <= 0:
        return False
    if note.interval == 1:
        return True
    users = sum(1 for m in history if m.role == "user")
    return users >= note.interval and users % note.interval == 0


def _messages(ordered: list[Piece]) -> list[Message]:
    out: list[Message] = []
    last_msg = None
    for piece in ordered:
        if piece.content is None:
            continue
        if out and piece.msg == last_msg and piece.msg >= 0:
            prev = out[-1]
            out[-1] = replace(prev, content=prev.content + piece.content)
            continue
        role = piece.role if piece.role in ("system", "user", "assistant") else "system"
        out.append(Message(role=role, content=piece.content, name=piece.name))  # type: ignore[arg-type]
        last_msg = piece.msg
    return [replace(m, content=m.content.strip("\n")) for m in out if m.content.strip()]
