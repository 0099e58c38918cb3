"""``run_pipeline``: the whole ``lossvista run``; ``landscape``: import and run in one call."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..config import RunConfig, check_float, check_int
from ..datamodel import Grid
from ..display import DEFAULT_PLANES, PLANES
from ..errors import LossvistaError, ParameterError, param
from ..render.pictures import BACKENDS, Notice, render_pictures
from ..rundir import RunDir, read_json
from .stages import compute_own_surface, make_directions, make_trajectory

log = logging.getLogger(__name__)

__all__ = ["RunOptions", "RunResult", "run_pipeline", "landscape"]


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
    compile: str = "auto"  # surfaces, paths and volumes: torch.compile 'auto' (when it pays), 'on', 'off'
    volume: bool = False  # also the random and PCA planes' volumes (a third direction), analysed and drawn
    volume_points: int = 21  # per axis of a volume: 21^3 = 9261 points

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
        for name in ("pca_points", "volume_points"):  # odd: the trained weights are a grid point
            value = getattr(self, name)
            check_int(name, value, 3)
            if value % 2 == 0:
                raise ParameterError(f"{param(name)} must be odd (so the trained weights are a grid point); "
                                     f"got {value}")
        from ..engine import EvalConfig, resolve_device

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
    """Train (or resume), then for each plane: directions, trajectory, surface, analysis (with
    ``options.volume`` the random and PCA planes' volumes too: :func:`~.volume.make_volume`); then pictures.

    A run recorded from the user's own training (``lossvista import``, :class:`~pipeline.Recorder`)
    is not trained: its checkpoints are already there. A config with a ``source`` (a preset's
    ``[import]`` table, :func:`landscape`) imports that training first, when ``out`` holds no run.

    Every stage writes its files into ``out`` atomically; the surfaces are resumable (rerunning
    after an interruption continues where it stopped). ``notice`` receives user-facing notices
    (e.g. the fallback to pyvista when ParaView is missing).
    """
    from ..analyze import analyze_file
    from ..engine import EvalConfig
    from ..run import Run
    from ..surface import SurfaceRequest
    from ..train import train

    run = RunDir(out)
    if cfg.source is None and "pca" in options.planes and cfg.train.epochs < 2:  # known before any training
        raise ParameterError(f"the pca plane needs at least 3 checkpoints (epochs 0..2): {param('epochs')} must be "
                             f">= 2, or leave pca out of {param('planes')}; got {cfg.train.epochs}")
    result = RunResult(run.root)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = round(result.seconds.get(name, 0.0) + now - clock, 2)
        clock = now

    if cfg.source is not None:
        from ..importer import import_changed, import_run

        again = options.restart_training or not run.run_json.is_file()
        if not again and Run(run).imported:
            why = import_changed(read_json(run.run_json), cfg.source)
            if why is not None:  # the user's training is another one now: its run is replaced
                (notice or log.warning)(f"{run.root} was imported from another training ({why}): importing it "
                                        f"again, its landscapes recomputed")
                again = True
        if again:
            import_run(run.root, cfg.source, name=cfg.name, restart=options.restart_training or run.run_json.is_file())
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
            from ..trajectory import pca_grid

            grid = pca_grid(traj, n=options.pca_points)
        elif grid is None and plane == "hessian":
            from ..surface import default_grid

            grid = default_grid(run, d, n=options.pca_points)
        request = SurfaceRequest(run=run.root, directions=dfile, grid=grid, split=cfg.split,
                                 eval=EvalConfig(device=options.device, precision=options.precision,
                                                 max_samples=options.max_samples, batch_size=cfg.eval_batch_size,
                                                 compile=options.compile))
        outcome = compute_own_surface(request)
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
    from .volume import VOLUME_KINDS, make_volume

    for plane in [p for p in options.planes if p in VOLUME_KINDS] if options.volume else ():

        made = make_volume(run, plane, points=options.volume_points, split=cfg.split, persistence=options.persistence,
                           eval_config=EvalConfig(device=options.device, precision=options.precision,
                                                  max_samples=options.max_samples, batch_size=cfg.eval_batch_size,
                                                  compile=options.compile))
        out = made["outcome"]
        result.summary[f"volume_{plane}"] = {
            "grid": "x".join(map(str, out.surface.grid.shape)), "counts": made["topology"].counts(),
            "points_per_second": round(out.points / max(out.seconds, 1e-9), 1) if out.points else None}
        result.files[f"volume_{plane}"] = made["files"]
        lap("volume")
    result.pictures += render_pictures(run, backend=options.backend, planes=options.planes, with_quicklooks=True,
                                       notice=notice)
    lap("pictures")
    if options.page:
        from ..run import Run

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
    from ..importer import ImportConfig
    from ..objective import LossSpec

    spec = loss if isinstance(loss, LossSpec) else LossSpec(loss, metrics=tuple(metrics))
    patterns = (checkpoints,) if isinstance(checkpoints, (str, Path)) else tuple(checkpoints)
    source = ImportConfig(checkpoints=tuple(map(str, patterns)), model=model, data=data, loss=spec,
                          forward=forward, key=key, strip_prefix=strip_prefix)
    cfg = RunConfig(name=Path(out).name, source=source)
    if grid is not None:
        cfg = cfg.with_grid_points(grid)
    options = options or RunOptions(pca_points=cfg.random_grid.nx | 1)  # odd, as pca_points must be
    if restart:
        from dataclasses import replace

        options = replace(options, restart_training=True)
    return run_pipeline(cfg, out, options, notice=notice)
