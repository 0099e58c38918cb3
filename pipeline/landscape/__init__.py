"""The evaluation engine: points of the plane ``theta + a*x + b*y`` -> loss and accuracy.

==========================  ====================================================================
``evaluate``                a :class:`Grid` -> :class:`Surface` (``loss[i, j]`` at ``(xs[i], ys[j])``)
                            with metadata (:mod:`.grid_eval`)
``evaluate_points``         ``(P, 2)`` coordinates -> :class:`PointResult`; the unit that chunked,
                            resumed and distributed evaluation calls (:mod:`.engine`)
``EvalConfig``              batch size, points per forward, precision, device, cap, subset,
                            determinism (:mod:`.config`)
==========================  ====================================================================

Semantics: mean cross-entropy and accuracy over the whole split (or a fixed seeded subset),
model in eval mode, data moved to the device once, each point built from the stored weights.
Several points per forward (``torch.func.vmap`` over ``functional_call``) where the per-point
work is small, one point at a time in channels_last otherwise (:mod:`.tuning`). What holds
about a point's independence of the other points in a call, and about early exit above a
cap, is stated in :mod:`.engine`.
"""
from ..config import Grid
from ..surface import Surface
from .config import EvalConfig, EvalPlan, PointResult
from .engine import evaluate_points, resolve_device
from .grid_eval import evaluate

__all__ = ["Grid", "Surface", "EvalConfig", "EvalPlan", "PointResult", "evaluate", "evaluate_points",
           "resolve_device"]
