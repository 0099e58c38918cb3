"""The stages of a run, one function each, and ``run_pipeline``: the whole ``lossvista run``.

Each stage reads and writes files in the run directory (:class:`~pipeline.rundir.RunDir`), so
any stage can be rerun alone. ``lossvista run`` and the subcommands call the same functions:

=========================  ===================================================================
train                      :func:`pipeline.train.train`
directions                 :func:`make_directions`: RUN's checkpoints -> ``directions/<kind>.pt``
trajectory                 :func:`make_trajectory`: checkpoints + directions -> ``trajectory_<kind>.vtp``
surface                    :func:`pipeline.surface.compute_surface` (resumable, distributed)
analysis                   :func:`pipeline.analyze.analyze_file`
pictures                   :func:`render_pictures`: ParaView views and/or quick looks
export                     :func:`export`: a mesh of a surface, or the page of a run (``index.html``)
the whole run              :func:`run_pipeline`
=========================  ===================================================================
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .config import RunConfig, check_float, check_int
from .datamodel import Grid
from .display import DEFAULT_PLANES, PLANES
from .errors import LossvistaError, ParameterError, param
from .render.pictures import BACKENDS, Notice, render_pictures
from .rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["make_directions", "make_trajectory", "render_pictures", "export", "RunOptions", "RunResult", "landscape",
           "run_pipeline", "DIRECTION_KINDS", "BACKENDS", "EXPORT_FORMATS"]

DIRECTION_KINDS = ("random", "pca", "interp", "hessian")
EXPORT_FORMATS = ("ply", "obj", "stl", "html")  # the mesh formats of pipeline.vtkio, and the page


def _epochs(run: RunDir) -> list[int]:
    epochs = run.epochs()
    if not epochs:
        raise LossvistaError(f"{run.checkpoints_dir} holds no epoch_*.pt checkpoints; train first")
    return epochs


def _epoch(run: RunDir, value: int | None, name: str, default: int) -> int:
    epochs = _epochs(run)
    e = default if value is None else value
    if e not in epochs:
        raise ParameterError(f"{param(name)} must be one of the epochs {run.epochs_text()} in "
                             f"{run.checkpoints_dir}; got {e}")
    return e


def _warn_gaps(run: RunDir, what: str) -> None:
    missing = run.missing_epochs()
    if missing:
        from .rundir import ranges

        log.warning("%s has no checkpoint of epoch%s %s: %s skips %s", run.checkpoints_dir,
                    "s" if len(missing) > 1 else "", ranges(missing, sep=".."), what,
                    "them" if len(missing) > 1 else "it")


def make_directions(run: RunDir, kind: str, *, norm: str | None = None, ignore: str | None = None,
                    dir_type: str | None = None, seed: int = 0, ndim: int = 2, epoch: int | None = None,
                    from_epoch: int | None = None, to_epoch: int | None = None,
                    out: str | Path | None = None, hessian: Any = None) -> tuple[Any, Path]:
    """Directions of ``kind`` for ``run``, saved to ``out`` (default ``RUN/directions/<kind>.pt``).

    random: Gaussian directions around checkpoint ``epoch`` (default the last), ``norm`` (default
    filter), ``ignore`` (default biasbn), ``dir_type`` (default weights), ``seed``, ``ndim``.
    pca: the top two principal components of the checkpoints up to ``epoch`` minus that checkpoint.
    interp: the 1D direction from ``from_epoch`` (default 0) to ``to_epoch`` (default the last).
    hessian: the top two eigenvectors of the Hessian of the run's loss on its train split at
    checkpoint ``epoch`` (default the last), ``norm`` none (default) or filter, ``ignore``,
    ``seed``; ``hessian`` a :class:`pipeline.directions.hessian.HessianOptions` (tolerance,
    iterations, samples, device).
    Returns ``(directions, path)``.
    """
    from .directions import interpolation_direction, pca_directions, random_directions
    from .run import Run

    if kind not in DIRECTION_KINDS:
        raise ParameterError(f"{param('kind')} must be one of {', '.join(map(repr, DIRECTION_KINDS))}; got {kind!r}")
    opened = Run(run)
    epochs = _epochs(run)
    model_name = opened.model_name
    ignore = ignore or "biasbn"
    skeleton = opened.skeleton

    if kind == "random":
        model, centre = opened.build_model(_epoch(run, epoch, "epoch", epochs[-1]))
        d = random_directions(model, norm=norm or "filter", ignore=ignore, dir_type=dir_type or "weights",
                              seed=seed, ndim=ndim, centre=run.checkpoint(centre), model_name=model_name)
    elif kind == "pca":
        centre = _epoch(run, epoch, "epoch", epochs[-1])
        path = [run.checkpoint(e) for e in epochs if e <= centre]
        _warn_gaps(run, "the PCA of the trajectory")
        d = pca_directions(path, centre=run.checkpoint(centre), ignore=ignore, dir_type=dir_type or "weights",
                           model=skeleton(), model_name=model_name)
    elif kind == "hessian":
        from .directions.hessian import HessianOptions, hessian_directions

        opts = hessian or HessianOptions()
        model, centre = opened.build_model(_epoch(run, epoch, "epoch", epochs[-1]))
        data = opened.data("train")
        d = hessian_directions(model, data, loss=opened.loss(), ignore=ignore, norm=norm or "none", seed=seed,
                               tol=opts.tol, max_iter=opts.max_iter, max_samples=opts.max_samples,
                               sample_seed=opts.sample_seed, device=opts.device, rise=_rise(opened, data),
                               centre=run.checkpoint(centre), model_name=model_name)
    else:
        e1 = _epoch(run, from_epoch, "from_epoch", epochs[0])
        e2 = _epoch(run, to_epoch, "to_epoch", epochs[-1])
        if e1 == e2:
            raise ParameterError(f"{param('from_epoch')} and {param('to_epoch')} must be different epochs; "
                                 f"got {e1} for both")
        d = interpolation_direction(run.checkpoint(e1), run.checkpoint(e2), dir_type=dir_type or "states",
                                    model=skeleton(), model_name=model_name)
    return d, d.save(out or run.directions(kind))


def _rise(opened: Any, data: Any) -> float:
    """The loss of a guess that knows nothing on ``data`` (:func:`pipeline.display.chance_loss`): the
    best constant prediction's loss (regression losses, data in memory), else ``ln(num_classes)``."""
    from .display import chance_loss
    from .engine.points import as_objective
    from .surface.job import _baseline

    return chance_loss({"baseline_loss": _baseline(as_objective(opened.loss()), data),
                        "num_classes": opened.num_classes})


