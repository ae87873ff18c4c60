"""Settings: engine, server URL, model with GPU layers / context / threads, sampler, the story's
sampler preset and template, theme.

Saved into ``config.toml`` (atomically, other keys kept); the theme goes to the app's own
preferences. Engine changes take effect when the engine is reloaded (a button here). The
story's preset and template are story settings: they are saved with the story as soon as they
are picked and the next reply uses them (through ``Session.apply_sampling`` / ``Session.use_template``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from storyteller.config import Settings
from storyteller.errors import StorytellerError
from storyteller.paths import Paths
from storyteller.session import Session
from storyteller.tui._prefs import save_prefs, update_config
from storyteller.tui.messages import PresetsRequested, SettingsSaved

__all__ = ["SAMPLER_FIELDS", "SettingsScreen", "settings_from_form"]

SAMPLER_FIELDS = [("max_tokens", "reply tokens", int), ("temperature", "temperature", float),
                  ("top_p", "top p", float), ("top_k", "top k", int), ("min_p", "min p", float),
                  ("repeat_penalty", "repeat penalty", float)]
_ENGINES = [("embedded llama.cpp", "embedded"), ("KoboldAI API (koboldcpp)", "kobold"),
            ("OpenAI-compatible server", "openai"), ("scripted fake (demo)", "fake")]


def _number(raw: str, kind: type) -> Any:
    raw = raw.strip()
    return None if raw == "" else kind(raw)


def _gpu_layers(raw: str) -> int | str:
    """GPU layers as typed: ``auto`` (or nothing), ``-1`` for all, or a number."""
    raw = raw.strip()
    if raw.lower() in ("", "auto"):
        return "auto"
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"engine.n_gpu_layers: {raw!r} is not a number; type auto, -1 (all) or a number") from None


ENGINE_KEYS = ("kind", "model", "n_gpu_layers", "n_ctx", "n_threads")
"""Engine settings that only take effect when the engine is opened again."""


def needs_reload(old: Settings, new: Settings) -> list[str]:
    """The engine settings that differ between ``old`` and ``new`` (each needs a reload)."""
    changed = [key for key in ENGINE_KEYS if getattr(old.engine, key) != getattr(new.engine, key)]
    if old.remote.url != new.remote.url and new.engine.kind in ("kobold", "openai"):
        changed.append("url")
    return changed


def settings_from_form(base: Settings, values: dict[str, Any]) -> tuple[Settings, dict[str, dict[str, Any]]]:
    """New settings and the ``config.toml`` changes for the form's values.

    Raises:
        ValueError: A value is not a number or out of range (the message names the field).
    """
    engine: dict[str, Any] = {
        "kind": values["kind"],
        "model": values["model"] or None,
        "n_gpu_layers": _gpu_layers(values["n_gpu_layers"]),
        "n_ctx": _number(values["n_ctx"], int),
        "n_threads": _number(values["n_threads"], int),
    }
    remote = {"url": values["url"].strip() or base.remote.url}
    sampling = {name: _number(values[name], kind) for name, _label, kind in SAMPLER_FIELDS}
    sampling_set = {k: v for k, v in sampling.items() if v is not None or k != "max_tokens"}
    try:
        new = base.model_copy(update={
            "engine": type(base.engine).model_validate({**base.engine.model_dump(), **engine}),
            "remote": type(base.remote).model_validate({**base.remote.model_dump(), **remote}),
            "sampling": type(base.sampling).model_validate({**base.sampling.model_dump(), **sampling_set}),
        })
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}") from None
    return new, {"engine": engine, "remote": remote, "sampling": sampling}


class SettingsScreen(Screen):
    """Edit and save the settings; test the connection.

    Args:
        settings: The app's current settings (not changed until saved).
        paths: Where ``config.toml`` lives.
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+t", "test", "Test connection"),
        Binding("ctrl+e", "save(True)", "Save and reload engine"),
        Binding("f10", "app.presets", "Presets"),
    ]
    DEFAULT_CSS = """
    SettingsScreen VerticalScroll { padding: 0 1; }
    SettingsScreen .row { height: auto; }
    SettingsScreen .row Label { padding: 1 1 0 0; min-width: 14; }
    SettingsScreen .row Input { width: 14; }
    SettingsScreen .wide Input, SettingsScreen .wide Select { width: 1fr; }
    SettingsScreen .section { color: $accent; text-style: bold; margin-top: 1; }
    SettingsScreen #settings-buttons Button { margin-right: 1; }
    """

    def __init__(self, settings: Settings, paths: Paths, session: Session | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.paths = paths
        self.session = session
        """The open story's session, if any (its preset and template are set here)."""
        self.last_test: str | None = None
        self._saved_form: dict[str, Any] | None = None
        """The form as last saved (or opened): Esc asks before leaving other values unsaved."""

    def on_mount(self) -> None:
        self._saved_form = self.form_values()
        self.query_one("#kind", Select).focus()

    def _models(self) -> list[tuple[str, str]]:
        from storyteller.model_sources import discover

        options = [("the default (SmolLM2, bundled)", "")]
        models = self.settings.models  # storyteller's folder, then Ollama, LM Studio, Jan, GPT4All, HF cache
        for found in discover(self.paths, folders=models.folders, other_apps=models.other_apps).models:
            if found.source != "bundled":
                options.append((f"{found.ref}  ({found.source})", found.ref))
        current = self.settings.engine.model
        if current and current not in [v for _l, v in options]:
            options.append((current, current))
        return options

    def compose(self) -> ComposeResult:
        s = self.settings
        yield Static("Settings", classes="screen-title", markup=False)
        with VerticalScroll():
            yield Label("Engine", classes="section")
            with Horizontal(classes="row wide"):
                yield Label("engine")
                yield Select(_ENGINES, value=s.engine.kind, allow_blank=False, id="kind")
            with Horizontal(classes="row wide"):
                yield Label("server URL")
                yield Input(s.remote.url, id="url")
            with Horizontal(classes="row wide"):
                yield Label("model")
                yield Select(self._models(), value=s.engine.model or "", allow_blank=False, id="model")
            with Horizontal(classes="row"):
                yield Label("GPU layers")
                yield Input(str(s.engine.n_gpu_layers), id="n_gpu_layers", placeholder="auto")
                yield Label("context")
                yield Input("" if s.engine.n_ctx is None else str(s.engine.n_ctx), id="n_ctx", type="integer",
                            placeholder="auto")
            with Horizontal(classes="row"):
                yield Label("threads")
                yield Input("" if s.engine.n_threads is None else str(s.engine.n_threads), id="n_threads",
                            type="integer", placeholder="auto")
            yield Label("Sampler", classes="section")
            for i in range(0, len(SAMPLER_FIELDS), 2):
                with Horizontal(classes="row"):
                    for name, label, kind in SAMPLER_FIELDS[i:i + 2]:
                        value = getattr(s.sampling, name)
                        yield Label(label)
                        yield Input("" if value is None else str(value), id=name,
                                    type="integer" if kind is int else "number")
            yield from self._story_section()
            yield Label("Look", classes="section")
            with Horizontal(classes="row wide"):
                yield Label("theme")
                yield Select([(t, t) for t in sorted(self.app.available_themes)], value=self.app.theme,
                             allow_blank=False, id="theme")
            with Horizontal(classes="row", id="settings-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Test connection (ctrl+t)", id="test")
                yield Button("Save and reload engine (ctrl+e)", id="reload")
        yield Footer()

    def _story_section(self) -> ComposeResult:
        session = self.session
        if session is None:
            return
        from storyteller.session import Library

        st = session.story.settings
        yield Label(f"This story ({session.story.name})", classes="section")
        options, current = self._preset_options()
        with Horizontal(classes="row wide"):
            yield Label("sampler preset")
            yield Select(options, value=current, allow_blank=False, id="story-preset")
        templates = [("auto: from the model", "auto"), ("none: plain text", "none")]
        templates += [(name, name) for name in Library(self.paths).template_names()]
        template = (st.template or "auto").lower()
        if template not in {v for _l, v in templates}:
            templates.append((f"{template} (missing)", template))
        with Horizontal(classes="row wide"):
            yield Label("template")
            yield Select(templates, value=template, allow_blank=False, id="story-template")
        with Horizontal(classes="row"):
            yield Button("Sampler presets… (F10)", id="presets")

    def form_values(self) -> dict[str, Any]:
        """The form as plain values."""
        values: dict[str, Any] = {"kind": self.query_one("#kind", Select).value,
                                  "model": self.query_one("#model", Select).value,
                                  "url": self.query_one("#url", Input).value}
        for name in ("n_gpu_layers", "n_ctx", "n_threads", *(f for f, _l, _k in SAMPLER_FIELDS)):
            values[name] = self.query_one(f"#{name}", Input).value
        return values

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "story-preset" and isinstance(event.value, str):
            self._set_story(sampler_preset=event.value or None)
        elif event.select.id == "story-template" and isinstance(event.value, str):
            self._set_story(template=None if event.value == "auto" else event.value)
        if event.select.id == "theme" and isinstance(event.value, str):
            self.app.theme = event.value
            try:
                save_prefs(self.paths, theme=event.value)
            except OSError as exc:
                self.notify(f"The theme was not saved: {exc}", severity="warning", markup=False)

    def _set_story(self, **changes: Any) -> None:
        session = self.session
        if session is None:
            return
        if all(getattr(session.story.settings, key) == value for key, value in changes.items()):
            return  # the Select reporting its first value
        try:
            if "sampler_preset" in changes:
                session.apply_sampling(preset=changes["sampler_preset"])
            else:
                used = session.use_template(changes["template"])
        except StorytellerError as exc:
            self.notify(f"Not changed: {exc}", severity="error", markup=False)
            return
        if "template" in changes:
            chosen = changes["template"] or "auto"
            self.notify(f"The story uses the template {used!r} from the next reply"
                        + (" (auto: the model's own)." if chosen == "auto" else "."), markup=False)
        else:
            preset = changes["sampler_preset"]
            self.notify(f"The story uses the preset {preset!r} from the next reply." if preset else
                        "The story uses no preset now.", markup=False)

    def action_back(self) -> None:
        """Leave (asking first when the form has unsaved values)."""
        if self._saved_form is not None and self.form_values() != self._saved_form:
            from storyteller.tui.screens.dialogs import Confirm

            def answered(discard: bool | None) -> None:
                if discard:
                    self._leave()

            self.app.push_screen(Confirm("Leave Settings without saving your changes? (ctrl+s saves)"), answered)
            return
        self._leave()

    def _leave(self) -> None:
        self.app.pop_screen()

    def on_screen_resume(self) -> None:
        # Back from the presets screen: the list of presets or the story's choice may have changed.
        session = self.session
        if session is None or not self.query("#story-preset"):
            return
        select = self.query_one("#story-preset", Select)
        options, current = self._preset_options()
        select.set_options(options)
        select.value = current

    def _preset_options(self) -> tuple[list[tuple[str, str]], str]:
        """The preset choices and the story's (as one of the option values)."""
        from storyteller.presets import list_presets

        presets = [(f"{p.name}{'' if p.bundled else ' (yours)'}", p.name) for p in list_presets(self.paths)]
        current = (self.session.story.settings.sampler_preset if self.session is not None else None) or ""
        if current and current.casefold() not in {v.casefold() for _l, v in presets}:
            presets.append((f"{current} (missing: not used)", current))
        current = next((v for _l, v in presets if v.casefold() == current.casefold()), "")
        return [("none: the sampler values above", ""), *presets], current

    def _build(self) -> tuple[Settings, dict] | None:
        try:
            return settings_from_form(self.settings, self.form_values())
        except ValueError as exc:
            self.notify(f"Not saved: {exc}", severity="error", markup=False, timeout=8)
            return None

    def action_save(self, reload: bool = False) -> None:
        """Validate and write ``config.toml``; the app uses the new values from now on."""
        built = self._build()
        if built is None:
            return
        new, changes = built
        try:
            path = update_config(self.paths, changes)
        except (StorytellerError, OSError) as exc:
            self.notify(f"Not saved: {exc}", severity="error", markup=False, timeout=8)
            return
        engine_changes = needs_reload(self.settings, new)
        self.settings = new
        self._saved_form = self.form_values()
        self.post_message(SettingsSaved(new, reload=reload))
        if reload:
            self.notify(f"Saved {path}; reloading the engine…", markup=False)
        elif engine_changes:
            self.notify(f"Saved {path}. The sampler applies from the next reply; "
                        f"{', '.join(engine_changes)} apply after an engine reload (ctrl+e, or "
                        "'Reload engine' in the palette).", markup=False, timeout=10)
        else:
            self.notify(f"Saved {path}. The sampler applies from the next reply; no reload needed.",
                        markup=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "test":
            self.action_test()
        elif event.button.id == "reload":
            self.action_save(reload=True)
        elif event.button.id == "presets":
            self.post_message(PresetsRequested())

    def action_test(self) -> None:
        """Open the engine with the form's values, report what answered, and close it again."""
        built = self._build()
        if built is not None:
            self.notify("Testing the connection…", markup=False)
            self.test_connection(built[0])

    @work(exclusive=True, group="test-connection", exit_on_error=False, name="test connection")
    async def test_connection(self, settings: Settings) -> None:
        """Open a backend with ``settings`` and describe it."""
        from storyteller.session import probe_engine

        try:
            info = await probe_engine(settings, self.paths)
        except StorytellerError as exc:
            self.last_test = f"failed: {exc}"
            self.notify(str(exc), title="Connection failed", severity="error", markup=False, timeout=10)
            return
        self.last_test = f"ok: {info.engine} {info.model} context {info.context_length}"
        self.notify(f"{info.engine}: {info.model}, context {info.context_length} tokens"
                    + "".join(f"\n{w}" for w in info.warnings), title="Connection works", markup=False)
