"""`losscape surface`: evaluate the loss on a plane (or line) of weight space and write a .vts.

Resumable (finished chunks of points persist in ``OUT.parts/``), distributed under
``torchrun --standalone --nproc-per-node K -m pipeline -- surface ...``, and splittable into array-job shards
(``--shard i/k`` on each job, then ``--merge``). See docs/scaling.md.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

EPILOG = """\
examples:
  losscape surface --run runs/digits --directions runs/digits/directions/random.pt
  torchrun --standalone --nproc-per-node 4 -m pipeline -- surface --run RUN --directions FILE.pt
  losscape surface --run RUN --directions FILE.pt --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
  losscape surface --run RUN --directions FILE.pt --merge

Rerunning an interrupted command continues where it stopped (same options: a changed
configuration is refused unless --restart). Under torchrun the "--" keeps torchrun from taking
--run for its own --run-path. See docs/scaling.md."""


def register(sub) -> None:
    p = sub.add_parser(
        "surface", help="evaluate the loss surface on a grid of the directions' plane",
        description="Evaluate loss and accuracy at theta + a*x + b*y on a grid and write RUN/surface_<kind>.vts. "
        "Finished points are kept in OUT.parts/ while running, so an interrupted run resumes when rerun.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Let "--x -1:1:51" (DESIGN.md's spelling) through: argparse takes a value starting with "-" for an
    # option unless it looks like a negative number; grid specs "-1:1:51" and "-0.5:.5:11" are values too.
    p._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-[\d.]+(e-?\d+)?:")
    p.add_argument("--run", required=True, metavar="RUN", help="run directory (checkpoints/, run.json)")
    p.add_argument("--directions", required=True, metavar="FILE.pt", help="directions file ('losscape directions')")
    p.add_argument("--x", metavar="MIN:MAX:N", help="first axis (default -1:1:51)")
    p.add_argument("--y", metavar="MIN:MAX:N", help="second axis (default -1:1:51; not for a 1D direction)")
    p.add_argument("--split", choices=["train", "test", "both"], default="train",
                   help="data split to evaluate (default: %(default)s)")
    p.add_argument("--max-samples", type=int, metavar="N", help="evaluate a fixed seeded subset of N samples")
    p.add_argument("--sample-seed", type=int, default=0, metavar="S", help="seed of that subset (default: 0)")
    p.add_argument("--epoch", type=int, metavar="E", help="centre checkpoint (default: the one the directions were "
                   "made around, else the last epoch)")
    p.add_argument("--out", metavar="FILE.vts", help="output (default: RUN/surface_<kind>.vts)")
    p.add_argument("--vti", action="store_true", help="also write the .vti twin (for TTK)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--device", help="cpu or cuda (default: cuda when available); under torchrun each rank "
                   "uses cuda:LOCAL_RANK")
    e.add_argument("--precision", choices=["fp32", "tf32", "bf16", "fp16"], default="fp32",
                   help="forward precision (default: %(default)s; tf32 uses CUDA TF32 tensor cores, bf16/fp16 are "
                   "opt-in mixed precision)")
    e.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=True,
                   help="CUDA: deterministic algorithms, no cuDNN autotuning, so a resumed grid is bitwise the "
                   "uninterrupted one (default: on; the CPU is always deterministic)")
    e.add_argument("--batch-size", type=int, metavar="B", help="samples per forward pass (default: engine's choice)")
    e.add_argument("--points-per-batch", type=int, metavar="P",
                   help="grid points per forward pass (default: engine's choice, sized to memory)")
    e.add_argument("--cap", type=float, metavar="C",
                   help="stop a point's evaluation once its mean loss provably exceeds C (stored as >= C)")
    r = p.add_argument_group("resilience and scale")
    r.add_argument("--chunk-size", type=int, metavar="N", help="points per persisted chunk (default: about 64 "
                   "chunks per grid)")
    r.add_argument("--restart", action="store_true", help="discard partial results in OUT.parts/ and start over")
    r.add_argument("--keep-parts", action="store_true", help="keep OUT.parts/ after the .vts is written")
    r.add_argument("--shard", metavar="I/K", help="evaluate only shard I of K (0-based), keep its chunks, exit")
    r.add_argument("--merge", action="store_true", help="assemble OUT from the shards' chunks (evaluates nothing)")
    p.set_defaults(func=_surface)


def _dist_env():
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), read here, not in the library."""
    from ..resilient import DistEnv

    def get(name: str, default: int) -> int:
        raw = os.environ.get(name, "")
        try:
            return int(raw) if raw else default
        except ValueError:
            raise ValueError(f"environment variable {name} must be an integer; got {raw!r}") from None

    return DistEnv(rank=get("RANK", 0), world_size=get("WORLD_SIZE", 1), local_rank=get("LOCAL_RANK", 0))


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM (a scheduler's preemption, torchrun stopping the survivors of a dead rank) and SIGINT
    stop the run through an exception, so the library reports what it keeps and exits cleanly."""
    from ..resilient import StoppedBySignal

    def handler(signum: int, frame: Any) -> None:
        raise StoppedBySignal(f"stopped by {signal.Signals(signum).name}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _resolve_device(requested: str | None, local_rank: int, distributed: bool) -> str:
    import torch

    from ..errors import LosscapeError

    name = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    kind = name.split(":", 1)[0]
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"--device must be one of 'cpu', 'cuda'; got {name!r}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise LosscapeError("--device cuda was asked for but CUDA is not available; use --device cpu")
        if distributed:
            if local_rank >= torch.cuda.device_count():
                raise LosscapeError(f"LOCAL_RANK {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                                    f"use --nproc-per-node <= the number of GPUs")
            return f"cuda:{local_rank}"
    return name


def _grid(args: argparse.Namespace, directions: Any, run: Any):
    """The grid from --x/--y; a PCA plane's missing axes default to the trajectory's extent."""
    from ..config import Grid

    if directions.ndim == 1:
        if args.y is not None:
            raise ValueError(f"--y does not apply: {args.directions} holds a 1D direction (kind "
                             f"{directions.kind!r}); give only --x")
        return Grid.from_specs(args.x or "-1:1:51", None)
    x, y = args.x, args.y
    if directions.kind == "pca" and (x is None or y is None):
        default = _pca_default(run, directions, args.epoch)
        x = x or f"{default.xmin!r}:{default.xmax!r}:{default.nx}"
        y = y or f"{default.ymin!r}:{default.ymax!r}:{default.ny}"
    return Grid.from_specs(x or "-1:1:51", y or "-1:1:51")


def _pca_default(run: Any, directions: Any, epoch: int | None):
    """``pipeline.trajectory.pca_grid`` of the run's checkpoints projected on the plane (51x51)."""
    from ..trajectory import pca_grid, project_trajectory

    epochs = run.epochs()
    centre = epoch if epoch is not None else (directions.centre_epoch if directions.centre_epoch is not None
                                              else (epochs[-1] if epochs else None))
    if centre is None or centre not in epochs:
        return _grid_from_specs("-1:1:51", "-1:1:51")
    return pca_grid(project_trajectory(run.checkpoints(), directions, run.checkpoint(centre)))


def _grid_from_specs(x: str, y: str):
    from ..config import Grid

    return Grid.from_specs(x, y)


def _surface(args: argparse.Namespace) -> int:
    from ..checkpoints import RunDir
    from ..directions import Directions
    from ..resilient import ResumeOptions, Shard

    env = _dist_env()
    shard = Shard.parse(args.shard) if args.shard is not None else None
    if args.merge and (shard is not None or env.world_size > 1):
        raise ValueError("--merge assembles the shards' chunks in one process: drop --shard and run it without "
                         "torchrun")
    if args.restart and shard is not None:
        raise ValueError("--restart cannot be combined with --shard (concurrent shards would delete each other's "
                         "chunks); delete the OUT.parts directory instead")
    for name in ("max_samples", "batch_size", "points_per_batch", "chunk_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer; got {v}")
    run = RunDir(args.run)
    info = run.read_run()
    directions = Directions.load(args.directions)
    grid = _grid(args, directions, run)
    out = Path(args.out) if args.out else run.surface(directions.kind)
    if out.suffix != ".vts":
        raise ValueError(f"--out must end in .vts; got {str(out)!r}")
    options = ResumeOptions(chunk_size=args.chunk_size, shard=shard, restart=args.restart,
                            keep_parts=args.keep_parts, vti=args.vti)
    job = _Job(args, run, info, directions, grid, env)
    with _stop_on_signals():
        if args.merge:
            return _merge(job, out, options)
        return _evaluate(job, out, options)


class _Job:
    """Everything loaded for one surface: model, data, engine config, identity and metadata."""

    def __init__(self, args: argparse.Namespace, run: Any, info: dict, directions: Any, grid: Any, env: Any):
        from ..data import load_dataset
        from ..landscape import EvalConfig
        from ..resilient import plan_for, surface_identity, tensor_digest

        self.env, self.grid = env, grid
        self.grid_has_centre = bool(abs(grid.xs).min() == 0.0 and abs(grid.ys).min() == 0.0)
        cfg = info["config"]
        self.device = _resolve_device(args.device, env.local_rank, env.world_size > 1)
        # the centre: --epoch, else the checkpoint the directions were made around, else the last
        epoch = args.epoch if args.epoch is not None else directions.centre_epoch
        self.model, self.epoch = run.build_model(epoch, device="cpu")
        directions.check_fits(self.model.state_dict(), source=f"the model of {run.root} ({cfg['model']})")
        dataset = load_dataset(cfg["dataset"], root=cfg.get("data_root"), seed=cfg.get("seed", 0))
        splits = {"train": [dataset.train], "test": [dataset.test], "both": [dataset.train, dataset.test]}
        chosen = splits[args.split]
        engine = {"batch_size": args.batch_size, "points_per_batch": args.points_per_batch,
                  "precision": args.precision, "cap": args.cap, "max_samples": args.max_samples,
                  "sample_seed": args.sample_seed, "deterministic": args.deterministic}
        self.config = EvalConfig(device=self.device, **{k: v for k, v in engine.items() if v is not None})
        plan = plan_for(grid, args.chunk_size)
        self.identity = surface_identity(
            directions_file=args.directions, checkpoint_file=run.checkpoint(self.epoch), model=cfg["model"],
            dataset={"name": cfg["dataset"], "data_root": cfg.get("data_root"), "seed": cfg.get("seed", 0)},
            split=args.split, data_digest=tensor_digest(*(t for s in chosen for t in (s.inputs, s.targets))),
            grid=grid, chunk_size=plan.chunk_size, eval_config=self.config)
        # the evaluated subset, made once here (the engine would make the same one on every call)
        self.chosen = [s.subset(args.max_samples, seed=args.sample_seed) for s in chosen]
        n = [len(s) for s in self.chosen]
        from ..surface import FORMAT_VERSION

        self.meta = {
            "format_version": FORMAT_VERSION, "model": cfg["model"],
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "dataset": cfg["dataset"], "split": args.split, "samples": n[0],
            **({"test_samples": n[1]} if len(n) > 1 else {}),
            "run": str(run.root), "epoch": self.epoch, "directions_file": str(args.directions),
            "direction_kind": directions.kind, "directions": dict(directions.meta),
            **{k: directions.meta[k] for k in ("norm", "ignore", "seed", "explained_variance", "cosine")
               if k in directions.meta},
            "precision": args.precision, "cap": args.cap, "max_samples": args.max_samples,
            "sample_seed": args.sample_seed, "device": self.device.split(":", 1)[0],
            "engine": {"config": self.config.to_dict()}, "software": _software_versions(),
        }
        self.directions = directions
        self._evaluator = None

    def evaluator(self, cap: bool = True):
        """``evaluate_chunk`` with model, directions and data moved to the device once."""
        import dataclasses

        from ..resilient import make_chunk_evaluator

        if self._evaluator is None:
            d = self.directions
            self._evaluator = (
                self.model.to(self.device).eval(),
                type(d)({k: v.to(self.device) for k, v in d.x.items()},
                        None if d.y is None else {k: v.to(self.device) for k, v in d.y.items()}, d.meta),
                [s.to(self.device) for s in self.chosen])  # resident for every chunk
        model, directions, data = self._evaluator
        config = self.config if cap else dataclasses.replace(self.config, cap=None)
        return make_chunk_evaluator(model, directions, data[0], config, data[1] if len(data) > 1 else None)

    def centre_meta(self) -> dict:
        """Loss and accuracy at (0, 0) without the cap, when the grid cannot provide them."""
        import numpy as np

        if self.grid_has_centre and self.config.cap is None:
            return {}  # taken from the grid point (0, 0) when the surface is assembled
        r = self.evaluator(cap=False)(np.zeros((1, 2)))
        return {"centre_loss": float(r["loss"][0]), "centre_accuracy": float(r["accuracy"][0])}


def _software_versions() -> dict:
    """Like ``pipeline.train.software_versions`` but without importing torchvision (seconds per rank)."""
    from importlib import metadata

    import numpy
    import torch

    from .. import __version__

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {"losscape": __version__, "torch": torch.__version__, "torchvision": version("torchvision"),
            "numpy": numpy.__version__}


def _evaluate(job: _Job, out: Path, options: Any) -> int:
    from ..resilient import LocalComm, TorchComm, evaluate_surface

    env = job.env
    comm = (TorchComm(env, "nccl" if job.device.startswith("cuda") else "gloo", device=job.device)
            if env.world_size > 1 else LocalComm())
    with comm:
        meta = {**job.meta, **(job.centre_meta() if env.rank == 0 else {})}
        outcome = evaluate_surface(job.evaluator(), job.grid, out, identity=job.identity, meta=meta,
                                   options=options, comm=comm)
    if env.rank != 0:
        return 0
    if outcome.points:
        procs = f" by {env.world_size} processes" if env.world_size > 1 else ""
        print(f"evaluated {outcome.points} points in {outcome.seconds:.2f} s{procs} "
              f"({outcome.points / max(outcome.seconds, 1e-9):.1f} points/s)", file=sys.stderr)
    if outcome.resumed:
        of = (f"{outcome.n_chunks} chunks" if options.shard is None
              else f"the chunks of shard {options.shard}")
        print(f"resumed: {outcome.resumed} of {of} were already done in {outcome.parts}", file=sys.stderr)
    if outcome.recomputed:
        print(f"recomputed {len(outcome.recomputed)} corrupted chunk(s) (moved aside in {outcome.parts})",
              file=sys.stderr)
    if options.shard is not None:
        left = len(outcome.missing)
        print(f"shard {options.shard}: {outcome.computed} chunk(s) computed; {outcome.n_chunks - left} of "
              f"{outcome.n_chunks} chunks done in {outcome.parts}"
              + ("; all done: run the same command with --merge" if not left else ""), file=sys.stderr)
        print(outcome.parts)
        return 0
    _report(outcome)
    return 0


def _merge(job: _Job, out: Path, options: Any) -> int:
    from ..resilient import merge_surface

    outcome = merge_surface(job.grid, out, identity=job.identity, options=options)
    _report(outcome)
    return 0


def _report(outcome: Any) -> None:
    s = outcome.surface
    import numpy as np

    bounded, invalid = int(s.bounded.sum()), int((s.valid == 0).sum())
    nonfinite = int((~np.isfinite(s.loss)).sum())
    print(f"surface {s.grid.nx}x{s.grid.ny}: {s.grid.size - invalid} of {s.grid.size} points valid"
          + (f"; {bounded} above the cap" if bounded else "") + (f"; {nonfinite} non-finite" if nonfinite else ""),
          file=sys.stderr)
    print(outcome.written)