def make_trajectory(run: RunDir, directions_file: str | Path, *, split: str = "train",
                    max_samples: int | None = None, sample_seed: int = 0, epoch: int | None = None,
                    device: str | None = "cpu", with_loss: bool = True,
                    out: str | Path | None = None, compile: str = "auto") -> tuple[Any, Path]:
    """Project ``run``'s checkpoints onto the directions of ``directions_file`` around the centre
    checkpoint and write the path to ``out`` (default ``RUN/trajectory_<kind>.vtp``).

    The centre is ``epoch``, else the directions' centre, else the last epoch. With ``with_loss``
    each checkpoint's loss and the loss at its projected point are evaluated on ``split`` (or its
    seeded subset of ``max_samples``), compiled or not by ``compile`` ('auto', 'on', 'off':
    :class:`~pipeline.engine.EvalConfig`). Returns ``(trajectory, path)``.
    """
    from .atomic import check_writable
    from .directions import Directions
    from .engine import EvalConfig, resolve_device
    from .run import Run
    from .trajectory import project_trajectory
    from .vtkio import write_trajectory

    if split not in ("train", "test"):
        raise ParameterError(f"{param('split')} must be one of 'train', 'test'; got {split!r}")
    if max_samples is not None and max_samples < 1:
        raise ParameterError(f"{param('max_samples')} must be a positive integer; got {max_samples}")
    EvalConfig(compile=compile)  # the engine's check, before any work
    directions = Directions.load(directions_file)
    opened = Run(run)
    run.check_directions(directions)
    out = check_writable(out or run.trajectory(directions.kind), make_parents=True)  # before the evaluations
    epochs = _epochs(run)
    centre = epoch if epoch is not None else directions.centre_epoch
    centre = epochs[-1] if centre is None else centre
    if centre not in epochs:
        source = param("epoch") if epoch is not None else "from the directions"
        raise LossvistaError(f"centre epoch {centre} ({source}) is not among the epochs {run.epochs_text()} "
                             f"in {run.checkpoints_dir}")
    model = data = config = None
    if with_loss:
        dev = resolve_device(device)
        data = opened.data(split).subset(max_samples, seed=sample_seed)
        model, _ = opened.build_model(centre, device=dev)
        config = EvalConfig(device=str(dev), compile=compile)
    _warn_gaps(run, "the path")
    traj = project_trajectory(run.checkpoints(), directions, run.checkpoint(centre), model=model, data=data,
                              loss=opened.loss(), config=config)
    traj.meta.update({"run": str(run.root), "split": split if with_loss else None,
                      "num_samples": None if data is None else data.n, "max_samples": max_samples,
                      "sample_seed": sample_seed, "directions_file": str(directions_file),
                      "dataset": opened.dataset_name, "loss_name": opened.loss().label, "unit": opened.unit})
    return traj, write_trajectory(out, traj)


