"""The lane runner: forward passes of groups of points (lanes) over the data
(:class:`LaneRunner`), early exit, the check that vmapped lanes do not depend on their
companions (:func:`lanes_are_independent`) and the check that a compiled runner agrees with
the eager one (:func:`compiled_works`).

See :mod:`pipeline.engine.points` for what holds; this module implements it.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import pickle
from typing import Any

import torch
from torch import nn

from .plane import Plane

log = logging.getLogger(__name__)

__all__ = ["LaneRunner", "autocast", "lanes_are_independent", "compiled_works", "lane_sizes", "CAP_MARGIN",
           "AUTOCAST_DTYPES"]

CAP_MARGIN = 1e-9  # relative margin of the early-exit test (float64 rounding of the running sum)
RAMP = (8, 4, 2)  # the first forwards of a point take batch_size // 8, // 4, // 2 samples (LaneRunner.batches)
_PROBE_CACHE: dict[tuple, tuple[bool, str]] = {}  # lane-independence verdicts, by structure and sizes
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # precision -> autocast dtype


def autocast(device: torch.device, precision: str):
    if precision in AUTOCAST_DTYPES:
        return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])
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


class _FunctionalModule:
    """A stand-in for the model holding one point's weights, for a forward hook when there is no
    private copy (large models, tied weights): calling it is ``functional_call`` of the model."""

    def __init__(self, model: nn.Module, state: dict[str, torch.Tensor]):
        self._model, self._state = model, state

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from torch.func import functional_call

        return functional_call(self._model, self._state, args, kwargs)


class LaneRunner:
    """Forwards of a group of points over the data, their sums (:class:`~pipeline.objective.Objective`),
    with early exit.

    ``data`` is a :class:`~.batches.TensorData` (the engine cuts its batches: :meth:`batches`)
    or a :class:`~.batches.BatchData` (the source's batches, through its forward). With
    ``lanes`` > 1 (tensors only) every forward is vmapped over a canonical number of lanes
    (:func:`lane_sizes`); with ``lanes`` == 1 it is a plain forward of a private copy of the
    model holding the point's weights (:class:`_ResidentCopy`), or ``functional_call``. With
    ``compiled`` (tensors only; a :class:`~.compiled.CompiledSums` for ``lanes``) every batch
    is one call of the compiled forward and sums instead, the outputs' per-sample shape being
    ``output_shape``.
    """

    def __init__(self, model: nn.Module, plane: Plane, data: Any, objective: Any, batch_size: int, lanes: int,
                 device: torch.device, precision: str, channels_last: bool, compiled: Any = None,
                 output_shape: tuple[int, ...] | None = None):
        from torch.func import functional_call, vmap

        from .batches import TensorData

        self.model = model
        self.plane, self.data, self.objective = plane, data, objective
        self.compiled, self.output_shape = compiled, output_shape
        self.tensors = isinstance(data, TensorData)
        self.n = data.n
        self.batch_size = batch_size
        self.device, self.precision = device, precision
        self.lanes = lanes
        self.sizes = lane_sizes(lanes) if lanes > 1 else [1]
        self.channels_last = channels_last
        self._total: int | None = None
        # per batch, what depends on its targets alone (Objective.reduce's memo): data in memory only
        self._memos: dict[Any, dict] | None = {} if self.tensors or data.in_memory else None
        fixed = plane.fixed
        if compiled is not None:  # the point's moving tensors are the graph's inputs
            self._prepare = (lambda w: w) if lanes > 1 else (lambda w: {k: v[0] for k, v in w.items()})
        elif lanes > 1:
            def one(w: dict[str, torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
                return functional_call(model, {**fixed, **w}, (xb,))

            self._prepare = lambda w: w
            self._module = None
            self._vmapped = vmap(one, in_dims=(0, None))  # (s, B, ...)
        else:
            resident = _ResidentCopy.make(model, plane)
            if resident is not None:
                # a private copy whose moving tensors receive each point's weights: every batch
                # then calls the module directly (functional_call costs ~0.1 ms per call)
                self._prepare = lambda w: (resident.load(w), resident.module)[1]
            else:
                # the full state dict is assembled once per point, not per batch
                self._prepare = lambda w: _FunctionalModule(model, {**fixed, **{k: v[0] for k, v in w.items()}})

    def batches(self) -> list[Any]:
        """Tensors: ``(start, end)`` of every forward; when the split spans several batches, a
        ramp of ``batch_size // 8``, ``// 4``, ``// 2`` samples, then ``batch_size`` at a time. The
        ramp lets an early exit stop a divergent point after few samples (the test runs between
        forwards); it is the same with or without a cap, so values below the cap are identical.
        Batches of a source: the batches themselves (read again, in order, on each call)."""
        if not self.tensors:
            return self.data  # iterable: in memory, or streamed afresh
        # no ramp when the split is one forward anyway (tiny splits, where forwards are overhead)
        sizes = [max(1, self.batch_size // d) for d in RAMP] if self.n > self.batch_size else []
        out, start = [], 0
        while start < self.n:
            size = sizes.pop(0) if sizes else self.batch_size
            out.append((start, min(start + size, self.n)))
            start += size
        return out

    def state(self, coef: torch.Tensor) -> Any:
        """Model state of the points ``coef`` ((k, ndim) coefficients), padded to a canonical group size."""
        k = len(coef)
        size = next(s for s in self.sizes if s >= k)
        if size > k:  # pad with copies of the first point (their results are dropped)
            idx = torch.cat([torch.arange(k, device=coef.device),
                             torch.zeros(size - k, dtype=torch.long, device=coef.device)])
            coef = coef[idx]
        return self._prepare(self.plane.build(coef))

    def outputs(self, state: Any, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``((s, B, ...) outputs of the lanes of state, (B, ...) targets)`` of one batch."""
        with autocast(self.device, self.precision):
            if self.tensors:
                start, end = batch
                xb, targets = self.data.inputs[start:end], self.data.targets[start:end]
                out = self._vmapped(state, xb) if self.lanes > 1 else state(xb).unsqueeze(0)
            else:
                from .batches import _to

                out, targets = self.data.forward(state, _to(batch, self.device) if not self.data.in_memory else batch)
                out = out.unsqueeze(0) if isinstance(out, torch.Tensor) else out
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"the model must return a tensor (or the forward hook an (outputs, targets) pair); "
                             f"got {type(out).__name__}")
        return out, targets

    def batch_sums(self, state: Any, batch: Any, memo: dict | None, k: int) -> tuple[Any, int]:
        """``(BatchSums of the first k lanes of state, samples)`` of one batch."""
        if self.compiled is not None:
            start, end = batch
            xb, targets = self.data.inputs[start:end], self.data.targets[start:end]
            prep = self.objective.prepare(self.output_shape, targets, memo)
            loss, count, correct, predictions, metrics = self.compiled(state, self.plane.fixed, xb, targets, prep)
            values = (loss[:k], count, None if correct is None else correct[:k], predictions,
                      tuple((v[:k], c) for v, c in metrics))
            return self.objective.batch_sums(values, prep), end - start
        out, targets = self.outputs(state, batch)
        return self.objective.reduce(out[:k], targets, memo), out.shape[1]

    def probe_values(self, state: Any, span: tuple[int, int]) -> torch.Tensor:
        """``(g, ...)``: what a lane yields on one batch, to compare lanes bit for bit: the
        outputs (eager), or the per-lane sums (compiled, where outputs never leave the graph)."""
        if self.compiled is None:
            return self.outputs(state, span)[0]
        sums, _ = self.batch_sums(state, span, None, self.sizes[-1] if self.lanes > 1 else 1)
        columns = [sums.loss] + ([sums.correct] if sums.correct is not None else [])
        columns += [v for v, _ in sums.metrics.values()]
        return torch.stack(columns, dim=1)

    def total_count(self) -> int:
        """Elements the loss is averaged over, from the targets alone (for the early exit)."""
        if self._total is None:
            batches = self.data.target_batches()
            counts = None if batches is None else [self.objective.counts(t) for t in batches]
            if counts is None or any(c is None for c in counts):
                raise ValueError("cap needs the number of loss elements before the forwards: a named loss "
                                 "and targets read from the data (not made by a forward hook)")
            self._total = sum(counts)
        return self._total

    def run_group(self, coef: torch.Tensor, cap: float | None) -> dict[str, torch.Tensor]:
        """Evaluate ``g`` points ((g, ndim) coefficients); returns (g,) tensors on the device:
        ``loss`` float64, ``bounded`` bool, ``samples`` int64, and ``accuracy`` and each metric
        (float64) when the objective has them."""
        g = len(coef)
        state = self.state(coef)
        loss = [0.0] * g  # float64 sums S_k of the lanes, batch by batch in order
        count = 0  # elements so far (the same for every lane still running)
        seen = [0] * g  # elements of each lane (a stopped lane's stay where it stopped)
        samples = [0] * g
        correct, predicted = [0.0] * g, [0] * g
        metric = {name: ([0.0] * g, [0] * g) for name in self.objective.metric_fns}
        bounded = [False] * g
        active = list(range(g))  # lanes still running, in group order
        cap_total = None if cap is None else cap * self.total_count() * (1.0 + CAP_MARGIN)
        batches = self.batches()
        last = len(batches) - 1 if self.tensors else None
        for step, batch in enumerate(batches):
            k = len(active)
            memo = None if self._memos is None else self._memos.setdefault(batch if self.tensors else step, {})
            sums, n = self.batch_sums(state, batch, memo, k)
            lane_loss = sums.loss.tolist()
            lane_correct = sums.correct.tolist() if sums.correct is not None else None
            lane_metrics = {name: (v.tolist(), c) for name, (v, c) in sums.metrics.items()}
            for pos, i in enumerate(active):
                loss[i] += lane_loss[pos]
                seen[i] += sums.count
                samples[i] += n
                if lane_correct is not None:
                    correct[i] += lane_correct[pos]
                    predicted[i] += sums.predictions
                for name, (values, c) in lane_metrics.items():
                    metric[name][0][i] += values[pos]
                    metric[name][1][i] += c
            count += sums.count
            if cap_total is None or step == last:
                continue
            keep = []
            for pos, i in enumerate(active):
                if loss[i] > cap_total:
                    bounded[i] = True
                else:
                    keep.append(pos)
            if len(keep) < k:
                active = [active[pos] for pos in keep]
                if not active:
                    break
                # the rest go on in a smaller canonical group, rebuilt from their coefficients
                coef = coef[torch.tensor(keep, device=coef.device)]
                state = self.state(coef)
        total = self.total_count() if cap_total is not None else count  # a stopped lane: S_k / N, a lower bound
        dev = self.device
        result = {"loss": torch.tensor([s / n if (n := total if bounded[i] else seen[i]) else float("nan")  # 0/0: NaN
                                        for i, s in enumerate(loss)],
                                       dtype=torch.float64, device=dev),
                  "bounded": torch.tensor(bounded, device=dev),
                  "samples": torch.tensor(samples, dtype=torch.int64, device=dev)}
        if self.objective.spec.has_accuracy:
            result["accuracy"] = torch.tensor([c / p if p else float("nan") for c, p in zip(correct, predicted)],
                                              dtype=torch.float64, device=dev)
        for name, (values, counts) in metric.items():
            result[name] = torch.tensor([v / c if c else float("nan") for v, c in zip(values, counts)],
                                        dtype=torch.float64, device=dev)
        return result


