"""The lane runner: forward passes of groups of points (lanes) over the data
(:class:`LaneRunner`), early exit, and the check that vmapped lanes do not depend on their
companions (:func:`lanes_are_independent`).

See :mod:`pipeline.engine.points` for what holds; this module implements it.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import pickle
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .plane import Plane

log = logging.getLogger(__name__)

__all__ = ["LaneRunner", "autocast", "lanes_are_independent", "lane_sizes", "CAP_MARGIN"]

CAP_MARGIN = 1e-9  # relative margin of the early-exit test (float64 rounding of the running sum)
RAMP = (8, 4, 2)  # the first forwards of a point take batch_size // 8, // 4, // 2 samples (LaneRunner.batches)
_PROBE_CACHE: dict[tuple, tuple[bool, str]] = {}  # lane-independence verdicts, by structure and sizes
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str):
    if precision in _AUTOCAST:
        return torch.autocast(device_type=device.type, dtype=_AUTOCAST[precision])
    return contextlib.nullcontext()


def lane_sizes(lanes: int) -> list[int]:
    """Canonical group sizes of a vmapped forward: 2, 4, 8, ... below ``lanes``, and ``lanes``.

    A group of ``k`` points runs padded (with copies of its first point, whose results are
    discarded) to the smallest canonical size >= k. So only these few shapes ever occur, and
    :func:`lanes_are_independent` verifies every one of them. (A 1-lane vmapped matmul can take
    another kernel than a batched one, so 1 is never a size.)
    """
    sizes, s = [], 2
    while s < lanes:
        sizes.append(s)
        s *= 2
    return sizes + [max(lanes, 2)]


class _ResidentCopy:
    """A private copy of a small model holding the plane's tensors (device, memory format).

    ``load(w)`` copies one point's weights (``{key: (1, *shape)}``) into its moving tensors.
    The values and layouts the forward sees are exactly those ``functional_call`` would pass.
    """

    MAX_BYTES = 256 << 20  # larger models: functional_call's overhead is negligible beside their forward

    def __init__(self, module: nn.Module, tensors: dict[str, torch.Tensor], moving: list[str]):
        self.module, self.tensors, self.moving = module, tensors, moving

    @classmethod
    def make(cls, model: nn.Module, plane: Plane) -> "_ResidentCopy | None":
        nbytes = sum(t.numel() * t.element_size() for t in plane.centre.values())
        tied = len(list(model.named_parameters(remove_duplicate=False))) != len(plane.param_keys)
        if nbytes > cls.MAX_BYTES or tied:
            return None
        try:
            module = copy.deepcopy(model)
        except (TypeError, RuntimeError, copy.Error, pickle.PicklingError) as exc:
            log.debug("no private copy of %s (%s); using functional_call", type(model).__name__, exc)
            return None
        module.eval()
        params = set(plane.param_keys)
        tensors = {}
        for key, t in plane.centre.items():
            owner_name, _, leaf = key.rpartition(".")
            owner = module.get_submodule(owner_name)
            value = t.clone() if key in plane.x else t  # moving tensors are written; fixed ones are shared
            if key in params:
                owner._parameters[leaf] = nn.Parameter(value, requires_grad=False)
                tensors[key] = owner._parameters[leaf]
            else:
                owner._buffers[leaf] = value
                tensors[key] = value
        return cls(module, tensors, list(plane.x))

    def load(self, w: dict[str, torch.Tensor]) -> None:
        for key in self.moving:
            self.tensors[key].copy_(w[key][0])


class LaneRunner:
    """Forward passes and per-sample losses of a group of points over the data, with early exit.

    With ``lanes`` > 1 every forward is vmapped over a canonical number of lanes
    (:func:`lane_sizes`); with ``lanes`` == 1 it is a plain forward of a private copy of the
    model holding the point's weights (:class:`_ResidentCopy`), or ``functional_call``.
    """

    def __init__(self, model: nn.Module, plane: Plane, inputs: torch.Tensor, targets: torch.Tensor,
                 batch_size: int, lanes: int, device: torch.device, precision: str, channels_last: bool):
        from torch.func import functional_call, vmap

        self.plane, self.inputs, self.targets = plane, inputs, targets
        self.n = len(targets)
        self.batch_size = batch_size
        self.device, self.precision = device, precision
        self.lanes = lanes
        self.sizes = lane_sizes(lanes) if lanes > 1 else [1]
        self.channels_last = channels_last
        fixed = plane.fixed
        self.k_checked = False
        if lanes > 1:
            def one(w: dict[str, torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
                return functional_call(model, {**fixed, **w}, (xb,))

            vmapped = vmap(one, in_dims=(0, None))  # (s, B, K)
            self._prepare = lambda w: w
            self._forward = vmapped
        else:
            resident = _ResidentCopy.make(model, plane)
            if resident is not None:
                # a private copy whose moving tensors receive each point's weights: every batch
                # then calls the module directly (functional_call costs ~0.1 ms per call)
                self._prepare = resident.load
                self._forward = lambda _, xb: resident.module(xb).unsqueeze(0)  # (1, B, K)
            else:
                # the full state dict is assembled once per point, not per batch
                self._prepare = lambda w: {**fixed, **{k: v[0] for k, v in w.items()}}
                self._forward = lambda state, xb: functional_call(model, state, (xb,)).unsqueeze(0)  # (1, B, K)

    def batches(self) -> list[tuple[int, int]]:
        """``(start, end)`` of every forward: when the split spans several batches, a ramp of
        ``batch_size // 8``, ``// 4``, ``// 2`` samples, then ``batch_size`` at a time. The ramp lets an early exit stop a divergent
        point after few samples (the test runs between forwards); it is the same with or
        without a cap, so values below the cap are identical."""
        # no ramp when the split is one forward anyway (tiny splits, where forwards are overhead)
        sizes = [max(1, self.batch_size // d) for d in RAMP] if self.n > self.batch_size else []
        out, start = [], 0
        while start < self.n:
            size = sizes.pop(0) if sizes else self.batch_size
            out.append((start, min(start + size, self.n)))
            start += size
        return out

    def state(self, a: torch.Tensor, b: torch.Tensor | None) -> Any:
        """Model state of the points ``a``, ``b`` ((k,) each), padded to a canonical group size."""
        k = len(a)
        size = next(s for s in self.sizes if s >= k)
        if size > k:  # pad with copies of the first point (their results are dropped)
            idx = torch.cat([torch.arange(k, device=a.device), torch.zeros(size - k, dtype=torch.long, device=a.device)])
            a = a[idx]
            b = b[idx] if b is not None else None
        return self._prepare(self.plane.build(a, b))

    def logits(self, state: Any, start: int, end: int) -> torch.Tensor:
        """(s, B, K) float32 logits of the lanes of ``state`` on samples ``start:end``."""
        with autocast(self.device, self.precision):
            out = self._forward(state, self.inputs[start:end])
        if not isinstance(out, torch.Tensor) or out.dim() != 3:
            shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the model must return logits of shape (batch, classes); got {shape}")
        out = out.float()
        if not self.k_checked:
            k = out.shape[-1]
            lo, hi = int(self.targets.min()), int(self.targets.max())
            if lo < 0 or hi >= k:
                raise ValueError(f"targets must be class indices in [0, {k}) for a model with {k} outputs; "
                                 f"got values in [{lo}, {hi}]")
            self.k_checked = True
        return out

    def per_sample(self, logits: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(g, B) float32 cross-entropies and (g,) int64 correct counts of (g, B, K) logits."""
        g, b, k = logits.shape
        yb = self.targets[start:end]
        loss = F.cross_entropy(logits.reshape(g * b, k), yb.repeat(g) if g > 1 else yb, reduction="none").view(g, b)
        correct = (logits.argmax(-1) == yb).sum(-1)
        return loss, correct

    @staticmethod
    def _row_sums(rows: torch.Tensor) -> torch.Tensor:
        """(k,) float64 sums of the rows of (k, L), each by its own 1-D reduction (a row's sum
        never depends on how many rows there are)."""
        return torch.stack([r.double().sum() for r in rows])

    def run_group(self, a: torch.Tensor, b: torch.Tensor | None, cap: float | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Evaluate ``g`` points ((g,) coefficients ``a``, ``b``); returns (g,) loss float64,
        correct int64, samples int64, bounded bool (on the device)."""
        g = len(a)
        state = self.state(a, b)
        per = torch.empty(g, self.n, dtype=torch.float32, device=self.device)  # (g, N) per-sample losses
        correct = torch.zeros(g, dtype=torch.int64, device=self.device)
        samples = [0] * g
        running = [0.0] * g  # float64 partial sums S_k of the lanes (cap only)
        bounded = [False] * g
        active = list(range(g))  # lanes still running, in group order
        cap_total = None if cap is None else cap * self.n * (1.0 + CAP_MARGIN)
        for start, end in self.batches():
            k = len(active)
            loss, corr = self.per_sample(self.logits(state, start, end)[:k], start, end)  # (k, B), (k,)
            if k == g:
                per[:, start:end] = loss
                correct += corr
            else:
                idx = torch.tensor(active, device=self.device)
                per[idx, start:end] = loss
                correct[idx] += corr
            for i in active:
                samples[i] += end - start
            if cap_total is None or end == self.n:
                continue
            sums = self._row_sums(loss).tolist()
            keep = []
            for pos, i in enumerate(active):
                running[i] += sums[pos]
                if running[i] > cap_total:
                    bounded[i] = True
                else:
                    keep.append(pos)
            if len(keep) < k:
                active = [active[pos] for pos in keep]
                if not active:
                    break
                # the rest go on in a smaller canonical group, rebuilt from their coefficients
                sel = torch.tensor(keep, device=a.device)
                a = a[sel]
                b = b[sel] if b is not None else None
                state = self.state(a, b)
        # a lane's loss: one float64 reduction over its N per-sample values (fixed order for a given N)
        zero = torch.zeros((), dtype=torch.float64, device=self.device)
        full_sum = torch.stack([zero if bounded[i] else per[i].double().sum() for i in range(g)])
        stopped = torch.tensor(bounded, device=self.device)
        loss = torch.where(stopped, torch.tensor(running, dtype=torch.float64, device=self.device), full_sum) / self.n
        return loss, correct, torch.tensor(samples, dtype=torch.int64, device=self.device), stopped


def _probe_key(model: nn.Module, plane: Plane, runner: LaneRunner) -> tuple:
    shapes = tuple((k, tuple(v.shape), str(v.dtype)) for k, v in plane.centre.items())
    return (type(model).__qualname__, shapes, tuple(plane.moving), plane.ndim, str(runner.device),
            runner.precision, runner.batch_size, runner.n, tuple(runner.inputs.shape[1:]),
            runner.channels_last, runner.lanes, torch.get_num_threads())


def lanes_are_independent(model: nn.Module, plane: Plane, runner: LaneRunner) -> tuple[bool, str]:
    """Whether a lane's vmapped logits are bitwise independent of its companions, its position
    and the group size, for every shape the runner uses. Returns ``(verdict, reason)``.

    ``runner.lanes`` synthetic points (coefficients spread over [-1, 1]) run as one group; then,
    for every canonical size (:func:`lane_sizes`), the first points in order and the last
    points in reverse order run as groups of that size (padded as in evaluation). Their logits
    must equal the full group's rows bit for bit, on a batch of every length used (head,
    full, last). Logits are compared (not losses), so a one-ulp difference anywhere shows. Memoised
    per model structure, device, precision, sizes and thread count.
    """
    key = _probe_key(model, plane, runner)
    if key in _PROBE_CACHE:
        return _PROBE_CACHE[key]
    dev, lanes = runner.device, runner.lanes
    a = torch.linspace(-1.0, 1.0, lanes, dtype=torch.float64, device=dev)
    b = torch.linspace(0.9, -0.7, lanes, dtype=torch.float64, device=dev)
    spans = {}  # one batch of every length the runner uses
    for start, end in runner.batches():
        spans.setdefault(end - start, (start, end))
    arrangements = []
    for size in runner.sizes:
        for count in sorted({size, max(1, size - 1)}):  # a full group and a padded one
            arrangements.append(list(range(count)))
            arrangements.append(list(range(lanes - 1, lanes - 1 - count, -1)))
    verdict = (True, "")
    try:
        for start, end in spans.values():
            ref = runner.logits(runner.state(a, b), start, end)  # (lanes, B, K)
            for sub in arrangements:
                idx = torch.tensor(sub, device=dev)
                got = runner.logits(runner.state(a[idx], b[idx]), start, end)[:len(sub)]
                if not torch.equal(got, ref[idx]):
                    verdict = (False, f"vmapped lanes are not independent of their companions (a group of "
                                      f"{len(sub)} of {lanes} points differs in the last bits)")
                    break
            if not verdict[0]:
                break
    except (RuntimeError, NotImplementedError, TypeError, ValueError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "targets must be class indices" in first or "must return logits" in first:
            raise
        verdict = (False, f"the model cannot be vmapped over its weights ({type(exc).__name__}: {first[:200]})")
    if len(_PROBE_CACHE) > 256:
        _PROBE_CACHE.clear()
    _PROBE_CACHE[key] = verdict
    return verdict
