"""Compiled evaluation: a group of points' forward, loss and metric sums as one ``torch.compile``
graph (:class:`CompiledSums`), whether to compile (:func:`compile_choice`) and whether it can
be done here (:func:`compiler_missing`). Inductor keeps compiled code between runs in its
cache (the command line puts it under the user's cache directory:
``pipeline.cli._common.compile_cache_dir``), so a rerun or a resume compiles from cache.

What is compiled
----------------
``step(weights, fixed, inputs, targets, prep)``: ``torch.func.functional_call`` of the model
with the point's moving tensors (``weights``) and the fixed ones as graph *inputs* (vmapped
over the lanes of a group when there are several), then :meth:`Objective.sum_tensors
<pipeline.objective.Objective.sum_tensors>`: per-sample losses, the float64 sum of each lane,
the arg-max correctness and the user's metrics, fused with the forward by inductor. The
weights are never constants of the graph, so one graph serves every point, every chunk and
every call on a model of the same structure; the batch dimension is dynamic, so the ramp of
batch sizes and the last, shorter batch reuse it (a batch of one sample gets its own graph, as
does each canonical lane count of vmapped groups). What depends on the targets alone (their
checks, the count of counted elements) stays outside, in :meth:`Objective.prepare
<pipeline.objective.Objective.prepare>`, computed once per batch.

``fullgraph=True``: a model that dynamo cannot capture in one graph is not compiled at all.
No timing enters (no autotuning), so the kernels, and the bits, are the same in every process
of the same machine and thread count. On CUDA the graph is replayed through CUDA graphs
(``mode="reduce-overhead"``).

Exactness
---------
Inductor fuses and reorders elementwise work, so compiled values differ from eager ones in the
last bits of the float32 per-sample losses: they agree to about 1e-7 relative (the tests hold
them to 1e-5 on the model zoo, a user model, several points per forward, BatchNorm in eval
mode and token inputs). Compiled values are as reproducible as eager ones: a point's value
depends on its own weights only (vmapped lanes are verified as in the eager path), so a
resumed or distributed compiled surface is bitwise the uninterrupted one. Whether a surface
was compiled is in its metadata (``engine.plan.compiled``) and in the fingerprint of its
chunks, so a resume never mixes compiled and eager chunks.

Before first use in a process, every shape a call will run (each batch length and lane count)
is compiled and checked against the eager evaluation at the plane's centre (:func:`verified`,
memoised per model structure and shapes): a capture failure (a graph break, an unsupported
operator), a missing compiler or a value further than :data:`VERIFY_RTOL` from eager makes the
call evaluate eagerly, with one warning, never an error.

The ``auto`` rule
-----------------
Deterministic, never timed (ranks and reruns must choose alike): compile when the expected
saving over the whole job exceeds the expected compile cost,

    saving       = points x samples x FLOPs x (1 / eager_rate - 1 / compiled_rate)
    compile cost = COMPILE_SECONDS + COMPILE_SECONDS_PER_OP x operators

FLOPs (of one sample's forward) and operators (ATen operators of one forward) come from the
model's shape profile (:mod:`.tuning`); the two rates (GFLOP/s of one thread) are the gains
measured by model shape (:data:`CPU_RATES`), read at the model's FLOPs per byte of
activations: a small convolution net, whose eager forward is dominated by separate passes over
memory (ReLU, pooling, the loss), gains most; a wide residual net, whose time is in its
convolutions, gains little. Every figure is one thread's CPU seconds (the compile's C++
builds included), so the choice does not depend on the threads of a rank. The constants were
measured on the project's CPU (``benchmarks/bench_compile.py --only calibrate``;
docs/compile.md has the table and how it was taken). A warm inductor cache makes the real
compile cost lower, but the rule does not look at the cache, so a rerun chooses as the first
run did. On CUDA the gains are not measured: ``auto`` evaluates eagerly there (``on``
compiles, with CUDA graphs).
"""
from __future__ import annotations

import contextlib
import logging
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn

from .config import COMPILE_MODES

log = logging.getLogger(__name__)

