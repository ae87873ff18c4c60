"""``n_gpu_layers = "auto"``: all layers when they fit, fewer when not, none on a CPU build."""

from __future__ import annotations

from storyteller.config import EngineSettings
from storyteller.engines.gpu import RESERVE, choose_layers, kv_cache_bytes
from storyteller.models import read_gguf_info

GiB = 2**30


def test_auto_is_the_default():
    assert EngineSettings().n_gpu_layers == "auto"
    assert EngineSettings(n_gpu_layers=-1).n_gpu_layers == -1


def test_all_layers_when_they_fit():
    choice = choose_layers("auto", can_offload=True, layers_total=33, model_bytes=4 * GiB, kv_bytes=1 * GiB,
                           free_bytes=24 * GiB)
    assert choice.layers == 33 and "all layers fit" in choice.reason


def test_fewer_layers_when_memory_is_short():
    choice = choose_layers("auto", can_offload=True, layers_total=33, model_bytes=8 * GiB, kv_bytes=2 * GiB,
                           free_bytes=5 * GiB)
    per_layer = 10 * GiB / 33
    assert choice.layers == int((5 * GiB - RESERVE) // per_layer)
    assert 0 < choice.layers < 33


def test_none_on_a_cpu_build_whatever_is_asked():
    for setting in ("auto", -1, 12):
        assert choose_layers(setting, can_offload=False, layers_total=31, model_bytes=1, kv_bytes=1,
                             free_bytes=None).layers == 0


def test_explicit_numbers_are_kept_and_capped():
    kw = dict(can_offload=True, layers_total=31, model_bytes=1, kv_bytes=1, free_bytes=None)
    assert choose_layers(-1, **kw).layers == 31
    assert choose_layers(99, **kw).layers == 31
    assert choose_layers(5, **kw).layers == 5
    assert choose_layers(0, **kw).layers == 0


def test_kv_estimate_from_the_real_gguf(smollm2_path):
    info = read_gguf_info(smollm2_path)
    # SmolLM2-135M: 30 layers, 576 wide, 9 heads, 3 KV heads -> 2*30*192 values of 2 bytes per token
    assert kv_cache_bytes(info, 1000) == 2 * 30 * 576 * 3 // 9 * 1000 * 2


def test_auto_on_this_build_loads_and_reports(smollm2_path):
    from storyteller.engines.llamacpp import LlamaCppBackend, gpu_support

    backend = LlamaCppBackend.load(smollm2_path, EngineSettings(n_ctx=256))
    try:
        info = backend.info()
        if not gpu_support()[0]:
            assert info.gpu_layers == 0 and not info.warnings
            assert info.details["gpu_choice"] == "CPU build"
        else:
            assert info.gpu_layers > 0
    finally:
        import asyncio

        asyncio.run(backend.aclose())
