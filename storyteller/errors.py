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
    "describe_os_error",
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


def describe_os_error(exc: OSError, doing: str = "writing") -> str:
    """One sentence for a failed file operation: what happened, that nothing saved was lost, what to do.

    Every write in storyteller is atomic (a temp file renamed into place) or an append that is
    cut back on failure, so a full or read-only disk never damages what was saved before.

    Args:
        exc: The error from the operating system.
        doing: What was being done, e.g. ``"saving the turn"`` or ``"importing the card"``.
    """
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    kept = "nothing saved before was lost"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (f"the disk is full{where} while {doing}: {kept}. Free some space on that disk "
                "(old snapshots in stories/*/archive, unused models, the cache folder) and try again.")
    if exc.errno == errno.EROFS:
        return (f"the disk is read-only{where} while {doing}: {kept}. Remount it writable, or point "
                "STORYTELLER_HOME at a writable folder.")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied{where} while {doing}: {kept}. Check the owner and permissions of that folder."
    if exc.errno == errno.ENOTDIR:
        return f"a file stands where a folder is needed{where} while {doing}: {kept}. Move that file away."
    return f"{exc.strerror or exc}{where} while {doing}: {kept}."
