"""What the model saw: the prompt inspector and the world-info trace of the last turn."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TextArea

__all__ = ["BudgetBar", "PromptInspector", "WorldTrace", "budget_summary"]

_GROUPS = {
    "system": "system", "preamble": "system", "template": "system", "chat_start": "system",
    "description": "card", "personality": "card", "scenario": "card", "persona": "card",
    "post_history": "card", "reply_header": "system",
    "world_info": "world info", "depth_insert": "world info",
    "examples": "examples", "history": "history", "memory": "memory", "authors_note": "author's note",
}


def group_of(kind: str) -> str:
    """The budget group a segment kind counts under."""
    return _GROUPS.get(kind, kind)


def budget_summary(prompt: Any) -> dict[str, int]:
    """Tokens per group (system, card, world info, examples, history, author's note, ...)."""
    totals: dict[str, int] = {}
    for segment in prompt.segments:
        group = group_of(segment.kind)
        totals[group] = totals.get(group, 0) + segment.tokens
    return totals


class BudgetBar(Static):
    """A bar across the context window: each group's share, the reply reserve, and what is free."""

    COMPONENT_CLASSES = {"bar--a", "bar--b", "bar--reserve", "bar--free"}
    DEFAULT_CSS = """
    BudgetBar { height: auto; }
    BudgetBar > .bar--a { color: $primary; }
    BudgetBar > .bar--b { color: $accent; }
    BudgetBar > .bar--reserve { color: $warning; }
    BudgetBar > .bar--free { color: $text-disabled; }
    """

    def __init__(self, prompt: Any, **kwargs: Any) -> None:
        super().__init__(markup=False, **kwargs)
        self.prompt = prompt

    def render(self) -> Text:
        prompt = self.prompt
        budget = prompt.budget
        width = max(10, self.size.width or 60)
        context = max(1, budget.context)
        totals = budget_summary(prompt)
        bar = Text()
        legend = Text()
        styles = [self.get_component_rich_style("bar--a"), self.get_component_rich_style("bar--b")]
        used_cells = 0
        for i, (group, tokens) in enumerate(totals.items()):
            cells = round(width * tokens / context)
            style = styles[i % 2]
            bar.append("█" * cells, style=style)
            used_cells += cells
            legend.append(f"{group} {tokens}  ", style=style)
        reserve = round(width * budget.reserved / context)
        bar.append("▓" * reserve, style=self.get_component_rich_style("bar--reserve"))
        bar.append("░" * max(0, width - used_cells - reserve), style=self.get_component_rich_style("bar--free"))
        legend.append(f"reply reserve {budget.reserved}", style=self.get_component_rich_style("bar--reserve"))
        return Text("\n").join([bar, legend])


class PromptInspector(Screen):
    """The last prompt as segments with token counts, the budget, trimmed parts and cache reuse.

    Args:
        session: The open session (its ``last_prompt`` and ``last_stats`` are shown).
    """

    BINDINGS = [
        Binding("escape,f3", "app.pop_screen", "Back"),
        Binding("c", "copy_prompt", "Copy prompt"),
        Binding("f4", "trace", "World trace"),
    ]
    DEFAULT_CSS = """
    PromptInspector #inspector-summary { height: auto; padding: 0 1; }
    PromptInspector BudgetBar { padding: 0 1; }
    PromptInspector DataTable { height: 1fr; min-height: 5; }
    PromptInspector TextArea { height: 1fr; min-height: 4; }
    """

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.prompt = session.last_prompt

    def compose(self) -> ComposeResult:
        yield Static("Prompt inspector", classes="screen-title", markup=False)
        with Vertical():
            yield Static(self.summary(), id="inspector-summary", markup=False)
            if self.prompt is not None:
                yield BudgetBar(self.prompt)
                yield DataTable(id="segments", cursor_type="row", zebra_stripes=True)
                yield TextArea(self.prompt_text(), id="segment-text", read_only=True, soft_wrap=True)
        yield Footer()

    def prompt_text(self) -> str:
        """The whole prompt as the engine got it (chat messages one per block)."""
        prompt = self.prompt
        if prompt is None:
            return ""
        if prompt.text is not None:
            return prompt.text
        return "\n\n".join(f"[{m.role}] {m.content}" for m in prompt.messages or [])

    def summary(self) -> str:
        """Figures about the last prompt, as lines."""
        prompt = self.prompt
        if prompt is None:
            return "No prompt yet: play a turn first, then come back (F3)."
        budget = prompt.budget
        stats = self.session.last_stats
        lines = [
            f"template {prompt.template} · context {budget.context} · prompt {budget.used} · reply reserve "
            f"{budget.reserved} · free {max(0, budget.available - budget.used)}"
            + (" · counts are estimates" if budget.estimate else ""),
            f"stable prefix {prompt.stable_prefix_tokens} tokens",
        ]
        if stats is not None:
            reused = stats.tokens_reused if stats.tokens_reused is not None else "?"
            evaluated = stats.tokens_evaluated if stats.tokens_evaluated is not None else "?"
            line = f"tokens reused {reused} · evaluated {evaluated}"
            if stats.tokens_shifted:
                line += f" · shifted {stats.tokens_shifted}"
            if stats.cache_note:
                line += f" ({stats.cache_note})"
            lines.append(line)
        lines.append("trimmed: " + ("; ".join(prompt.dropped) if prompt.dropped else "nothing"))
        lines.extend(f"warning: {w}" for w in prompt.warnings)
        return "\n".join(lines)

    def on_mount(self) -> None:
        if self.prompt is None:
            return
        table = self.query_one(DataTable)
        table.add_columns("#", "part", "source", "tokens", "text")
        for i, segment in enumerate(self.prompt.segments):
            preview = " ".join(segment.text.split())[:60]
            table.add_row(str(i), segment.kind, Text(segment.source), str(segment.tokens), Text(preview), key=str(i))
        table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.prompt is None or event.row_key.value is None:
            return
        segment = self.prompt.segments[int(event.row_key.value)]
        self.query_one(TextArea).load_text(segment.text)

    def action_copy_prompt(self) -> None:
        """Copy the whole prompt (OSC 52, so it works over SSH and tmux)."""
        if self.prompt is None:
            self.notify("There is no prompt yet.", markup=False)
            return
        self.app.copy_to_clipboard(self.prompt_text())
        self.notify("The prompt was copied to the clipboard.", markup=False)

    def action_trace(self) -> None:
        """Switch to the world-info trace."""
        self.app.switch_screen(WorldTrace(self.session))


class WorldTrace(Screen):
    """Which world-info entries fired or were skipped on the last turn, why, and their cost.

    Args:
        session: The open session (its ``last_lore`` is shown).
    """

    BINDINGS = [
        Binding("escape,f4", "app.pop_screen", "Back"),
        Binding("a", "toggle_all", "Fired only / all"),
        Binding("f3", "inspector", "Prompt"),
    ]
    DEFAULT_CSS = """
    WorldTrace #trace-summary { height: auto; padding: 0 1; }
    WorldTrace DataTable { height: 1fr; }
    WorldTrace #trace-detail { height: auto; max-height: 6; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.lore = session.last_lore
        self.show_all = True

    def compose(self) -> ComposeResult:
        yield Static("World info: the last turn", classes="screen-title", markup=False)
        yield Static(self.summary(), id="trace-summary", markup=False)
        yield DataTable(id="trace", cursor_type="row", zebra_stripes=True)
        yield Static("", id="trace-detail", markup=False)
        yield Footer()

    def summary(self) -> str:
        """Totals of the last activation."""
        lore = self.lore
        if lore is None:
            if not self.session.parts.books:
                return "This story has no world info."
            return "No turn played yet: world info is activated when a reply is generated."
        fired = sum(1 for t in lore.trace if t.status == "activated")
        return (f"{fired} fired, {len(lore.trace) - fired} skipped · {lore.tokens_used}/{lore.budget} tokens"
                + (" · budget ran out" if lore.overflowed else "") + f" · {lore.passes} scan pass(es)")

    def rows(self) -> list[Any]:
        """The trace records shown (all, or only those that fired)."""
        if self.lore is None:
            return []
        return [t for t in self.lore.trace if self.show_all or t.status == "activated"]

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("", "entry", "book", "why", "key / where", "tokens")
        self._fill()
        table.focus()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for i, item in enumerate(self.rows()):
            mark = "✔" if item.status == "activated" else "·"
            where = " in ".join(x for x in (item.matched_key, item.matched_in) if x)
            table.add_row(mark, Text(item.title), Text(item.book), item.reason, Text(where),
                          "" if item.tokens is None else str(item.tokens), key=str(i))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        rows = self.rows()
        if event.row_key.value is None or int(event.row_key.value) >= len(rows):
            return
        item = rows[int(event.row_key.value)]
        self.query_one("#trace-detail", Static).update(f"{item.title}: {item.detail or item.reason}")

    def action_toggle_all(self) -> None:
        """Show every entry, or only those that fired."""
        self.show_all = not self.show_all
        self._fill()

    def action_inspector(self) -> None:
        """Switch to the prompt inspector."""
        self.app.switch_screen(PromptInspector(self.session))
