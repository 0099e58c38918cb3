"""One surface (or volume) of a run: the request loaded (model, directions, data), fingerprinted, computed.

:class:`SurfaceJob` turns a :class:`~.request.SurfaceRequest` into what the computation needs;
:func:`compute_surface` evaluates it resumably (and distributed when the environment spans
several ranks) through :func:`~.compute.evaluate_surface`; :func:`merge_shards` assembles the
chunks that shard jobs left.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..atomic import check_writable
from ..engine import resolve_device
from ..errors import ParameterError, param
from .compute import ResumeOptions, SurfaceOutcome, evaluate_surface, merge_surface, plan_for
from .distribute import Comm, DistEnv, LocalComm, TorchComm
from .evaluator import centre_meta, make_chunk_evaluator, uncapped
from .meta import surface_meta
from .request import SurfaceRequest, check_grid, default_grid

__all__ = ["SurfaceJob", "compute_surface", "merge_shards"]


class SurfaceJob:
    """A request with everything loaded: model, directions, data, engine config, identity, metadata.

    ``evaluates=False`` (a merge, or the check a launcher makes before starting its workers)
    names the device without asking for it.
    """

    def __init__(self, request: SurfaceRequest, env: DistEnv = DistEnv(), chunk_size: int | None = None,
                 evaluates: bool = True):
        from ..checkpoints import state_digest
        from ..directions import Directions
        from ..engine import EvalConfig, resolve_compile
        from ..engine.checks import check_finite_data
        from ..engine.points import as_objective, probe
        from ..run import Run
        from .fingerprint import surface_identity

        opened = Run(request.run)
        run = opened.dir
        directions = Directions.load(request.directions)
        run.check_directions(directions)
        if request.hessian is not None and directions.ndim == 3:
            raise ParameterError(f"{param('hessian')} (the curvature maps) applies to surfaces; the directions hold "
                                 f"three (a volume of kind {directions.kind!r})")
        if request.hessian is not None:  # the maps take the directions' parameters unless told
            request = dataclasses.replace(request, hessian=request.hessian.resolved(directions.meta))
        grid = request.grid or default_grid(run, directions, request.epoch)
        check_grid(directions, grid)
        volume = directions.ndim == 3
        out = Path(request.out) if request.out is not None else (
            run.volume(directions.kind) if volume else run.surface(directions.kind))
        if request.out is not None and (out.suffix == ".vti") != volume:
            want = ".vti (a volume: the directions hold three)" if volume else ".vts"
            raise ParameterError(f"{param('out')} must end in {want}; got {str(out)!r}")
        self.out = check_writable(out, make_parents=evaluates)
        config = request.eval or EvalConfig()
        device = resolve_device(config.device, local_rank=env.local_rank, distributed=env.world_size > 1,
                                present=evaluates)
        self.device = str(device)
        config = dataclasses.replace(config, device=self.device)
        self.env, self.grid, self.request = env, grid, request
        # the centre: the request's epoch, else the checkpoint the directions were made around, else the last
        epoch = request.epoch if request.epoch is not None else directions.centre_epoch
        self.model, self.epoch = opened.build_model(epoch, device="cpu")
        directions.check_fits(self.model.state_dict(), source=f"the model of {run.root} ({opened.model_name})")
        self.loss = opened.loss()
        self.objective = as_objective(self.loss)
        if config.cap is not None and not self.loss.nonnegative:
            raise ParameterError(f"{param('cap')} needs a loss that is never negative (a named loss); the run's loss "
                                 f"{self.loss.label!r} may be")
        names = {"train": ["train"], "test": ["test"], "both": ["train", "test"]}[request.split]
        # the evaluated subsets, made once here (the engine would make the same one on every call)
        self.chosen = [opened.data(n).subset(config.max_samples, seed=config.sample_seed) for n in names]
        if evaluates:
            for n, chosen in zip(names, self.chosen):
                check_finite_data(self.model, chosen, self.objective, f"the {n} split")
        # 'auto' decided once for the whole grid, from shapes only: every rank, shard, merge and
        # rerun makes the same choice, and the fingerprint holds it (a resume never mixes the two)
        self.config, self.compile = resolve_compile(self.model, self.chosen[0], config, grid.size,
                                                    sum(d.n or 0 for d in self.chosen))
        plan = plan_for(grid, chunk_size)
        self.identity = surface_identity(
            directions_digest=directions.digest(), centre_digest=state_digest(self.model.state_dict()),
            model=opened.model_name,
            dataset={"name": opened.dataset_name, "data_root": opened.config.get("data_root"),
                     "seed": opened.config.get("seed", 0)},
            split=request.split, data_digest="/".join(d.digest() for d in self.chosen),
            grid=grid, chunk_size=plan.chunk_size, eval_config=self.config, loss=self.loss.to_dict(),
            hessian=request.hessian)
        self.directions = directions
        baseline = _baseline(self.objective, self.chosen[0])
        classes = opened.num_classes
        if classes is None and self.loss.name in ("cross_entropy", "nll") and evaluates:  # from the outputs
            classes = probe(self.model, self.chosen[0], self.objective)[1].classes
        self.meta = surface_meta(
            model=opened.model_name, parameters=sum(p.numel() for p in self.model.parameters()),
            directions=directions.meta, config=self.config, split=request.split,
            samples=[d.n or 0 for d in self.chosen], dataset=opened.dataset_name, num_classes=classes,
            loss=self.loss, hessian=request.hessian,
            extra={"run": str(run.root), "epoch": self.epoch, "directions_file": str(request.directions),
                   "unit": opened.unit, **({"baseline_loss": baseline} if baseline is not None else {})})
        self.meta["engine"]["compile"] = {"requested": config.compile, **self.compile.to_dict()}
        self._resident: tuple | None = None

    def evaluator(self, cap: bool = True, hessian: bool = True):
        """``evaluate_chunk`` with model, directions and data moved to the device once (``hessian``:
        with the request's curvature maps, when it asks for them)."""
        if self._resident is None:
            self._resident = (self.model.to(self.device).eval(), self.directions.to(self.device),
                              [s.to(self.device) for s in self.chosen])
        model, directions, data = self._resident
        config = self.config if cap else uncapped(self.config)
        return make_chunk_evaluator(model, directions, data[0], config, data[1] if len(data) > 1 else None,
                                    loss=self.objective, hessian=self.request.hessian if hessian else None)

    def centre_meta(self) -> dict[str, float]:
        """Loss and accuracy at the origin when the grid cannot provide them (:func:`~.evaluator.centre_meta`)."""
        return centre_meta(self.evaluator(cap=False, hessian=False), self.grid, self.config.cap)


def _baseline(objective: Any, data: Any) -> float | None:
    """The loss of the best constant prediction on data in memory (None for a stream, or classes)."""
    import torch

    if not data.in_memory:
        return None
    batches = data.target_batches()
    return objective.baseline(torch.cat([t.reshape(-1) for t in batches])) if batches is not None else None


def compute_surface(request: SurfaceRequest, options: ResumeOptions = ResumeOptions(), *,
                    env: DistEnv = DistEnv()) -> SurfaceOutcome:
    """Evaluate (the rest of) ``request`` resumably and write its ``.vts`` (``.vti`` for a volume; rank 0).

    With ``env.world_size > 1`` (torchrun, or :func:`~.distribute.launch_local`) the ranks join a
    process group (NCCL on CUDA, gloo on CPU) and split the chunks; see
    :func:`~.compute.evaluate_surface` for what each fault does.
    """
    job = SurfaceJob(request, env, options.chunk_size)
    comm: Comm = (TorchComm(env, "nccl" if job.device.startswith("cuda") else "gloo", device=job.device)
                  if env.world_size > 1 else LocalComm())
    with comm:
        meta = {**job.meta, **(job.centre_meta() if env.rank == 0 else {})}
        return evaluate_surface(job.evaluator(), job.grid, job.out, identity=job.identity, meta=meta,
                                options=options, comm=comm)


def merge_shards(request: SurfaceRequest, options: ResumeOptions = ResumeOptions()) -> SurfaceOutcome:
    """Assemble the ``.vts`` (``.vti``) of ``request`` from the chunks its shard jobs left."""
    job = SurfaceJob(request, chunk_size=options.chunk_size, evaluates=False)
    return merge_surface(job.grid, job.out, identity=job.identity, options=options, meta=job.meta)
