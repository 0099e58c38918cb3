"""The landscape along training: the filter-normalized plane around several checkpoints.

For each chosen checkpoint ``theta_e`` the random plane is drawn again with the same seed (the
same Gaussian tensors), normalized to ``theta_e``'s own filters, and evaluated around
``theta_e`` by the surface stage (chunks, resume), then analysed. The files, in ``RUN/evolve/``
(:attr:`pipeline.rundir.RunDir.evolve`; inside it the names of a run directory, the plane of
epoch ``e`` being the kind ``epoch_<eee>``):

==================================  ==============================================================
``directions/epoch_<eee>.pt``       the plane's directions around ``theta_e``
``surface_epoch_<eee>.vts``         the loss around ``theta_e`` (metadata ``epoch``: e)
``topology_epoch_<eee>.json``       its analysis (and ``critical_points_epoch_<eee>.vtp``)
``landscape.pvd``                   the surfaces as a time series (timestep = epoch): ParaView
                                    plays it as an animation
``path_pca.pvd``                    the descent path's checkpoints on the run's PCA plane, one
                                    per time step (``path_pca/epoch_<eee>.vtp``): the marker that
                                    travels along the path in ParaView's animation
``evolution.json``                  per epoch: centre loss, counts of critical points, the
                                    central basin (the one holding theta_e): its minimum, area and
                                    width at value + delta
==================================  ==============================================================

The pictures (:mod:`pipeline.render.animate`: ``evolution.png``, those against epoch, and the
animations) come from these files.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LossvistaError, ParameterError, param
from ..rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["EvolveOptions", "evolve", "epoch_kind", "choose_epochs", "write_path_markers", "remove_other_epochs",
           "EVOLUTION_JSON"]

EVOLUTION_JSON = "evolution.json"
DEFAULT_FRAMES = 6  # checkpoints chosen by default: evenly spread from the first to the last


def epoch_kind(epoch: int) -> str:
    """The kind under which the plane around checkpoint ``epoch`` is named: ``epoch_003``."""
    return f"epoch_{int(epoch):03d}"


def choose_epochs(available: Sequence[int], asked: Sequence[int] | None, count: int = DEFAULT_FRAMES) -> list[int]:
    """The checkpoints to evaluate: ``asked`` (each must exist), else ``count`` spread evenly
    from the first to the last checkpoint (all of them when there are fewer)."""
    available = sorted(available)
    if not available:
        raise LossvistaError("the run has no checkpoints (checkpoints/epoch_NNN.pt)")
    if asked is not None:
        missing = [e for e in asked if e not in available]
        if missing or not asked:
            raise ParameterError(f"{param('epochs')} must name checkpoints of the run ({', '.join(map(str, available))}); "
                                 f"got {list(asked)}")
        return sorted(set(int(e) for e in asked))
    if len(available) <= count:
        return available
    picks = {available[round(k * (len(available) - 1) / (count - 1))] for k in range(count)}
    return sorted(picks)


@dataclass(frozen=True)
class EvolveOptions:
    """What ``lossvista evolve`` computes (never where: that is the run directory)."""

    epochs: tuple[int, ...] | None = None  # None: DEFAULT_FRAMES checkpoints from the first to the last
    grid: Any = None  # a pipeline.datamodel.Grid; None: -1:1:31 on both axes
    seed: int | None = None  # None: the run's random plane's seed (directions/random.pt), else 0
    norm: str | None = None  # None: the random plane's, else filter
    ignore: str | None = None  # None: the random plane's, else biasbn
    split: str = "train"
    eval: Any = None  # pipeline.engine.EvalConfig
    persistence: float = 0.01  # relative persistence threshold of the analysis
    delta: float = 0.1  # width of the central basin at its minimum + delta (loss units), the same at every epoch
    points: int = 31  # per axis of the default grid

    def __post_init__(self) -> None:
        if not (isinstance(self.delta, (int, float)) and math.isfinite(self.delta) and self.delta > 0):
            raise ParameterError(f"{param('delta')} must be a number > 0; got {self.delta!r}")
        if not (isinstance(self.points, int) and self.points >= 3):
            raise ParameterError(f"{param('points')} must be an integer >= 3; got {self.points!r}")
        from ..config import check_float

        check_float("persistence", self.persistence, 0.0, 1.0, high_open=True)  # before any plane is computed


@dataclass
class EvolveResult:
    epochs: list[int]
    surfaces: list[Path]
    pvd: Path
    summary: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    unit: str = "epoch"
    markers: Path | None = None  # path_pca.pvd, when the run has its PCA plane
    loss_name: str = "loss"  # the loss's name (``cross_entropy``, ``mse``...), as the surfaces label it


def _plane_settings(run: RunDir, options: EvolveOptions) -> dict[str, Any]:
    """Seed, norm and ignore rule: as given, else the run's random plane's, else the defaults."""
    made: dict[str, Any] = {}
    if run.directions("random").is_file():
        from ..directions import Directions

        made = Directions.load(run.directions("random")).meta
    return {"seed": options.seed if options.seed is not None else int(made.get("seed") or 0),
            "norm": options.norm or made.get("norm") or "filter",
            "ignore": options.ignore or made.get("ignore") or "biasbn"}


def central_basin(topo: Any, grid: Any, delta: float) -> dict[str, Any]:
    """The basin holding the grid's centre (theta_e): its minimum's value, persistence, area
    fraction and width (diameter of the sublevel component at value + ``delta``); NaN when the
    centre is in no basin (a non-finite value) or the grid lacks it."""
    import numpy as np

    nan = {"label": -1, "value": math.nan, "persistence": math.nan, "basin_fraction": math.nan,
           "width_diameter": math.nan, "coords": None}
    ij = grid.centre_index()
    if ij is None:
        return nan
    label = int(topo.basins[ij])
    if label < 0:
        return nan
    m = topo.minima
    return {"label": label, "value": float(m.value[label]), "persistence": float(m.persistence[label]),
            "basin_fraction": float(m.basin_fraction[label]), "width_diameter": float(m.width_diameter[label]),
            "coords": [float(c) for c in np.asarray(m.coords[label])]}


def evolve(run: RunDir | str, options: EvolveOptions = EvolveOptions()) -> EvolveResult:
    """Planes around the chosen checkpoints, their analysis, the time series and the summary.

    Each plane is a surface of :mod:`pipeline.surface` (resumable: rerunning continues where an
    interrupted run stopped, and a finished plane with the same settings is kept). Returns the
    files written (see the module docstring).
    """
    from ..analyze import analyze_file
    from ..atomic import check_writable, write_json
    from ..datamodel import Grid
    from ..surface import SurfaceRequest
    from ..vtkio import write_pvd
    from .stages import compute_own_surface, make_directions

    run = run if isinstance(run, RunDir) else RunDir(run)
    run.require()
    epochs = choose_epochs(run.epochs(), options.epochs)
    grid = options.grid or Grid(-1.0, 1.0, options.points, -1.0, 1.0, options.points)
    if not isinstance(grid, Grid) or grid.ndim != 2:
        raise ParameterError(f"{param('grid')} must be a 2-D Grid (the plane around each checkpoint); got {grid!r}")
    if grid.centre_index() is None:  # each plane is read around its checkpoint: the origin must be a grid point
        raise ParameterError(f"{param('grid')} must hold the point (0, 0), the checkpoint each plane is centred at "
                             f"(an odd number of points on a range symmetric about 0, e.g. -1:1:31); got "
                             f"{grid.xmin:g}:{grid.xmax:g}:{grid.nx} x {grid.ymin:g}:{grid.ymax:g}:{grid.ny}")
    settings = _plane_settings(run, options)
    check_writable(run.evolve / EVOLUTION_JSON, make_parents=True)  # a read-only run: one line, before any plane
    folder = RunDir(run.evolve)
    rows, surfaces, loss_name = [], [], "loss"
    for e in epochs:
        kind = epoch_kind(e)
        log.info("plane around checkpoint %d (%d of %d)", e, len(rows) + 1, len(epochs))
        _, dfile = make_directions(run, "random", seed=settings["seed"], norm=settings["norm"],
                                   ignore=settings["ignore"], epoch=e, out=folder.directions(kind))
        outcome = compute_own_surface(SurfaceRequest(run=run.root, directions=dfile, grid=grid,
                                                     split=options.split, epoch=e, out=folder.surface(kind),
                                                     eval=options.eval))
        topo, _ = analyze_file(outcome.out, persistence=options.persistence, relative=True, delta=options.delta)
        surface = outcome.surface
        counts = topo.counts()
        rows.append({"epoch": e, "surface": folder.surface(kind).name,
                     "centre_loss": float(surface.meta.get("centre_loss", math.nan)),
                     "counts": counts, "central_basin": central_basin(topo, grid, options.delta),
                     "threshold": float(topo.threshold), "value_range": [float(v) for v in topo.value_range]})
        surfaces.append(outcome.out)
        loss_name = surface.loss_label
    unit = RunDir(run.root).read_run().get("unit", "epoch") if run.run_json.is_file() else "epoch"
    pvd = write_pvd(run.evolve / "landscape.pvd",
                    [{"file": s, "timestep": e, "name": epoch_kind(e)} for s, e in zip(surfaces, epochs)])
    summary = write_json(run.evolve / EVOLUTION_JSON, {
        "format": 1, "unit": unit, "loss_name": loss_name, "delta": options.delta,
        "persistence": options.persistence, "relative": True, "grid": grid.to_dict(), **settings, "epochs": rows})
    markers = write_path_markers(run) if run.surface("pca").is_file() and run.trajectory("pca").is_file() else None
    remove_other_epochs(run, epochs)
    return EvolveResult(epochs, surfaces, pvd, summary, rows, unit, markers, loss_name)


def remove_other_epochs(run: RunDir, epochs: Sequence[int]) -> list[Path]:
    """Remove the per-checkpoint files in ``RUN/evolve/`` of checkpoints other than ``epochs`` (an
    earlier evolution's planes, analyses and quick-look frames), so that the folder holds one
    evolution, the one ``evolution.json`` describes; return the files removed."""
    import re

    keep = {int(e) for e in epochs}
    folder = run.evolve
    found = [*folder.glob("surface_epoch_*.vts"), *folder.glob("topology_epoch_*.json"),
             *folder.glob("critical_points_epoch_*.vtp"), *(folder / "directions").glob("epoch_*.pt"),
             *run.frames(quicklook=True).glob("landscape_*.png")]
    removed = []
    for path in found:
        m = re.fullmatch(r"(?:surface_|topology_|critical_points_|landscape_)?(?:epoch_)?(\d+)", path.stem)
        if m and int(m.group(1)) not in keep:
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d files of checkpoints this evolution leaves out", len(removed))
    return removed


def write_path_markers(run: RunDir, plane: str = "pca") -> Path:
    """The checkpoints of ``trajectory_<plane>.vtp`` one at a time, as a time series
    (:meth:`~pipeline.rundir.RunDir.path_markers`: timestep = epoch), for ParaView's animation of
    the path; each file holds one point with its epoch and losses."""
    import numpy as np

    from ..datamodel import Trajectory
    from ..vtkio import read_trajectory, write_pvd, write_trajectory

    path = read_trajectory(run.trajectory(plane))
    pvd = run.path_markers(plane)
    entries = []
    for k, e in enumerate(np.asarray(path.epoch)):
        one = Trajectory(coords=path.coords[k:k + 1], epoch=path.epoch[k:k + 1], loss=path.loss[k:k + 1],
                         surface_loss=path.surface_loss[k:k + 1], residual=path.residual[k:k + 1], meta=path.meta)
        file = write_trajectory(pvd.with_suffix("") / f"{epoch_kind(int(e))}.vtp", one)
        entries.append({"file": file, "timestep": int(e), "name": epoch_kind(int(e))})
    return write_pvd(pvd, entries)
