"""Opening a session: the story, its card and worlds, the template and the prompt builder.

This is the glue between the layers: story settings name a card and worlds; here they are
loaded, the template is chosen (the story's, or the one matching the model's own), and the
engine's declared capabilities decide between text and chat completion. Imports point one way:
this module builds a :class:`~storyteller.session.core.Session`; the session never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from storyteller.cards import Card, load_card
from storyteller.config import Settings
from storyteller.content import DEFAULT_ADVENTURE_CARD, DEFAULT_ADVENTURE_WORLD, content_ref, find_card, find_world
from storyteller.engines.base import Backend, BackendInfo
from storyteller.engines.capabilities import KVPersistence, TokenBans, Tokenizer, completion_target
from storyteller.errors import FormatError
from storyteller.lore import approx_tokens
from storyteller.paths import Paths
from storyteller.prompt import (
    NONE_TEMPLATE,
    InstructTemplate,
    PromptBuilder,
    PromptOptions,
    TokenCounter,
    detect_preset,
    expand_names,
    load_library,
)
from storyteller.session.core import Session
from storyteller.session.resources import load_books
from storyteller.session.turn import SessionParts
from storyteller.session.player import greeting_nodes
from storyteller.story.model import Mode, StorySettings
from storyteller.story.store import StoryStore

__all__ = ["make_parts", "open_engine", "open_session", "pick_template", "probe_engine", "sync_counter"]


def pick_template(story_settings: StorySettings, info: BackendInfo, paths: Paths) -> tuple[InstructTemplate, list[str]]:
    """The story's instruct template, or the one that matches the model's own chat template.

    Returns:
        The template, and the template library's warnings (files that did not load).
    """
    library = load_library(paths.config_dir / "templates")
    warnings = list(library.warnings)
    name = story_settings.template or "auto"
    if name != "auto":
        return library.get_instruct(name), warnings
    if info.chat_template:
        found = detect_preset(info.chat_template, library.instruct.values())
        if found is not None:
            return found, warnings
    return NONE_TEMPLATE, warnings


def sync_counter(backend: Backend) -> Callable[[str], int]:
    """Synchronous token counts for world-info budgets: the engine's own, else an estimate."""
    if isinstance(backend, Tokenizer):
        return lambda text: len(backend.tokenize(text)) if text else 0
    return approx_tokens


def make_parts(story_name: str, st: StorySettings, *, settings: Settings, paths: Paths, backend: Backend,
               card: Card | None = None) -> SessionParts:
    """Resolve a story's card, worlds, template and builder against an engine.

    Args:
        story_name: The story's name.
        st: Its settings (they name the card and worlds).
        settings: Storyteller's settings.
        paths: Storyteller's folders.
        backend: The engine (its tokenizer, context and capabilities).
        card: The card, when the caller has it loaded already.

    Raises:
        FormatError: The card or a world cannot be found or read.
    """
    if card is None and st.cards:
        card = load_card(find_card(st.cards[0], paths))[0]
    if card is None:  # an imported chat whose card is not in the library: it still speaks as its character
        from storyteller.cards import Card
        from storyteller.content import chat_character

        name = chat_character(st, "")
        if name:
            card = Card(name=name)
    books = load_books(st.worlds, card, paths)
    info = backend.info()
    template, warnings = pick_template(st, info, paths)
    target = completion_target(info.capabilities, prefer_chat=settings.remote.use_chat)
    builder = PromptBuilder(
        TokenCounter.from_backend(backend),
        PromptOptions(mode=st.mode, target=target, context_length=info.context_length,
                      reply_tokens=settings.sampling.max_tokens, template=template, wi_budget_ratio=1.0,
                      story_id=story_name),
    )
    bans: dict[int, float] = {}
    if st.mode == Mode.ADVENTURE and isinstance(backend, TokenBans):
        bans = {token: -100.0 for token in backend.token_ids_containing(">")}
    return SessionParts(settings=settings, paths=paths, info=info, card=card, books=tuple(books), builder=builder,
                        count_sync=sync_counter(backend), adventure_bans=bans, warnings=tuple(warnings))


async def open_engine(settings: Settings, paths: Paths) -> Backend:
    """Open the engine ``settings.engine.kind`` names (the UI's way to the engine registry).

    Raises:
        ConfigError: No engine has that name.
        ModelError: The embedded engine has no usable model.
        EngineError: A remote server cannot be reached or understood.
    """
    from storyteller.engines.factory import open_backend

    return await open_backend(settings, paths)


async def probe_engine(settings: Settings, paths: Paths) -> BackendInfo:
    """Open the engine with ``settings``, describe it, and close it again (a settings "Test")."""
    backend = await open_engine(settings, paths)
    try:
        return backend.info()
    finally:
        await backend.aclose()


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
    store = StoryStore(paths.stories_dir)
    created = False
    if store.exists(name):
        story = store.open(name, read_only=read_only)
    else:
        card_ref = card or DEFAULT_ADVENTURE_CARD
        card_path = find_card(card_ref, paths)
        loaded, _report = load_card(card_path)
        # Library and bundled files are named, not located, so the story survives a move.
        world_refs = [content_ref(find_world(ref, paths), paths) for ref in worlds or []]
        if not world_refs:
            linked = str(loaded.extensions.get("world") or "") or (DEFAULT_ADVENTURE_WORLD if card is None else "")
            if linked:
                try:
                    find_world(linked, paths)
                    world_refs.append(linked)
                except FormatError:
                    pass  # a card may name a world the user does not have
        story_mode = mode or (Mode.ADVENTURE.value if card is None else Mode.CHAT.value)
        story = store.create(name, StorySettings(cards=[content_ref(card_path, paths)], worlds=world_refs,
                                                 mode=story_mode))
        created = True
    st = story.settings
    try:
        parts = make_parts(story.name, st, settings=settings, paths=paths, backend=backend)
    except BaseException:
        story.close()
        raise
    session = Session(story, backend, parts)
    if created and parts.card is not None:
        card_obj = parts.card
        # Every greeting is a swipe of the first message, as in SillyTavern; the chosen one is shown.
        greetings = [card_obj.first_mes, *card_obj.alternate_greetings]
        chosen = greetings[greeting] if 0 <= greeting < len(greetings) else card_obj.first_mes
        if chosen.strip():
            user = st.persona.name or "User"
            nodes = greeting_nodes(card_obj, parts.speaker, user)
            shown = next(n for n in nodes if n.text == expand_names(chosen, parts.speaker, user))
            story.add_nodes(nodes, select=shown.id)
    state = story.folder / "engine.kv"
    if isinstance(backend, KVPersistence) and state.is_file() and settings.engine.kv_state != "off":
        await backend.load_state(state)
    return session
