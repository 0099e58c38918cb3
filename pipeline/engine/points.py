"""``evaluate_points``: loss and accuracy of a model at points ``(alpha, beta)`` of a plane.

How one call runs
-----------------
1. The data (a ``Split`` or an ``(inputs, targets)`` pair; optionally a fixed seeded subset)
   is moved to the device once, in the chosen memory format; it is never re-read per point.
2. The centre weights and directions are checked against the model (:class:`~.plane.Plane`).
3. Batch size and points per forward are chosen (:mod:`.tuning`, deterministic).
4. Points are taken in the order given, ``points_per_batch`` at a time (a *group*). A group's
   weights ``theta + a x + b y`` are built once from the stored centre; every batch of samples
   goes through the model once for the whole group: ``torch.func.vmap`` over
   ``torch.func.functional_call`` with the stacked weights when the group has several
   *lanes*; with one point per forward (``points_per_batch`` 1), a private copy of the model
   (up to 256 MiB of state) receives the point's weights once and is called directly, or
   ``functional_call`` runs with them (larger models, tied weights). When the split
   spans several batches, the first forwards ramp up (``batch_size // 8``, ``// 4``, ``// 2``
   samples: an early exit can stop a divergent point after few samples), then take
   ``batch_size`` samples at a time.
5. Per-sample cross-entropies (float32, from float32 logits) are kept for every lane; a
   point's loss is one float64 reduction over its N values (a fixed order for a given N),
   divided by N. So the value does not depend on how the samples were batched, only on the
   per-sample logits.

Independence of the other points in a call
------------------------------------------
A point's result must not depend on the points that share its call (a chunked, resumed or
distributed grid must equal an uninterrupted one bit for bit). What holds, on the same device
and thread count, for the same ``EvalConfig``:

- weights are built by elementwise IEEE operations, identical for every lane;
- with one point per forward (``points_per_batch == 1``) every point runs the same shapes
  alone: trivially independent;
- with several lanes, vmapped convolutions and matmuls compute all lanes in one kernel, and
  which kernel runs depends on the number of lanes (a 1-lane vmapped
  ``linear`` on a 5-sample batch can take another MKL path than a 2-lane one and differ in the
  last bit). So groups are *canonical*: a group of k points runs padded (with copies of its
  first point, results dropped) to the smallest size >= k of 2, 4, 8, ..., ``points_per_batch``
  (:func:`.lanes.lane_sizes`); a call's last, partial group and a group that lost points to an
  early exit use these sizes too. Before using lanes, every call *verifies* each of these
  shapes (:func:`.lanes.lanes_are_independent`): synthetic points run as a full group, then
  in groups of every canonical size, in order and reversed (other positions, other
  companions), on a batch of every length used; their logits must be equal
  bit for bit. If anything differs, or the model cannot be vmapped, the call falls back to
  one point per forward (logged, and noted in ``PointResult.notes``). The verdict is memoised
  per model structure, device, precision, sizes and thread count. This is an empirical check
  of the kernels, not a proof: it covers every shape that can occur, on the real data;
- the choices of batch size and points per forward never depend on the call's points.

The vmapped and the plain forward of the same point may differ in the last bits (different
kernels); they agree to ~1e-7 relative (tested).

Early exit above a cap
----------------------
With ``cap=C``, after each batch a lane whose running float64 sum ``S_k`` of per-sample losses
exceeds ``C * N * (1 + 1e-9)`` is stopped: since every cross-entropy is >= 0, the mean is then
> C whatever the remaining samples hold (the 1e-9 margin covers float64 rounding of ``S_k``).
It is dropped from its group: one point per forward simply stops; with lanes, the rest go on
in the smallest canonical group that holds them (rebuilt from their coefficients), so the
forward work shrinks as the group halves. It is stored with ``bounded=True`` and loss
``S_k / N`` (a lower bound of the true mean, > C; ``accuracy`` over the samples seen). The
test runs after every batch but the last: a point that only ends above C was fully evaluated
and keeps its exact value. A lane that never exceeds runs to the end and its value is
bit-identical to an evaluation without a cap (same batches, same per-sample values, same
final sum). ``S_k`` is summed per point (one 1-D reduction per batch), so the decision does
not depend on companions either. NaN never exceeds a cap: a NaN point runs to the end and
stays NaN.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..objective import LossSpec, Objective
from ..progress import progress_bar
from .batches import TensorData, as_eval_data
from .config import EvalConfig, EvalPlan, PointResult
from .plane import Plane
from .device import resolve_device
from .compiled import CompileChoice, CompiledSums, compile_choice, notice_once
from .lanes import LaneRunner, autocast, compiled_works, lanes_are_independent
from .tuning import choose_plan_values, profile_model

log = logging.getLogger(__name__)

__all__ = ["evaluate_points", "as_split", "as_objective", "probe", "compile_decision", "resolve_compile"]

_PROFILE_CACHE: dict[tuple, Any] = {}  # model shape profiles (tuning.profile_model), by structure


class _NoBar(contextlib.nullcontext):
    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> "_NoBar":
        return self


def as_split(data: Any, name: str = "data") -> Any:
    """The evaluation form of ``data`` (:func:`.batches.as_eval_data`): tensors, a Split, a
    Dataset, a DataLoader or a re-iterable of batches."""
    return as_eval_data(data, name)


def _as_coords(coords: Any, ndim: int) -> np.ndarray:
    """(P, ndim) float64 coefficients: ``(P, 2)`` ``(alpha, beta)`` (``(P,)``: alpha, beta 0) for
    one or two directions, ``(P, 3)`` ``(alpha, beta, gamma)`` for three."""
    c = np.ascontiguousarray(coords, dtype=np.float64)  # a reversed or sliced view: torch needs positive strides
    if c.ndim == 1:
        c = np.stack([c, np.zeros_like(c)], axis=1)
    want = 3 if ndim == 3 else 2
    if c.ndim != 2 or c.shape[1] != want:
        what = "(P, 3) (alpha, beta, gamma) for three directions" if want == 3 else "(P, 2) (alpha, beta)"
        raise ValueError(f"coords must have shape {what}; got {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("coords must be finite")
    if ndim == 1 and np.any(c[:, 1] != 0):
        raise ValueError("coords[:, 1] (beta) must be 0 for a 1D direction (directions.y is None); "
                         f"got values up to {np.abs(c[:, 1]).max():g}")
    return c[:, :ndim]


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """The model in eval mode for the block; every module's training flag restored after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, t in flags:
            m.training = t


