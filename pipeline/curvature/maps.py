"""Eigen-ratio maps: the Hessian's extreme eigenvalues at every point of a plane.

``lossvista surface --hessian`` stores, beside the loss of every grid point, ``hessian_max``
and ``hessian_min`` (the largest and smallest algebraic eigenvalues of the Hessian of the
same loss, on the same data, at ``theta + a x + b y``), ``eig_ratio = |hessian_min /
hessian_max|`` (Li et al. 2018, section 6: near 0 where the landscape is locally convex, large
where the slice hides strong negative curvature) and ``hessian_error`` (the Lanczos
run's estimated eigenvalue error, relative to the spectral radius
``max(|hessian_max|, |hessian_min|)``: what ``tol`` bounds, :mod:`.lanczos`). They are computed in the surface's
own chunks, so they resume, distribute and shard with it; :class:`HessianMaps` is part of what
identifies the computation.

Where the loss is not finite (or above an early-exit cap) the curvature is not computed: the
four arrays are NaN there.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

import numpy as np

from ..config import check_float, check_int, check_str
from .hessian import IGNORES

__all__ = ["HessianMaps", "HESSIAN_ARRAYS", "point_evaluator"]

HESSIAN_ARRAYS = ("hessian_max", "hessian_min", "eig_ratio", "hessian_error")


@dataclass(frozen=True)
class HessianMaps:
    """How the curvature of every grid point is computed (all of it identifies the computation)."""

    tol: float = 1e-2  # Lanczos error relative to the spectral radius (the official code's eigsh used 1e-2)
    max_iter: int = 100  # Lanczos steps at most per point
    ignore: str | None = None  # parameters: 'biasbn' (more than one dimension) | 'none'; None: the directions'
    seed: int = 0  # Lanczos start vector (the same at every point)

    def __post_init__(self) -> None:
        check_float("hessian_tol", self.tol, 0.0, low_open=True)
        check_int("hessian_iters", self.max_iter, 2)
        check_str("ignore", self.ignore, IGNORES, optional=True)
        check_int("seed", self.seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolved(self, directions_meta: Any) -> "HessianMaps":
        """With ``ignore`` chosen: as given, else the directions' own (``biasbn`` when they have none)."""
        if self.ignore is not None:
            return self
        ignore = (directions_meta or {}).get("ignore")
        return replace(self, ignore=ignore if ignore in IGNORES else "biasbn")


def point_evaluator(model: Any, directions: Any, data: Any, loss: Any, options: HessianMaps, device: Any
                    ) -> Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    """``values(coords (n, 2), skip (n,) bool) -> {name: (n,) float64}`` for :data:`HESSIAN_ARRAYS`.

    ``data`` is the surface's evaluated split (already on ``device``); ``skip`` marks points
    whose loss is not usable (NaN there). A point's values depend on its coordinates alone
    (the same start vector everywhere), never on the other points of its chunk.
    """
    import torch

    from .hessian import CurvatureError, Hessian

    base = Hessian(model, data, loss=loss, ignore=options.ignore, device=device, seed=options.seed)
    centre = {k: v for k, v in base.tensors.items()}
    moving = [k for k, c in centre.items() if c.is_floating_point() and any(
        d is not None and k in d and bool(d[k].count_nonzero()) for d in (directions.x, directions.y))]
    x = {k: directions.x[k].to(base.device, centre[k].dtype) for k in moving}
    y = ({k: directions.y[k].to(base.device, centre[k].dtype) for k in moving} if directions.y is not None
         else None)

    def state_at(a: float, b: float) -> dict[str, torch.Tensor]:
        out = {}
        for k in moving:  # the elementwise operations of the engine's Plane.build: (a x + theta) + b y
            w = x[k] * a + centre[k]
            if y is not None:
                w = w + y[k] * b
            out[k] = w
        return out

    def values(coords: np.ndarray, skip: np.ndarray) -> dict[str, np.ndarray]:
        n = len(coords)
        out = {name: np.full(n, np.nan) for name in HESSIAN_ARRAYS}
        for i, (a, b) in enumerate(np.asarray(coords, dtype=np.float64)):
            if skip[i]:
                continue
            hess = base.at(state_at(float(a), float(b)))
            try:
                r = hess.lanczos(1, "both", tol=options.tol, max_iter=options.max_iter, warn=False)
            except CurvatureError:
                continue
            top, bottom = float(r.values[0]), float(r.values[1])
            out["hessian_max"][i], out["hessian_min"][i] = top, bottom
            out["eig_ratio"][i] = abs(bottom / top) if top != 0 else math.inf
            out["hessian_error"][i] = float(r.relative_errors.max())
        return out

    return values

