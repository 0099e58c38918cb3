"""What one surface (or volume) is: :class:`SurfaceRequest`, its default grid, and the grid's checks.

Directions with a third direction (``Directions.z``) make the request a volume: its grid is a
:class:`~pipeline.datamodel.Lattice` and its file ``RUN/volume_<kind>.vti``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..datamodel import Grid, Lattice, parse_axis
from ..errors import ParameterError, param

__all__ = ["SurfaceRequest", "SPLITS", "default_grid", "complete_grid", "check_grid", "DEFAULT_VOLUME_POINTS"]

SPLITS = ("train", "test", "both")
DEFAULT_POINTS = 51  # per axis; odd, so 0 is a grid point
DEFAULT_VOLUME_POINTS = 21  # per axis of a volume: 21^3 points cost as much as a 96 x 96 plane


@dataclass(frozen=True)
class SurfaceRequest:
    """Everything that defines one surface (or volume) of a run (plus where to write it).

    ``grid=None``: ``-1:1:51`` on both axes, or for a PCA plane the trajectory's extent plus a
    margin (:func:`pipeline.trajectory.pca_grid`); a 1D direction gives ``ny == 1``; three
    directions a lattice of 21 points per axis, -1..1 or the extent of the path in the volume
    (:func:`default_grid`). ``epoch=None``: the checkpoint the directions were made around,
    else the last one. ``out=None``: ``RUN/surface_<kind>.vts`` (``RUN/volume_<kind>.vti``).
    ``hessian``: also the Hessian's extreme eigenvalues and their ratio at every point
    (:mod:`pipeline.curvature.maps`); surfaces only.
    """

    run: Path
    directions: Path
    grid: Grid | Lattice | None = None
    split: str = "train"  # train | test | both
    epoch: int | None = None
    out: Path | None = None
    eval: Any = None  # pipeline.engine.EvalConfig; None: defaults (device resolved per rank)
    hessian: Any = None  # pipeline.curvature.maps.HessianMaps: the curvature maps too; None: the loss only

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ParameterError(f"{param('split')} must be one of {', '.join(map(repr, SPLITS))}; got {self.split!r}")
        if self.out is not None and Path(self.out).suffix not in (".vts", ".vti"):
            raise ParameterError(f"{param('out')} must end in .vts (a surface) or .vti (a volume); "
                                 f"got {str(self.out)!r}")


def default_grid(run: Any, directions: Any, epoch: int | None = None, n: int | None = None) -> Grid | Lattice:
    """The default grid of a plane: PCA planes span the trajectory (plus a margin), Hessian planes
    their ``grid_extent`` (:mod:`pipeline.directions.hessian`), others -1..1; an interpolation
    direction runs from -0.5 to 1.5 within its valid range (:func:`check_grid`).
    Three directions: a lattice, the same rules on three axes (``n`` default 21, else 51)."""
    n = n or (DEFAULT_VOLUME_POINTS if directions.ndim == 3 else DEFAULT_POINTS)
    if directions.ndim == 3:
        if directions.kind == "pca":
            path = _projected_path(run, directions, epoch)
            if path is not None:
                return pca_grid_of(path, n)
        return Lattice(-1.0, 1.0, n, -1.0, 1.0, n, -1.0, 1.0, n)
    if directions.ndim == 1:
        if directions.kind == "interp":  # from a (0) to b (1), with half the distance on either side
            lo, hi = directions.alpha_range()
            return Grid(max(-0.5, lo), min(1.5, hi), n, 0.0, 0.0, 1)
        return Grid(-1.0, 1.0, n, 0.0, 0.0, 1)
    extent = directions.meta.get("grid_extent")
    if directions.kind == "hessian" and isinstance(extent, (list, tuple)) and len(extent) == 2:
        tx, ty = (float(t) for t in extent)
        return Grid(-tx, tx, n, -ty, ty, n)
    path = _projected_path(run, directions, epoch) if directions.kind == "pca" else None
    return Grid(-1.0, 1.0, n, -1.0, 1.0, n) if path is None else pca_grid_of(path, n)


def pca_grid_of(path: Any, n: int) -> Grid | Lattice:
    """:func:`pipeline.trajectory.pca_grid` (imported on use: it needs torch)."""
    from ..trajectory import pca_grid

    return pca_grid(path, n=n)


def _projected_path(run: Any, directions: Any, epoch: int | None) -> Any:
    """The run's checkpoints projected onto ``directions`` (no losses), or None without a centre."""
    from ..trajectory import project_trajectory

    epochs = run.epochs()
    centre = epoch if epoch is not None else (directions.centre_epoch if directions.centre_epoch is not None
                                              else (epochs[-1] if epochs else None))
    if centre is None or centre not in epochs:
        return None
    return project_trajectory(run.checkpoints(), directions, run.checkpoint(centre))


def complete_grid(run: Any, directions: Any, x: str | None, y: str | None, epoch: int | None = None,
                  z: str | None = None) -> Grid | Lattice | None:
    """The grid from axis specs ``"min:max:n"``: all given, some given (the others from
    :func:`default_grid`), or none (None: the request's default). ``z`` only for three directions."""
    if z is not None and directions.ndim != 3:
        raise ParameterError(f"{param('z')} needs three directions (a volume); the directions hold "
                             f"{directions.ndim} (kind {directions.kind!r})")
    if x is None and y is None and z is None:
        return None
    if directions.ndim == 3:
        specs = {"x": x, "y": y, "z": z}
        d = default_grid(run, directions, epoch) if None in specs.values() else None
        axes = [parse_axis(v, a) if v is not None else tuple(getattr(d, f) for f in (a + "min", a + "max", "n" + a))
                for a, v in specs.items()]
        return Lattice(*axes[0], *axes[1], *axes[2])
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


def check_grid(directions: Any, grid: Grid | Lattice) -> None:
    """Refuse a grid that does not fit the directions: three directions need a lattice, one or
    two a grid; a 1D direction needs ``ny == 1`` and ``ys == [0]``; no grid point may drive a
    BatchNorm running variance negative."""
    if (directions.ndim == 3) != isinstance(grid, Lattice):
        raise ParameterError(f"the directions hold {directions.ndim} direction(s) (kind {directions.kind!r}): "
                             f"they need a {'Lattice (--x, --y, --z)' if directions.ndim == 3 else 'Grid'}; got a "
                             f"{type(grid).__name__}")
    if directions.ndim == 1 and (grid.ny != 1 or grid.ys[0] != 0):
        raise ParameterError(f"the directions hold a 1D direction (kind {directions.kind!r}): the grid needs "
                             f"ny == 1 and ys == [0] (give only {param('x')})")
    lo, hi = directions.alpha_range()
    if grid.xmin < lo or grid.xmax > hi:
        raise ParameterError(f"the grid's first axis [{grid.xmin:g}, {grid.xmax:g}] leaves [{lo:g}, {hi:g}], "
                             f"where every BatchNorm running variance moved by these directions stays "
                             f"non-negative; choose {param('x')} within it (or make the directions with "
                             f"{param('dir_type')} weights)")
