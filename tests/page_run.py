"""A small run directory with the files the page reads, from analytic fields (no training).

Both planes have something for every rule of the page: a point above the divergence cap (a
grey corner), a NaN, an early-exit bound (not usable), a PCA plane with explained variance and
a path, and the analysis (critical points, topology, basins) made by ``analyze_file``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.analyze import analyze_file
from pipeline.atomic import write_json
from pipeline.datamodel import Grid, Surface, Trajectory
from pipeline.rundir import RunDir
from pipeline.vtkio import write_surface, write_trajectory

GRIDS = {"random": Grid(-1.0, 1.0, 31, -1.0, 1.0, 31), "pca": Grid(-9.0, 3.0, 41, -2.0, 3.0, 23)}


def field(a: np.ndarray, b: np.ndarray, grid: Grid) -> np.ndarray:
    u, v = a / max(abs(grid.xmin), grid.xmax), b / max(abs(grid.ymin), grid.ymax)
    return 0.02 + 1.5 * (u ** 2 + 0.6 * v ** 2) + 0.8 * np.exp(-((u + 0.5) ** 2 + (v - 0.4) ** 2) / 0.05) \
        + 40.0 * np.clip(u + v - 1.3, 0, None)


def make_surface(kind: str, *, loss_name: str | None = None, extra: bool = False) -> Surface:
    g = GRIDS[kind]
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")  # (nx, ny)
    loss = field(a, b, g)
    bounded = np.zeros(g.shape, bool)
    loss[0, -1] = np.nan  # a diverged point
    loss[1, -1], bounded[1, -1] = 0.5, True  # an early exit: only a lower bound
    meta = {"model": "toy-mlp", "dataset": "analytic", "split": "train", "samples": 100, "num_classes": 10,
            "direction_kind": kind, "norm": "filter" if kind == "random" else None, "parameters": 1234}
    if kind == "pca":
        meta["explained_variance"] = [0.8, 0.15]
    if loss_name:
        meta["loss_name"] = loss_name
    s = Surface(g, loss, np.clip(1 - loss / 3, 0, 1), bounded=bounded, meta=meta)
    if extra:
        s.extra["hessian_max"] = a ** 2 - b  # any numeric array: negative values included
    return s


def make_run(root: Path, **kwargs) -> Path:
    run = RunDir(root)
    root.mkdir(parents=True, exist_ok=True)
    write_json(run.run_json, {"name": "toy", "config": {"model": "toy-mlp", "dataset": "analytic", "epochs": 5,
                                                        "optimizer": "sgd", "lr": 0.1, "batch_size": 16},
                              "dataset": {"train_samples": 100, "test_samples": 20}, "num_parameters": 1234,
                              "history": [{"epoch": 5, "train_loss": 0.03, "test_accuracy": 0.9}]})
    for kind, g in GRIDS.items():
        write_surface(run.surface(kind), make_surface(kind, **kwargs))
        t = np.linspace(0, 1, 6)
        coords = np.stack([g.xmin * 0.8 * (1 - t), g.ymax * 0.5 * (1 - t) ** 2], axis=1)
        a, b = coords[:, 0], coords[:, 1]
        write_trajectory(run.trajectory(kind), Trajectory(coords, np.arange(6), field(a, b, g) * 1.01,
                                                          field(a, b, g), np.full(6, 0.1), {"kind": kind}))
        analyze_file(run.surface(kind), persistence=0.01, relative=True)
    return root
