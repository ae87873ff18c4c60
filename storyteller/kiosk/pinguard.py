"""The operator PIN's lockout: escalating, and kept across restarts. UI-free.

After ``pin_attempts`` wrong PINs in a row the PIN is refused for ``pin_lockout_seconds``; every
further lockout without a right PIN in between doubles, up to :data:`MAX_LOCKOUT_SECONDS`. With
the defaults (3 tries, 60 s) a visitor gets about 50 guesses in a week, not 10,000. The count
lives in ``<data>/kiosk-pin.json``, written after every wrong PIN, so pulling the plug or a
restart by systemd does not reset it. The operator's right PIN clears it; so does deleting the
file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from storyteller.fileio import atomic_write

__all__ = ["MAX_LOCKOUT_SECONDS", "PinGuard"]

MAX_LOCKOUT_SECONDS = 24 * 3600
"""The longest lockout: a day."""
PIN_STATE_FILE = "kiosk-pin.json"


@dataclass(slots=True)
class _State:
    failures: int = 0
    """Wrong PINs since the last lockout (or the last right PIN)."""
    lockouts: int = 0
    """Lockouts since the last right PIN."""
    locked_until: float = 0.0
    """Epoch seconds until which every PIN is refused."""


class PinGuard:
    """Counts wrong PINs and locks the PIN prompt, escalating.

    Args:
        folder: Where the state file lives (the data folder).
        attempts: Wrong PINs allowed before a lockout.
        lockout_seconds: The first lockout; each further one doubles.
    """

    def __init__(self, folder: Path, attempts: int, lockout_seconds: float) -> None:
        self.path = folder / PIN_STATE_FILE
        self.attempts = attempts
        self.lockout_seconds = lockout_seconds
        self.state = self._load()

    def _load(self) -> _State:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return _State(int(data["failures"]), int(data["lockouts"]), float(data["locked_until"]))
        except (OSError, ValueError, KeyError, TypeError):
            return _State()  # no file yet (a damaged one cannot be told from a deleted one)

    def _save(self) -> None:
        try:
            atomic_write(self.path, json.dumps(asdict(self.state)).encode())
        except OSError:
            pass  # a full or read-only disk: the lockout still holds in memory

    def locked_for(self, now: float) -> float:
        """Seconds the PIN prompt stays locked (0 when a PIN may be tried)."""
        return max(self.state.locked_until - now, 0.0)

    def succeeded(self) -> None:
        """The right PIN: forget every failure."""
        if self.state != _State():
            self.state = _State()
            self._save()

    def failed(self, now: float) -> float:
        """A wrong PIN; returns the lockout it started in seconds (0 when none)."""
        self.state.failures += 1
        lock = 0.0
        if self.state.failures >= self.attempts:
            lock = min(self.lockout_seconds * 2 ** self.state.lockouts, MAX_LOCKOUT_SECONDS)
            self.state.failures = 0
            self.state.lockouts += 1
            self.state.locked_until = now + lock
        self._save()
        return lock