def export(source: str | Path, format: str, *, out: str | Path | None = None, array: str = "loss",
           scale: float | None = None, log: bool = False) -> Path:
    """Write ``source`` as ``format`` and return the path written.

    ``html``: the self-contained page (:func:`pipeline.render.page.export_page`) of a run
    directory (default ``RUN/index.html``) or of one surface file; ``array`` colours it first.
    ``ply``, ``obj``, ``stl``: the warped surface of a ``.vts`` as a mesh
    (:func:`pipeline.vtkio.export_file`: ``array``, ``scale``, ``log``).
    """
    fmt = str(format).lower()
    if fmt not in EXPORT_FORMATS:
        raise ParameterError(f"{param('format')} must be one of {', '.join(EXPORT_FORMATS)}; got {format!r}")
    if fmt != "html":
        from .vtkio import export_file

        return export_file(source, fmt, out=out, array=array, scale=scale, log=log)
    for name, value, unset in (("scale", scale, None), ("log", log, False)):
        if value != unset:
            raise ParameterError(f"{param(name)} shapes a mesh (ply, obj, stl); the html page takes none; "
                                 f"got {value!r}")
    from .render.page import export_page

    return export_page(source, out, array=array)


@dataclass(frozen=True)
class RunOptions:
    """How ``lossvista run`` does its work (the preset says what)."""

    planes: tuple[str, ...] = DEFAULT_PLANES
    backend: str = "auto"  # auto: ParaView when pvbatch is found, else pyvista quick looks only
    max_samples: int | None = None  # evaluate surfaces and path losses on a seeded subset
    device: str | None = None  # surfaces: None = cuda when available
    precision: str = "fp32"
    persistence: float = 0.01  # analysis threshold, a fraction of the value range (relative), in [0, 1)
    restart_training: bool = False
    pca_points: int = 51  # per axis on the planes whose extent is their own (PCA, Hessian)
    page: bool = True  # write RUN/index.html, the run's self-contained page
    compile: str = "auto"  # surfaces and paths: torch.compile 'auto' (when it pays), 'on', 'off'

    def __post_init__(self) -> None:
        bad = [p for p in self.planes if p not in PLANES]
        if bad or not self.planes:
            raise ParameterError(f"{param('planes')} must be among {', '.join(map(repr, PLANES))}; "
                                 f"got {list(self.planes)}")
        if self.backend not in BACKENDS:
            raise ParameterError(f"{param('backend')} must be one of {', '.join(map(repr, BACKENDS))}; "
                                 f"got {self.backend!r}")
        check_float("persistence", self.persistence, 0.0, 1.0, high_open=True)
        check_int("max_samples", self.max_samples, 1, optional=True)
        check_int("pca_points", self.pca_points, 3)
        from .engine import EvalConfig, resolve_device

        EvalConfig(precision=self.precision, compile=self.compile)  # the engine's checks, before any work
        resolve_device(self.device)


