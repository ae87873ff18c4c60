"""Sampler presets: pick one for the story, create, edit, delete, import SillyTavern / Kobold files.

The presets themselves live in :mod:`storyteller.presets` (no UI there); this screen is a form
over them. A blank field means "the preset does not set this": the global sampler value is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Static

from storyteller.errors import StorytellerError
from storyteller.paths import Paths
from storyteller.session import Session
from storyteller.tui.messages import PresetImported
from storyteller.tui.screens.dialogs import Confirm, Report
from storyteller.tui.screens.library import PathSuggester

__all__ = ["FORM_FIELDS", "PresetsScreen", "values_from_form"]

FORM_FIELDS: list[tuple[str, str, type]] = [
    ("max_tokens", "reply tokens", int), ("temperature", "temperature", float), ("top_p", "top p", float),
    ("top_k", "top k", int), ("min_p", "min p", float), ("typical_p", "typical p", float),
    ("repeat_penalty", "repeat penalty", float), ("repeat_last_n", "repeat range", int),
    ("presence_penalty", "presence pen.", float), ("frequency_penalty", "frequency pen.", float),
    ("mirostat_mode", "mirostat 0-2", int), ("mirostat_tau", "mirostat tau", float),
    ("mirostat_eta", "mirostat eta", float), ("dry_multiplier", "DRY multiplier", float),
    ("dry_base", "DRY base", float), ("dry_allowed_length", "DRY length", int),
    ("dry_penalty_last_n", "DRY range", int), ("xtc_probability", "XTC chance", float),
    ("xtc_threshold", "XTC threshold", float), ("top_n_sigma", "top n sigma", float), ("seed", "seed", int),
]
_FORM_NAMES = {name for name, _label, _kind in FORM_FIELDS}


def values_from_form(raw: dict[str, str], keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sampler values from the form's text (blank: not set), plus ``keep`` (values the form lacks).

    Raises:
        ValueError: A field is not a number of the right kind (the message names it).
    """
    values = {key: value for key, value in (keep or {}).items() if key not in _FORM_NAMES}
    for name, label, kind in FORM_FIELDS:
        text = raw.get(name, "").strip()
        if not text:
            continue
        try:
            values[name] = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ValueError(f"{label} must be {what}, not {text!r}") from None
    return values


def _summary(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items() if k in _FORM_NAMES)[:60] or "(nothing set)"


