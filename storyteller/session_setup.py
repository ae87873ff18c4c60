"""Opening a session: the story, its card and worlds, the template and the prompt builder.

This is the glue between the layers: story settings name a card and worlds; here they are
loaded, the card becomes the builder's :class:`~storyteller.prompt.CharacterInfo`, activated
world info becomes :class:`~storyteller.prompt.WorldInfoInsert` entries, and the story path
becomes history messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from storyteller.cards import Card, load_card
from storyteller.config import Settings
from storyteller.content import DEFAULT_ADVENTURE_CARD, DEFAULT_ADVENTURE_WORLD, find_card, find_world
from storyteller.engines.base import Backend, BackendInfo, GenerationRequest, Sampling
from storyteller.errors import FormatError
from storyteller.lore import (
    ActivationResult,
    Lorebook,
    ScanSources,
    TimedEffectsState,
    WorldInfoSettings,
    activate,
    approx_tokens,
    from_character_book,
    load_lorebook,
    seeded_rng,
)
from storyteller.paths import Paths
from storyteller.presets import resolve_sampling
from storyteller.prompt import (
    NONE_TEMPLATE,
    AuthorsNote,
    CharacterInfo,
    HistoryMessage,
    Persona,
    Prompt,
    PromptBuilder,
    PromptOptions,
    StopFilter,
    TokenCounter,
    WorldInfoInsert,
    detect_preset,
    expand_names,
    load_library,
)
from storyteller.story.model import StorySettings
from storyteller.story.store import StoryStore
from storyteller.story.tree import Message as StoryMessage

if TYPE_CHECKING:
    from storyteller.session import Session

__all__ = ["SessionParts", "TurnReport", "explain_prompt_change", "history_of", "lore_inserts", "open_session",
           "plain_messages"]

USER_KINDS = ("say", "do", "story")
_POSITIONS = ("before_char", "after_char", "an_top", "an_bottom", "at_depth", "em_top", "em_bottom", "outlet")
_ROLES = ("system", "user", "assistant")


def history_of(messages: Sequence[StoryMessage], *, mode: str, user: str, speaker: str) -> list[HistoryMessage]:
    """The story path as the builder's history messages."""
    history = []
    for message in messages:
        head = message.head
        if head.kind in USER_KINDS:
            name = head.author[len("kiosk:"):] if head.author.startswith("kiosk:") else user
            kind = head.kind if mode == "adventure" else "chat"
            history.append(HistoryMessage("user", message.text, name=name or user, kind=kind))
        elif head.kind == "system":
            history.append(HistoryMessage("system", message.text))
        else:
            history.append(HistoryMessage("assistant", message.text, name=speaker))
    return history


@dataclass(frozen=True, slots=True)
class TurnReport:
    """What one reply cost and why, the same for every engine (unknown figures are ``None``).

    Attributes:
        prompt_tokens: Tokens in the prompt.
        stable_prefix_tokens: Tokens before the first part that may change from turn to turn.
        changed_at: Tokens the prompt shares with the previous one, counted by segment.
        why: Why the prompt changed before its end (in words, from the prompt's segments).
        cache_note: The engine's own account of its cache (empty for engines that give none).
        tokens_evaluated: Prompt tokens the engine evaluated.
        tokens_reused: Prompt tokens it took from its cache.
        tokens_shifted: Cached tokens it kept by moving them.
        seconds_to_first_token: From the request to the first text.
        tokens_per_second: Generation speed.
    """

    prompt_tokens: int | None
    stable_prefix_tokens: int
    changed_at: int
    why: str
    cache_note: str = ""
    tokens_evaluated: int | None = None
    tokens_reused: int | None = None
    tokens_shifted: int | None = None
    seconds_to_first_token: float | None = None
    tokens_per_second: float | None = None

    def summary(self) -> str:
        """One line for a status bar or a log."""
        parts = []
        if self.tokens_evaluated is not None and self.prompt_tokens:
            parts.append(f"evaluated {self.tokens_evaluated} of {self.prompt_tokens} prompt tokens")
        if self.tokens_shifted:
            parts.append(f"shifted {self.tokens_shifted}")
        if self.seconds_to_first_token is not None:
            parts.append(f"first token after {self.seconds_to_first_token:.2f} s")
        if self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:.1f} tokens/s")
        parts.append(self.why)
        return "; ".join(parts)


