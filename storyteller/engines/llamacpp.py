"""The embedded engine: llama.cpp through llama-cpp-python, in one worker thread.

``Llama`` is not thread-safe, so every call that touches the context runs on a single dedicated
thread behind a lock; chunks cross to asyncio through ``loop.call_soon_threadsafe``. Generation
checks a cancel flag before every token, and prompt evaluation is done here in slices so that a
long prompt reports progress and can be cancelled between slices.

Sampling goes through a llama.cpp sampler chain built from the request's :class:`Sampling`
(:mod:`~storyteller.engines._sampler_chain`: DRY, XTC, top-n-sigma and the rest, in llama.cpp's
server order), and the reply loop (draw, detokenise, stop strings, evaluate) is ours rather than
``Llama.create_completion``'s. llama-cpp-python's private internals are used only through
:mod:`~storyteller.engines._llama_private`, which checks the installed version.

Prefix reuse: llama-cpp-python keeps the evaluated tokens; a prompt that starts with them only
evaluates the rest. We mirror its matching rule to report, per request, tokens reused and
evaluated.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import random
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyteller.config import EngineSettings
from storyteller.engines._kvcache import ReusePlan, plan_reuse
from storyteller.engines._kvstate import KVSnapshot, fingerprint, load_kv_state, restore_kv, save_kv_state, snapshot_kv
from storyteller.engines._staleness import StalenessTracker, apply_policy
from storyteller.engines.capabilities import Capabilities
from storyteller.engines.base import (
    BackendInfo,
    Chunk,
    Finished,
    FinishReason,
    GenerationRequest,
    GenerationStats,
    PromptProgress,
    Sampling,
)
from storyteller.errors import EngineError, ModelLoadError
from storyteller.models import GGUFInfo, read_gguf_info

__all__ = ["LlamaCppBackend", "gpu_support"]

_KV_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "iq4_nl": 20, "bf16": 30}
_EVAL_SLICE = 256  # prompt tokens per progress report / cancellation point
_DONE = object()


def gpu_support() -> tuple[bool, str]:
    """Whether this llama.cpp build can offload to a GPU, and through which backend."""
    import llama_cpp

    can = bool(llama_cpp.llama_supports_gpu_offload())
    system = llama_cpp.llama_print_system_info().decode(errors="replace")
    for name in ("CUDA", "Metal", "Vulkan", "ROCm", "HIP", "SYCL", "OpenCL", "Kompute"):
        if name.lower() in system.lower():
            return can, name
    return can, "GPU" if can else "CPU"


@dataclass(slots=True)
class _Plan:
    tokens: list[int]
    reuse: int
    cache: ReusePlan
    cached: int
    failure: str = ""
    policy_note: str = ""

    @property
    def evaluated(self) -> int:
        return len(self.tokens) - self.reuse + self.cache.inserted


class LlamaCppBackend:
    """A Backend running a GGUF model in this process.

    Create it with :meth:`load` (blocking) or :meth:`open` (async); both raise
    :class:`~storyteller.errors.ModelLoadError` with a clear message for files llama.cpp cannot use.
    """

    CAPABILITIES = Capabilities(text=True, chat=True, exact_tokens=True, kv_reuse=True, grammar=True,
                                logit_bias=True)
    """What the embedded engine can do; ``chat`` only with a GGUF that carries a chat template."""

    template_hint: str | None = None
    """A chat template from outside the GGUF (an Ollama model's template layer), reported by
    :meth:`info` for picking an instruct template only when the GGUF has none of its own."""

    def __init__(self, llm: Any, gguf: GGUFInfo, settings: EngineSettings, warnings: list[str],
                 gpu_layers: int, gpu_backend: str) -> None:
        self._llm = llm
        self._gguf = gguf
        self._settings = settings
        self._warnings = tuple(warnings)
        self._gpu_layers = gpu_layers
        self._gpu_backend = gpu_backend
        self._gpu_reason = ""
        self._lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        self._eos = {llm.token_eos()}
        self._closed = False
        self._fingerprint: str | None = None
        import llama_cpp

        from storyteller.engines import _llama_private as private

        self._can_shift = bool(llama_cpp.llama_memory_can_shift(private.memory(llm)))
        # Inserting in the middle parks the cache's tail in sequence 1 (see _decode_at).
        self._can_insert = self._can_shift and llm.context_params.n_seq_max >= 2 and bool(llm.context_params.kv_unified)
        self.staleness = StalenessTracker()
        """Which cached tokens are stale, and why (see :mod:`~storyteller.engines._staleness`)."""
        self._shift_pending = False  # cache edited but not yet decoded: llama.cpp still owes the K shift

    # -- loading -------------------------------------------------------------------------------

    @classmethod
    def load(cls, model_path: str | Path, settings: EngineSettings | None = None) -> LlamaCppBackend:
        """Load a model (blocking: 0.1 s to minutes depending on size and disk).

        Args:
            model_path: The GGUF file.
            settings: llama.cpp options; defaults to :class:`EngineSettings` defaults.

        Raises:
            ModelLoadError: Not a GGUF, truncated, or refused by llama.cpp.
        """
        settings = settings or EngineSettings()
        gguf = read_gguf_info(model_path)
        try:
            import llama_cpp
        except ImportError as exc:  # pragma: no cover - the package is a hard dependency
            raise ModelLoadError(
                "llama-cpp-python is not installed; run the README's set-up command."
            ) from exc
        from storyteller.engines import _llama_private  # noqa: F401 - refuses an unchecked version
        warnings: list[str] = []
        can_offload, backend_name = gpu_support()
        layers_total = (gguf.block_count or 0) + 1  # llama.cpp counts the output layer too
        if settings.n_gpu_layers not in (0, "auto") and not can_offload:
            warnings.append(
                f"{settings.n_gpu_layers} GPU layers were asked for, but this llama-cpp-python "
                "build has no GPU support: running on the CPU. Rebuild it with "
                "`GPU=cuda make run` (see the README) to use a GPU."
            )
        n_ctx = settings.n_ctx or min(gguf.context_length or 4096, settings.max_ctx)
        from storyteller.engines.gpu import choose_layers, free_gpu_memory, kv_cache_bytes

        choice = choose_layers(settings.n_gpu_layers, can_offload=can_offload, layers_total=layers_total,
                               model_bytes=gguf.file_size, kv_bytes=kv_cache_bytes(gguf, n_ctx),
                               free_bytes=free_gpu_memory(backend_name) if can_offload else None)
        gpu_layers = choice.layers
        kwargs: dict[str, Any] = dict(
            model_path=str(gguf.path),
            n_ctx=n_ctx,
            n_gpu_layers=gpu_layers,
            n_batch=settings.n_batch,
            n_ubatch=min(settings.n_batch, 512),
            flash_attn=settings.flash_attn,
            use_mmap=settings.use_mmap,
            use_mlock=settings.use_mlock,
            seed=settings.seed if settings.seed is not None else random.randrange(2**31),
            verbose=False,
        )
        if settings.n_threads:
            kwargs["n_threads"] = settings.n_threads
        if settings.n_threads_batch or settings.n_threads:
            kwargs["n_threads_batch"] = settings.n_threads_batch or settings.n_threads
        if settings.cache_type_k:
            kwargs["type_k"] = _KV_TYPES[settings.cache_type_k]
        if settings.cache_type_v:
            kwargs["type_v"] = _KV_TYPES[settings.cache_type_v]
        try:
            llm = llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"{gguf.path}: llama.cpp could not load this model ({exc}). The file may be damaged, "
                "or made for a newer llama.cpp; try another GGUF or a smaller context."
            ) from exc
        if settings.context_shift:
            _allow_hidden_sequence(llm)
        backend = cls(llm, gguf, settings, warnings, gpu_layers, backend_name if gpu_layers else "CPU")
        backend._gpu_reason = choice.reason
        return backend

    @classmethod
    async def open(cls, model_path: str | Path, settings: EngineSettings | None = None) -> LlamaCppBackend:
        """Load a model without blocking the event loop."""
        return await asyncio.to_thread(cls.load, model_path, settings)

    # -- Backend protocol ----------------------------------------------------------------------

    def info(self) -> BackendInfo:
        """Describe the loaded model."""
        caps = self.CAPABILITIES if self._gguf.chat_template else self.CAPABILITIES.without("chat")
        return BackendInfo(
            engine="embedded",
            model=self._gguf.name,
            context_length=self._llm.n_ctx(),
            capabilities=caps,
            chat_template=self._gguf.chat_template or self.template_hint,
            gpu_layers=self._gpu_layers,
            gpu_backend=self._gpu_backend,
            warnings=self._warnings,
            details={
                "path": str(self._gguf.path),
                "quantization": self._gguf.quantization,
                "parameters": self._gguf.parameters,
                "trained_context": self._gguf.context_length,
                "layers": self._gguf.block_count,
                "gpu_choice": self._gpu_reason,
            },
        )

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Tokenise with the model's own tokenizer (special tokens such as ``<|im_start|>`` parsed)."""
        # Tokenising only reads the vocabulary, so it does not need the context lock.
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def token_ids_containing(self, fragment: str) -> list[int]:
        """Ids of ordinary (non-special) tokens whose text contains ``fragment``, e.g. to ban them."""
        from storyteller.engines import _llama_private as private

        llm = self._llm
        found = []
        for token in range(llm.n_vocab()):
            piece = private.token_text(llm, token)
            if fragment in piece and not (piece.startswith("<") and piece.endswith(">") and len(piece) > 2):
                found.append(token)
        return found

    async def count_tokens(self, text: str) -> int:
        """Exact token count of ``text`` (no BOS)."""
        return len(self.tokenize(text))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Generate on the worker thread, yielding chunks as they come."""
        if self._closed:
            raise EngineError("the embedded engine was closed; load the model again.")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def emit(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        future = loop.run_in_executor(self._executor, self._run, request, emit)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            request.cancel.set()
            # Wait for the worker to let go of the model; it stops within one token.
            with contextlib.suppress(Exception):
                await asyncio.shield(future)

    async def aclose(self) -> None:
        """Free the model once any running generation has stopped."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        with self._lock:
            self._llm.close()

    # -- KV state on disk -----------------------------------------------------------------------

    def fingerprint(self) -> str:
        """Identify the model file and the settings a saved KV state is valid for."""
        if self._fingerprint is None:
            s = self._settings
            self._fingerprint = fingerprint(self._gguf.path, (
                self._llm.n_ctx(), s.cache_type_k, s.cache_type_v, s.flash_attn, self._gpu_layers,
                self._llm.context_params.n_seq_max))
        return self._fingerprint

    async def save_state(self, path: str | Path) -> int:
        """Save the KV cache and its tokens (not the logits) to ``path``; returns bytes written.

        The file is written beside its final name and renamed into place, with a ``.json``
        sidecar holding the fingerprint, so a crash never leaves a half-written state behind.
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._save_state, Path(path))

    async def load_state(self, path: str | Path) -> bool:
        """Load a state saved by :meth:`save_state`; False (and an empty cache) when it does not fit."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._load_state, Path(path))

    def _save_state(self, path: Path) -> int:
        with self._lock:
            return save_kv_state(self._llm, path, self.fingerprint())

    def _load_state(self, path: Path) -> bool:
        print_ = self.fingerprint()
        with self._lock:
            self.staleness.reset()  # a saved state does not say which of its tokens were stale
            return load_kv_state(self._llm, path, print_)

    # -- worker thread -------------------------------------------------------------------------

    def _plan(self, request: GenerationRequest) -> _Plan:
        from storyteller.engines import _llama_private as private

        llm = self._llm
        if request.prompt is not None:
            tokens = self.tokenize(request.prompt, add_bos=request.add_bos and private.add_bos(llm))
        else:
            tokens = self._chat_tokens(request)
        if not tokens:
            raise EngineError("the prompt is empty; give the model something to continue.")
        if len(tokens) >= llm.n_ctx():
            raise EngineError(
                f"the prompt has {len(tokens)} tokens but the context holds {llm.n_ctx()}; "
                "shorten it or load the model with a larger context (--context N)."
            )
        cached = llm.n_tokens if self._settings.prefix_reuse else 0
        shift = self._settings.context_shift and self._can_shift
        plan = plan_reuse(llm.input_ids[:cached], tokens, shift=shift, insert=shift and self._can_insert)
        self.staleness.sync(cached)
        decision = apply_policy(plan, self.staleness, getattr(self._settings, "cache_reuse", "fast"))
        edited = bool(plan.removals or plan.inserts)
        # llama-cpp-python re-evaluates the last prompt token to get fresh logits, unless the
        # whole prompt is exactly what is cached and its logits are live.
        if plan.reused == len(tokens) and (cached != len(tokens) or edited or private.logits_stale(llm)):
            plan.limit(len(tokens) - 1)
        failure = ""
        if plan.blocks and edited:
            failure = self._apply_edits(plan, tokens)
        elif plan.removals and not self._apply_removals(plan.removals, cached):
            failure = "llama.cpp refused to remove the span"
        if failure:
            plan = ReusePlan(prefix=0, reused=0, diverged_at=plan.diverged_at)
            self.staleness.reset()
        else:
            if decision.projection is not None and plan.reused < len(decision.projection):
                decision.projection.sync(plan.reused)  # the last prompt token went back to the tail
            self.staleness.adopt(decision.projection or self.staleness)
        self._shift_pending = edited and not failure
        reuse = plan.reused
        llm.n_tokens = reuse  # the KV cache past this point is dropped before evaluating
        return _Plan(tokens, reuse, plan, cached, failure, decision.note() if cached else "")

    def _apply_removals(self, removals: list[tuple[int, int]], cached: int) -> bool:
        """Remove spans from the KV cache and shift what follows; False if llama.cpp refuses."""
        import llama_cpp
        import numpy as np

        from storyteller.engines import _llama_private as private

        llm = self._llm
        mem = private.memory(llm)
        gone = 0
        for start, end in removals:
            a, b = start - gone, end - gone
            if not llama_cpp.llama_memory_seq_rm(mem, 0, a, b):
                llm.n_tokens = 0  # the cache is now in an unknown state: start over
                return False
            llama_cpp.llama_memory_seq_add(mem, 0, b, -1, -(b - a))
            gone += end - start
        keep = np.ones(cached, dtype=bool)
        for start, end in removals:
            keep[start:end] = False
        kept = llm.input_ids[:cached][keep]
        llm.input_ids[: len(kept)] = kept
        llm.n_tokens = len(kept)
        return True

    def _apply_edits(self, plan: ReusePlan, tokens: list[int]) -> str:
        """Rearrange the KV cache as planned: drop, move, insert. Returns "" or why it failed."""
        import llama_cpp

        from storyteller.engines import _llama_private as private

        llm = self._llm
        mem = private.memory(llm)
        end = 0
        for block in plan.blocks:  # everything outside the kept blocks goes first
            if block.cache_start > end:
                llama_cpp.llama_memory_seq_rm(mem, 0, end, block.cache_start)
            end = block.cache_start + block.length
        llama_cpp.llama_memory_seq_rm(mem, 0, end, -1)
        # Blocks keep their order. Moving the left-bound ones first (left to right), then the
        # right-bound ones (right to left), a moved block never lands in a range still to move.
        left = [b for b in plan.blocks if b.delta < 0]
        right = [b for b in plan.blocks if b.delta > 0]
        for block in [*left, *reversed(right)]:
            llama_cpp.llama_memory_seq_add(mem, 0, block.cache_start, block.cache_start + block.length, block.delta)
        for start, stop in plan.inserts:
            if not self._decode_at(mem, tokens[start:stop], start):
                private.clear_cache(llm)
                return "llama.cpp found no room to insert new tokens in the middle of the cache"
        llm.input_ids[: plan.reused] = tokens[: plan.reused]
        llm.n_tokens = plan.reused
        private.mark_logits_stale(llm)
        return ""

    def _decode_at(self, mem: Any, span: list[int], start: int) -> bool:
        """Evaluate ``span`` at positions ``start...`` in front of cached tokens already moved right.

        llama.cpp only accepts a batch that continues a sequence, so the cached tokens from
        ``start`` on are parked in sequence 1 (which the new tokens do not attend to) while the
        span is decoded, then given back to sequence 0: the span sees exactly what precedes it.
        """
        import llama_cpp

        from storyteller.engines import _llama_private as private

        llm = self._llm
        ctx = private.ctx(llm)
        llama_cpp.llama_memory_seq_cp(mem, 0, 1, start, -1)
        llama_cpp.llama_memory_seq_rm(mem, 0, start, -1)
        batch = private.batch(llm)
        ok = True
        for offset in range(0, len(span), llm.n_batch):
            piece = span[offset: offset + llm.n_batch]
            batch.n_tokens = len(piece)
            for i, token in enumerate(piece):
                batch.token[i] = token
                batch.pos[i] = start + offset + i
                batch.seq_id[i][0] = 0
                batch.n_seq_id[i] = 1
                batch.logits[i] = False
            batch.logits[len(piece) - 1] = True
            if llama_cpp.llama_decode(ctx, batch) != 0:
                ok = False
                break
        llama_cpp.llama_memory_seq_cp(mem, 1, 0, -1, -1)
        llama_cpp.llama_memory_seq_rm(mem, 1, -1, -1)
        return ok

    def _chat_tokens(self, request: GenerationRequest) -> list[int]:
        template = self._gguf.chat_template
        if not template:
            raise EngineError(
                f"{self._gguf.name} has no chat template; use text completion (a prompt) instead."
            )
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from storyteller.engines import _llama_private as private

        llm = self._llm
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=private.token_text(llm, llm.token_eos()),
            bos_token=private.token_text(llm, llm.token_bos()),
        )
        result = formatter(messages=[{"role": m.role, "content": m.content} for m in request.messages or []])
        request.sampling = request.sampling.model_copy(
            update={"stop": list(request.sampling.stop) + [s for s in (result.stop or []) if isinstance(s, str)]}
        )
        return self.tokenize(result.prompt, add_bos=result.added_special is False and private.add_bos(llm))

    def _run(self, request: GenerationRequest, emit: Any) -> None:
        try:
            with self._lock:
                kept = self._snapshot() if request.keep_cache else None
                try:
                    self._generate(request, emit)
                finally:
                    if kept is not None:
                        self._restore(*kept)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the consumer
            if not isinstance(exc, EngineError):
                exc = EngineError(f"the embedded engine failed: {exc}")
            emit(exc)
        finally:
            emit(_DONE)

    def _generate(self, request: GenerationRequest, emit: Any) -> None:
        llm = self._llm
        cancel = request.cancel
        start = time.perf_counter()
        plan = self._plan(request)
        sampling: Sampling = request.sampling
        tokens, reuse = plan.tokens, plan.reuse
        stats = GenerationStats(prompt_tokens=len(tokens), tokens_reused=max(reuse, 0) - plan.cache.inserted,
                                tokens_evaluated=plan.evaluated,
                                tokens_shifted=min(plan.cache.shifted, max(reuse, 0)), completion_tokens=0)
        stats.cache_note = self._cache_note(plan)
        # Evaluate all but the last prompt token in slices, so progress is reported and
        # cancellation is honoured during a long prompt; the last token goes alone, as
        # llama-cpp-python's own generate() would evaluate it.
        todo = tokens[max(reuse, 0): len(tokens) - 1]
        if todo:
            done = llm.n_tokens
            emit(PromptProgress(done, len(tokens)))
            for i in range(0, len(todo), _EVAL_SLICE):
                piece = todo[i: i + _EVAL_SLICE]
                if cancel.is_set() or not self._eval_abortable(piece, cancel):
                    stats.seconds_total = time.perf_counter() - start
                    emit(Finished("cancelled", stats))
                    return
                done += len(piece)
                emit(PromptProgress(done, len(tokens)))
        if llm.n_tokens < len(tokens) and not cancel.is_set():
            llm.eval(tokens[llm.n_tokens:])
        self._shift_pending = self._shift_pending and llm.n_tokens < len(tokens)
        prompt_done = time.perf_counter()
        finish, stop_string, first_at = self._decode_reply(tokens, sampling, cancel, emit, stats)
        end = time.perf_counter()
        stats.prompt_seconds = prompt_done - start
        stats.seconds_total = end - start
        stats.seconds_to_first_token = (first_at - start) if first_at else None
        gen_seconds = end - (first_at or end)
        if stats.completion_tokens and stats.completion_tokens > 1 and gen_seconds > 0:
            # The first token's time belongs to prompt evaluation; rate the rest.
            stats.tokens_per_second = (stats.completion_tokens - 1) / gen_seconds
        emit(Finished(finish, stats, stop_string))

    def _snapshot(self) -> tuple[KVSnapshot, StalenessTracker] | None:
        """The main cache before a side road (``keep_cache``), or None when it cannot be kept: a
        cache edit whose K shift llama.cpp has not applied yet would not survive the copy."""
        if self._shift_pending or not self._settings.prefix_reuse:
            return None
        snapshot = snapshot_kv(self._llm)
        return (snapshot, copy.deepcopy(self.staleness)) if snapshot is not None else None

    def _restore(self, snapshot: KVSnapshot, staleness: StalenessTracker) -> None:
        """Put the main cache back as it was before a side road (an empty one if llama.cpp refuses)."""
        self._shift_pending = False
        if restore_kv(self._llm, snapshot):
            self.staleness = staleness
        else:
            self.staleness.reset()

    def _eval_abortable(self, piece: list[int], cancel: threading.Event) -> bool:
        """Evaluate a slice of the prompt; ``cancel`` aborts it inside llama.cpp (between graph
        nodes), so Esc stops a slow slice at once. Returns False when it was aborted: llama.cpp
        drops the slice's cache entries and ``n_tokens`` still ends before the slice."""
        import ctypes

        import llama_cpp

        from storyteller.engines import _llama_private as private

        ctx = private.ctx(self._llm)
        check = llama_cpp.ggml_abort_callback(lambda _data: cancel.is_set())
        llama_cpp.llama_set_abort_callback(ctx, check, ctypes.c_void_p())
        try:
            self._llm.eval(piece)
        except RuntimeError:
            if not cancel.is_set():
                raise
            return False
        finally:
            llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), ctypes.c_void_p())
        return True

    def _decode_reply(self, tokens: list[int], sampling: Sampling, cancel: threading.Event, emit: Any,
                      stats: GenerationStats) -> tuple[FinishReason, str | None, float | None]:
        """Draw, show and evaluate reply tokens (:func:`~storyteller.engines._reply.decode_reply`)."""
        from storyteller.engines._reply import decode_reply

        seed = sampling.seed if sampling.seed is not None else self._settings.seed
        finish, stop_string, first_at, stats.completion_tokens = decode_reply(
            self._llm, tokens, sampling, seed=seed, cancel=cancel, emit=emit)
        return finish, stop_string, first_at

    def _cache_note(self, plan: _Plan) -> str:
        """Say in words why the cache could or could not be reused."""
        total, cache = len(plan.tokens), plan.cache
        if not self._settings.prefix_reuse:
            return "prefix reuse is off (engine.prefix_reuse = false): full evaluation"
        if plan.cached == 0:
            return "the cache was empty: full evaluation"
        if plan.failure:
            return f"{plan.failure}: full evaluation"
        note = f"reused {max(plan.reuse, 0) - cache.inserted} of {total} prompt tokens"
        if cache.inserts:
            spans = ", ".join(f"{a}-{b}" for a, b in cache.inserts)
            note += f"; evaluated {cache.inserted} new tokens in place (prompt tokens {spans})"
            if cache.removals:
                note += f", removed cached tokens {', '.join(f'{a}-{b}' for a, b in cache.removals)}"
            note += f" and shifted {cache.shifted}"
        elif cache.removals:
            spans = ", ".join(f"{a}-{b}" for a, b in cache.removals)
            note += f"; context shift: removed cached tokens {spans} and shifted {cache.shifted}"
        elif cache.diverged_at is not None and cache.diverged_at < plan.cached:
            why = ("context shift is off (engine.context_shift = false)" if not self._settings.context_shift
                   else "this model's cache cannot shift" if not self._can_shift
                   else "no later part of the cache matches the rest of the prompt")
            note += f"; the prompt changed at token {cache.diverged_at} of {plan.cached} cached, and {why}"
        return f"{note}; {plan.policy_note}" if plan.policy_note else note



def _allow_hidden_sequence(llm: Any) -> None:
    """Give the context a second sequence sharing one KV cache, for inserting in the middle.

    ``Llama`` always makes a one-sequence context; it is rebuilt here with two sequences and
    a unified cache (same size, same memory). On any failure the one-sequence context stays
    and the engine only removes spans (no insertion).
    """
    from storyteller.engines import _llama_private as private

    private.rebuild_context(llm, n_seq_max=2, kv_unified=True)

