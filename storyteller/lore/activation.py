"""The activation engine: which entries go into this turn's prompt, and why.

:func:`activate` is a pure function: books, settings, chat and state in; prompt pieces, the new
timed-effect state and a full trace out. It follows SillyTavern's ``checkWorldInfo`` pass by
pass (see ``docs/world-info.md``); the deliberate differences are listed there and next to the
code that makes them.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Collection, Sequence

from storyteller.lore._groups import filter_groups
from storyteller.lore._items import Item, build_items
from storyteller.lore._keys import KeyMatcher
from storyteller.lore._prompt import build_prompt
from storyteller.lore._scan import ScanBuffer
from storyteller.lore.model import Lorebook, SelectiveLogic, WorldInfoSettings
from storyteller.lore.results import ActivatedEntry, ActivationResult, ScanSources
from storyteller.lore.timed import TimedEffect, TimedEffectsState

__all__ = ["approx_tokens", "activate", "compute_budget", "seeded_rng"]

_INITIAL, _RECURSION, _MIN_ACTIVATIONS = 1, 2, 3


def approx_tokens(text: str) -> int:
    """A rough token count (4 characters a token) for when no tokenizer is at hand."""
    return math.ceil(len(text) / 4)


def seeded_rng(story_id: str, turn: int) -> random.Random:
    """A random source that gives the same rolls for the same story and turn."""
    digest = hashlib.sha256(f"{story_id}\x00{turn}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def compute_budget(settings: WorldInfoSettings, max_context: int) -> int:
    """SillyTavern's budget: ``round(percent * context / 100) or 1``, then the cap."""
    budget = math.floor(settings.budget_percent * max_context / 100 + 0.5) or 1
    if settings.budget_cap > 0:
        budget = min(budget, settings.budget_cap)
    return budget


class _Run:
    """State of one activation (kept in one object so the steps stay small functions)."""

    def __init__(self, items: list[Item], settings: WorldInfoSettings, buffer: ScanBuffer, matcher: KeyMatcher):
        self.items = items
        self.settings = settings
        self.buffer = buffer
        self.matcher = matcher
        self.skew = 0
        self.state = _INITIAL
        self.delay_level = 0

    def depth_for(self, item: Item) -> int:
        return item.scan_depth if item.scan_depth is not None else self.settings.scan_depth + self.skew

    def text_for(self, item: Item) -> str:
        return self.buffer.text(item.entry, self.depth_for(item), with_recursion=self.state != _MIN_ACTIVATIONS)

    def find(self, item: Item, key: str, text: str) -> int:
        entry = item.entry
        return self.matcher.find(
            text,
            key,
            case_sensitive=entry.case_sensitive if entry.case_sensitive is not None else self.settings.case_sensitive,
            whole_words=entry.match_whole_words if entry.match_whole_words is not None else self.settings.match_whole_words,
        )

    def where(self, item: Item, position: int) -> str:
        return self.buffer.where(
            item.entry, self.depth_for(item), position, with_recursion=self.state != _MIN_ACTIVATIONS
        )

    def score(self, item: Item) -> int:
        text = self.text_for(item)
        primary = sum(1 for k in item.keys if self.find(item, k, text) >= 0)
        if not item.keys:
            return 0
        secondary = sum(1 for k in item.secondary if self.find(item, k, text) >= 0)
        if item.secondary and item.entry.selective:
            logic = item.entry.selective_logic
            if logic == SelectiveLogic.AND_ANY:
                return primary + secondary
            if logic == SelectiveLogic.AND_ALL and secondary == len(item.secondary):
                return primary + secondary
        return primary

    def secondary_ok(self, item: Item, text: str) -> tuple[bool, str]:
        logic = SelectiveLogic(item.entry.selective_logic)
        found = [k for k in item.secondary if self.find(item, k, text) >= 0]
        missing = [k for k in item.secondary if k not in found]
        if logic == SelectiveLogic.AND_ANY:
            return bool(found), f"AND ANY: none of {list(item.secondary)} found"
        if logic == SelectiveLogic.NOT_ALL:
            return bool(missing), f"NOT ALL: all of {list(item.secondary)} found"
        if logic == SelectiveLogic.NOT_ANY:
            return not found, f"NOT ANY: found {found}"
        return not missing, f"AND ALL: missing {missing}"


