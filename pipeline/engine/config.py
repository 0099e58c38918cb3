"""Engine settings (:class:`EvalConfig`), the resolved plan of a call (:class:`EvalPlan`) and
the per-point result (:class:`PointResult`)."""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError, param

__all__ = ["EvalConfig", "EvalPlan", "PointResult", "PRECISIONS", "MEMORY_FORMATS", "COMPILE_MODES"]

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
COMPILE_MODES = ("auto", "on", "off")


def _positive_int_or_none(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ParameterError(f"{param(name)} must be a positive integer; got {value!r}")


@dataclass(frozen=True)
class EvalConfig:
    """How the engine evaluates points (never *what*: model, directions, data and grid are arguments).

    Every field has a default; ``None`` means "chosen by the engine" and the choice is reported
    in :attr:`PointResult.plan` and in ``Surface.meta["engine"]``. The choices are deterministic
    functions of the model's shapes, the number of samples, the device and this machine's
    cache/memory sizes (never of timings), so the same call on the same machine always makes the
    same choice and gives the same bits.
    """

    batch_size: int | None = None  # samples per forward; None: from the model's per-sample working set (tuning.py)
    points_per_batch: int | None = None  # grid points per vmapped forward; None: auto; 1: one point at a time, no vmap
    # 'fp32' strict IEEE (TF32 off on CUDA) | 'tf32' (CUDA TF32 tensor cores; = fp32 on the CPU) |
    # 'bf16' | 'fp16': torch.autocast (as fast as bf16 weights, docs/design-notes.md, and it keeps
    # what autocast keeps in fp32); losses are always computed from float32 logits
    precision: str = "fp32"
    device: str | None = None  # None: 'cuda' when available, else 'cpu'
    cap: float | None = None  # early exit: stop a point once its mean loss provably exceeds cap
    max_samples: int | None = None  # None: the whole split; else a fixed seeded subset of this many samples
    sample_seed: int = 0  # seed of that subset (Split.subset)
    deterministic: bool = True  # CUDA: deterministic algorithms, no cuDNN autotuning (CPU: always deterministic)
    memory_format: str = "auto"  # 'auto' (channels_last for 2-D conv nets) | 'channels_last' | 'contiguous'
    # 'auto': torch.compile the forward and loss when the expected saving exceeds the compile cost
    # (a deterministic rule, engine/compiled.py) | 'on' | 'off'; a model that cannot be compiled runs eagerly
    compile: str = "auto"

    def __post_init__(self) -> None:
        _positive_int_or_none("batch_size", self.batch_size)
        _positive_int_or_none("points_per_batch", self.points_per_batch)
        _positive_int_or_none("max_samples", self.max_samples)
        if self.precision not in PRECISIONS:
            raise ParameterError(f"{param('precision')} must be one of {', '.join(map(repr, PRECISIONS))}; "
                                 f"got {self.precision!r}")
        if self.compile not in COMPILE_MODES:
            raise ParameterError(f"{param('compile')} must be one of {', '.join(map(repr, COMPILE_MODES))}; "
                                 f"got {self.compile!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ParameterError(f"{param('memory_format')} must be one of {', '.join(map(repr, MEMORY_FORMATS))}; "
                                 f"got {self.memory_format!r}")
        if self.cap is not None:
            if isinstance(self.cap, bool) or not isinstance(self.cap, numbers.Real) or not (
                    math.isfinite(self.cap) and self.cap > 0):
                raise ParameterError(f"{param('cap')} must be a positive finite number; got {self.cap!r}")
            object.__setattr__(self, "cap", float(self.cap))
        if isinstance(self.sample_seed, bool) or not isinstance(self.sample_seed, int):
            raise ParameterError(f"{param('sample_seed')} must be an integer; got {self.sample_seed!r}")
        if not isinstance(self.deterministic, bool):
            raise ParameterError(f"{param('deterministic')} must be True or False; got {self.deterministic!r}")
        if self.device is not None and not isinstance(self.device, str):
            # torch.device is accepted and stored as text, so the config stays JSON-friendly
            object.__setattr__(self, "device", str(self.device))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalPlan:
    """What the engine resolved for one call (the ``None`` fields of :class:`EvalConfig` filled in)."""

    device: str  # e.g. 'cpu', 'cuda:0'
    precision: str
    batch_size: int  # samples per forward
    points_per_batch: int  # lanes per vmapped forward; 1: plain forward, one point at a time
    memory_format: str  # 'channels_last' | 'contiguous'
    samples: int  # N, samples per point (after max_samples)
    threads: int  # torch.get_num_threads() on the CPU
    reason: str  # one line: why these values (the heuristic's inputs)
    flops_per_sample: float  # forward FLOPs of one sample (FlopCounterMode; 0 when not counted)
    loss: str = "cross_entropy"  # the loss's name
    compiled: bool = False  # forward and loss ran as a compiled graph (engine/compiled.py)
    compile_reason: str = ""  # one line: why (or why not)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PointResult:
    """Values at ``P`` points of a plane (the order of the ``coords`` given).

    Attributes
    ----------
    loss : (P,) float64
        The loss's mean over the N elements of the split (samples, or tokens:
        :mod:`pipeline.objective`). Non-finite where the model produced NaN/inf (never
        rewritten). Where ``bounded`` is set it is the lower bound ``S_k / N`` (``S_k``: the sum
        over the elements seen when the evaluation stopped), which is ``> cap``; the true mean
        is at least this.
    accuracy : (P,) float64 in [0, 1], or None
        For class outputs: the fraction of predictions that are right (over those seen when
        ``bounded``); NaN where the loss is not finite. None for other losses.
    bounded : (P,) bool
        True where the evaluation stopped early above ``cap``.
    samples : (P,) int64
        Samples actually run through the model for each point (N unless ``bounded``).
    plan : EvalPlan
        The resolved batch size, points per forward, memory format, device, precision.
    seconds : float
        Wall-clock time of the call.
    notes : list of str
        Fallbacks the call took (e.g. one point per forward because lanes could not be
        verified independent); empty normally.
    metrics : dict of name -> (P,) float64
        The user's metrics, averaged like the loss.
    """

    loss: np.ndarray
    accuracy: np.ndarray | None
    bounded: np.ndarray
    samples: np.ndarray
    plan: EvalPlan
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.loss)