@dataclass
class RunResult:
    root: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    pictures: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_pipeline(cfg: RunConfig, out: str | Path, options: RunOptions = RunOptions(),
                 notice: Notice | None = None) -> RunResult:
    """Train (or resume), then for each plane: directions, trajectory, surface, analysis; then pictures.

    A run recorded from the user's own training (``lossvista import``, :class:`~pipeline.Recorder`)
    is not trained: its checkpoints are already there. A config with a ``source`` (a preset's
    ``[import]`` table, :func:`landscape`) imports that training first, when ``out`` holds no run.

    Every stage writes its files into ``out`` atomically; the surfaces are resumable (rerunning
    after an interruption continues where it stopped). ``notice`` receives user-facing notices
    (e.g. the fallback to pyvista when ParaView is missing).
    """
    from .analyze import analyze_file
    from .engine import EvalConfig
    from .run import Run
    from .surface import ResumeOptions, SurfaceRequest, compute_surface
    from .train import train

    run = RunDir(out)
    result = RunResult(run.root)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = round(result.seconds.get(name, 0.0) + now - clock, 2)
        clock = now

    if cfg.source is not None and (options.restart_training or not run.run_json.is_file()):
        from .importer import import_run

        import_run(run.root, cfg.source, name=cfg.name, restart=options.restart_training)
    if run.run_json.is_file() and Run(run).imported:  # the user's own training: its checkpoints are there
        result.summary["imported"] = True
    elif cfg.source is not None:
        raise LossvistaError(f"{run.root} holds a run lossvista trained, not the one the preset imports; choose "
                             f"another {param('out')} or pass {param('restart')}")
    else:
        info = train(cfg.train, run.root, restart=options.restart_training, name=cfg.name)
        result.summary["test_accuracy"] = info["history"][-1]["test_accuracy"]
    result.files["run"] = [run.run_json, *run.checkpoints()]
    lap("train")
    split = "train" if cfg.split == "both" else cfg.split
    for plane in options.planes:
        d, dfile = make_directions(run, plane, norm=cfg.norm if plane == "random" else None, ignore=cfg.ignore,
                                   seed=cfg.direction_seed)
        lap("directions")
        traj, tfile = make_trajectory(run, dfile, split=split, max_samples=options.max_samples,
                                      compile=options.compile)
        lap("trajectory")
        grid: Grid | None = cfg.random_grid if plane == "random" else cfg.pca_grid if plane == "pca" else None
        if grid is None and plane == "pca":
            from .trajectory import pca_grid

            grid = pca_grid(traj, n=options.pca_points)
        elif grid is None and plane == "hessian":
            from .surface import default_grid

            grid = default_grid(run, d, n=options.pca_points)
        request = SurfaceRequest(run=run.root, directions=dfile, grid=grid, split=cfg.split,
                                 eval=EvalConfig(device=options.device, precision=options.precision,
                                                 max_samples=options.max_samples, batch_size=cfg.eval_batch_size,
                                                 compile=options.compile))
        outcome = compute_surface(request, ResumeOptions())
        lap("surface")
        topo, afiles = analyze_file(outcome.out, persistence=options.persistence, relative=True)
        counts = topo.counts()
        result.summary[plane] = {"grid": f"{outcome.surface.grid.nx}x{outcome.surface.grid.ny}",
                                 "points_per_second": round(outcome.points / max(outcome.seconds, 1e-9), 1)
                                 if outcome.points else None,
                                 "minima": counts.get("minimum", 0), "saddles": counts.get("saddle", 0),
                                 "maxima": counts.get("maximum", 0),
                                 "explained_variance": d.meta.get("explained_variance"),
                                 "eigenvalues": d.meta.get("eigenvalues")}
        result.files[plane] = [dfile, tfile, outcome.out, afiles.critical_points, afiles.topology]
        lap("analysis")
    result.pictures += render_pictures(run, backend=options.backend, planes=options.planes, with_quicklooks=True,
                                       notice=notice)
    lap("pictures")
    if options.page:
        from .run import Run

        result.files["page"] = [Run(run.root).write_page(run.index_html)]
        lap("page")
    return result


def landscape(out: str | Path, *, model: str, checkpoints: str | Sequence[str], data: str,
              loss: Any = "cross_entropy", metrics: Sequence[str] = (), forward: str | None = None,
              key: str | None = None, strip_prefix: str | None = None, grid: int | None = None,
              options: RunOptions | None = None, restart: bool = False,
              notice: Notice | None = None) -> RunResult:
    """One call from the user's training to a complete run: import, then every stage.

    ``lossvista import`` followed by ``lossvista run``::

        from pipeline import landscape
        landscape("runs/mine", model="mymodels:MLP", checkpoints="ckpt/epoch*.pt",
                  data="mydata:splits", loss="mse")

    ``model``, ``data``, ``forward`` and ``metrics`` are ``module:function`` specs found in the
    working directory (:class:`~pipeline.importer.ImportConfig`); ``loss`` is a name, a spec or a
    :class:`~pipeline.objective.LossSpec`; ``grid`` the points per axis of both planes (default
    51); ``options`` how the stages run (:class:`RunOptions`). An ``out`` that already holds this
    import is completed, resuming its surfaces; ``restart`` imports again from scratch.
    """
    from .importer import ImportConfig
    from .objective import LossSpec

    spec = loss if isinstance(loss, LossSpec) else LossSpec(loss, metrics=tuple(metrics))
    patterns = (checkpoints,) if isinstance(checkpoints, (str, Path)) else tuple(checkpoints)
    source = ImportConfig(checkpoints=tuple(map(str, patterns)), model=model, data=data, loss=spec,
                          forward=forward, key=key, strip_prefix=strip_prefix)
    cfg = RunConfig(name=Path(out).name, source=source)
    if grid is not None:
        cfg = cfg.with_grid_points(grid)
    options = options or RunOptions(pca_points=cfg.random_grid.nx)
    if restart:
        from dataclasses import replace

        options = replace(options, restart_training=True)
    return run_pipeline(cfg, out, options, notice=notice)