__all__ = ["COMPILE_MODES", "CompileChoice", "CompiledSums", "compile_choice", "compiler_missing",
           "verified", "notice_once", "VERIFY_RTOL"]

VERIFY_RTOL = 1e-4  # a compiled batch sum further than this from eager (relative) is a miscompile: evaluate eagerly

# the cost model of the 'auto' rule, measured by ``benchmarks/bench_compile.py --only calibrate``
# (one thread, CPU seconds; docs/compile.md has the table, the load and how it was taken):
# (FLOPs per byte of activations, eager GFLOP/s, compiled GFLOP/s), by increasing intensity
CPU_RATES: tuple[tuple[float, float, float], ...] = (
    (9.34, 19.1, 25.6),  # an MLP regression (10-64-64-1, tanh)
    (11.0, 17.8, 16.6),  # a 2-layer transformer encoder on 32 tokens: compiled is slower
    (27.5, 28.8, 63.8),  # digits-cnn
    (32.0, 28.1, 37.0),  # LeNet
    (53.8, 92.7, 123.6),  # ResNet-20
    (149.3, 141.9, 141.1),  # VGG-9: compiled is slower
)
# a cold compile (dynamo, inductor, the C++ builds, the check against eager) ..., fitted to the
# six models' cold costs (4.0-19.1 s for 5-75 operators) by least squares
COMPILE_SECONDS = 4.2
COMPILE_SECONDS_PER_OP = 0.21  # ... and per operator of the forward

_NOTICED: set[str] = set()  # notices already given in this process
_VERDICTS: dict[tuple, tuple[bool, str]] = {}  # (model structure, shapes, ...) -> (compiled works, why not)
_CODES: dict[tuple, types.CodeType] = {}  # one code object per model structure (dynamo's cache is per code)


@dataclass(frozen=True)
class CompileChoice:
    """Whether a call or a job compiles, and why."""

    compiled: bool
    reason: str  # one line, the same for every call of a job
    saving_s: float | None = None  # 'auto': the expected saving over the job (seconds) ...
    cost_s: float | None = None  # ... and the expected compile cost it was weighed against

    def to_dict(self) -> dict[str, Any]:
        return {"compiled": self.compiled, "reason": self.reason, "expected_saving_s": self.saving_s,
                "expected_compile_s": self.cost_s}


def notice_once(message: str) -> None:
    """A warning (the one notice of a fallback), given once per process for the same message."""
    if message not in _NOTICED:
        _NOTICED.add(message)
        log.warning("%s", message)


def compiler_missing(device: torch.device) -> str | None:
    """Why nothing can be compiled for ``device`` here (None when it can): dynamo unsupported on
    this Python, no C++ compiler (CPU), no Triton (CUDA)."""
    try:
        import torch._dynamo as dynamo
    except ImportError as exc:  # pragma: no cover - a torch build without dynamo
        return f"torch._dynamo cannot be imported ({exc})"
    if not dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        return None if has_triton() else "Triton is not installed (torch.compile needs it on CUDA)"
    from torch._inductor import cpp_builder, exc

    try:
        cpp_builder.get_cpp_compiler()
    except (exc.InvalidCxxCompiler, OSError, RuntimeError) as err:
        return f"no C++ compiler found ({type(err).__name__}; install g++ or set CXX)"
    return None


