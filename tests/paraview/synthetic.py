"""Synthetic run directories for the ParaView tests: analytic loss fields written with pipeline.vtkio.

A run has what ``lossvista run`` leaves for the ParaView side: ``surface_{random,pca}.vts``,
``trajectory_{random,pca}.vtp`` and, after ``lossvista analyze``, ``critical_points_*.vtp``,
``topology_*.json`` and a ``basin`` array in the surfaces. The fields are sums of Gaussian
wells and bumps on a bowl that grows steeply towards the corners (a divergent region above
any sensible cap), with a few invalid points (``valid == 0``: a NaN and an early-exit bound).

``variant`` changes the extents, grid shapes and wells, so that a state built from one run
can be checked against a different one.
"""
from __future__ import annotations

import numpy as np

from pipeline.datamodel import Grid
from pipeline.datamodel import Surface, Trajectory
from pipeline.vtkio import write_surface, write_trajectory

# (centre a, centre b, depth (< 0: well, > 0: bump), width) in units of the plane's half-sides
_FEATURES = {
    0: [(0.0, 0.0, -2.2, 0.35), (0.55, -0.5, -1.0, 0.12), (-0.5, 0.45, 0.8, 0.15), (0.45, 0.55, -0.35, 0.1)],
    1: [(0.05, -0.05, -1.8, 0.3), (-0.55, -0.4, -1.2, 0.14), (0.45, 0.5, 0.6, 0.2), (0.6, -0.6, -0.5, 0.1)],
}
_PLANES = {
    # variant -> {kind: (Grid, start of the path (a, b) as fractions of the half-sides)}
    0: {"random": (Grid(-1.0, 1.0, 41, -1.0, 1.0, 41), (0.8, 0.75)),
        "pca": (Grid(-12.0, 8.0, 41, -5.0, 6.0, 23), (-0.85, 0.7))},
    1: {"random": (Grid(-0.5, 0.5, 31, -0.5, 0.5, 25), (-0.7, 0.8)),
        "pca": (Grid(-30.0, 10.0, 33, -4.0, 4.0, 21), (-0.9, -0.6))},
}
EXPLAINED_VARIANCE = {0: [0.712, 0.183], 1: [0.905, 0.041]}


def loss_field(a: np.ndarray, b: np.ndarray, grid: Grid, variant: int = 0) -> np.ndarray:
    """The analytic loss at plane coordinates ``(a, b)`` (any matching shapes)."""
    ha = max(abs(grid.xmin), abs(grid.xmax))
    hb = max(abs(grid.ymin), abs(grid.ymax))
    u, v = np.asarray(a) / ha, np.asarray(b) / hb  # about [-1, 1]
    out = 2.4 + 0.3 * (u ** 2 + v ** 2) + 0.25 * np.exp(6.0 * (u ** 2 + v ** 2) - 5.0)
    for ca, cb, depth, width in _FEATURES[variant]:
        out = out + depth * np.exp(-((u - ca) ** 2 + (v - cb) ** 2) / (2 * width ** 2))
    return out


def make_surface(kind: str, variant: int = 0) -> Surface:
    grid, _ = _PLANES[variant][kind]
    a, b = np.meshgrid(grid.xs, grid.ys, indexing="ij")  # (nx, ny)
    loss = loss_field(a, b, grid, variant)
    accuracy = np.clip(1.0 - loss / loss.max(), 0.0, 1.0)
    bounded = np.zeros(grid.shape, bool)
    loss[-1, -1] = np.nan  # a diverged point
    bounded[-2, -1] = True  # an early exit: only a lower bound
    loss[-2, -1] = 50.0
    meta = {"model": "synthetic", "dataset": "analytic", "split": "train", "n_samples": 0,
            "direction": {"kind": kind, "norm": "filter" if kind == "random" else None}, "kind": kind,
            "variant": variant}
    if kind == "pca":
        meta["explained_variance"] = EXPLAINED_VARIANCE[variant]
    if variant == 1:
        meta["num_classes"] = 10  # the default cap becomes 5 x max(centre loss, ln 10)
    return Surface(grid=grid, loss=loss, accuracy=accuracy, bounded=bounded, meta=meta)


def make_trajectory(kind: str, variant: int = 0, epochs: int = 10) -> Trajectory:
    """A path spiralling from a start near a corner into the centre (0, 0) at the last epoch."""
    grid, (sa, sb) = _PLANES[variant][kind]
    t = np.linspace(0.0, 1.0, epochs + 1)
    decay = (1.0 - t) ** 1.6
    angle = 1.2 * np.pi * t
    u = decay * (sa * np.cos(angle) - sb * np.sin(angle))
    v = decay * (sa * np.sin(angle) + sb * np.cos(angle))
    ha = max(abs(grid.xmin), abs(grid.xmax))
    hb = max(abs(grid.ymin), abs(grid.ymax))
    a, b = u * ha, v * hb
    a[-1] = b[-1] = 0.0
    surface_loss = loss_field(a, b, grid, variant)
    return Trajectory(coords=np.stack([a, b], axis=1), epoch=np.arange(epochs + 1),
                      loss=surface_loss * (1.0 + 0.02 * (1 - t)), surface_loss=surface_loss,
                      residual=0.3 * (1 - t), meta={"kind": kind, "variant": variant})


def make_run(run_dir, variant: int = 0, kinds=("random", "pca")):
    """Write surfaces and trajectories of both planes into ``run_dir``; return it."""
    from pathlib import Path

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        write_surface(run_dir / f"surface_{kind}.vts", make_surface(kind, variant))
        write_trajectory(run_dir / f"trajectory_{kind}.vtp", make_trajectory(kind, variant))
    return run_dir


def add_curvature_maps(surface_file) -> None:
    """Give a synthetic surface the arrays of ``lossvista surface --hessian``: the extreme
    eigenvalues of the 2 x 2 Hessian of its loss field on the plane (finite differences), their
    ratio and a residual, NaN where the loss is not usable."""
    from pipeline.vtkio import read_surface

    s = read_surface(surface_file)
    values = np.where(s.usable("loss"), s.loss, np.nan)
    da, db = np.gradient(values, s.xs, s.ys)
    daa, dab = np.gradient(da, s.xs, s.ys)
    _, dbb = np.gradient(db, s.xs, s.ys)
    mean, half = (daa + dbb) / 2, np.sqrt(((daa - dbb) / 2) ** 2 + dab ** 2)
    top, bottom = mean + half, mean - half
    s.extra.update(hessian_max=top, hessian_min=bottom, eig_ratio=np.abs(bottom / top),
                   hessian_error=np.where(np.isfinite(top), 1e-3, np.nan))
    s.meta["hessian"] = {"tol": 1e-2, "max_iter": 100, "ignore": "biasbn", "seed": 0, "unconverged_points": 0}
    write_surface(surface_file, s)