def _probe_key(model: nn.Module, plane: Plane, runner: LaneRunner) -> tuple:
    shapes = tuple((k, tuple(v.shape), str(v.dtype)) for k, v in plane.centre.items())
    return (type(model).__module__, type(model).__qualname__, shapes, tuple(plane.moving), plane.ndim,
            str(runner.device), runner.precision, runner.batch_size, runner.n, tuple(runner.data.inputs.shape[1:]),
            str(runner.data.inputs.dtype), runner.channels_last, runner.lanes, runner.compiled is not None,
            json.dumps(runner.objective.spec.to_dict(), sort_keys=True), torch.get_num_threads())


def lanes_are_independent(model: nn.Module, plane: Plane, runner: LaneRunner) -> tuple[bool, str]:
    """Whether a lane's vmapped outputs are bitwise independent of its companions, its position
    and the group size, for every shape the runner uses. Returns ``(verdict, reason)``.

    ``runner.lanes`` synthetic points (coefficients spread over [-1, 1]) run as one group; then,
    for every canonical size (:func:`lane_sizes`), the first points in order and the last
    points in reverse order run as groups of that size (padded as in evaluation). Their outputs
    must equal the full group's rows bit for bit, on a batch of every length used (head,
    full, last). Outputs are compared (not losses), so a one-ulp difference anywhere shows; a
    compiled runner's outputs never leave its graph, so its per-lane float64 sums are compared
    (:meth:`LaneRunner.probe_values`). Memoised per model structure, device, precision, sizes
    and thread count.
    """
    key = _probe_key(model, plane, runner)
    if key in _PROBE_CACHE:
        return _PROBE_CACHE[key]
    dev, lanes = runner.device, runner.lanes
    coef = torch.stack([torch.linspace(-1.0, 1.0, lanes, dtype=torch.float64, device=dev),
                        torch.linspace(0.9, -0.7, lanes, dtype=torch.float64, device=dev),
                        torch.linspace(-0.4, 0.8, lanes, dtype=torch.float64, device=dev)], dim=1)[:, :plane.ndim]
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
            ref = runner.probe_values(runner.state(coef), (start, end))  # (lanes, B, ...)
            for sub in arrangements:
                idx = torch.tensor(sub, device=dev)
                got = runner.probe_values(runner.state(coef[idx]), (start, end))[:len(sub)]
                if not torch.equal(got, ref[idx]):
                    verdict = (False, f"vmapped lanes are not independent of their companions (a group of "
                                      f"{len(sub)} of {lanes} points differs in the last bits)")
                    break
            if not verdict[0]:
                break
    except (RuntimeError, NotImplementedError, TypeError, ValueError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "must return a tensor" in first:
            raise
        verdict = (False, f"the model cannot be vmapped over its weights ({type(exc).__name__}: {first[:200]})")
    if len(_PROBE_CACHE) > 256:
        _PROBE_CACHE.clear()
    _PROBE_CACHE[key] = verdict
    return verdict


def compiled_works(model: nn.Module, plane: Plane, runner: LaneRunner, eager: Any) -> tuple[bool, str]:
    """Whether ``runner`` (compiled) can evaluate here and agrees with ``eager()`` (the same
    runner, not compiled): ``(verdict, reason)``.

    Every shape the runner will use (each batch length, each canonical lane count) is compiled
    and its per-lane sums at the plane's centre compared with the eager ones: loss and metric
    sums within :data:`~.compiled.VERIFY_RTOL` relative (or 1e-6 per element). Memoised like
    :func:`lanes_are_independent` (:func:`~.compiled.verified`).
    """
    from .compiled import VERIFY_RTOL, verified

    spans = {}
    for start, end in runner.batches():
        spans.setdefault(end - start, (start, end))
    zeros = {size: torch.zeros(size, plane.ndim, dtype=torch.float64, device=runner.device) for size in runner.sizes}

    def sums(r: LaneRunner) -> list[Any]:
        out = []
        for size, z in zeros.items():
            state = r.state(z)
            out += [r.batch_sums(state, span, None, size)[0] for span in spans.values()]
        return out

    def compare(ref: list[Any]) -> None:
        for want, got in zip(ref, sums(runner)):
            pairs = [(want.loss, got.loss, want.count)]
            pairs += [(want.metrics[n][0], got.metrics[n][0], want.metrics[n][1]) for n in want.metrics]
            for w, g, count in pairs:
                if not torch.isclose(g, w, rtol=VERIFY_RTOL, atol=1e-6 * max(count, 1), equal_nan=True).all():
                    raise ValueError(f"compiled sums {g.tolist()} differ from eager {w.tolist()} at the centre "
                                     f"beyond {VERIFY_RTOL:g} relative")

    return verified(("compiled",) + _probe_key(model, plane, runner), lambda: sums(eager()), compare)
