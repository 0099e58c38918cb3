"""Deterministic choices of batch size, points per forward and memory format.

The engine never times itself to choose: a choice that depended on timings could differ
between two runs of the same surface (or two ranks of one job), and the batch size and the
grouping decide where an early exit can stop, so they must be reproducible. Instead the rules
below are functions of

- the model's *shape profile*, measured once per call by running two samples through it:
  forward FLOPs per sample (``torch.utils.flop_counter.FlopCounterMode``), the largest
  per-sample working set of a leaf module (bytes of its inputs plus outputs), the number of
  operators a forward runs and the outputs' per-sample shape;
- the number of samples ``N``, the device type and, on CUDA, the card's total memory.

Their constants were calibrated by measurement; the tables behind them and how they were taken
are in docs/design-notes.md ("Engine calibration").

- CPU batch: ``pow2_floor(6 MiB / working_set)`` clamped to [32, 1024] and to N (below 32 the
  small GEMM/convolution tiles waste the vector units; one large batch of big activations
  falls out of the cache and runs at about half the rate). When that leaves several forwards
  per point, the batch is also at most ``pow2_floor(N / 3)``, so that an early exit gets
  checkpoints all through the split. The thread count does not enter, so a 1-thread rank of a
  distributed job chooses what a 2-thread process chooses.
- Vmapped forwards of several points turn every layer after the first into a grouped
  convolution, and max-pooling runs on lane-folded tensors in the slow NCHW kernel: one point
  at a time in channels_last wins unless a forward is tiny. Several points per forward only
  when the whole split is one batch and one point's forward costs less than 20 MFLOP; then
  enough points for about 200 MFLOP per forward, at most 64, with stacked weights below 512 MiB.
- CUDA: the batch is N up to 4096 and to a quarter of the card's memory for all activations
  of a batch; points are stacked while a forward is below 50 GFLOP (kernel-launch overhead
  hides below that).
- channels_last for 4-D inputs to a model with 2-D convolutions, contiguous otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["ModelProfile", "profile_model", "choose_plan_values", "cache_facts"]

CPU_BATCH_BYTES = 6 << 20  # a batch's largest per-layer working set on the CPU (calibrated: 6 MiB)
CPU_BATCH_MIN, CPU_BATCH_MAX = 32, 1024  # below 32, small GEMM/convolution tiles waste the vector units
CPU_LANES_BELOW = 20e6  # stack points only when one point's forward is cheaper than this (FLOPs) ...
CPU_LANE_TARGET = 200e6  # ... and then until a forward does about this much work
CUDA_LANES_BELOW = CUDA_LANE_TARGET = 50e9  # kernel-launch overhead hides below ~50 GFLOP per forward
CUDA_MEMORY_FRACTION = 4  # a batch's activations (all layers) stay below total_memory / 4
MAX_LANES = 64  # at most this many points per vmapped forward
LANE_WEIGHT_BYTES = 512 << 20  # stacked weights of one group stay below this


@dataclass(frozen=True)
class ModelProfile:
    """Per-sample facts of a model, from one forward of two samples."""

    flops_per_sample: float  # forward FLOPs (a multiply-add counts 2)
    working_set_bytes: int  # max over leaf modules of (input + output bytes) per sample
    activation_bytes: int  # sum over leaf modules of output bytes per sample
    has_conv2d: bool
    operators: int = 0  # ATen operators one forward runs (the per-operator overhead that compiling removes)
    output_shape: tuple[int, ...] | None = None  # per-sample shape of the outputs; None when not a tensor


class _OperatorCount:
    """A dispatch mode counting the ATen operators a forward runs."""

    def __new__(cls):
        from torch.utils._python_dispatch import TorchDispatchMode

        class Count(TorchDispatchMode):
            def __init__(self):
                super().__init__()
                self.count = 0

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                self.count += 1
                return func(*args, **(kwargs or {}))

        return Count()


def profile_model(model: nn.Module, tensors: dict[str, torch.Tensor], sample: torch.Tensor) -> ModelProfile:
    """Run ``sample`` (2 inputs) through ``model`` with ``tensors`` as its state; measure shapes,
    FLOPs and operators."""
    from torch.func import functional_call
    from torch.utils.flop_counter import FlopCounterMode

    n = len(sample)
    ws, act = [0], [0]

    def nbytes(obj) -> int:
        if isinstance(obj, torch.Tensor):
            return obj.numel() * obj.element_size()
        if isinstance(obj, (tuple, list)):
            return sum(nbytes(o) for o in obj)
        if isinstance(obj, dict):
            return sum(nbytes(o) for o in obj.values())
        return 0

    def hook(module, inputs, output):
        out = nbytes(output)
        ws[0] = max(ws[0], (nbytes(inputs) + out) // n)
        act[0] += out // n

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter, _OperatorCount() as ops:
            out = functional_call(model, tensors, (sample,))
    finally:
        for h in handles:
            h.remove()
    has_conv = any(isinstance(m, nn.Conv2d) for m in leaves)
    shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) and out.dim() >= 1 and len(out) == n else None
    return ModelProfile(counter.get_total_flops() / n, max(ws[0], 1), act[0], has_conv, ops.count, shape)


def _pow2_floor(v: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(v, 1.0)))))


def _cuda_total_memory(device: torch.device) -> int:
    return int(torch.cuda.get_device_properties(device).total_memory)


def choose_plan_values(profile: ModelProfile, n: int, device: torch.device, lane_weight_bytes: int,
                       batch_size: int | None, points_per_batch: int | None) -> tuple[int, int, str]:
    """``(batch_size, points_per_batch, reason)`` for ``n`` samples; values given are kept.

    Deterministic: the same model shapes, ``n`` and device give the same values (the thread
    count does not enter, so 1-thread ranks of a distributed job choose what a 2-thread
    process chooses).
    """
    cuda = device.type == "cuda"
    why = []
    act = max(profile.activation_bytes, 1)
    mem_budget = _cuda_total_memory(device) // CUDA_MEMORY_FRACTION if cuda else 0
    if batch_size is None:
        if cuda:
            batch_size = min(n, 4096, max(1, mem_budget // act))
            why.append(f"batch: min(N, 4096, total memory/{CUDA_MEMORY_FRACTION} / {act} B of activations per sample)")
        else:
            fit = _pow2_floor(CPU_BATCH_BYTES / profile.working_set_bytes)
            batch_size = min(n, max(CPU_BATCH_MIN, min(CPU_BATCH_MAX, fit)))
            why.append(f"batch: {CPU_BATCH_BYTES >> 20} MiB / {profile.working_set_bytes} B per-layer working set "
                       f"per sample, in [{CPU_BATCH_MIN}, {CPU_BATCH_MAX}]")
        if batch_size < n:
            # the split spans several forwards: keep at least three full ones after the ramp
            # (LaneRunner.batches), so that an early exit has checkpoints all through the split
            batch_size = min(batch_size, max(CPU_BATCH_MIN, _pow2_floor(n / 3)))
            why.append("at most pow2_floor(N/3) (early-exit checkpoints)")
    else:
        batch_size = min(batch_size, n)
    if points_per_batch is None:
        work = profile.flops_per_sample * batch_size  # one point's forward of one batch
        below, target = (CUDA_LANES_BELOW, CUDA_LANE_TARGET) if cuda else (CPU_LANES_BELOW, CPU_LANE_TARGET)
        lanes = 1
        if batch_size >= n and 0 < work < below:
            lanes = min(MAX_LANES, math.ceil(target / work), max(1, LANE_WEIGHT_BYTES // max(lane_weight_bytes, 1)))
            if cuda:
                lanes = min(lanes, max(1, mem_budget // (act * batch_size)))
        points_per_batch = max(1, lanes)
        why.append(f"points per forward: {points_per_batch} (one point's forward {work / 1e6:.3g} MFLOP; "
                   f"{'the whole split is one batch' if batch_size >= n else 'the split spans several batches'}; "
                   f"several only below {below / 1e6:.3g} MFLOP)")
    return int(batch_size), int(points_per_batch), "; ".join(why)


def cache_facts() -> dict[str, int]:
    """L2/L3 sizes in bytes from sysfs (empty where unknown); for the benchmark's report."""
    out = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if not base.is_dir():
        return out
    for idx in sorted(base.glob("index*")):
        try:
            level = (idx / "level").read_text().strip()
            kind = (idx / "type").read_text().strip()
            size = (idx / "size").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        mult = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
        out[f"L{level}"] = int(size.rstrip("KM")) * mult
    return out
