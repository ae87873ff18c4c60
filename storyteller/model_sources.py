"""GGUF models other apps already downloaded: Ollama, LM Studio, Jan, GPT4All, the Hugging Face cache.

Each app keeps its models in its own layout:

- **Ollama**: ``manifests/<host>/<namespace>/<model>/<tag>`` JSON files whose layers name
  content-addressed files in ``blobs/sha256-<hex>``; the ``model`` layer is a GGUF, the
  ``template``, ``system`` and ``params`` layers hold what Ollama runs it with.
- **Hugging Face hub cache**: ``models--ORG--NAME/snapshots/<commit>/<file>`` links into
  ``blobs/``; ``refs/main`` names the commit ``main`` pointed at.
- **LM Studio** (``<publisher>/<repo>/<file>.gguf``), **Jan** (``<model-id>/model.gguf``),
  **GPT4All** (flat) and any extra folder: GGUF files a few levels deep.

Nothing here touches the network, and nothing is written. A broken entry (a manifest naming a
missing blob, a folder that cannot be read) becomes one line in :attr:`Discovery.problems`; the
rest of the list still comes back.

Names: ``ollama:NAME[:TAG]``, ``lmstudio:NAME``, ``jan:NAME``, ``gpt4all:NAME``, ``folder:NAME``,
``hf:ORG/NAME[:FILE or QUANT]``, or a bare name that matches one model across all sources
(a model in storyteller's own models folder wins over the others).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyteller.errors import ModelNotFoundError
from storyteller.model_stores import Store, read_small, store_roots
from storyteller.paths import Paths

__all__ = [
    "PREFIXES",
    "Discovery",
    "FoundModel",
    "Store",
    "apply_model_defaults",
    "discover",
    "resolve_ref",
    "store_roots",
]

PREFIXES = ("ollama", "lmstudio", "jan", "gpt4all", "hf", "folder")
"""Sources a model name can be prefixed with (``ollama:llama3.2:1b``)."""

_OLLAMA_MODEL = "application/vnd.ollama.image.model"
_OLLAMA_LAYERS = {"application/vnd.ollama.image.template": "template",
                  "application/vnd.ollama.image.system": "system",
                  "application/vnd.ollama.image.params": "params"}
_DIGEST = re.compile(r"sha256[:-]([0-9a-f]{64})")
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_MAX_DEPTH = 5


@dataclass(frozen=True, slots=True)
class FoundModel:
    """A GGUF model found on this machine.

    Attributes:
        source: ``storyteller`` (the models folder), ``bundled``, ``file`` (a path), ``ollama``,
            ``lmstudio``, ``jan``, ``gpt4all``, ``hf`` or ``folder`` (an extra folder).
        name: The name within its source (``llama3.2:1b``, ``ORG/NAME:FILE.gguf``, ...).
        path: The GGUF file (for Ollama, the blob).
        template: Ollama's template layer (a Go template), if any.
        params: Ollama's params layer (its runner options: ``temperature``, ``stop``, ...).
        system: Ollama's system prompt layer, if any.
    """

    source: str
    name: str
    path: Path
    template: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    system: str | None = None

    @property
    def ref(self) -> str:
        """What to pass to ``--model`` for exactly this model."""
        if self.source in ("storyteller", "bundled", "file"):
            return self.name
        return f"{self.source}:{self.name}"


@dataclass
class Discovery:
    """What :func:`discover` found: the models, and one line for each thing that was skipped."""

    models: list[FoundModel] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    _refs: dict[str, str] = field(default_factory=dict, repr=False)  # problem text -> the ref it is about

    def problem(self, message: str, ref: str | None = None) -> None:
        self.problems.append(message)
        if ref:
            self._refs[message] = ref.lower()


# -- discovery ---------------------------------------------------------------------------------

def discover(paths: Paths, *, folders: Sequence[str] = (), other_apps: bool = True,
             environ: Mapping[str, str] | None = None) -> Discovery:
    """Every GGUF model on this machine: the models folder, the bundled default, then other apps.

    Args:
        paths: storyteller's folders.
        folders: Extra folders to search (the ``models.folders`` setting).
        other_apps: Also search Ollama, LM Studio, Jan, GPT4All and the Hugging Face cache.
        environ: The environment; defaults to ``os.environ``.
    """
    from storyteller.models import bundled_model_path

    found = Discovery()
    own = _scandir(paths.models_dir, found, "storyteller") if paths.models_dir.is_dir() else []
    for entry in sorted(own, key=lambda e: e.name):
        if entry.name.lower().endswith(".gguf") and not entry.name.startswith(".") and _is_file(entry):
            found.models.append(FoundModel("storyteller", Path(entry.name).stem, Path(entry.path)))
    bundled = bundled_model_path()
    if bundled is not None:
        found.models.append(FoundModel("bundled", bundled.stem, bundled))
    own_dir = os.path.normcase(os.path.abspath(paths.models_dir))
    for store in store_roots(environ, folders=folders):
        if store.source != "folder" and not other_apps:
            continue
        if os.path.normcase(os.path.abspath(store.root)) == own_dir:
            continue
        if not store.root.exists():
            if store.source == "folder":
                found.problem(f"the model folder {store.root} does not exist; fix models.folders or "
                              "STORYTELLER_MODEL_PATH.")
            continue
        finder = {"ollama": _ollama, "hf": _huggingface}.get(store.source, _plain)
        finder(store, found)
        found.stores.append(store)
    unique: list[FoundModel] = []
    seen: set[tuple[str, str]] = set()
    for model in found.models:
        key = (model.source, model.name.lower())
        if key not in seen:
            seen.add(key)
            unique.append(model)
    found.models = unique
    return found


def _scandir(folder: Path, found: Discovery, source: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except PermissionError:
        found.problem(f"{source}: cannot read {folder} (permission denied); its models are not listed. "
                      "Give your user read access, or point storyteller at another folder.")
    except OSError as exc:
        found.problem(f"{source}: cannot read {folder} ({exc.strerror or exc}); its models are not listed.")
    return []


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()  # follows links: a link to a GGUF counts
    except OSError:
        return False


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _wanted(name: str) -> bool:
    lower = name.lower()
    if not lower.endswith(".gguf") or lower.startswith((".", "incomplete-", "mmproj")):
        return False  # hidden/partial downloads and vision projectors are not chat models
    shard = _SHARD.search(name)
    return shard is None or int(shard.group(1)) == 1  # llama.cpp finds the other shards itself


def _walk(folder: Path, found: Discovery, source: str, depth: int = 0, seen: set[str] | None = None) -> Iterable[Path]:
    # Linked folders are followed (people link model folders into LM Studio's); ``seen`` stops loops.
    seen = set() if seen is None else seen
    seen.add(os.path.realpath(folder))
    for entry in sorted(_scandir(folder, found, source), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if _is_dir(entry):
            if depth < _MAX_DEPTH and os.path.realpath(entry.path) not in seen:
                yield from _walk(Path(entry.path), found, source, depth + 1, seen)
        elif _wanted(entry.name):
            if _is_file(entry):
                yield Path(entry.path)
            elif os.path.islink(entry.path):
                found.problem(f"{source}: {entry.path} is a link to a file that is missing; download the model again.")


def _plain(store: Store, found: Discovery) -> None:
    for path in _walk(store.root, found, store.source):
        rel = path.relative_to(store.root).as_posix()
        name = rel[: -len(".gguf")] if rel.lower().endswith(".gguf") else rel
        if store.source == "jan" and path.name.lower() == "model.gguf" and "/" in rel:
            name = rel.rsplit("/", 1)[0]  # Jan keeps <model-id>/model.gguf
        found.models.append(FoundModel(store.source, name, path))


def _ollama(store: Store, found: Discovery) -> None:
    manifests = store.root / "manifests"
    if not manifests.is_dir():
        return
    for host in _dirs(manifests, found):
        for namespace in _dirs(host, found):
            for model in _dirs(namespace, found):
                for tag in sorted(_scandir(model, found, "ollama"), key=lambda e: e.name):
                    if _is_file(tag) and not tag.name.startswith("."):
                        _ollama_manifest(store.root, host.name, namespace.name, model.name, Path(tag.path), found)


def _dirs(folder: Path, found: Discovery) -> list[Path]:
    return [Path(e.path) for e in sorted(_scandir(folder, found, "ollama"), key=lambda e: e.name)
            if _is_dir(e) and not e.name.startswith(".")]


def _ollama_manifest(root: Path, host: str, namespace: str, model: str, manifest: Path, found: Discovery) -> None:
    if host == "registry.ollama.ai":
        name = f"{model}:{manifest.name}" if namespace == "library" else f"{namespace}/{model}:{manifest.name}"
    else:
        name = f"{host}/{namespace}/{model}:{manifest.name}"
    ref = f"ollama:{name}"
    text = read_small(manifest)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        data = None
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        found.problem(f"ollama {name}: its manifest {manifest} is unreadable or not a manifest; "
                      f"run `ollama pull {name}` to repair it.", ref)
        return
    blobs: dict[str, Path | None] = {}
    model_blob: Path | None = None
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        kind, digest = layer.get("mediaType"), str(layer.get("digest") or "")
        if kind != _OLLAMA_MODEL and kind not in _OLLAMA_LAYERS:
            continue
        blob = _ollama_blob(root, digest)
        if blob is None:
            found.problem(f"ollama {name}: its manifest names the blob {digest or '(none)'}, which is missing "
                          f"from {root / 'blobs'}; run `ollama pull {name}` to download it again.", ref)
            if kind == _OLLAMA_MODEL:
                return
            continue
        if kind == _OLLAMA_MODEL and model_blob is None:
            model_blob = blob
        elif kind in _OLLAMA_LAYERS:
            blobs[_OLLAMA_LAYERS[kind]] = blob
    if model_blob is None:
        return  # a cloud or embedding-less entry: nothing to run locally
    params: dict[str, Any] = {}
    if blobs.get("params"):
        try:
            loaded = json.loads(read_small(blobs["params"]) or "{}")
            params = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            found.problem(f"ollama {name}: its params layer is not JSON; its parameters are ignored.", ref)
    template = read_small(blobs["template"]) if blobs.get("template") else None
    system = read_small(blobs["system"]) if blobs.get("system") else None
    found.models.append(FoundModel("ollama", name, model_blob, template or None, params, system or None))


def _ollama_blob(root: Path, digest: str) -> Path | None:
    match = _DIGEST.fullmatch(digest)
    if match is None:
        return None
    for name in (f"sha256-{match.group(1)}", f"sha256:{match.group(1)}"):  # older Ollama used ':'
        blob = root / "blobs" / name
        if blob.is_file():
            return blob
    return None


def _huggingface(store: Store, found: Discovery) -> None:
    for repo in sorted(_scandir(store.root, found, "hf"), key=lambda e: e.name):
        if not repo.name.startswith("models--") or not _is_dir(repo):
            continue
        repo_id = repo.name[len("models--"):].replace("--", "/")
        snapshots = Path(repo.path) / "snapshots"
        if not snapshots.is_dir():
            continue
        main = (read_small(Path(repo.path) / "refs" / "main") or "").strip()
        folders = [Path(e.path) for e in _scandir(snapshots, found, "hf") if _is_dir(e)]

        def newest_first(folder: Path) -> tuple[bool, float]:
            try:
                mtime = folder.stat().st_mtime
            except OSError:
                mtime = 0.0
            return (folder.name != main, -mtime)

        seen: set[str] = set()
        for snapshot in sorted(folders, key=newest_first):
            for path in _walk(snapshot, found, "hf"):
                rel = path.relative_to(snapshot).as_posix()
                if rel not in seen:
                    seen.add(rel)
                    found.models.append(FoundModel("hf", f"{repo_id}:{rel}", path))


# -- names ---------------------------------------------------------------------------------------

def _keys(model: FoundModel) -> tuple[set[str], set[str]]:
    """Exact names a model answers to, and group names (a folder, a repo) it is one of."""
    name = model.name.lower()
    keys = {name, model.path.name.lower(), model.path.stem.lower()}
    groups: set[str] = set()
    if model.source == "ollama":
        keys.discard(model.path.name.lower())
        keys.discard(model.path.stem.lower())  # sha256-... is not a name
        if name.endswith(":latest"):
            keys.add(name[: -len(":latest")])
    elif model.source == "hf":
        repo, _, rel = name.partition(":")
        keys |= {f"{repo}/{rel}", rel, rel.removesuffix(".gguf")}
        groups |= {repo, repo.split("/")[-1]}
    elif model.source in ("lmstudio", "jan", "gpt4all", "folder"):
        parts = name.split("/")
        keys |= {"/".join(parts[i:]) for i in range(len(parts))}
        keys.add(name + ".gguf")
        groups |= {"/".join(parts[:i]) for i in range(1, len(parts))}
        groups |= {"/".join(parts[i:-1]) for i in range(1, len(parts) - 1)}
    return keys, groups


def _matches(model: FoundModel, query: str) -> bool:
    keys, groups = _keys(model)
    if query in keys or query in groups:
        return True
    if model.source != "ollama" and ":" in query:  # ORG/NAME:Q4_K_M picks a file by its quantisation
        group, _, pick = query.rpartition(":")
        return group in groups and pick in model.path.name.lower()
    return False


def resolve_ref(spec: str | Path | None, paths: Paths, *, folders: Sequence[str] = (), other_apps: bool = True,
                environ: Mapping[str, str] | None = None) -> FoundModel:
    """Turn a model setting into a model: a path, a prefixed name, or a bare name.

    Args:
        spec: A GGUF path; ``ollama:NAME[:TAG]``, ``lmstudio:NAME``, ``hf:ORG/NAME[:FILE]``, ...;
            a bare name unique across sources; or ``None`` for the first model in the models
            folder, else the bundled default.
        paths: storyteller's folders.
        folders: Extra folders (the ``models.folders`` setting).
        other_apps: Whether other apps' stores are searched.
        environ: The environment; defaults to ``os.environ``.

    Raises:
        ModelNotFoundError: Nothing matches, or several models do; the message lists the names.
    """
    from storyteller.models import INSTALL_HINT, find_models

    hint = INSTALL_HINT.format(models_dir=paths.models_dir)
    if spec is None or str(spec).strip() == "":
        models = find_models(paths)
        if not models:
            raise ModelNotFoundError(f"No GGUF model found. {hint}")
        first = models[0]
        return FoundModel("bundled" if first.parent != paths.models_dir else "storyteller", first.stem, first)
    text = str(spec).strip()
    prefix, _, rest = text.partition(":")
    prefixed = prefix.lower() in PREFIXES and bool(rest)
    if not prefixed:
        candidate = Path(text).expanduser()
        if candidate.is_file():
            return FoundModel("file", str(candidate), candidate)
        for own in find_models(paths):  # storyteller's own folder first, without searching the others
            if own.parent == paths.models_dir and text in (own.name, own.stem):
                return FoundModel("storyteller", own.stem, own)
    found = discover(paths, folders=folders, other_apps=other_apps or prefixed, environ=environ)
    query = (rest if prefixed else text).lower()
    if prefixed and prefix.lower() == "hf":
        query = query.removeprefix("hf.co/")
    pool = [m for m in found.models if m.source == prefix.lower()] if prefixed else found.models
    hits = [m for m in pool if _matches(m, query)]
    if not prefixed and len(hits) > 1:
        own = [m for m in hits if m.source == "storyteller"]
        hits = own if len(own) == 1 else hits
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        names = ", ".join(m.ref for m in hits[:8]) + (" ..." if len(hits) > 8 else "")
        raise ModelNotFoundError(f"{text!r} matches {len(hits)} models: {names}. Use one of these names.")
    related = [msg for msg, ref in found._refs.items()
               if ref.partition(":")[2] in (query, query + ":latest")
               and (not prefixed or ref.partition(":")[0] == prefix.lower())]
    if related:
        raise ModelNotFoundError(related[0])
    raise ModelNotFoundError(_not_found(text, prefix.lower() if prefixed else None, rest, found, hint))


def _not_found(text: str, source: str | None, rest: str, found: Discovery, hint: str) -> str:
    where = [str(s.root) for s in found.stores if source is None or s.source == source]
    searched = f" (searched {', '.join(where)})" if where else ""
    if source == "ollama":
        return (f"Ollama has no model {rest!r} on this machine{searched}. `ollama pull {rest}` downloads it; "
                "`storyteller models` lists what there is.")
    if source == "hf":
        return (f"The Hugging Face cache has no GGUF for {rest!r}{searched}. `storyteller models pull "
                f"{rest if ':' in rest else rest + ':FILE.gguf'}` downloads one (nothing is downloaded unless "
                "you ask); `storyteller models` lists what there is.")
    if source is not None:
        return f"No {source} model {rest!r}{searched}. `storyteller models` lists the names you can use."
    return (f"Model {text!r} not found (no such file, and no model of that name). `storyteller models` lists "
            f"the names you can use. {hint}")


# -- using a model's own settings ------------------------------------------------------------------

_OLLAMA_TO_SAMPLING = {
    "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
    "typical_p": "typical_p", "repeat_penalty": "repeat_penalty", "repeat_last_n": "repeat_last_n",
    "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
    "mirostat": "mirostat_mode", "mirostat_tau": "mirostat_tau", "mirostat_eta": "mirostat_eta",
    "seed": "seed", "stop": "stop", "num_predict": "max_tokens",
}


def sampling_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Ollama's runner options as :class:`~storyteller.engines.base.Sampling` values (bad ones dropped)."""
    from pydantic import ValidationError

    from storyteller.engines.base import Sampling

    values: dict[str, Any] = {}
    for key, target in _OLLAMA_TO_SAMPLING.items():
        if key not in params:
            continue
        value = params[key]
        if key == "stop":
            value = [value] if isinstance(value, str) else value
        if key == "num_predict" and isinstance(value, int) and value <= 0:
            continue  # -1 / -2: no limit; keep ours
        try:
            Sampling.model_validate({target: value})
        except ValidationError:
            continue
        values[target] = value
    return values