def _describe(segment: Any) -> str:
    kind = segment.kind.replace("_", " ")
    return f"{kind} {segment.source!r}" if segment.source and segment.source != segment.kind else kind


def explain_prompt_change(previous: Prompt | None, current: Prompt) -> tuple[int, str]:
    """Where ``current`` first differs from ``previous`` (in tokens), and why, in words.

    Engines reuse their cache up to the first change (and, with context shifting, around it),
    so this is what a slow turn is explained with: a world-info entry that started or stopped
    firing, the author's note coming or going, old history trimmed.
    """
    if previous is None:
        return 0, "first prompt of this session: nothing to reuse yet"
    old, new = previous.segments, current.segments
    same = 0
    tokens = 0
    while same < min(len(old), len(new)) and old[same] == new[same]:
        tokens += new[same].tokens
        same += 1
    if same == len(new) == len(old):
        return tokens, "the prompt is the same as last time"
    # The reply header and the newest messages change every turn: that is the normal append.
    tail_kinds = {"history", "reply_header", "post_history", "template"}
    if all(s.kind in tail_kinds for s in new[same:]) and all(s.kind in tail_kinds for s in old[same:]):
        first_new = next((s for s in new[same:] if s.kind == "history"), None)
        first_old = next((s for s in old[same:] if s.kind == "history"), None)
        if first_new is not None and first_old is not None and first_new.source != first_old.source \
                and any(s.source == first_new.source for s in old):
            return tokens, f"old history was trimmed: the window now starts at {first_new.source}"
        return tokens, "new messages at the end (the rest is unchanged)"
    old_keys = {(s.kind, s.source, s.text) for s in old}
    new_keys = {(s.kind, s.source, s.text) for s in new}
    a = old[same] if same < len(old) else None
    b = new[same] if same < len(new) else None
    if b is not None and (b.kind, b.source, b.text) not in old_keys:
        if any(s.kind == b.kind and s.source == b.source for s in old):
            return tokens, f"{_describe(b)} changed"
        what = "started firing" if b.kind == "world_info" else "was inserted"
        return tokens, f"{_describe(b)} {what}"
    if a is not None and (a.kind, a.source, a.text) not in new_keys:
        if a.kind == "history":
            return tokens, f"old history was trimmed: {a.source} and older left the window"
        what = "stopped firing" if a.kind == "world_info" else "was removed"
        return tokens, f"{_describe(a)} {what}"
    moved = a if a is not None and a.kind != "history" else b if b is not None and b.kind != "history" else a or b
    if moved is not None and moved.kind != "history":
        return tokens, f"{_describe(moved)} moved: it is placed a fixed number of messages from the end"
    return tokens, f"{_describe(moved)} moved"


def plain_messages(history: Sequence[HistoryMessage]) -> list[str]:
    """Messages as world info scans them: ``Name: text``."""
    return [f"{m.name}: {m.text}" if m.name else m.text for m in history]


def lore_inserts(result: ActivationResult) -> list[WorldInfoInsert]:
    """Activated entries as the builder's inserts."""
    inserts = []
    for entry in result.activated:
        position = _POSITIONS[int(entry.position)] if 0 <= int(entry.position) < len(_POSITIONS) else "before_char"
        inserts.append(WorldInfoInsert(
            content=entry.content, position=position, depth=entry.depth, role=_ROLES[int(entry.role)],
            order=entry.order, source=entry.key, outlet=entry.outlet_name, constant=entry.reason == "constant",
        ))
    return inserts


def character_info(card: Card | None) -> CharacterInfo:
    """The card fields the prompt uses."""
    if card is None:
        return CharacterInfo()
    return CharacterInfo(
        name=card.name, nickname=card.nickname or "", description=card.description, personality=card.personality,
        scenario=card.scenario, first_mes=card.first_mes, mes_example=card.mes_example,
        system_prompt=card.system_prompt, post_history_instructions=card.post_history_instructions,
        alternate_greetings=tuple(card.alternate_greetings),
    )


