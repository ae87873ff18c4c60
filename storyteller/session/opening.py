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
from storyteller.errors import FormatError, StoryError
from storyteller.lore import approx_tokens
from storyteller.paths import Paths
from storyteller.prompt import PromptBuilder, PromptOptions, TokenCounter, expand_names
from storyteller.session.core import Session
from storyteller.session.resources import card_book, load_books, load_members, pick_template
from storyteller.session.turn import SessionParts
from storyteller.session.group import group_greetings, new_group
from storyteller.session.player import greeting_nodes
from storyteller.story.model import GroupSettings, Mode, StorySettings
from storyteller.story.store import Story, StoryStore

__all__ = ["make_parts", "open_engine", "open_session", "pick_template", "probe_engine", "start_group_story",
           "sync_counter"]


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
    members: dict[str, Card | None] = {}
    member_books: dict = {}
    group_warnings: list[str] = []
    if st.group is not None and st.group.members:
        members, group_warnings = load_members(st.group, paths)
        card = card or members[st.group.members[0].name]
        member_books = {name: book for name, c in members.items() if (book := card_book(c)) is not None}
    if card is None and st.cards:
        card = load_card(find_card(st.cards[0], paths))[0]
    if card is None:  # an imported chat whose card is not in the library: it still speaks as its character
        from storyteller.cards import Card
        from storyteller.content import chat_character

        name = chat_character(st, "")
        if name:
            card = Card(name=name)
    books = load_books(st.worlds, None if members else card, paths)
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
                        count_sync=sync_counter(backend), adventure_bans=bans,
                        warnings=tuple([*warnings, *group_warnings]), members=members, member_books=member_books)


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


def start_group_story(store: StoryStore, name: str, cards: Sequence[str], group: GroupSettings | None, *,
                      paths: Paths, worlds: Sequence[str] | None = None, mode: str | None = None) -> Story:
    """Create the group story ``name`` of these cards (or of ``group``'s members when no cards).

    The story names each card as the library does; its worlds are ``worlds``, else the worlds the
    cards link to (those the user has). Each member's greeting opens it. The group keeps ``group``'s settings (order, card mode,
    name, scenario...); its members come from ``group`` when it has them, else from the cards.

    Raises:
        FormatError: A card or world cannot be found or read.
        StoryError: Fewer than two members, or the story cannot be created.
    """
    template = group or GroupSettings()
    refs = list(cards) or [m.card for m in template.members]
    if len(refs) < 2:
        raise StoryError("a group needs at least two cards: give --card twice or more.")
    files = [find_card(ref, paths) for ref in refs]
    loaded = [load_card(path)[0] for path in files]
    story_refs = [content_ref(path, paths) for path in files]
    if template.members and len(template.members) == len(story_refs) and not cards:
        made = template.model_copy(update={"members": [m.model_copy(update={"card": ref})
                                                       for m, ref in zip(template.members, story_refs, strict=True)]})
    else:
        fresh = new_group(loaded, story_refs, name=template.name)
        made = template.model_copy(update={"members": fresh.members, "name": fresh.name})
    world_refs = [content_ref(find_world(ref, paths), paths) for ref in worlds or []]
    if not world_refs:
        for linked in dict.fromkeys(c.world for c in loaded if c.world):
            try:
                find_world(linked, paths)
                world_refs.append(linked)
            except FormatError:
                pass  # a card may name a world the user does not have
    group = GroupSettings.model_validate(made.model_dump())
    settings = StorySettings(cards=[m.card for m in group.members], worlds=world_refs,
                             mode=mode or Mode.CHAT.value, group=group)
    story = store.create(name, settings)
    # Every member greets, in list order, as SillyTavern opens a group chat.
    by_name = {m.name: card for m, card in zip(group.members, loaded, strict=True)}
    nodes = group_greetings(group, by_name, settings.persona.name or "User")
    if nodes:
        story.add_nodes(nodes, select=nodes[-1].id)
    return story


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
    cards: Sequence[str] | None = None,
    group: GroupSettings | None = None,
) -> Session:
    """Open the story ``name``, or start it with the given card, worlds and mode.

    With no card, a new story plays the bundled adventure narrator and its world. Two or more
    ``cards``, or a ``group`` (its order, card mode and name; its members when it has them, as a
    saved group does), start a group chat: see :func:`start_group_story`.

    Raises:
        FormatError: The card or a world cannot be found or read.
        StoryError: The story cannot be opened.
    """
    store = StoryStore(paths.stories_dir)
    created = False
    if store.exists(name):
        story = store.open(name, read_only=read_only)
    elif (cards and len(cards) > 1) or group is not None:
        story = start_group_story(store, name, cards or [], group, paths=paths, worlds=worlds, mode=mode)
        created = True
    else:
        card = card or (cards[0] if cards else None)
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
    if created and session.group is None and parts.card is not None:
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