def apply_model_defaults(settings: Any, paths: Paths, *, keep: Iterable[str] = ()) -> FoundModel | None:
    """Resolve the embedded engine's model, and let the model's own settings fill what the user left alone.

    An Ollama model's params layer sets the sampler values that are still at storyteller's
    defaults (and not named in ``keep``), adds its stop strings to the user's, and gives an
    unset context size its ``num_ctx``. Calling it twice changes nothing more. Returns ``None``
    for remote engines.

    Args:
        settings: The settings, changed in place.
        paths: storyteller's folders.
        keep: Sampler fields the user chose on the command line (kept even when they equal
            the defaults).

    Raises:
        ModelNotFoundError: The model cannot be found.
    """
    if settings.engine.kind != "embedded":
        return None
    models = getattr(settings, "models", None)
    found = resolve_ref(settings.engine.model, paths, folders=getattr(models, "folders", ()),
                        other_apps=getattr(models, "other_apps", True))
    if found.params:
        current = settings.sampling
        defaults = type(current)()
        kept = set(keep)
        update: dict[str, Any] = {}
        for key, value in sampling_from_params(found.params).items():
            if key == "stop":
                merged = [*current.stop, *(s for s in value if s not in current.stop)]
                if merged != current.stop:
                    update["stop"] = merged
            elif key not in kept and getattr(current, key) == getattr(defaults, key):
                update[key] = value
        if update:
            settings.sampling = current.model_copy(update=update)
        num_ctx = found.params.get("num_ctx")
        if not settings.engine.n_ctx and isinstance(num_ctx, int) and num_ctx >= 256:
            settings.engine.n_ctx = min(num_ctx, settings.engine.max_ctx)
    return found