def activate(
    books: Sequence[Lorebook],
    messages: Sequence[str],
    *,
    settings: WorldInfoSettings | None = None,
    max_context: int = 4096,
    count_tokens: Callable[[str], int] = approx_tokens,
    rng: random.Random | None = None,
    sources: ScanSources | None = None,
    timed: TimedEffectsState | None = None,
    chat_length: int | None = None,
    generation_type: str = "normal",
    character: str | None = None,
    character_tags: Collection[str] = (),
    forced: Collection[str] = (),
    substitute: Callable[[str], str] | None = None,
    dry_run: bool = False,
) -> ActivationResult:
    """Decide which world info entries go into the prompt.

    Args:
        books: Books in priority order (with the default ``in_order`` strategy pass the chat
            book, then the character's, then global ones for SillyTavern's "character first").
        messages: The chat, oldest first, each already formatted as SillyTavern scans it
            (``"Name: text"`` when names are included). Only the newest messages are read.
        settings: Global world info settings.
        max_context: Prompt context in tokens (context size minus the reply length); the
            budget is a percentage of it.
        count_tokens: The real tokenizer's counter, ``count(text) -> int``.
        rng: Random source for probability and group rolls; :func:`seeded_rng` makes them
            reproducible per story and turn. Defaults to a fixed seed.
        sources: Author's note, persona, description, scenario and other scanned texts.
        timed: Timed-effect state stored with the story (not modified; see the result).
        chat_length: The chat length for timed effects (defaults to ``len(messages)``).
        generation_type: ``normal``, ``continue``, ``impersonate``, ``swipe``, ``regenerate``
            or ``quiet``, for entries with ``triggers``.
        character: Avatar file name without extension, for character filters.
        character_tags: The character's tag ids, for tag filters.
        forced: Entry keys (``"book.uid"``) activated from outside (like ``/wi-`` commands).
        substitute: Macro substitution applied to keys and contents (``{{user}}``, ...).
        dry_run: Compute everything but return the timed state unchanged.

    Returns:
        The prompt pieces, the trace and the new timed-effect state.
    """
    settings = settings or WorldInfoSettings()
    rng = rng or random.Random(0)
    sources = sources or ScanSources()
    chat_len = len(messages) if chat_length is None else chat_length
    items = build_items(books, settings.strategy, substitute)
    by_key = {item.key: item for item in items}
    state = (timed or TimedEffectsState()).model_copy(deep=True)
    sticky_on, cooldown_on = _load_timed(state, by_key, chat_len)
    matcher = KeyMatcher(regex_timeout_s=settings.regex_timeout_s)
    run = _Run(items, settings, ScanBuffer(messages, sources, chat_len), matcher)
    budget = compute_budget(settings, max_context)

    activated: dict[str, Item] = {}
    order_accepted: list[ActivatedEntry] = []
    failed_roll: set[str] = set()
    used = 0
    overflow = False
    levels = sorted({int(i.entry.delay_until_recursion) for i in items if i.entry.delay_until_recursion > 0})
    run.delay_level = levels.pop(0) if levels else 0
    passes = 0
    stopped_by_steps = False
    pending_recursion: list[Item] = []
    tokens_of: dict[str, int] = {}
    contents: dict[str, str] = {}
    first_loss: dict[str, str] = {}

    while run.state:
        steps = settings.max_recursion_steps
        if (steps and passes >= steps) or passes >= settings.recursion_hard_limit:
            stopped_by_steps = bool(pending_recursion)
            break
        passes += 1
        pending_recursion = []
        candidates = _scan_pass(run, passes, activated, failed_roll, sticky_on, cooldown_on, chat_len,
                                generation_type, character, character_tags, forced)
        candidates.sort(key=lambda x: 0 if x.key in sticky_on else 1)
        losers = filter_groups(
            candidates, activated.values(), is_sticky=lambda x: x.key in sticky_on, score=run.score,
            global_scoring=settings.use_group_scoring, rng=rng,
        )  # fmt: skip
        successful: list[Item] = []
        for item in candidates:
            trace = item.trace
            if item in losers:
                # The first loss explains most (later passes only repeat "already fired").
                first_loss.setdefault(item.key, losers[item])
                trace.status, trace.reason, trace.detail = "skipped", "group_lost", first_loss[item.key]
                continue
            entry = item.entry
            if entry.use_probability and entry.probability != 100 and item.key not in sticky_on:
                roll = rng.random() * 100
                trace.roll = round(roll, 3)
                if roll > entry.probability:
                    failed_roll.add(item.key)
                    trace.status, trace.reason = "skipped", "probability"
                    trace.detail = f"rolled {roll:.1f} > {entry.probability:g}%"
                    continue
            successful.append(item)
            content = substitute(item.deco.content) if substitute else item.deco.content
            contents[item.key] = content
            cost = tokens_of[item.key] = count_tokens(content)
            trace.tokens = cost
            free = entry.ignore_budget and not item.deco.ignore_on_max_context
            if not free and (overflow or used + cost >= budget):
                overflow = True
                trace.status, trace.reason = "skipped", "budget"
                trace.detail = f"{cost} tokens do not fit: {used} of {budget} used"
                continue
            if not free:
                used += cost
            activated[item.key] = item
            trace.status = "activated"
            if free:
                trace.detail = (trace.detail + "; " if trace.detail else "") + "ignores the budget"
        for_recursion = [x for x in successful if x.key in activated and not x.entry.prevent_recursion]
        run.state = _next_state(run, for_recursion, overflow, len(activated), chat_len, levels)
        if run.state:
            for item in for_recursion:
                run.buffer.add_recursion(f"recursion: entry {item.entry.uid} ({item.trace.title})", contents[item.key])
            pending_recursion = for_recursion

    if stopped_by_steps:
        _mark_recursion_limit(run, items, activated)
    for item in activated.values():
        order_accepted.append(
            ActivatedEntry(
                key=item.key, book=item.book, uid=item.entry.uid, title=item.trace.title,
                content=contents[item.key], position=item.position, depth=item.depth, role=item.role,
                order=item.entry.order, outlet_name=item.entry.outlet_name, tokens=tokens_of[item.key],
                reason=item.trace.reason, matched_key=item.trace.matched_key,
            )
        )  # fmt: skip
    prompt = build_prompt(order_accepted)
    for entry in order_accepted:
        if not entry.content:
            trace = by_key[entry.key].trace
            trace.status, trace.reason, trace.detail = "skipped", "empty_content", "content is empty"
    if not dry_run:
        _store_timed(state, activated.values(), chat_len)
    else:
        state = (timed or TimedEffectsState()).model_copy(deep=True)
    return ActivationResult(
        prompt=prompt,
        activated=[e for e in order_accepted if e.content],
        trace=[item.trace for item in items],
        timed=state,
        budget=budget,
        tokens_used=used,
        overflowed=overflow,
        passes=passes,
        regex_timeouts=sorted(matcher.timed_out),
    )


