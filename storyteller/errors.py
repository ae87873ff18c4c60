"""The one error hierarchy of storyteller.

Every error the core raises on purpose derives from :class:`StorytellerError` and carries a
message a person can act on: what went wrong, where, and what to do next. The command line
prints ``storyteller: <message>`` and exits non-zero; the TUI shows the message in a dialog.

::

    StorytellerError
     ├── ConfigError              invalid settings file or environment variable
     ├── FormatError              an input file is not what it claims to be (cards, lore, chats)
     │    └── LimitExceededError  an input is larger than the documented safety limits
     ├── ModelError               a model file cannot be used
     │    ├── ModelNotFoundError  no GGUF found where we looked
     │    └── ModelLoadError      not a GGUF, truncated, or llama.cpp refused it
     ├── EngineError              generation failed (embedded or remote)
     │    ├── EngineConnectionError  refused, DNS failure, dropped connection
     │    ├── EngineTimeoutError     connect / first token / between tokens
     │    ├── EngineAuthError        401 / 403
     │    ├── EngineBusyError        429 / 503; may be retried later
     │    └── EngineResponseError    malformed or unexpected answer (bad JSON, bad SSE, 5xx)
     └── StoryError               a story cannot be opened or saved
          └── StoryLockedError    another process is writing this story
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EngineAuthError",
    "EngineBusyError",
    "EngineConnectionError",
    "EngineError",
    "EngineResponseError",
    "EngineTimeoutError",
    "FormatError",
    "LimitExceededError",
    "ModelError",
    "ModelLoadError",
    "ModelNotFoundError",
    "StoryError",
    "StoryLockedError",
    "StorytellerError",
]


class StorytellerError(Exception):
    """Base class of every error storyteller raises deliberately."""


class ConfigError(StorytellerError):
    """The settings file or a ``STORYTELLER_*`` variable is invalid."""


class FormatError(StorytellerError):
    """An input file (card, lorebook, chat, model) is malformed or of an unknown kind."""


class LimitExceededError(FormatError):
    """An input exceeds a safety limit (size, member count, image pixels, nesting)."""


class ModelError(StorytellerError):
    """A model cannot be found or loaded."""


class ModelNotFoundError(ModelError):
    """No usable GGUF model was found."""


class ModelLoadError(ModelError):
    """A model file exists but cannot be loaded."""


class EngineError(StorytellerError):
    """Generation failed.

    Attributes:
        partial_text: Text already received before the failure; kept by the caller and
            marked as interrupted, never thrown away.
    """

    def __init__(self, message: str, *, partial_text: str = "") -> None:
        super().__init__(message)
        self.partial_text = partial_text


class EngineConnectionError(EngineError):
    """The server could not be reached, or the connection dropped."""


class EngineTimeoutError(EngineError):
    """The server did not answer in time."""


class EngineAuthError(EngineError):
    """The server refused our credentials (401/403)."""


class EngineBusyError(EngineError):
    """The server is busy (429/503); trying again later may work."""


class EngineResponseError(EngineError):
    """The server answered with something we cannot use."""


class StoryError(StorytellerError):
    """A story cannot be opened or saved."""


class StoryLockedError(StoryError):
    """Another process holds the story's writer lock."""
