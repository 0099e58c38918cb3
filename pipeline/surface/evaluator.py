"""Chunk evaluators: a function from ``(n, 2)`` coordinates to the arrays of a chunk, on the engine.

The test-split rule lives here, once: the test split is evaluated without the cap (its loss is
reported, never bounded), so ``test_loss`` is exact wherever it is finite.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np

from ..datamodel import Grid

__all__ = ["ChunkEvaluator", "make_chunk_evaluator", "uncapped", "centre_meta"]

ChunkEvaluator = Callable[[np.ndarray], Mapping[str, np.ndarray]]


def uncapped(config: Any) -> Any:
    """``config`` without its cap: how the test split, and the centre of a plane, are evaluated."""
    return dataclasses.replace(config, cap=None)


def make_chunk_evaluator(model: Any, directions: Any, data: Any, config: Any, test_data: Any = None, *,
                         loss: Any = None, hessian: Any = None) -> ChunkEvaluator:
    """An ``evaluate_chunk`` on the engine: :func:`pipeline.engine.evaluate_points`.

    ``data``/``test_data`` should already be on ``config.device`` (moved once, not per chunk).
    The test split is evaluated with :func:`uncapped` ``config``. ``loss``: what the value is
    (:mod:`pipeline.objective`); made ready once here, not per chunk. ``hessian``: a
    :class:`pipeline.curvature.maps.HessianMaps`: the Hessian's extreme eigenvalues at every
    point too, on ``data``, where the loss is usable (:mod:`pipeline.curvature.maps`).
    """
    from ..engine import evaluate_points
    from ..engine.points import as_objective

    objective = as_objective(loss)
    test_config = uncapped(config) if test_data is not None else None
    curvature = None
    if hessian is not None:
        from ..curvature.maps import point_evaluator

        curvature = point_evaluator(model, directions, data, objective, hessian, config.device)

    def evaluate_chunk(coords: np.ndarray) -> dict[str, np.ndarray]:
        r = evaluate_points(model, directions, coords, data, config, loss=objective, progress=False)  # bar: chunks
        arrays: dict[str, Any] = {"loss": _np(r.loss), "bounded": _np(r.bounded), "samples": _np(r.samples)}
        if r.accuracy is not None:
            arrays["accuracy"] = _np(r.accuracy)
        arrays.update({name: _np(v) for name, v in r.metrics.items()})
        if curvature is not None:
            arrays.update(curvature(coords, ~np.isfinite(arrays["loss"]) | arrays["bounded"].astype(bool)))
        if getattr(r, "plan", None) is not None:
            arrays["info"] = {"plan": r.plan.to_dict(), "notes": list(getattr(r, "notes", []))}
        if test_data is not None:
            t = evaluate_points(model, directions, coords, test_data, test_config, loss=objective, progress=False)
            arrays["test_loss"] = _np(t.loss)
            if t.accuracy is not None:
                arrays["test_accuracy"] = _np(t.accuracy)
            arrays.update({f"test_{name}": _np(v) for name, v in t.metrics.items()})
            arrays["samples"] = arrays["samples"] + _np(t.samples)
        return arrays

    return evaluate_chunk


def _np(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().to("cpu").numpy()
    return np.asarray(value)


def centre_meta(evaluate_uncapped: ChunkEvaluator, grid: Grid, cap: float | None) -> dict[str, float]:
    """Loss and accuracy at (0, 0), evaluated alone when the grid cannot provide them exactly.

    The grid provides them (at assembly) when it holds the point (0, 0) and no cap can bound
    it; otherwise ``evaluate_uncapped`` (an evaluator without the cap) runs that one point.
    """
    if grid.centre_index() is not None and cap is None:
        return {}
    r = evaluate_uncapped(np.zeros((1, 2)))
    out = {"centre_loss": float(r["loss"][0])}
    if "accuracy" in r:
        out["centre_accuracy"] = float(r["accuracy"][0])
    return out