def compile_choice(mode: str, profile: Any, points: int, samples: int, device: torch.device,
                   *, check_available: bool = True) -> CompileChoice:
    """Whether to compile: ``mode`` 'on'/'off' as asked, 'auto' by the module's rule.

    ``profile``: the model's :class:`~.tuning.ModelProfile`; ``points`` and ``samples``: the
    whole job's (every chunk, every split).
    ``check_available``: 'auto' also says no where nothing can be compiled here
    (:func:`compiler_missing`); a job's recorded choice leaves that out (a merge on another
    node must make the same choice as the shards) and the calls fall back instead.
    """
    if mode == "off":
        return CompileChoice(False, "compile off")
    if mode == "on":
        missing = compiler_missing(device)
        return CompileChoice(missing is None, "compile on" if missing is None else f"compile on, but {missing}")
    if profile is None or profile.output_shape is None or profile.flops_per_sample <= 0:
        return CompileChoice(False, "auto: the model's outputs or FLOPs are unknown")
    if device.type != "cpu":
        return CompileChoice(False, f"auto: eager on {device.type} (the gains of compiling are measured on CPUs only)")
    eager, compiled = rates_at(profile.flops_per_sample / max(profile.activation_bytes, 1))
    saving = points * samples * profile.flops_per_sample * (1 / eager - 1 / compiled) / 1e9
    cost = COMPILE_SECONDS + COMPILE_SECONDS_PER_OP * profile.operators
    verdict = saving > cost
    # only now look for a compiler (importing inductor takes seconds: never for a small job)
    missing = compiler_missing(device) if verdict and check_available else None
    if missing is not None:
        return CompileChoice(False, f"auto: eager: {missing}", round(saving, 3), round(cost, 3))
    why = "the expected saving exceeds the compile cost" if verdict else "the compile cost exceeds the expected saving"
    return CompileChoice(verdict, f"auto: {'compiled' if verdict else 'eager'}: {why}", round(saving, 3),
                         round(cost, 3))


