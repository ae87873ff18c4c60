"""What an engine can do: declared :class:`Capabilities`, and the optional protocols beyond streaming.

Every engine declares one :class:`Capabilities` value, everything it can do (``CAPABILITIES`` on
its class), and reports it in :meth:`Backend.info`, less what the model or server at hand turned
out to lack (:meth:`Capabilities.without`). Features that need more
than a flag (its own tokenizer, saving its KV cache, finding tokens to ban) are small protocols
checked with ``isinstance``, never probed with ``getattr``:

- :class:`Tokenizer`: ``tokenize(text) -> list[int]`` in this process (exact, synchronous counts).
- :class:`KVPersistence`: ``save_state(path)`` / ``load_state(path)`` of the engine's cache.
- :class:`TokenBans`: ``token_ids_containing(fragment)``, for logit-bias bans.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Capabilities", "KVPersistence", "TokenBans", "Tokenizer", "completion_target"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine can do. Everything is off unless the engine says so.

    Attributes:
        text: Text completion with our own template.
        chat: Chat completion (the engine applies the model's template).
        exact_tokens: Token counts come from the model's own tokenizer.
        kv_reuse: The engine reuses a cached prompt prefix between requests.
        context_shift: It can keep cached tokens around a removed span.
        grammar: GBNF grammars constrain the output.
        logit_bias: Per-token logit bias (bans) is honoured.
        abort: A running generation can be aborted on the server.
    """

    text: bool = False
    chat: bool = False
    exact_tokens: bool = False
    kv_reuse: bool = False
    context_shift: bool = False
    grammar: bool = False
    logit_bias: bool = False
    abort: bool = False

    @classmethod
    def of(cls, names: Iterable[str]) -> Capabilities:
        """Capabilities from flag names (``{"text", "exact_tokens"}``); unknown names are an error."""
        names = set(names)
        known = {f.name for f in fields(cls)}
        unknown = names - known
        if unknown:
            raise ValueError(f"unknown engine capabilities {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{name: True for name in names})

    def without(self, *names: str) -> Capabilities:
        """These capabilities less ``names`` (what a particular model or server lacks).

        Raises:
            ValueError: A name is not a capability.
        """
        known = {f.name for f in fields(self)}
        unknown = set(names) - known
        if unknown:
            raise ValueError(f"unknown engine capabilities {sorted(unknown)}; known: {sorted(known)}")
        return replace(self, **dict.fromkeys(names, False))

    @property
    def names(self) -> frozenset[str]:
        """The names of the flags that are on."""
        return frozenset(f.name for f in fields(self) if getattr(self, f.name))

    # Set-like reading, so ``"chat" in info.capabilities`` and ``{"text"} <= info.capabilities`` work.
    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.names))

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Capabilities):
            other = other.names
        if not isinstance(other, (set, frozenset)):
            return NotImplemented
        return self.names >= other

    def __le__(self, other: object) -> bool:
        if isinstance(other, Capabilities):
            other = other.names
        if not isinstance(other, (set, frozenset)):
            return NotImplemented
        return self.names <= other


def completion_target(capabilities: Capabilities, *, prefer_chat: bool = False) -> Literal["text", "messages"]:
    """Whether prompts go out as text (our template) or chat messages (the engine's template).

    Text completion is preferred (the prompt is then exactly what the inspector shows); chat when
    the engine offers nothing else, or when asked for and offered.
    """
    if capabilities.chat and (prefer_chat or not capabilities.text):
        return "messages"
    return "text"


@runtime_checkable
class Tokenizer(Protocol):
    """An engine that tokenizes in this process (synchronously, exactly)."""

    def tokenize(self, text: str) -> list[int]:
        """The model's tokens for ``text`` (no BOS)."""
        ...


@runtime_checkable
class KVPersistence(Protocol):
    """An engine that can save its KV cache to a file and load it again."""

    async def save_state(self, path: str | Path) -> int:
        """Write the cache; returns bytes written."""
        ...

    async def load_state(self, path: str | Path) -> bool:
        """Read a cache written by :meth:`save_state`; False when it does not fit this model."""
        ...


@runtime_checkable
class TokenBans(Protocol):
    """An engine that can list the tokens whose text contains a fragment (for logit-bias bans)."""

    def token_ids_containing(self, fragment: str) -> list[int]:
        """Every token id whose text contains ``fragment``."""
        ...
