"""One surface computation of a run: what ``losscape surface`` and ``losscape run`` both call.

:class:`SurfaceRequest` says *what* to compute (run, directions, grid, split, subset, centre
epoch, engine settings); :func:`compute_surface` loads the model, directions and data once,
fingerprints the request and evaluates it resumably (and distributed when ``comm`` spans
several ranks) through :func:`~.runner.evaluate_surface`; :func:`merge_shards` assembles the
chunks of ``--shard`` jobs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Grid
from ..errors import LosscapeError
from .comm import Comm, DistEnv, LocalComm, TorchComm
from .runner import ResumeOptions, SurfaceOutcome, evaluate_surface, make_chunk_evaluator, merge_surface, plan_for

__all__ = ["SurfaceRequest", "SurfaceJob", "compute_surface", "merge_shards", "resolve_device", "default_grid"]

SPLITS = ("train", "test", "both")


@dataclass(frozen=True)
class SurfaceRequest:
    """Everything that defines one surface (plus where to write it).

    ``grid=None``: ``-1:1:51`` on both axes, or for a PCA plane the trajectory's extent plus a
    margin (:func:`pipeline.trajectory.pca_grid`); a 1D direction gives ``ny == 1``.
    ``epoch=None``: the checkpoint the directions were made around, else the last one.
    ``out=None``: ``RUN/surface_<kind>.vts``.
    """

    run: Path
    directions: Path
    grid: Grid | None = None
    split: str = "train"  # train | test | both
    epoch: int | None = None
    out: Path | None = None
    eval: Any = None  # pipeline.landscape.EvalConfig; None: defaults (device resolved per rank)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}; got {self.split!r}")


def resolve_device(requested: str | None, local_rank: int = 0, distributed: bool = False,
                   present: bool = True) -> str:
    """``cpu``/``cuda`` (default: cuda when available); under torchrun, ``cuda:LOCAL_RANK``.

    ``present=False`` (a merge, which evaluates nothing) names the device without asking for
    it, so shards computed on GPUs can be merged on a machine without one."""
    import torch

    name = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    kind = name.split(":", 1)[0]
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device must be one of 'cpu', 'cuda'; got {name!r}")
    if kind == "cuda" and present:
        if not torch.cuda.is_available():
            raise LosscapeError("device cuda was asked for but CUDA is not available; use --device cpu")
        if distributed:
            if local_rank >= torch.cuda.device_count():
                raise LosscapeError(f"LOCAL_RANK {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                                    f"use --nproc-per-node <= the number of GPUs")
            return f"cuda:{local_rank}"
    return name


def default_grid(run: Any, directions: Any, epoch: int | None = None, n: int = 51) -> Grid:
    """The default grid of a plane: PCA planes span the trajectory (plus a margin), others -1..1."""
    if directions.ndim == 1:
        if directions.kind == "interp":  # from a (0) to b (1), with half the distance on either side
            lo, hi = _variance_valid_range(directions)
            return Grid(max(-0.5, lo), min(1.5, hi), n, 0.0, 0.0, 1)
        return Grid(-1.0, 1.0, n, 0.0, 0.0, 1)
    if directions.kind != "pca":
        return Grid(-1.0, 1.0, n, -1.0, 1.0, n)
    from ..trajectory import pca_grid, project_trajectory

    epochs = run.epochs()
    centre = epoch if epoch is not None else (directions.centre_epoch if directions.centre_epoch is not None
                                              else (epochs[-1] if epochs else None))
    if centre is None or centre not in epochs:
        return Grid(-1.0, 1.0, n, -1.0, 1.0, n)
    return pca_grid(project_trajectory(run.checkpoints(), directions, run.checkpoint(centre)), n=n)


def _variance_valid_range(directions: Any) -> tuple[float, float]:
    """The alpha range in which every BatchNorm running variance moved by ``directions`` stays >= 0."""
    lo, hi = (directions.meta.get("variance_valid_range") or [None, None])
    return (-np.inf if lo is None else float(lo)), (np.inf if hi is None else float(hi))


def check_variances(directions: Any, grid: Grid) -> None:
    """Refuse a grid on which the directions would drive a BatchNorm running variance negative."""
    lo, hi = _variance_valid_range(directions)
    if grid.xmin < lo or grid.xmax > hi:
        raise ValueError(f"the grid's first axis [{grid.xmin:g}, {grid.xmax:g}] leaves [{lo:g}, {hi:g}], where every "
                         f"BatchNorm running variance moved by these directions stays non-negative; choose --x "
                         f"within it (or make the directions with --dir-type weights)")


class SurfaceJob:
    """A request with everything loaded: model, directions, data, engine config, identity, metadata."""

    def __init__(self, request: SurfaceRequest, env: DistEnv = DistEnv(), chunk_size: int | None = None,
                 evaluates: bool = True):
        from ..checkpoints import RunDir
        from ..data import load_dataset
        from ..directions import Directions
        from ..landscape import EvalConfig
        from ..surface import FORMAT_VERSION
        from .fingerprint import surface_identity, tensor_digest

        run = RunDir(request.run)
        info = run.read_run()
        directions = Directions.load(request.directions)
        grid = request.grid or default_grid(run, directions, request.epoch)
        if directions.ndim == 1 and grid.ny != 1:
            raise ValueError(f"{request.directions} holds a 1D direction (kind {directions.kind!r}): the grid needs "
                             f"ny == 1 (give only --x)")
        check_variances(directions, grid)
        self.out = Path(request.out) if request.out else run.surface(directions.kind)
        if self.out.suffix != ".vts":
            raise ValueError(f"out must end in .vts; got {str(self.out)!r}")
        cfg = info["config"]
        config = request.eval or EvalConfig()
        self.device = resolve_device(config.device, env.local_rank, env.world_size > 1, present=evaluates)
        self.config = dataclasses.replace(config, device=self.device)
        self.env, self.grid, self.request = env, grid, request
        self.grid_has_centre = bool(abs(grid.xs).min() == 0.0 and abs(grid.ys).min() == 0.0)
        # the centre: the request's epoch, else the checkpoint the directions were made around, else the last
        epoch = request.epoch if request.epoch is not None else directions.centre_epoch
        self.model, self.epoch = run.build_model(epoch, device="cpu")
        directions.check_fits(self.model.state_dict(), source=f"the model of {run.root} ({cfg['model']})")
        dataset = load_dataset(cfg["dataset"], root=cfg.get("data_root"), seed=cfg.get("seed", 0))
        chosen = {"train": [dataset.train], "test": [dataset.test], "both": [dataset.train, dataset.test]}[request.split]
        plan = plan_for(grid, chunk_size)
        self.identity = surface_identity(
            directions_file=request.directions, checkpoint_file=run.checkpoint(self.epoch), model=cfg["model"],
            dataset={"name": cfg["dataset"], "data_root": cfg.get("data_root"), "seed": cfg.get("seed", 0)},
            split=request.split, data_digest=tensor_digest(*(t for s in chosen for t in (s.inputs, s.targets))),
            grid=grid, chunk_size=plan.chunk_size, eval_config=self.config)
        # the evaluated subset, made once here (the engine would make the same one on every call)
        self.chosen = [s.subset(config.max_samples, seed=config.sample_seed) for s in chosen]
        n = [len(s) for s in self.chosen]
        self.directions = directions
        self.meta = {
            "format_version": FORMAT_VERSION, "model": cfg["model"],
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "dataset": cfg["dataset"], "num_classes": info.get("num_classes"), "split": request.split,
            "samples": n[0], **({"test_samples": n[1]} if len(n) > 1 else {}),
            "run": str(run.root), "epoch": self.epoch, "directions_file": str(request.directions),
            "direction_kind": directions.kind, "directions": dict(directions.meta),
            **{k: directions.meta[k] for k in ("norm", "ignore", "seed", "explained_variance", "cosine")
               if k in directions.meta},
            "precision": config.precision, "cap": config.cap, "max_samples": config.max_samples,
            "sample_seed": config.sample_seed, "device": self.device.split(":", 1)[0],
            "engine": {"config": self.config.to_dict()}, "software": _software_versions(),
        }
        self._resident: tuple | None = None

    def evaluator(self, cap: bool = True):
        """``evaluate_chunk`` with model, directions and data moved to the device once."""
        if self._resident is None:
            d = self.directions
            self._resident = (
                self.model.to(self.device).eval(),
                type(d)({k: v.to(self.device) for k, v in d.x.items()},
                        None if d.y is None else {k: v.to(self.device) for k, v in d.y.items()}, d.meta),
                [s.to(self.device) for s in self.chosen])
        model, directions, data = self._resident
        config = self.config if cap else dataclasses.replace(self.config, cap=None)
        return make_chunk_evaluator(model, directions, data[0], config, data[1] if len(data) > 1 else None)

    def centre_meta(self) -> dict[str, float]:
        """Loss and accuracy at (0, 0) without the cap, when the grid cannot provide them."""
        if self.grid_has_centre and self.config.cap is None:
            return {}  # taken from the grid point (0, 0) when the surface is assembled
        r = self.evaluator(cap=False)(np.zeros((1, 2)))
        return {"centre_loss": float(r["loss"][0]), "centre_accuracy": float(r["accuracy"][0])}


def _software_versions() -> dict[str, str | None]:
    """Like ``pipeline.train.software_versions`` but without importing torchvision (seconds per rank)."""
    from importlib import metadata

    import numpy
    import torch

    from .. import __version__

    try:
        tv = metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        tv = None
    return {"losscape": __version__, "torch": torch.__version__, "torchvision": tv, "numpy": numpy.__version__}


def compute_surface(request: SurfaceRequest, options: ResumeOptions = ResumeOptions(), *,
                    env: DistEnv = DistEnv()) -> SurfaceOutcome:
    """Evaluate (the rest of) ``request`` resumably and write its ``.vts`` (rank 0).

    With ``env.world_size > 1`` (torchrun) the ranks join a process group (NCCL on CUDA, gloo
    on CPU) and split the chunks; see :func:`~.runner.evaluate_surface` for what each fault does.
    """
    job = SurfaceJob(request, env, options.chunk_size)
    comm: Comm = (TorchComm(env, "nccl" if job.device.startswith("cuda") else "gloo", device=job.device)
                  if env.world_size > 1 else LocalComm())
    with comm:
        meta = {**job.meta, **(job.centre_meta() if env.rank == 0 else {})}
        return evaluate_surface(job.evaluator(), job.grid, job.out, identity=job.identity, meta=meta,
                                options=options, comm=comm)


def merge_shards(request: SurfaceRequest, options: ResumeOptions = ResumeOptions()) -> SurfaceOutcome:
    """Assemble the ``.vts`` of ``request`` from the chunks its ``--shard`` jobs left."""
    job = SurfaceJob(request, chunk_size=options.chunk_size, evaluates=False)
    return merge_surface(job.grid, job.out, identity=job.identity, options=options)
