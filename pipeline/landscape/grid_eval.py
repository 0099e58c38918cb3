"""``evaluate``: a whole :class:`~pipeline.config.Grid` -> :class:`~pipeline.surface.Surface` with metadata."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from typing import Any, Mapping

import numpy as np
from torch import nn

from ..config import Grid
from ..surface import FORMAT_VERSION, Surface
from .config import EvalConfig
from .engine import evaluate_points

__all__ = ["evaluate"]

_DIRECTION_KEYS = ("norm", "ignore", "dir_type", "seed", "explained_variance", "cosine")


def evaluate(model: nn.Module, directions: Any, grid: Grid, data: Any, *, test_data: Any = None,
             config: EvalConfig = EvalConfig(), progress: bool = True,
             meta: Mapping[str, Any] | None = None) -> Surface:
    """Loss and accuracy of ``model`` on ``grid``: ``loss[i, j]`` at ``theta + xs[i] x + ys[j] y``.

    Parameters
    ----------
    model : nn.Module
        The centre ``theta`` (its current weights); evaluated in eval mode, left unchanged.
    directions : Directions
        ``.x``, ``.y`` (None for 1D: then the grid must have ``ny == 1`` and ``ys == [0]``).
    grid : Grid
        Any ``(nx, ny)``; 0 may be an endpoint.
    data : Split or (inputs, targets)
        The split whose mean cross-entropy and accuracy are ``loss``/``accuracy``.
    test_data : Split or (inputs, targets), optional
        A second split, stored as ``test_loss``/``test_accuracy`` (evaluated without the cap).
    config : EvalConfig
    progress : bool, default True
    meta : mapping, optional
        Merged into ``Surface.meta`` last (e.g. ``model``, ``dataset``, ``split``, ``run``, ``epoch``).

    Returns
    -------
    Surface
        ``loss``, ``accuracy`` (and ``test_*``), ``bounded`` of shape ``(nx, ny)``; ``meta`` holds
        model, dataset, split, samples, direction metadata, grid, loss/accuracy at the centre,
        engine plan and config, software versions, creation time and seconds. The centre is
        the grid point (0, 0) when the grid has it, else it is evaluated separately.
    """
    if not isinstance(grid, Grid):
        raise ValueError(f"grid must be a pipeline.config.Grid; got {type(grid).__name__}")
    if getattr(directions, "y", None) is None and grid.ny == 1 and grid.ys[0] != 0:
        raise ValueError(f"a 1D direction needs a 1D grid with ys == [0]; got ymin={grid.ymin}")
    if getattr(directions, "y", None) is None and grid.ny > 1:
        raise ValueError(f"a 1D direction (directions.y is None) needs a grid with ny == 1; got ny={grid.ny}")
    t0 = time.perf_counter()
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    coords = grid.coords()  # (nx * ny, 2), flat k = i * ny + j
    train = evaluate_points(model, directions, coords, data, config, progress=progress)
    shape = grid.shape
    test = None
    if test_data is not None:
        test = evaluate_points(model, directions, coords, test_data, dataclasses.replace(config, cap=None),
                               progress=progress)

    surface = Surface(grid, train.loss.reshape(shape), train.accuracy.reshape(shape),
                      test_loss=None if test is None else test.loss.reshape(shape),
                      test_accuracy=None if test is None else test.accuracy.reshape(shape),
                      bounded=train.bounded.reshape(shape))
    centre = surface.centre_index()
    if centre is not None and not surface.bounded[centre]:
        centre_loss, centre_acc = float(surface.loss[centre]), float(surface.accuracy[centre])
    else:  # not on the grid (or bounded): evaluate (0, 0) on its own, without the cap
        c = evaluate_points(model, directions, np.zeros((1, 2)), data, dataclasses.replace(config, cap=None),
                            progress=False)
        centre_loss, centre_acc = float(c.loss[0]), float(c.accuracy[0])

    dmeta = dict(getattr(directions, "meta", {}) or {})
    n_params = sum(p.numel() for p in model.parameters())
    surface.meta = {
        "format_version": FORMAT_VERSION,
        "model": type(model).__name__,
        "parameters": int(n_params),
        "dataset": None,
        "split": "both" if test is not None else "train",
        "samples": int(train.plan.samples),
        **({"test_samples": int(test.plan.samples)} if test is not None else {}),
        "direction_kind": dmeta.get("kind", "random"),
        **{k: dmeta[k] for k in _DIRECTION_KEYS if k in dmeta},
        "directions": dmeta,
        "grid": grid.to_dict(),
        "centre_loss": centre_loss,
        "centre_accuracy": centre_acc,
        "precision": config.precision,
        "cap": config.cap,
        "max_samples": config.max_samples,
        "sample_seed": config.sample_seed,
        "device": train.plan.device.split(":", 1)[0],
        "engine": {"config": config.to_dict(), "plan": train.plan.to_dict(), "notes": train.notes},
        "bounded_points": int(surface.bounded.sum()),
        "nonfinite_points": int((~np.isfinite(surface.loss)).sum()),
        "software": _software(),
        "created": created,
        "seconds": round(time.perf_counter() - t0, 3),
        **dict(meta or {}),
    }
    return surface


def _software() -> dict[str, str]:
    from ..train import software_versions

    return software_versions()