def _scan_pass(run: _Run, pass_no: int, activated: dict[str, Item], failed_roll: set[str],
               sticky_on: set[str], cooldown_on: set[str], chat_len: int, generation_type: str,
               character: str | None, character_tags: Collection[str], forced: Collection[str]) -> list[Item]:  # fmt: skip
    """One walk over the entries; returns those that matched, with their trace filled in."""
    candidates: list[Item] = []
    for item in run.items:
        if item.key in activated or item.key in failed_roll:
            continue
        trace = item.trace
        skip = _precheck(run, item, sticky_on, cooldown_on, chat_len, generation_type, character, character_tags)
        if skip is not None:
            trace.status, trace.reason, trace.detail = "skipped", skip[0], skip[1]
            continue
        trace.pass_no = pass_no
        trace.matched_key = trace.matched_in = None
        reason = None
        if item.deco.activate:
            reason, detail = "decorator", "@@activate"
        elif item.deco.dont_activate:
            trace.status, trace.reason, trace.detail = "skipped", "decorator", "@@dont_activate"
            continue
        elif item.key in forced:
            reason, detail = "forced", "activated from outside"
        elif item.entry.constant:
            reason, detail = "constant", "constant entry"
        elif item.key in sticky_on:
            reason, detail = "sticky", "sticky effect running"
        if reason is not None:
            trace.reason, trace.detail = reason, detail
            candidates.append(item)
            continue
        if not item.keys:
            trace.status, trace.reason, trace.detail = "skipped", "no_keys", "no keys and not constant"
            continue
        text = run.text_for(item)
        hit = next(((k, p) for k in item.keys if (p := run.find(item, k, text)) >= 0), None)
        if hit is None:
            trace.status, trace.reason, trace.detail = "skipped", "no_match", f"no key found in {_depth_words(run, item)}"
            continue
        trace.matched_key, trace.matched_in = hit[0], run.where(item, hit[1])
        excluded = next((k for k in item.exclude if run.find(item, k, text) >= 0), None)
        if excluded is not None:
            trace.status, trace.reason, trace.detail = "skipped", "excluded_key", f"@@exclude_keys: found {excluded!r}"
            continue
        if item.secondary and item.entry.selective:
            ok, why = run.secondary_ok(item, text)
            if not ok:
                trace.status, trace.reason, trace.detail = "skipped", "secondary_failed", why
                continue
        trace.reason, trace.detail = "key", f"{hit[0]!r} in {trace.matched_in}"
        candidates.append(item)
    return candidates


def _depth_words(run: _Run, item: Item) -> str:
    depth = min(run.depth_for(item), run.buffer.message_count)
    extra = " and recursion" if run.buffer.has_recursion and run.state != _MIN_ACTIVATIONS else ""
    return f"the last {depth} message(s){extra}"