@dataclass(slots=True)
class SessionParts:
    """Everything resolved for one story; see :func:`open_session`."""

    settings: Settings
    paths: Paths
    info: BackendInfo
    card: Card | None
    books: list[Lorebook]
    builder: PromptBuilder
    count_sync: Callable[[str], int]
    wi_settings: WorldInfoSettings = field(default_factory=WorldInfoSettings)
    turn: int = 0
    adventure_bans: dict[int, float] = field(default_factory=dict)
    """Logit bias that keeps the narrator from writing the action marker ``>`` (embedded engine)."""

    @property
    def character(self) -> CharacterInfo:
        """The card as the builder sees it."""
        return character_info(self.card)

    @property
    def speaker(self) -> str:
        """Who speaks the replies."""
        if self.card is not None and self.card.name:
            return self.card.nickname or self.card.name
        return "Narrator"

    def sampling(self, story_settings: StorySettings) -> Sampling:
        """The global sampler settings, then the story's preset, then its overrides."""
        return resolve_sampling(self.settings.sampling, story_settings.sampler_preset,
                                story_settings.sampler_overrides, self.paths)

    async def build_prompt(self, story: Any, messages: Sequence[StoryMessage], *, continuing: bool
                           ) -> tuple[Prompt, ActivationResult | None]:
        """World info, then the prompt, for a reply after ``messages``."""
        st: StorySettings = story.settings
        persona = Persona(name=st.persona.name or "User", description=st.persona.description)
        history = history_of(messages, mode=st.mode, user=persona.name, speaker=self.speaker)
        sampling = self.sampling(st)
        lore = None
        inserts: list[WorldInfoInsert] = []
        if self.books:
            card = self.card
            self.turn = len(history)
            lore = activate(
                self.books, plain_messages(history), settings=self.wi_settings,
                max_context=self.info.context_length - sampling.max_tokens, count_tokens=self.count_sync,
                rng=seeded_rng(story.name, len(history)),
                sources=ScanSources.with_author_note(
                    st.authors_note.text, persona_description=persona.description,
                    character_description=card.description if card else "",
                    character_personality=card.personality if card else "",
                    scenario=card.scenario if card else ""),
                timed=TimedEffectsState.model_validate(st.timed_effects or {}),
                chat_length=len(history),
                character=self.card.name if self.card else None,
                substitute=lambda text: expand_names(text, self.speaker, persona.name),
            )
            inserts = lore_inserts(lore)
        note = st.authors_note
        options = dataclasses.replace(self.builder.options, mode=st.mode, reply_tokens=sampling.max_tokens,
                                      continue_last=continuing, story_id=story.name,
                                      extra_stops=tuple(sampling.stop))
        prompt = await self.builder.build(
            history, character=self.character, persona=persona, memory=st.memory, world_info=inserts,
            authors_note=AuthorsNote(text=note.text, depth=note.depth, interval=note.interval, role=note.role),
            variables=st.variables, options=options,
        )
        return prompt, lore

    def request_for(self, prompt: Prompt, story_settings: StorySettings | None = None) -> GenerationRequest:
        """The engine request for a prompt."""
        st = story_settings or StorySettings()
        sampling = self.sampling(st)
        update: dict[str, Any] = {"stop": list(prompt.stops)}
        if st.mode == "adventure" and self.adventure_bans:
            # Small models love to write the player's next "> You ..." line; the stop string
            # would cut it, often leaving nothing. Not letting them write ">" at all is kinder.
            update["logit_bias"] = {**self.adventure_bans, **sampling.logit_bias}
        sampling = sampling.model_copy(update=update)
        if prompt.messages is not None:
            return GenerationRequest(messages=prompt.messages, sampling=sampling)
        return GenerationRequest(prompt=prompt.text or "", sampling=sampling)

    def stop_filter(self, prompt: Prompt) -> StopFilter:
        """A filter holding back text that could begin one of the prompt's stops."""
        return StopFilter(prompt.stops, context=(prompt.text or "")[-64:])

    def clean_reply(self, text: str, *, continuing: bool) -> str:
        """Tidy a finished reply: no trailing space; no leading space unless it continues text."""
        text = text.rstrip()
        return text if continuing else text.lstrip()

    def remember_lore(self, story: Any, lore: ActivationResult) -> None:
        """Keep world info's timed effects with the story for the next turn."""
        state = lore.timed.model_dump(mode="json")
        if state != story.settings.timed_effects and not story.read_only:
            story.set_settings(timed_effects=state)


