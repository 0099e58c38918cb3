"""``evaluate``: the one-call public API, a whole :class:`~pipeline.datamodel.Grid` ->
:class:`~pipeline.datamodel.Surface` (a :class:`~pipeline.datamodel.Lattice` ->
:class:`~pipeline.datamodel.Volume`) with metadata, in memory.

It runs the same code path as a run's resumable surface (:mod:`.compute`), with the chunks
kept in memory instead of a work directory, and the same metadata builder (:mod:`.meta`).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Mapping

from torch import nn

from ..datamodel import Grid, Lattice, Surface
from ..engine import EvalConfig, as_split, resolve_compile, resolve_device
from ..engine.points import as_objective
from .compute import evaluate_in_memory
from .evaluator import centre_meta, make_chunk_evaluator, uncapped
from .meta import surface_meta
from .request import check_grid

__all__ = ["evaluate"]


def evaluate(model: nn.Module, directions: Any, grid: Grid | Lattice, data: Any, *, test_data: Any = None,
             loss: Any = None, config: EvalConfig = EvalConfig(), progress: bool = True,
             meta: Mapping[str, Any] | None = None, hessian: Any = None) -> Surface:
    """Loss and accuracy of ``model`` on ``grid``: ``loss[i, j]`` at ``theta + xs[i] x + ys[j] y``
    (on a lattice, ``loss[i, j, l]`` at ``theta + xs[i] x + ys[j] y + zs[l] z``).

    Parameters
    ----------
    model : nn.Module
        The centre ``theta`` (its current weights); evaluated in eval mode, left unchanged.
    directions : Directions
        ``.x``, ``.y`` (None for 1D: then the grid must have ``ny == 1`` and ``ys == [0]``);
        with ``.z`` (three directions) the grid is a Lattice.
    grid : Grid or Lattice
        Any ``(nx, ny)`` (``(nx, ny, nz)``); 0 may be an endpoint.
    data : (inputs, targets) tensors, a Split, a Dataset, a DataLoader or a re-iterable of batches
        The split whose mean loss (and accuracy, for class outputs) are ``loss``/``accuracy``
        (:mod:`pipeline.engine.batches`).
    test_data : the same forms, optional
        A second split, stored as ``test_loss``/``test_accuracy`` (evaluated without the cap).
    loss : LossSpec, a loss name or ``"module:function"``, default cross-entropy
        What the value of a point is (:mod:`pipeline.objective`).
    config : EvalConfig
    progress : bool, default True
    hessian : HessianMaps, optional
        Also the Hessian's extreme eigenvalues at every point on ``data``: the arrays
        ``hessian_max``, ``hessian_min``, ``eig_ratio`` and ``hessian_error``
        (:mod:`pipeline.curvature.maps`); a Grid only.
    meta : mapping, optional
        Merged into ``Surface.meta`` last (e.g. ``model``, ``dataset``, ``split``, ``run``, ``epoch``).

    Returns
    -------
    Surface (a Volume for a Lattice)
        ``loss``, ``accuracy`` (and ``test_*``), ``bounded`` of shape ``(nx, ny)`` (``(nx, ny, nz)``); ``meta`` holds
        model, dataset, split, samples, direction metadata, grid, loss/accuracy at the centre,
        engine config and plan, software versions, creation time and seconds. The centre values
        are the grid point (0, 0) when the grid has it and no cap can bound it, else (0, 0) is
        evaluated on its own.
    """
    if not isinstance(grid, (Grid, Lattice)):
        raise ValueError(f"grid must be a pipeline.datamodel.Grid or Lattice; got {type(grid).__name__}")
    if not isinstance(config, EvalConfig):
        raise ValueError(f"config must be an EvalConfig; got {type(config).__name__}")
    if hessian is not None and isinstance(grid, Lattice):
        raise ValueError("hessian (the curvature maps) applies to surfaces; the grid is a Lattice (a volume)")
    check_grid(directions, grid)
    t0 = time.perf_counter()
    device = resolve_device(config.device)
    config = dataclasses.replace(config, device=str(device))
    objective = as_objective(loss)
    if hessian is not None:
        hessian = hessian.resolved(getattr(directions, "meta", None))
    # the evaluated subsets, on the device once (not once per chunk)
    splits = [as_split(d, name).subset(config.max_samples, seed=config.sample_seed).to(device)
              for d, name in ((data, "data"), (test_data, "test_data")) if d is not None]
    requested = config.compile
    config, compiled = resolve_compile(model, splits[0], config, grid.size, sum(s.n or 0 for s in splits))
    evaluate_chunk = make_chunk_evaluator(model, directions, splits[0], config, splits[1] if len(splits) > 1 else None,
                                          loss=objective, hessian=hessian)
    info = surface_meta(model=type(model).__name__, parameters=sum(p.numel() for p in model.parameters()),
                        directions=getattr(directions, "meta", None) or {}, config=config,
                        split="both" if len(splits) > 1 else "train", samples=[s.n or 0 for s in splits],
                        loss=objective.spec, hessian=hessian)
    info["engine"]["compile"] = {"requested": requested, **compiled.to_dict()}
    info.update(centre_meta(make_chunk_evaluator(model, directions, splits[0], uncapped(config), loss=objective),
                            grid, config.cap))
    surface = evaluate_in_memory(evaluate_chunk, grid, info, progress=progress)
    if objective.classes is not None:
        surface.meta["num_classes"] = objective.classes
    surface.meta["seconds"] = round(time.perf_counter() - t0, 3)
    surface.meta.update(meta or {})
    return surface
