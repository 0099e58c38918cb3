"""Stages on a run directory, and ``run_pipeline``: the whole ``losscape run``.

Each stage reads and writes files in the run directory (DESIGN.md "Data flow"), so any stage
can be rerun alone:

=========================  ===================================================================
``make_directions``        RUN's checkpoints -> ``Directions`` (random / pca / interp)
``make_trajectory``        checkpoints + directions -> ``Trajectory`` (with losses on a split)
``run_pipeline``           train -> directions -> trajectories -> surfaces -> analysis -> pictures
=========================  ===================================================================
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .checkpoints import RunDir
from .config import Grid, RunConfig
from .errors import LosscapeError

log = logging.getLogger(__name__)

__all__ = ["make_directions", "make_trajectory", "RunOptions", "RunResult", "run_pipeline", "DIRECTION_KINDS"]

DIRECTION_KINDS = ("random", "pca", "interp")
BACKENDS = ("auto", "paraview", "pyvista", "none")


def _epochs(run: RunDir) -> list[int]:
    epochs = run.epochs()
    if not epochs:
        raise LosscapeError(f"{run.checkpoints_dir} holds no epoch_*.pt checkpoints; train first")
    return epochs


def _epoch(run: RunDir, value: int | None, flag: str, default: int) -> int:
    epochs = _epochs(run)
    e = default if value is None else value
    if e not in epochs:
        raise ValueError(f"{flag} must be one of the epochs {epochs[0]}..{epochs[-1]} in {run.checkpoints_dir}; "
                         f"got {e}")
    return e


def make_directions(run: RunDir, kind: str, *, norm: str | None = None, ignore: str | None = None,
                    dir_type: str | None = None, seed: int = 0, ndim: int = 2, epoch: int | None = None,
                    from_epoch: int | None = None, to_epoch: int | None = None):
    """Directions of ``kind`` for ``run`` (not saved; call ``.save``).

    random: Gaussian directions around checkpoint ``epoch`` (default the last), ``norm`` (default
    filter), ``ignore`` (default biasbn), ``dir_type`` (default weights), ``seed``, ``ndim``.
    pca: the top two principal components of the checkpoints up to ``epoch`` minus that checkpoint.
    interp: the 1D direction from ``from_epoch`` (default 0) to ``to_epoch`` (default the last).
    """
    from .directions import interpolation_direction, pca_directions, random_directions
    from .models import build_model

    if kind not in DIRECTION_KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, DIRECTION_KINDS))}; got {kind!r}")
    info = run.read_run()
    epochs = _epochs(run)
    model_name = info["config"]["model"]
    ignore = ignore or "biasbn"

    def skeleton():
        return build_model(model_name, num_classes=info["num_classes"], in_channels=info["input_shape"][0])

    if kind == "random":
        model, centre = run.build_model(_epoch(run, epoch, "--epoch", epochs[-1]))
        return random_directions(model, norm=norm or "filter", ignore=ignore, dir_type=dir_type or "weights",
                                 seed=seed, ndim=ndim, centre=run.checkpoint(centre), model_name=model_name)
    if kind == "pca":
        centre = _epoch(run, epoch, "--epoch", epochs[-1])
        path = [run.checkpoint(e) for e in epochs if e <= centre]
        return pca_directions(path, centre=run.checkpoint(centre), ignore=ignore, dir_type=dir_type or "weights",
                              model=skeleton(), model_name=model_name)
    e1 = _epoch(run, from_epoch, "--from", epochs[0])
    e2 = _epoch(run, to_epoch, "--to", epochs[-1])
    if e1 == e2:
        raise ValueError(f"--from and --to must be different epochs; got {e1} for both")
    return interpolation_direction(run.checkpoint(e1), run.checkpoint(e2), dir_type=dir_type or "states",
                                   model=skeleton(), model_name=model_name)


def make_trajectory(run: RunDir, directions, *, directions_file: str | Path | None = None, split: str = "train",
                    max_samples: int | None = None, sample_seed: int = 0, epoch: int | None = None,
                    device: str = "cpu", with_loss: bool = True):
    """Project ``run``'s checkpoints onto ``directions`` around the centre checkpoint.

    The centre is ``epoch``, else the directions' centre, else the last epoch. With ``with_loss``
    each checkpoint's loss and the loss at its projected point are evaluated on ``split`` (or its
    seeded subset of ``max_samples``).
    """
    from .data import load_dataset
    from .trajectory import project_trajectory

    if split not in ("train", "test"):
        raise ValueError(f"split must be one of 'train', 'test'; got {split!r}")
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be a positive integer; got {max_samples}")
    info = run.read_run()
    epochs = _epochs(run)
    centre = epoch if epoch is not None else directions.centre_epoch
    centre = epochs[-1] if centre is None else centre
    if centre not in epochs:
        raise LosscapeError(f"centre epoch {centre} ({'--epoch' if epoch is not None else 'from the directions'}) "
                            f"is not among the epochs {epochs[0]}..{epochs[-1]} in {run.checkpoints_dir}")
    model = data = None
    if with_loss:
        import torch

        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise LosscapeError(f"device {device!r} was asked for but CUDA is not available; use --device cpu")
        cfg = info["config"]
        dataset = load_dataset(cfg["dataset"], root=cfg.get("data_root"), seed=cfg.get("seed", 0))
        data = dataset.split(split).subset(max_samples, seed=sample_seed)
        model, _ = run.build_model(centre, device=device)
    traj = project_trajectory(run.checkpoints(), directions, run.checkpoint(centre), model=model, data=data)
    traj.meta.update({"run": str(run.root), "split": split if with_loss else None,
                      "num_samples": None if data is None else len(data), "max_samples": max_samples,
                      "sample_seed": sample_seed, "directions_file": str(directions_file) if directions_file else None,
                      "dataset": info["config"]["dataset"]})
    return traj


@dataclass(frozen=True)
class RunOptions:
    """How ``losscape run`` does its work (the preset says what)."""

    planes: tuple[str, ...] = ("random", "pca")
    backend: str = "auto"  # auto: ParaView when pvbatch is found, else pyvista quick looks only
    max_samples: int | None = None  # evaluate surfaces and path losses on a seeded subset
    device: str | None = None  # surfaces: None = cuda when available
    precision: str = "fp32"
    persistence: float = 0.01  # analysis threshold, a fraction of the value range (relative)
    restart_training: bool = False
    pca_points: int = 51  # per axis on the PCA plane

    def __post_init__(self) -> None:
        bad = [p for p in self.planes if p not in ("random", "pca")]
        if bad or not self.planes:
            raise ValueError(f"planes must be among 'random', 'pca'; got {list(self.planes)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {self.backend!r}")


@dataclass
class RunResult:
    root: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    pictures: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_pipeline(cfg: RunConfig, out: str | Path, options: RunOptions = RunOptions(),
                 notice: Callable[[str], None] | None = None) -> RunResult:
    """Train (or resume), then for each plane: directions, trajectory, surface, analysis, pictures.

    Every stage writes its files into ``out`` atomically; the surfaces are resumable (rerunning
    after an interruption continues where it stopped). ``notice`` receives user-facing notices
    (e.g. the fallback to pyvista when ParaView is missing).
    """
    from .analysis import analyze_file
    from .landscape import EvalConfig
    from .render.quicklook import render_run_quicklook
    from .resilient import ResumeOptions, SurfaceRequest, compute_surface
    from .train import train
    from .vtkio import write_trajectory

    run = RunDir(out)
    result = RunResult(run.root)
    say = notice or (lambda msg: log.warning("%s", msg))
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = round(result.seconds.get(name, 0.0) + now - clock, 2)
        clock = now

    info = train(cfg.train, run.root, restart=options.restart_training, name=cfg.name)
    result.summary["test_accuracy"] = info["history"][-1]["test_accuracy"]
    result.files["run"] = [run.run_json, *run.checkpoints()]
    lap("train")
    split = "train" if cfg.split == "both" else cfg.split
    for plane in options.planes:
        d = make_directions(run, plane, norm=cfg.norm, ignore=cfg.ignore, seed=cfg.direction_seed)
        dfile = d.save(run.directions(plane))
        lap("directions")
        traj = make_trajectory(run, d, directions_file=dfile, split=split, max_samples=options.max_samples)
        tfile = write_trajectory(run.trajectory(plane), traj)
        lap("trajectory")
        grid: Grid | None = cfg.random_grid if plane == "random" else cfg.pca_grid
        if grid is None and plane == "pca":
            from .trajectory import pca_grid

            grid = pca_grid(traj, n=options.pca_points)
        request = SurfaceRequest(run=run.root, directions=dfile, grid=grid, split=cfg.split,
                                 eval=EvalConfig(device=options.device, precision=options.precision,
                                                 max_samples=options.max_samples, batch_size=cfg.eval_batch_size))
        outcome = compute_surface(request, ResumeOptions())
        lap("surface")
        topo, afiles = analyze_file(outcome.out, persistence=options.persistence, relative=True)
        counts = topo.counts()
        result.summary[plane] = {"grid": f"{outcome.surface.grid.nx}x{outcome.surface.grid.ny}",
                                 "points_per_second": round(outcome.points / max(outcome.seconds, 1e-9), 1)
                                 if outcome.points else None,
                                 "minima": counts.get("minimum", 0), "saddles": counts.get("saddle", 0),
                                 "maxima": counts.get("maximum", 0),
                                 "explained_variance": d.meta.get("explained_variance")}
        result.files[plane] = [dfile, tfile, outcome.out, afiles.critical_points, afiles.topology]
        lap("analysis")
    result.pictures += _pictures(run, options, say, render_run_quicklook)
    lap("pictures")
    return result


def _pictures(run: RunDir, options: RunOptions, say: Callable[[str], None], quicklook) -> list[Path]:
    """Quick looks (matplotlib 2D, pyvista 3D) always; ParaView's views when pvbatch is present."""
    from .render import pvbatch

    pictures: list[Path] = []
    if options.backend == "none":
        return pictures
    for plane in options.planes:
        pictures += quicklook(run.root, plane, None, run.renders / "quicklook")
    use_paraview = options.backend == "paraview" or (options.backend == "auto" and pvbatch.paraview_available())
    if use_paraview:
        pictures += pvbatch.render_paraview(run.root, list(options.planes), None, run.renders)
    elif options.backend == "auto":
        say("ParaView (pvbatch, and xvfb-run without a display) not found: only the pyvista/matplotlib quick "
            "looks were rendered; install Debian's paraview and xvfb for the ParaView views")
    return pictures