@contextlib.contextmanager
def _backend_scope(device: torch.device, precision: str, deterministic: bool) -> Iterator[None]:
    """CUDA flags for the block, restored after: strict fp32 unless 'tf32'; determinism."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    old_tf32 = matmul.allow_tf32
    try:
        matmul.allow_tf32 = precision == "tf32"
        with torch.backends.cudnn.flags(enabled=True, benchmark=not deterministic, deterministic=deterministic,
                                        allow_tf32=precision == "tf32"):
            yield
    finally:
        matmul.allow_tf32 = old_tf32


def _uses_channels_last(config: EvalConfig, inputs: torch.Tensor, has_conv2d: bool) -> bool:
    if config.memory_format == "auto":
        return inputs.dim() == 4 and has_conv2d
    return config.memory_format == "channels_last" and inputs.dim() == 4


def _profile(model: nn.Module, plane: Plane, inputs: torch.Tensor, device: torch.device, precision: str):
    """:func:`~.tuning.profile_model`, memoised per model structure, input shape, device and precision."""
    return _profile_of(model, plane.centre, inputs, device, precision)


def _profile_of(model: nn.Module, state: dict[str, torch.Tensor], inputs: torch.Tensor, device: torch.device,
                precision: str):
    key = (type(model).__module__, type(model).__qualname__,
           tuple((k, tuple(v.shape), str(v.dtype)) for k, v in state.items()),
           tuple(inputs.shape[1:]), str(inputs.dtype), device.type, precision)
    if key not in _PROFILE_CACHE:
        with autocast(device, precision):
            if len(_PROFILE_CACHE) > 64:
                _PROFILE_CACHE.clear()
            _PROFILE_CACHE[key] = profile_model(model, state, inputs[:2])
    return _PROFILE_CACHE[key]


def as_objective(loss: Any) -> Objective:
    """An :class:`~pipeline.objective.Objective` from one, a :class:`~pipeline.objective.LossSpec`,
    a loss name or ``"module:function"``, or None (cross-entropy)."""
    if isinstance(loss, Objective):
        return loss
    if loss is None or isinstance(loss, str):
        return Objective(LossSpec(loss or "cross_entropy"))
    if isinstance(loss, LossSpec):
        return Objective(loss)
    raise ValueError(f"loss must be a LossSpec, a loss name or 'module:function'; got {type(loss).__name__}")


def evaluate_points(model: nn.Module, directions: Any, coords: Any, data: Any, config: EvalConfig = EvalConfig(),
                    *, loss: Any = None, progress: bool = True) -> PointResult:
    """The loss (and accuracy, metrics) of ``model`` at ``theta + alpha * x + beta * y`` (``+ gamma * z``
    for directions of a volume) for each row of ``coords``.

    Parameters
    ----------
    model : nn.Module
        Its current parameters and buffers are the centre ``theta``; it is run in eval mode
        (BatchNorm uses running statistics) and left as it was (training flags, weights).
    directions : Directions
        ``.x`` (and ``.y``, None for 1D; ``.z`` for a volume) dicts of tensors keyed like
        ``model.state_dict()``.
        Entries for buffers (BatchNorm running statistics) perturb them when non-zero.
    coords : (P, 2) or, for three directions, (P, 3) float64 array-like
        ``(alpha, beta[, gamma])`` per point, in direction units; ``(P,)`` means alpha with beta 0.
        For 1D directions beta must be 0.
    data : tensors, Split, Dataset, DataLoader, re-iterable of batches, or their evaluation form
        (:func:`.batches.as_eval_data`). ``config.max_samples`` selects a fixed seeded subset.
    config : EvalConfig
    loss : Objective, LossSpec, a loss name or ``"module:function"``, default cross-entropy
        What a point's value is (:mod:`pipeline.objective`).
    progress : bool, default True
        Show a progress bar (points/s) on stderr.

    Returns
    -------
    PointResult
        ``loss``, ``bounded``, ``samples`` (and ``accuracy``, ``metrics``) of shape (P,), numpy, in
        the order of ``coords``, and the resolved ``plan``. A point's values depend only on its
        own coordinates, the model, directions, data, loss and config (module docstring).

    Raises
    ------
    CheckpointError
        Directions that do not fit the model (names the tensor).
    ValueError
        Bad coordinates, data, outputs that do not fit the targets, a bad config value.
    """
    t0 = time.perf_counter()
    if not isinstance(config, EvalConfig):
        raise ValueError(f"config must be an EvalConfig; got {type(config).__name__}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    objective = as_objective(loss)
    device = resolve_device(config.device)
    plane = Plane(model, directions, device)
    c = _as_coords(coords, plane.ndim)
    data = as_eval_data(data).subset(config.max_samples, seed=config.sample_seed)
    if config.cap is not None and not objective.spec.nonnegative:
        raise ValueError(f"cap needs a loss that is never negative (a named loss); {objective.name!r} may be")
    # the model's floating dtype (autocast lowers it per operation for bf16/fp16)
    dtype = next((v.dtype for v in plane.centre.values() if v.is_floating_point()), torch.float32)
    data = data.to(device, dtype)  # moved once for the whole call (a stream: batch by batch)

    with _eval_mode(model), _backend_scope(device, config.precision, config.deterministic), torch.inference_mode():
        runner, plan, notes = _runner(model, plane, data, objective, config, device, len(c))
        P = len(c)
        arrays: dict[str, np.ndarray] = {"loss": np.empty(0), "bounded": np.empty(0, bool),
                                         "samples": np.empty(0, np.int64)}
        if objective.spec.has_accuracy:
            arrays["accuracy"] = np.empty(0)
        coef = torch.as_tensor(c, dtype=torch.float64, device=device)  # (P, ndim)
        lanes = plan.points_per_batch
        with (progress_bar(total=P, desc="surface", unit="pt") if progress else _NoBar()) as bar:
            for s in range(0, P, lanes):
                e = min(s + lanes, P)
                group = runner.run_group(coef[s:e], config.cap)
                for name, values in group.items():
                    if len(arrays.get(name, ())) != P:
                        arrays[name] = np.empty(P, dtype=values.cpu().numpy().dtype)
                    arrays[name][s:e] = values.cpu().numpy()
                bar.update(e - s)
    loss_values = arrays.pop("loss")
    accuracy = arrays.pop("accuracy", None)
    if accuracy is not None:
        accuracy[~np.isfinite(loss_values)] = np.nan  # the arg-max of non-finite outputs is no prediction
    bounded, samples = arrays.pop("bounded"), arrays.pop("samples")
    return PointResult(loss=loss_values, accuracy=accuracy, bounded=bounded, samples=samples, plan=plan,
                       seconds=time.perf_counter() - t0, notes=notes, metrics=arrays)


def _runner(model: nn.Module, plane: Plane, data: Any, objective: Objective, config: EvalConfig,
            device: torch.device, points: int) -> tuple[LaneRunner, EvalPlan, list[str]]:
    """The lane runner of this call and its plan: batch size, points per forward, memory format,
    compiled or not (``points``: the call's, for the ``auto`` rule)."""
    notes: list[str] = []
    if not isinstance(data, TensorData):  # the source's own batches, one point per forward
        why = "compile: the source's batches run eagerly (compiling needs the data as tensors)"
        if config.compile == "on":
            notice_once(f"evaluating eagerly: {why}")
            notes.append(why)
        plan = EvalPlan(device=str(device), precision=config.precision, batch_size=0, points_per_batch=1,
                        memory_format="contiguous", samples=data.n or 0, threads=torch.get_num_threads(),
                        reason=f"batches of the data ({'in memory' if data.in_memory else 'streamed'}), one point "
                               f"per forward", flops_per_sample=0.0, loss=objective.name, compile_reason=why)
        return LaneRunner(model, plane, data, objective, 0, 1, device, config.precision, False), plan, notes
    profile = _profile(model, plane, data.inputs, device, config.precision)
    fmt = "contiguous"
    if _uses_channels_last(config, data.inputs, profile.has_conv2d):
        data = TensorData(data.inputs.contiguous(memory_format=torch.channels_last), data.targets, data.name)
        plane.to_channels_last()
        fmt = "channels_last"
    batch_size, lanes, reason = choose_plan_values(profile, data.n, device, plane.bytes_moving, config.batch_size,
                                                   config.points_per_batch if plane.moving else 1)
    choice = compile_choice(config.compile, profile, points, data.n, device)

    def make(k: int, compiled: bool) -> LaneRunner:
        step = None
        if compiled:
            key = (type(model).__module__, type(model).__qualname__,
                   tuple((n, tuple(v.shape)) for n, v in plane.centre.items()), k > 1, str(device), config.precision,
                   json.dumps(objective.spec.to_dict(), sort_keys=True))
            step = CompiledSums(model, objective, k, device, config.precision, key)
        return LaneRunner(model, plane, data, objective, batch_size, k, device, config.precision,
                          fmt == "channels_last", compiled=step, output_shape=profile.output_shape)

    def checked(k: int) -> LaneRunner:
        """A runner of ``k`` lanes, compiled when chosen and when it works here (else eager, noted)."""
        nonlocal choice
        if not choice.compiled:
            return make(k, False)
        runner = make(k, True)
        ok, why = compiled_works(model, plane, runner, lambda: make(k, False))
        if ok:
            return runner
        choice = CompileChoice(False, f"{choice.reason}; failed: {why}")
        notice_once(f"evaluating eagerly: the model could not be compiled ({why})")
        notes.append(f"eager: compiling failed ({why})")
        return make(k, False)

    if config.compile == "on" and not choice.compiled:
        notice_once(f"evaluating eagerly: {choice.reason.removeprefix('compile on, but ')}")
        notes.append(f"eager: {choice.reason}")
    runner = checked(lanes)
    if lanes > 1:
        ok, why = lanes_are_independent(model, plane, runner)
        if not ok:
            log.warning("evaluating one point per forward: %s", why)
            notes.append(f"one point per forward: {why}")
            lanes = 1
            runner = checked(1)
    plan = EvalPlan(device=str(device), precision=config.precision, batch_size=batch_size, points_per_batch=lanes,
                    memory_format=fmt, samples=data.n, threads=torch.get_num_threads(), reason=reason,
                    flops_per_sample=float(profile.flops_per_sample), loss=objective.name,
                    compiled=runner.compiled is not None, compile_reason=choice.reason)
    return runner, plan, notes


def resolve_compile(model: nn.Module, data: Any, config: EvalConfig, points: int,
                    samples: int | None = None) -> tuple[EvalConfig, CompileChoice]:
    """``config`` with ``compile='auto'`` decided for a whole job (every call of it then runs
    with 'on' or 'off'), and the choice: see :func:`compile_decision`."""
    if config.compile != "auto":
        return config, CompileChoice(config.compile == "on", f"compile {config.compile}")
    choice = compile_decision(model, data, config, points, samples)
    return dataclasses.replace(config, compile="on" if choice.compiled else "off"), choice


def compile_decision(model: nn.Module, data: Any, config: EvalConfig, points: int,
                     samples: int | None = None) -> CompileChoice:
    """The compile choice of a whole job: ``points`` points on ``data`` (``samples`` per point
    over every split; default the data's), as every call of it would make it with
    ``config.compile`` 'auto' (:func:`~.compiled.compile_choice`). Deterministic: made from the
    model's shapes, never from timings or from what this machine has, so every rank, shard and
    rerun of a job makes the same choice (and records it in the job's fingerprint).
    """
    data = as_eval_data(data).subset(config.max_samples, seed=config.sample_seed)
    if not isinstance(data, TensorData):
        return CompileChoice(False, "the source's batches run eagerly (compiling needs the data as tensors)")
    device = torch.device(str(config.device or "cpu"))
    cpu = torch.device("cpu")  # the profile's shapes and FLOPs do not depend on the device
    state = {k: v.detach().to(cpu) for k, v in {**dict(model.named_parameters()), **dict(model.named_buffers())}.items()}
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
    inputs = data.inputs[:2].to(cpu, dtype) if data.inputs.is_floating_point() else data.inputs[:2].to(cpu)
    with _eval_mode(model), torch.inference_mode():
        profile = _profile_of(model, state, inputs, cpu, config.precision)
    return compile_choice(config.compile, profile, points, samples or data.n, device, check_available=False)


def probe(model: nn.Module, data: Any, loss: Any = None, samples: int = 64) -> tuple[float, Objective]:
    """The loss of ``model`` (as it is) on the first batch of ``data`` (at most ``samples`` samples
    of tensors), and the objective that computed it (its ``classes`` learnt from the outputs).

    A cheap check before long work: outputs that do not fit the targets, a loss function that
    returns the wrong shape, or one that is not finite at the trained weights show here.
    """
    objective = as_objective(loss)
    data = as_eval_data(data)
    with _eval_mode(model), torch.inference_mode():
        if isinstance(data, TensorData):
            out, targets = model(data.inputs[:samples]), data.targets[:samples]
        else:
            from .batches import _to

            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            out, targets = data.forward(model, _to(next(iter(data)), device))
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"the model must return a tensor (or the forward hook an (outputs, targets) pair); "
                             f"got {type(out).__name__}")
        sums = objective.reduce(out.unsqueeze(0), targets)
    if not sums.count:
        raise ValueError(f"every target of the first batch is the ignored index "
                         f"{objective.spec.options.get('ignore_index', -100)}: the loss would be a mean over nothing")
    return float(sums.loss[0]) / sums.count, objective
