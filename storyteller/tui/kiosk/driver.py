"""The kiosk's terminal driver: Textual's Linux driver, hardened for a public keyboard.

Two things differ from :class:`textual.drivers.linux_driver.LinuxDriver`:

* bytes that are not UTF-8 (a broken keyboard, a serial line, a visitor with a hex tool) are
  dropped instead of killing the input thread with ``UnicodeDecodeError``;
* SIGTSTP is ignored: Textual installs a handler that stops the process (for ctrl+z), so
  ``kill -TSTP`` from another process would freeze the kiosk.
"""

from __future__ import annotations

import os
import selectors
import signal
from codecs import getincrementaldecoder
from typing import Any

from textual._loop import loop_last
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

__all__ = ["KioskDriver"]

class KioskDriver(LinuxDriver):
    """Textual's Linux driver that ignores SIGTSTP and input that is not UTF-8."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        signal.signal(signal.SIGTSTP, signal.SIG_IGN)  # LinuxDriver just installed its own

    def run_input_thread(self) -> None:
        """Wait for input and dispatch events (LinuxDriver's loop with a lenient decoder)."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")(errors="ignore").decode

        def process(events: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
            for last, (_key, mask) in loop_last(events):
                if mask & selectors.EVENT_READ:
                    raw = os.read(self.fileno, 1024 * 4)
                    if not raw:
                        break
                    text = decode(raw, final=final and last)
                    if not text:
                        continue  # only undecodable bytes: feeding "" would tell the parser "end of input"
                    for event in parser.feed(text):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process(selector.select(0.1))
            selector.unregister(self.fileno)
            process(selector.select(0.1), final=True)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