def _precheck(run: _Run, item: Item, sticky_on: set[str], cooldown_on: set[str], chat_len: int,
              generation_type: str, character: str | None, character_tags: Collection[str]) -> tuple[str, str] | None:  # fmt: skip
    entry = item.entry
    sticky = item.key in sticky_on
    if entry.disable:
        return "disabled", "entry is disabled"
    flt = entry.character_filter
    if flt is not None and flt.names and character is not None:
        inside = character in flt.names
        if inside == flt.is_exclude:
            return "character_filter", f"character filter ({'excludes' if flt.is_exclude else 'requires'} {flt.names})"
    if flt is not None and flt.tags:
        inside = any(t in flt.tags for t in character_tags)
        if inside == flt.is_exclude:
            return "character_filter", f"tag filter ({'excludes' if flt.is_exclude else 'requires'} {flt.tags})"
    if entry.triggers and generation_type not in entry.triggers:
        return "trigger", f"only for {entry.triggers}, this is {generation_type!r}"
    if entry.delay and chat_len < entry.delay:
        return "delay", f"delayed until the chat has {entry.delay} messages (now {chat_len})"
    if item.deco.only_after is not None and chat_len < item.deco.only_after:
        return "decorator", f"@@activate_only_after {item.deco.only_after} (chat has {chat_len})"
    if item.deco.only_every is not None and chat_len % item.deco.only_every:
        return "decorator", f"@@activate_only_every {item.deco.only_every} (chat has {chat_len})"
    if item.key in cooldown_on and not sticky:
        return "cooldown", "cooling down"
    level = int(entry.delay_until_recursion)  # true (the old form) is level 1
    if level and not sticky:
        if run.state != _RECURSION:
            return "delay_until_recursion", f"waits for recursion level {level}"
        if level > run.delay_level:
            return "delay_until_recursion", f"waits for recursion level {level} (now {run.delay_level})"
    if run.state == _RECURSION and run.settings.recursive and entry.exclude_recursion and not sticky:
        return "exclude_recursion", "cannot be activated by other entries"
    return None


def _next_state(run: _Run, for_recursion: list[Item], overflow: bool, count: int, chat_len: int,
                levels: list[int]) -> int:  # fmt: skip
    settings = run.settings
    nxt = 0
    if settings.recursive and not overflow and for_recursion:
        nxt = _RECURSION
    if settings.recursive and not overflow and run.state == _MIN_ACTIVATIONS and run.buffer.has_recursion:
        nxt = _RECURSION
    if not nxt and not overflow and settings.min_activations > 0 and count < settings.min_activations:
        depth = settings.scan_depth + run.skew
        cap = settings.min_activations_depth_max
        if not ((cap > 0 and depth > cap) or depth > chat_len):
            nxt = _MIN_ACTIVATIONS
            run.skew += 1
    if not nxt and levels:
        nxt = _RECURSION
        run.delay_level = levels.pop(0)
    return nxt


def _mark_recursion_limit(run: _Run, items: list[Item], activated: dict[str, Item]) -> None:
    """Entries that the unscanned recursion text would have activated are told so."""
    run.state = _RECURSION
    for item in items:
        trace = item.trace
        if item.key in activated or trace.reason != "no_match" or item.entry.exclude_recursion:
            continue
        text = run.text_for(item)
        if any(run.find(item, k, text) >= 0 for k in item.keys):
            trace.reason = "recursion_limit"
            trace.detail = "a key appears in recursion text that the step limit left unscanned"


def _load_timed(state: TimedEffectsState, by_key: dict[str, Item], chat_len: int) -> tuple[set[str], set[str]]:
    """Expire finished effects and return the keys with sticky / cooldown running."""
    active: dict[str, set[str]] = {"sticky": set(), "cooldown": set()}
    for kind in ("sticky", "cooldown"):
        effects: dict[str, TimedEffect] = getattr(state, kind)
        for key, effect in list(effects.items()):
            item = by_key.get(key)
            if chat_len <= effect.start and not effect.protected:
                del effects[key]  # the chat did not advance (swipe, deletion)
                continue
            if item is None:
                if chat_len >= effect.end:
                    del effects[key]
                continue
            if not getattr(item, kind):
                del effects[key]
                continue
            if chat_len >= effect.end:
                del effects[key]
                if kind == "sticky" and item.cooldown:
                    state.cooldown[key] = TimedEffect(start=chat_len, end=chat_len + item.cooldown, protected=True)
                continue
            active[kind].add(key)
    return active["sticky"], active["cooldown"]


def _store_timed(state: TimedEffectsState, activated: Collection[Item], chat_len: int) -> None:
    for item in activated:
        for kind in ("sticky", "cooldown"):
            duration = getattr(item, kind)
            effects: dict[str, TimedEffect] = getattr(state, kind)
            if duration and item.key not in effects:
                effects[item.key] = TimedEffect(start=chat_len, end=chat_len + duration)