def _pick_template(settings: Settings, story_settings: StorySettings, info: BackendInfo, paths: Paths):
    library = load_library(paths.config_dir / "templates")
    name = story_settings.template or "auto"
    if name != "auto":
        return library.get_instruct(name)
    if info.chat_template:
        found = detect_preset(info.chat_template, library.instruct.values())
        if found is not None:
            return found
    return NONE_TEMPLATE


def _sync_counter(backend: Backend) -> Callable[[str], int]:
    tokenize = getattr(backend, "tokenize", None)
    if callable(tokenize):
        return lambda text: len(tokenize(text)) if text else 0
    return approx_tokens


def load_books(refs: Sequence[str], card: Card | None, paths: Paths) -> list[Lorebook]:
    """The story's worlds, then the card's embedded book."""
    books = []
    for ref in refs:
        book, _report = load_lorebook(find_world(ref, paths))
        books.append(book)
    if card is not None and card.character_book is not None and card.character_book.entries:
        books.append(from_character_book(card.character_book.model_dump(), name=card.name or "card"))
    return books


async def open_session(
    name: str,
    *,
    settings: Settings,
    paths: Paths,
    backend: Backend,
    card: str | None = None,
    worlds: Sequence[str] | None = None,
    mode: str | None = None,
    greeting: int = 0,
    read_only: bool = False,
) -> Session:
    """Open the story ``name``, or start it with the given card, worlds and mode.

    With no card, a new story plays the bundled adventure narrator and its world.

    Raises:
        FormatError: The card or a world cannot be found or read.
        StoryError: The story cannot be opened.
    """
    from storyteller.session import Session

    store = StoryStore(paths.stories_dir)
    created = False
    if store.exists(name):
        story = store.open(name, read_only=read_only)
    else:
        card_ref = card or DEFAULT_ADVENTURE_CARD
        card_path = find_card(card_ref, paths)
        loaded, _report = load_card(card_path)
        world_refs = list(worlds or [])
        if not world_refs:
            linked = str(loaded.extensions.get("world") or "") or (DEFAULT_ADVENTURE_WORLD if card is None else "")
            if linked:
                try:
                    find_world(linked, paths)
                    world_refs.append(linked)
                except FormatError:
                    pass  # a card may name a world the user does not have
        story_mode = mode or ("adventure" if card is None else "chat")
        story = store.create(name, StorySettings(cards=[str(card_path)], worlds=world_refs, mode=story_mode))
        created = True
    st = story.settings
    card_obj = load_card(find_card(st.cards[0], paths))[0] if st.cards else None
    books = load_books(st.worlds, card_obj, paths)
    info = backend.info()
    template = _pick_template(settings, st, info, paths)
    target = "messages" if settings.engine.kind == "openai" and settings.remote.use_chat else "text"
    builder = PromptBuilder(
        TokenCounter.from_backend(backend),
        PromptOptions(mode=st.mode, target=target, context_length=info.context_length,
                      reply_tokens=settings.sampling.max_tokens, template=template, wi_budget_ratio=1.0,
                      story_id=story.name),
    )
    parts = SessionParts(settings=settings, paths=paths, info=info, card=card_obj, books=books,
                         builder=builder, count_sync=_sync_counter(backend))
    find_tokens = getattr(backend, "token_ids_containing", None)
    if st.mode == "adventure" and callable(find_tokens):
        parts.adventure_bans = {token: -100.0 for token in find_tokens(">")}
    session = Session(story, backend, parts)
    if created and card_obj is not None:
        greetings = [card_obj.first_mes, *card_obj.alternate_greetings]
        chosen = greetings[greeting] if 0 <= greeting < len(greetings) else card_obj.first_mes
        if chosen.strip():
            text = expand_names(chosen, parts.speaker, st.persona.name or "User")
            story.add_node(text, author=parts.speaker, kind="greeting")
    state = story.folder / "engine.kv"
    load_state = getattr(backend, "load_state", None)
    if load_state is not None and state.is_file() and settings.engine.kv_state != "off":
        await load_state(state)
    return session
