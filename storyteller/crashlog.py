"""Native crashes of a long-running process (the app, the kiosk) are told on the next start.

A segfault inside llama.cpp kills the process at once: Textual cannot restore the terminal and
nothing of ours runs. :func:`arm` points Python's faulthandler at ``cache/engine-crash.log``; on
the next start :func:`previous_crash` finds a non-empty log, returns one sentence for the player
(what crashed, what to do) and moves the log aside, so it is told once.
"""

from __future__ import annotations

import faulthandler
import re
from pathlib import Path
from typing import IO

__all__ = ["arm", "previous_crash", "LOG_NAME"]

LOG_NAME = "engine-crash.log"
_handle: IO[str] | None = None


def _log(cache_dir: Path) -> Path:
    return Path(cache_dir) / LOG_NAME


def previous_crash(cache_dir: Path) -> str | None:
    """One line about the crash that ended the last run, or None; the log is then moved aside."""
    log = _log(cache_dir)
    try:
        if not log.is_file() or log.stat().st_size == 0:
            return None
        text = log.read_text(encoding="utf-8", errors="replace")
        log.replace(log.with_suffix(".log.prev"))
    except OSError:
        return None
    kind = re.search(r"Fatal Python error: ([^\n]+)", text)
    what = kind.group(1).strip() if kind else "a native crash"
    native = "llama" in text or "ggml" in text
    from storyteller.engines.native import crash_hint

    where = "in the llama.cpp engine" if native else ""
    return (f"The last session ended with {what} {where}".replace("  ", " ").strip()
            + f" (details: {log.with_suffix('.log.prev')}). If it happens again: {crash_hint(1)}.")


def arm(cache_dir: Path) -> None:
    """Send faulthandler's report of a fatal crash to the crash log (kept open for the process)."""
    global _handle
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        if _handle is not None:
            _handle.close()
        _handle = open(_log(cache_dir), "w", encoding="utf-8")  # noqa: SIM115 - must stay open
        faulthandler.enable(file=_handle, all_threads=True)
    except OSError:
        faulthandler.enable()
