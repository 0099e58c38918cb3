"""What one surface is: :class:`SurfaceRequest`, its default grid, and the grid's checks."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..datamodel import Grid, parse_axis
from ..errors import ParameterError, param

__all__ = ["SurfaceRequest", "SPLITS", "default_grid", "complete_grid", "check_grid"]

SPLITS = ("train", "test", "both")
DEFAULT_POINTS = 51  # per axis; odd, so 0 is a grid point


@dataclass(frozen=True)
class SurfaceRequest:
    """Everything that defines one surface of a run (plus where to write it).

    ``grid=None``: ``-1:1:51`` on both axes, or for a PCA plane the trajectory's extent plus a
    margin (:func:`pipeline.trajectory.pca_grid`); a 1D direction gives ``ny == 1``
    (:func:`default_grid`). ``epoch=None``: the checkpoint the directions were made around,
    else the last one. ``out=None``: ``RUN/surface_<kind>.vts``. ``hessian``: also the Hessian's
    extreme eigenvalues and their ratio at every point (:mod:`pipeline.curvature.maps`).
    """

    run: Path
    directions: Path
    grid: Grid | None = None
    split: str = "train"  # train | test | both
    epoch: int | None = None
    out: Path | None = None
    eval: Any = None  # pipeline.engine.EvalConfig; None: defaults (device resolved per rank)
    hessian: Any = None  # pipeline.curvature.maps.HessianMaps: the curvature maps too; None: the loss only

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ParameterError(f"{param('split')} must be one of {', '.join(map(repr, SPLITS))}; got {self.split!r}")
        if self.out is not None and Path(self.out).suffix != ".vts":
            raise ParameterError(f"{param('out')} must end in .vts; got {str(self.out)!r}")


def default_grid(run: Any, directions: Any, epoch: int | None = None, n: int = DEFAULT_POINTS) -> Grid:
    """The default grid of a plane: PCA planes span the trajectory (plus a margin), Hessian planes
    their ``grid_extent`` (:mod:`pipeline.directions.hessian`), others -1..1; an interpolation
    direction runs from -0.5 to 1.5 within its valid range (:func:`check_grid`)."""
    if directions.ndim == 1:
        if directions.kind == "interp":  # from a (0) to b (1), with half the distance on either side
            lo, hi = directions.alpha_range()
            return Grid(max(-0.5, lo), min(1.5, hi), n, 0.0, 0.0, 1)
        return Grid(-1.0, 1.0, n, 0.0, 0.0, 1)
    extent = directions.meta.get("grid_extent")
    if directions.kind == "hessian" and isinstance(extent, (list, tuple)) and len(extent) == 2:
        tx, ty = (float(t) for t in extent)
        return Grid(-tx, tx, n, -ty, ty, n)
    if directions.kind != "pca":
        return Grid(-1.0, 1.0, n, -1.0, 1.0, n)
    from ..trajectory import pca_grid, project_trajectory

    epochs = run.epochs()
    centre = epoch if epoch is not None else (directions.centre_epoch if directions.centre_epoch is not None
                                              else (epochs[-1] if epochs else None))
    if centre is None or centre not in epochs:
        return Grid(-1.0, 1.0, n, -1.0, 1.0, n)
    return pca_grid(project_trajectory(run.checkpoints(), directions, run.checkpoint(centre)), n=n)


def complete_grid(run: Any, directions: Any, x: str | None, y: str | None, epoch: int | None = None) -> Grid | None:
    """The grid from axis specs ``"min:max:n"``: both given, one given (the other from
    :func:`default_grid`), or none (None: the request's default)."""
    if x is None and y is None:
        return None
    if directions.ndim == 1:
        if y is not None:
            raise ParameterError(f"{param('y')} does not apply: the directions hold a 1D direction (kind "
                                 f"{directions.kind!r}); give only {param('x')}")
        return Grid.from_specs(x, None)
    if x is not None and y is not None:
        return Grid.from_specs(x, y)
    d = default_grid(run, directions, epoch)
    xa = parse_axis(x, "x") if x is not None else (d.xmin, d.xmax, d.nx)
    ya = parse_axis(y, "y") if y is not None else (d.ymin, d.ymax, d.ny)
    return Grid(*xa, *ya)


def check_grid(directions: Any, grid: Grid) -> None:
    """Refuse a grid that does not fit the directions: a 1D direction needs ``ny == 1`` and
    ``ys == [0]``; no grid point may drive a BatchNorm running variance negative."""
    if directions.ndim == 1 and (grid.ny != 1 or grid.ys[0] != 0):
        raise ParameterError(f"the directions hold a 1D direction (kind {directions.kind!r}): the grid needs "
                             f"ny == 1 and ys == [0] (give only {param('x')})")
    lo, hi = directions.alpha_range()
    if grid.xmin < lo or grid.xmax > hi:
        raise ParameterError(f"the grid's first axis [{grid.xmin:g}, {grid.xmax:g}] leaves [{lo:g}, {hi:g}], "
                             f"where every BatchNorm running variance moved by these directions stays "
                             f"non-negative; choose {param('x')} within it (or make the directions with "
                             f"{param('dir_type')} weights)")