class PresetsScreen(Screen):
    """List, edit, import and choose sampler presets.

    Args:
        paths: Where the presets folder is.
        session: The open story's session (to choose its preset), or ``None``.
    """

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+u", "use", "Use for story", priority=True),
        Binding("ctrl+n", "new", "New"),
        Binding("ctrl+d", "delete", "Delete", priority=True),
        Binding("ctrl+o", "focus_import", "Import"),
    ]
    DEFAULT_CSS = """
    PresetsScreen #presets { height: 7; }
    PresetsScreen #preset-form { height: 1fr; padding: 0 1; }
    PresetsScreen .row { height: auto; }
    PresetsScreen .row Label { padding: 1 0 0 1; min-width: 15; }
    PresetsScreen .row Input { width: 10; }
    PresetsScreen .row Input.wide { width: 1fr; }
    PresetsScreen .row Button { margin-right: 1; }
    PresetsScreen #story-preset { color: $text-muted; }
    """

    def __init__(self, paths: Paths, session: Session | None = None) -> None:
        super().__init__()
        self.paths = paths
        self.session = session
        self.presets: list[Any] = []
        self.current: Any | None = None

    def compose(self) -> ComposeResult:
        yield Static("Sampler presets", classes="screen-title", markup=False)
        yield DataTable(id="presets", cursor_type="row", zebra_stripes=True)
        yield Static("", id="story-preset", markup=False)
        with VerticalScroll(id="preset-form"):
            with Horizontal(classes="row"):
                yield Label("name")
                yield Input("", id="p-name", classes="wide")
            for i in range(0, len(FORM_FIELDS), 3):
                with Horizontal(classes="row"):
                    for name, label, kind in FORM_FIELDS[i:i + 3]:
                        yield Label(label)
                        yield Input("", id=f"p-{name}", type="integer" if kind is int else "number",
                                    placeholder="-")
            yield Static("", id="p-kept", markup=False)
            with Horizontal(classes="row"):
                yield Button("Use for story (^u)", id="use", variant="primary")
                yield Button("Save (^s)", id="save")
                yield Button("New (^n)", id="new")
                yield Button("Delete (^d)", id="delete", variant="error")
            with Horizontal(classes="row"):
                yield Input(placeholder="SillyTavern or Kobold preset file to import (Tab completes)",
                            id="import-path", classes="wide", suggester=PathSuggester())
                yield Button("Import", id="import")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#presets", DataTable).add_columns("name", "from", "sets")
        self.reload(select=self.story_preset)
        self.query_one("#presets", DataTable).focus()

    @property
    def story_preset(self) -> str | None:
        """The open story's preset name."""
        return self.session.story.settings.sampler_preset if self.session is not None else None

    def reload(self, select: str | None = None) -> None:
        """Read the presets again and fill the list, highlighting ``select``."""
        from storyteller.presets import list_presets

        warnings: list[str] = []
        self.presets = list_presets(self.paths, warnings=warnings)
        for warning in warnings:
            self.notify(warning, severity="warning", markup=False, timeout=8)
        table = self.query_one("#presets", DataTable)
        table.clear()
        for i, preset in enumerate(self.presets):
            table.add_row(Text(preset.name), "bundled" if preset.bundled else "yours", Text(_summary(preset.values)),
                          key=str(i))
        self._show_story_preset()
        index = next((i for i, p in enumerate(self.presets) if select and p.name.casefold() == select.casefold()), 0)
        if self.presets:
            table.move_cursor(row=index)
            self.show(self.presets[index])

    def _show_story_preset(self) -> None:
        if self.session is None:
            text = "No story is open: presets can be edited here and chosen once a story is open."
        else:
            text = f"This story uses: {self.story_preset or 'no preset (the sampler values in Settings)'}"
        self.query_one("#story-preset", Static).update(text)

    def show(self, preset: Any | None) -> None:
        """Put ``preset`` (or an empty new one) into the form."""
        self.current = preset
        values = preset.values if preset is not None else {}
        self.query_one("#p-name", Input).value = preset.name if preset is not None else "new preset"
        for name, _label, _kind in FORM_FIELDS:
            value = values.get(name)
            self.query_one(f"#p-{name}", Input).value = "" if value is None else str(value)
        kept = [key for key in values if key not in _FORM_NAMES]
        self.query_one("#p-kept", Static).update(
            f"Also sets (kept as they are): {', '.join(kept)}" if kept else
            "Blank fields are not set by the preset: the sampler values in Settings apply.")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.show(self.presets[int(event.row_key.value)])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_use()

    def form_values(self) -> dict[str, str]:
        """The form's fields as text."""
        return {name: self.query_one(f"#p-{name}", Input).value for name, _label, _kind in FORM_FIELDS}

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        actions = {"use": self.action_use, "save": self.action_save, "new": self.action_new,
                   "delete": self.action_delete, "import": self.action_import}
        actions[event.button.id or "save"]()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "import-path":
            event.stop()
            self.action_import()

    # -- actions ---------------------------------------------------------------------------

    def action_save(self) -> None:
        """Save the form as a preset (a bundled preset becomes your copy)."""
        from storyteller.presets import save_preset

        current = self.current
        keep = current.values if current is not None else {}
        try:
            values = values_from_form(self.form_values(), keep)
        except ValueError as exc:
            self.notify(f"Not saved: {exc}", severity="error", markup=False, timeout=8)
            return
        old_name = current.name if current is not None and not current.bundled else None
        try:
            saved = save_preset(self.query_one("#p-name", Input).value, values, self.paths, old_name=old_name)
        except (StorytellerError, OSError) as exc:
            self.notify(f"Not saved: {exc}", severity="error", markup=False, timeout=8)
            return
        renamed_in_use = old_name and self.story_preset and old_name.casefold() == self.story_preset.casefold()
        if renamed_in_use and saved.name != old_name:
            self._set_story_preset(saved.name, quiet=True)
        self.reload(select=saved.name)
        self.notify(f"Saved the preset {saved.name!r} ({saved.path}).", markup=False)

    def action_new(self) -> None:
        """Start a new preset in the form (ctrl+s saves it)."""
        self.show(None)
        self.query_one("#p-name", Input).focus()

    def action_delete(self) -> None:
        """Delete the highlighted preset of yours (after asking)."""
        preset = self.current
        if preset is None or preset.bundled:
            self.notify("Bundled presets cannot be deleted; save a copy to change one.", markup=False)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            from storyteller.presets import delete_preset, list_presets

            try:
                delete_preset(preset.name, self.paths)
            except (StorytellerError, OSError) as exc:
                self.notify(f"Not deleted: {exc}", severity="error", markup=False)
                return
            used = self.story_preset and self.story_preset.casefold() == preset.name.casefold()
            if used and not any(p.name.casefold() == preset.name.casefold() for p in list_presets(self.paths)):
                self._set_story_preset(None, quiet=True)
            self.reload(select=preset.name)
            self.notify(f"Deleted the preset {preset.name!r}.", markup=False)

        self.app.push_screen(Confirm(f"Delete the preset {preset.name!r}?"), answered)

    def action_use(self) -> None:
        """Make the highlighted preset the story's."""
        if self.current is None:
            return
        self._set_story_preset(self.current.name)

    def _set_story_preset(self, name: str | None, *, quiet: bool = False) -> None:
        session = self.session
        if session is None:
            self.notify("Open a story first; then choose its preset here.", markup=False)
            return
        try:
            session.apply_sampling(preset=name)
        except StorytellerError as exc:
            self.notify(f"Not changed: {exc}", severity="error", markup=False)
            return
        self._show_story_preset()
        if not quiet:
            self.notify(f"The story uses the preset {name!r} from the next reply." if name else
                        "The story uses no preset now.", markup=False)

    def action_focus_import(self) -> None:
        """Put the cursor in the import path."""
        self.query_one("#import-path", Input).focus()

    def action_import(self) -> None:
        """Import the preset file named in the path box."""
        raw = self.query_one("#import-path", Input).value.strip()
        if not raw:
            self.action_focus_import()
            return
        self.import_file(raw)

    @work(thread=True, exclusive=True, group="preset-import", exit_on_error=False, name="import preset")
    def import_file(self, raw: str) -> None:
        """Import a preset file in a thread; the report comes back as a message."""
        from storyteller.presets import import_preset

        try:
            preset, report = import_preset(Path(raw), self.paths)
        except StorytellerError as exc:
            self.post_message(PresetImported(None, [], str(exc)))
        except OSError as exc:
            self.post_message(PresetImported(None, [], f"cannot read or write a file: {exc}"))
        else:
            self.post_message(PresetImported(preset.name, report.lines(), None))

    def on_preset_imported(self, message: PresetImported) -> None:
        if message.error is not None or message.name is None:
            self.app.push_screen(Report("Preset import failed", [message.error or "unknown error"]))
            return
        self.query_one("#import-path", Input).value = ""
        self.reload(select=message.name)
        self.app.push_screen(Report(f"Imported preset: {message.name}", message.lines))
