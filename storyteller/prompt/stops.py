"""Stop strings: which ones a turn needs, and a filter for streamed text.

Backends match stop strings too, but not all of them reliably (and some keep generating after a
match); :class:`StopFilter` matches them again on our side. It never lets out text that could
still turn out to be the start of a stop string, so a half-written ``\\nAlice:`` never reaches the
screen, and it says the moment a stop matched so the caller can cancel the backend at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["ACTION_MARKER", "StopFilter", "cut_at_stop", "name_stops", "unique_stops"]

ACTION_MARKER = "\n>"
"""Adventure mode: a new line starting with ``>`` is the player's action, never the model's."""


def unique_stops(stops: Iterable[str]) -> list[str]:
    """Drop empty and repeated stop strings, keeping the first order."""
    return [s for s in dict.fromkeys(stops) if s]


def name_stops(user: str) -> list[str]:
    """Stops that catch the model starting to speak for the user (``\\nAlice:``, ``\\nAlice ``)."""
    user = user.strip()
    if not user:
        return []
    return [f"\n{user}:", f"\n{user} "]


def cut_at_stop(text: str, stops: Sequence[str], context: str = "") -> tuple[str, str | None]:
    """Cut finished text at the first stop string; returns (text, matched stop or None).

    Args:
        text: Generated text.
        stops: Stop strings.
        context: The end of the prompt, so a stop straddling prompt and reply is found.
    """
    flt = StopFilter(stops, context=context)
    out = flt.feed(text)
    return (out if flt.stopped else out + flt.flush()), flt.matched


class StopFilter:
    """Holds back streamed text that could begin a stop string.

    Feed chunks as they arrive; each call returns the text that is safe to show. After a
    match, :attr:`stopped` is true, :attr:`matched` names the stop, and every later call
    returns ``""``. Call :meth:`flush` when the stream ends without a match.

    Args:
        stops: Stop strings (empty ones are ignored).
        context: The last characters of the prompt. A stop may begin there: with the prompt
            ending in ``"\\n"`` and the stop ``"\\n>"``, a reply starting with ``">"`` stops
            at once. Context text itself is never returned.

    Attributes:
        text: Everything released so far.
    """

    def __init__(self, stops: Sequence[str], *, context: str = "") -> None:
        self.stops = unique_stops(stops)
        self._longest = max((len(s) for s in self.stops), default=0)
        keep = max(self._longest - 1, 0)
        self._context = context[-keep:] if keep else ""
        self._held = ""
        self.stopped = False
        self.matched: str | None = None
        self.text = ""

    def feed(self, chunk: str) -> str:
        """Add a chunk; return the part that can be shown now."""
        if self.stopped or not chunk:
            return ""
        if not self.stops:
            self.text += chunk
            return chunk
        lead = len(self._context)
        buffer = self._context + self._held + chunk
        hit, hit_at = None, -1
        for stop in self.stops:
            at = buffer.find(stop)
            if at >= 0 and (hit_at < 0 or at < hit_at or (at == hit_at and len(stop) > len(hit or ""))):
                hit, hit_at = stop, at
        if hit is not None:
            self.stopped, self.matched = True, hit
            out = buffer[lead:max(hit_at, lead)]
            self._held = ""
            self.text += out
            return out
        cut = max(len(buffer) - self._hold_length(buffer), lead)
        out = buffer[lead:cut]
        self._held = buffer[cut:]
        # What precedes the held text, as far back as a stop could reach.
        keep = max(self._longest - 1, 0)
        self._context = buffer[:cut][-keep:] if keep else ""
        self.text += out
        return out

    def _hold_length(self, buffer: str) -> int:
        """Length of the longest buffer suffix that is a proper prefix of some stop."""
        for size in range(min(self._longest - 1, len(buffer)), 0, -1):
            tail = buffer[-size:]
            if any(stop.startswith(tail) for stop in self.stops):
                return size
        return 0

    def flush(self) -> str:
        """The stream ended without a stop: release whatever was held back."""
        if self.stopped:
            return ""
        out, self._held = self._held, ""
        self.text += out
        return out