def rates_at(intensity: float) -> tuple[float, float]:
    """``(eager, compiled)`` GFLOP/s of one thread expected of a model whose forward does
    ``intensity`` FLOPs per byte of activations: :data:`CPU_RATES` interpolated linearly in
    log(intensity), the end rows beyond the measured range."""
    import math

    rows = CPU_RATES
    if intensity <= rows[0][0]:
        return rows[0][1], rows[0][2]
    for (x0, e0, c0), (x1, e1, c1) in zip(rows, rows[1:]):
        if intensity <= x1:
            t = (math.log(intensity) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return e0 + t * (e1 - e0), c0 + t * (c1 - c0)
    return rows[-1][1], rows[-1][2]


def _fresh_function(fn: Callable, key: tuple) -> Callable:
    """``fn`` with a code object of its own per ``key``.

    Dynamo keeps its compiled graphs per code object and recompiles at most
    ``recompile_limit`` times per code object before it silently runs eagerly; closures made
    by the same ``def`` share one code object, so each model structure gets its own copy.
    """
    code = _CODES.get(key)
    if code is None:
        if len(_CODES) > 256:
            _CODES.clear()
        code = _CODES[key] = fn.__code__.replace(co_name=f"{fn.__code__.co_name}_{len(_CODES)}")
    return types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


class CompiledSums:
    """The compiled forward and sums of a group of points (module docstring).

    ``__call__(weights, fixed, inputs, targets, prep)``: ``weights`` ``{key: (g, *shape)}`` with
    ``lanes`` > 1, ``{key: shape}`` with one point; returns :meth:`Objective.sum_tensors
    <pipeline.objective.Objective.sum_tensors>`' tuple, per lane.
    """

    def __init__(self, model: nn.Module, objective: Any, lanes: int, device: torch.device, precision: str,
                 key: tuple):
        from torch.func import functional_call, vmap

        from .lanes import AUTOCAST_DTYPES

        dtype = AUTOCAST_DTYPES.get(precision)
        kind = device.type

        def forward(w: dict, fixed: dict, xb: torch.Tensor) -> torch.Tensor:
            if lanes > 1:
                return vmap(lambda wl, x: functional_call(model, {**fixed, **wl}, (x,)), in_dims=(0, None))(w, xb)
            return functional_call(model, {**fixed, **w}, (xb,)).unsqueeze(0)

        def step(w: dict, fixed: dict, xb: torch.Tensor, targets: torch.Tensor, prep: Any) -> tuple:
            if dtype is not None:
                with torch.autocast(device_type=kind, dtype=dtype):
                    out = forward(w, fixed, xb)
            else:
                out = forward(w, fixed, xb)
            return objective.sum_tensors(out, targets, prep)

        mode = "reduce-overhead" if kind == "cuda" else None
        self._fn = torch.compile(_fresh_function(step, key), fullgraph=True, dynamic=False, mode=mode)
        self.lanes = lanes

    def __call__(self, weights: dict, fixed: dict, inputs: torch.Tensor, targets: torch.Tensor, prep: Any) -> tuple:
        from torch._dynamo import maybe_mark_dynamic

        if len(inputs) > 1:  # one graph for every batch length (a batch of 1 specialises)
            for t in (inputs, targets, prep.flat, prep.counted):
                if t is not None:
                    maybe_mark_dynamic(t, 0)
        return self._fn(weights, fixed, inputs, targets, prep)


def isa_from_cpu_flags() -> contextlib.AbstractContextManager:
    """A context in which inductor takes the vector instruction sets the CPU reports (its flags)
    as usable without building and loading a probe kernel for each.

    Inductor checks each instruction set the CPU reports (AVX-512, AVX2, ...) by compiling and
    loading a small kernel in a subprocess, a C++ build of the vectorised headers apiece; with an
    empty cache these probes are about half the cold compile of a small network (docs/compile.md,
    "Where the time goes"). Trusting the flags leaves the chosen instruction set, the kernels and
    their values as they were; only a C++ compiler too old for the CPU's instructions behaves
    differently: its build fails, and the evaluation falls back to eager (:func:`verified`)
    instead of compiling for an older instruction set. Inductor memoises the list for the
    process, so the process's later compiles, the user's own included, see the same list.
    ``TORCHINDUCTOR_VEC_ISA_OK`` in the environment decides when it is set (``1`` trusts the
    flags as here, ``0`` builds scalar kernels).
    """
    import os

    if "TORCHINDUCTOR_VEC_ISA_OK" in os.environ:
        return contextlib.nullcontext()
    from torch._inductor import config as inductor_config

    return inductor_config.patch({"cpp.vec_isa_ok": True})


def _not_cuda_home_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("No CUDA runtime is found")


@contextlib.contextmanager
def quiet_cuda_home_notice() -> Iterator[None]:
    """A context without torch's "No CUDA runtime is found, using CUDA_HOME=..." warning: the C++
    builds of a compile import ``torch.utils.cpp_extension``, which gives it on a machine with a
    CUDA toolkit and no GPU, where it says nothing about a CPU evaluation."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    logger.addFilter(_not_cuda_home_notice)
    try:
        yield
    finally:
        logger.removeFilter(_not_cuda_home_notice)


def verified(key: tuple, reference: Callable[[], Any], attempt: Callable[[Any], None]) -> tuple[bool, str]:
    """``(True, '')`` when the compiled evaluation works for ``key`` (model structure, shapes,
    device, precision, threads), else ``(False, why)``; memoised per ``key``.

    ``reference()`` evaluates eagerly what the check compares with (its errors are the user's:
    they propagate); ``attempt(reference)`` compiles every shape and compares, raising on any
    failure, whose message becomes the reason.
    """
    if key in _VERDICTS:
        return _VERDICTS[key]
    import torch._dynamo.config as dynamo_config

    ref = reference()
    try:
        # a recompile past the limit must fail here, not silently run eagerly
        with dynamo_config.patch(fail_on_recompile_limit_hit=True), isa_from_cpu_flags(), quiet_cuda_home_notice():
            attempt(ref)
        verdict = (True, "")
    except Exception as exc:  # any failure of capture, lowering or the C++ build: evaluate eagerly
        stop = _stop_request(exc)
        if stop is not None:  # Ctrl-C or SIGTERM while compiling, wrapped by torch: the user's stop, not a verdict
            raise stop from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        verdict = (False, f"{type(exc).__name__}: {first[:240]}" if first else type(exc).__name__)
    if len(_VERDICTS) > 256:
        _VERDICTS.clear()
    _VERDICTS[key] = verdict
    return verdict


def _stop_request(exc: BaseException) -> BaseException | None:
    """The CLI's stop (:class:`~pipeline.surface.StoppedBySignal`) or a KeyboardInterrupt that
    ``exc`` wraps (torch's ``BackendCompilerFailed`` wraps what its backend raised), else None."""
    from ..surface.distribute import StoppedBySignal

    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 32:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        if isinstance(e, (StoppedBySignal, KeyboardInterrupt)):
            return e
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "inner_exception", None)]
    return None

