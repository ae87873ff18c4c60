"""Other apps' model stores, built for real in a temporary folder around the bundled GGUF.

Each builder lays files out exactly as the app does (Ollama's manifest JSON and sha256-named
blobs, the Hugging Face cache's snapshot links into ``blobs/``, LM Studio's publisher/repo
folders, Jan's model folders, GPT4All's flat folder). The GGUF is hard-linked when the
filesystem allows it, so no 98 MB copy is made per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import lru_cache
from pathlib import Path

CHATML_GO = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
             "<|im_start|>assistant\n")


@lru_cache(maxsize=4)
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def place(src: Path, dest: Path) -> Path:
    """Put ``src`` at ``dest`` as a hard link, or a copy across filesystems."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
    return dest


def isolated_env(root: Path) -> dict[str, str]:
    """Environment variables that point every app's store (and HOME) into ``root``."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home), "USERPROFILE": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"), "OLLAMA_MODELS": str(home / ".ollama" / "models"),
        "HF_HOME": str(home / ".cache" / "huggingface"),
    }


def _blob(store: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    (store / "blobs" / f"sha256-{digest}").write_bytes(data)
    return f"sha256:{digest}"


def ollama_model(store: Path, gguf: Path, name: str = "smol", tag: str = "latest", *,
                 namespace: str = "library", host: str = "registry.ollama.ai",
                 template: str | None = CHATML_GO, params: dict | None = None, system: str | None = None,
                 drop_model_blob: bool = False) -> Path:
    """An Ollama model as `ollama pull` leaves it; returns the manifest."""
    digest = hashlib.sha256(name.encode()).hexdigest() if drop_model_blob else sha256_of(gguf)
    blob = store / "blobs" / f"sha256-{digest}"
    if not drop_model_blob and not blob.exists():
        place(gguf, blob)
    layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
               "size": gguf.stat().st_size}]
    for kind, text in (("template", template), ("system", system),
                       ("params", json.dumps(params) if params is not None else None)):
        if text is not None:
            layers.append({"mediaType": f"application/vnd.ollama.image.{kind}",
                           "digest": _blob(store, text.encode()), "size": len(text.encode())})
    config = _blob(store, json.dumps({"model_format": "gguf", "model_family": "llama"}).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config,
                           "size": 0}, "layers": layers}
    path = store / "manifests" / host / namespace / name / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return path


def hf_cache_model(hub: Path, gguf: Path, repo_id: str, filename: str, commit: str = "a" * 40) -> Path:
    """A file as huggingface_hub caches it: blobs/<sha256> plus a relative snapshot link."""
    folder = hub / ("models--" + repo_id.replace("/", "--"))
    digest = sha256_of(gguf)
    blob = folder / "blobs" / digest
    if not blob.exists():
        place(gguf, blob)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    link = folder / "snapshots" / commit / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    return link


def lmstudio_model(models: Path, gguf: Path, publisher: str, repo: str, filename: str) -> Path:
    return place(gguf, models / publisher / repo / filename)


def jan_model(models: Path, gguf: Path, model_id: str) -> Path:
    path = place(gguf, models / model_id / "model.gguf")
    (models / model_id / "model.yml").write_text(f"model_path: {path}\nname: {model_id}\n")
    return path


def gpt4all_model(folder: Path, gguf: Path, filename: str) -> Path:
    return place(gguf, folder / filename)


def without_chat_template(src: Path, dest: Path) -> Path:
    """A copy of a GGUF with ``tokenizer.chat_template`` removed from its metadata (tensors unchanged)."""
    import struct

    data = src.read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value[0]

    def skip_string() -> str:
        nonlocal pos
        n = take("<Q")
        pos += n
        return data[pos - n:pos].decode("utf-8", "replace")

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip_value(vtype: int) -> None:
        nonlocal pos
        if vtype in sizes:
            pos += sizes[vtype]
        elif vtype == 8:
            skip_string()
        else:  # array
            item, count = take("<I"), take("<Q")
            if item in sizes:
                pos += sizes[item] * count
            else:
                for _ in range(count):
                    skip_value(item)

    assert data[:4] == b"GGUF"
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    kept, alignment = [], 32
    for _ in range(n_kv):
        start = pos
        key = skip_string()
        vtype = take("<I")
        value_at = pos
        skip_value(vtype)
        if key == "general.alignment":
            alignment = struct.unpack_from("<I", data, value_at)[0]
        if key != "tokenizer.chat_template":
            kept.append(data[start:pos])
    tensors_start = pos
    for _ in range(n_tensors):
        skip_string()
        dims = take("<I")
        pos += 8 * dims + 4 + 8
    tensor_infos = data[tensors_start:pos]
    old_data_start = -(-pos // alignment) * alignment
    header = b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kept)) + b"".join(kept) + tensor_infos
    header += b"\0" * ((-len(header)) % alignment)
    dest.write_bytes(header + data[old_data_start:])
    return dest
