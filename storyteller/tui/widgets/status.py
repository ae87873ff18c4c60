"""The status bar under the input: engine, model, GPU layers, context, cache reuse, speed."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

__all__ = ["StatusBar", "status_text"]


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def status_text(info: Any, prompt: Any | None, stats: Any | None, state: str = "", *, reply_tokens: int = 0,
                group: str = "") -> str:
    """One line describing the engine and the last turn.

    Args:
        info: The backend's :class:`~storyteller.engines.base.BackendInfo`.
        prompt: The last :class:`~storyteller.prompt.Prompt`, if any.
        stats: The last :class:`~storyteller.engines.base.GenerationStats`, if any.
        state: What is happening now (``generating``, ``reading prompt 40%``...).
        reply_tokens: Tokens of the reply to that prompt so far: they fill the context too.
        group: A group chat's part (who speaks or is next, the order, who is muted); first when set.
    """
    parts = [info.engine, _short(info.model or "?", 26)]
    if info.engine == "embedded":
        parts.append(f"GPU {info.gpu_layers}" + (f" {info.gpu_backend}" if info.gpu_layers and info.gpu_backend else ""))
    used = (prompt.budget.used + reply_tokens) if prompt is not None else 0
    parts.append(f"ctx {used}/{info.context_length}")
    if stats is not None:
        if stats.tokens_reused is not None:
            parts.append(f"reused {stats.tokens_reused}")
        if stats.tokens_per_second:
            parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    line = " · ".join(parts)
    line = f"{group} │ {line}" if group else line
    return f"{state} │ {line}" if state else line


class StatusBar(Static):
    """Shows :func:`status_text`; the story screen updates it after each event."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=False, **kwargs)
        self.line = ""

    def show(self, info: Any, prompt: Any | None, stats: Any | None, state: str = "", *,
             reply_tokens: int = 0, group: str = "") -> None:
        """Update the line."""
        self.line = status_text(info, prompt, stats, state, reply_tokens=reply_tokens, group=group)
        self.update(Text(self.line, no_wrap=True, overflow="ellipsis"))
