"""`lossvista surface`: evaluate the loss on a plane (or line) of weight space and write a .vts.

Resumable (finished chunks of points persist in ``OUT.parts/``), distributed over the processes
of one machine (``--nproc-per-node K``) or of several (``torchrun``), and splittable into
array-job shards (``--shard i/k`` on each job, then ``--merge``). See docs/scaling.md.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from ._common import add_compile_option, stop_on_signals

EPILOG = """\
examples:
  lossvista surface --run runs/digits --directions runs/digits/directions/random.pt
  lossvista surface --run RUN --directions FILE.pt --nproc-per-node 4
  torchrun --nnodes 2 --nproc-per-node 4 ... -m pipeline -- surface --run RUN --directions FILE.pt
  lossvista surface --run RUN --directions FILE.pt --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
  lossvista surface --run RUN --directions FILE.pt --merge

Rerunning an interrupted command continues where it stopped (same options: a changed
configuration is refused unless --restart). Under torchrun the "--" keeps torchrun from taking
--run for its own --run-path. See docs/scaling.md."""


def register(sub) -> None:
    p = sub.add_parser(
        "surface", help="evaluate the loss surface on a grid of the directions' plane",
        description="Evaluate loss and accuracy at theta + a*x + b*y on a grid and write RUN/surface_<kind>.vts. "
        "Finished points are kept in OUT.parts/ while running, so an interrupted run resumes when rerun.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    allow_negative_specs(p)
    p.add_argument("--run", required=True, metavar="RUN", help="run directory (checkpoints/, run.json)")
    p.add_argument("--directions", required=True, metavar="FILE.pt", help="directions file ('lossvista directions')")
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
    add_engine_options(p)
    p.set_defaults(func=_surface)


def allow_negative_specs(p: argparse.ArgumentParser) -> None:
    """Let "--x -1:1:51" (the documented spelling) through: argparse takes a value starting with "-"
    for an option unless it looks like a negative number; grid specs "-1:1:51" and "-0.5:.5:11" are
    values too."""
    p._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-[\d.]+(e-?\d+)?:")


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """The evaluation and scale options that ``surface`` and ``volume`` share."""
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
    add_compile_option(e)
    h = p.add_argument_group("curvature maps (Li et al. 2018, section 6)")
    h.add_argument("--hessian", action="store_true",
                   help="also the Hessian's largest and smallest eigenvalues at every point (hessian_max, hessian_min), "
                   "their ratio eig_ratio = |min/max| and the Lanczos run's estimated error (hessian_error), on the "
                   "evaluated split (train for --split both); a Lanczos run per point: use a small grid or "
                   "--max-samples. The maps are computed eagerly whatever --compile says (Hessian-vector products "
                   "differentiate the loss twice, which a compiled graph cannot); --compile applies to the loss")
    h.add_argument("--hessian-tol", type=float, default=1e-2, metavar="T",
                   help="Lanczos tolerance: the eigenvalues' estimated error relative to the spectral radius at each point "
                   "(default: %(default)s)")
    h.add_argument("--hessian-iters", type=int, default=100, metavar="N",
                   help="Lanczos steps at most per point (default: %(default)s)")
    h.add_argument("--hessian-ignore", choices=["biasbn", "none"], dest="hessian_ignore",
                   help="parameters of the Hessian (default: the directions' --ignore, else biasbn)")
    r = p.add_argument_group("resilience and scale")
    r.add_argument("--nproc-per-node", type=int, metavar="K",
                   help="evaluate with K processes on this machine (started through torch's launcher; gloo on the "
                   "CPU, one GPU each on CUDA); the grid is bitwise the one of one process")
    r.add_argument("--chunk-size", type=int, metavar="N", help="points per persisted chunk (default: about 64 "
                   "chunks per grid)")
    r.add_argument("--restart", action="store_true", help="discard partial results in OUT.parts/ and start over")
    r.add_argument("--keep-parts", action="store_true", help="keep OUT.parts/ after the .vts is written")
    r.add_argument("--shard", metavar="I/K", help="evaluate only shard I of K (0-based), keep its chunks, exit")
    r.add_argument("--merge", action="store_true", help="assemble OUT from the shards' chunks (evaluates nothing)")


def _dist_env():
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), read here, not in the library."""
    from ..surface import DistEnv

    def get(name: str, default: int) -> int:
        raw = os.environ.get(name, "")
        try:
            return int(raw) if raw else default
        except ValueError:
            raise ValueError(f"environment variable {name} must be an integer; got {raw!r}") from None

    return DistEnv(rank=get("RANK", 0), world_size=get("WORLD_SIZE", 1), local_rank=get("LOCAL_RANK", 0))


def request_of(args: argparse.Namespace, directions: str | Path, z: str | None = None):
    """The :class:`~pipeline.surface.SurfaceRequest` of the command line (a volume's with ``z``)."""
    from ..directions import Directions
    from ..engine import EvalConfig
    from ..rundir import RunDir
    from ..surface import SurfaceRequest, complete_grid

    grid = None
    if args.x is not None or args.y is not None or z is not None:
        grid = complete_grid(RunDir(args.run), Directions.load(directions), args.x, args.y, args.epoch, z=z)
    engine = {"batch_size": args.batch_size, "points_per_batch": args.points_per_batch, "device": args.device,
              "precision": args.precision, "cap": args.cap, "max_samples": args.max_samples,
              "sample_seed": args.sample_seed, "deterministic": args.deterministic, "compile": args.compile}
    hessian = None
    if args.hessian:
        from ..curvature.maps import HessianMaps

        hessian = HessianMaps(tol=args.hessian_tol, max_iter=args.hessian_iters, ignore=args.hessian_ignore)
    elif args.hessian_ignore is not None or args.hessian_tol != 1e-2 or args.hessian_iters != 100:
        raise ValueError("--hessian-tol, --hessian-iters and --hessian-ignore apply with --hessian only")
    return SurfaceRequest(run=Path(args.run), directions=Path(directions), grid=grid, split=args.split,
                          epoch=args.epoch, out=Path(args.out) if args.out else None,
                          eval=EvalConfig(**{k: v for k, v in engine.items() if v is not None}), hessian=hessian)


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line for each worker: this one without ``--nproc-per-node K``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc-per-node":
            skip = True
        elif not a.startswith("--nproc-per-node="):
            out.append(a)
    return out


def _surface(args: argparse.Namespace) -> int:
    from ..directions import Directions

    if Directions.load(args.directions).ndim == 3:
        raise ValueError(f"{args.directions} holds three directions (a volume): compute it with 'lossvista volume "
                         f"--run {args.run} --directions {args.directions}'")
    return compute(args, request_of(args, args.directions))


def compute(args: argparse.Namespace, request: Any) -> int:
    """Evaluate ``request`` as the command line says: alone, with ``--nproc-per-node`` workers,
    as one rank of torchrun, one ``--shard``, or ``--merge``; report what was done."""
    from ..surface import ResumeOptions, Shard, SurfaceJob, compute_surface, launch_local, merge_shards

    env = _dist_env()
    shard = Shard.parse(args.shard) if args.shard is not None else None
    if args.merge and (shard is not None or env.world_size > 1 or args.nproc_per_node):
        raise ValueError("--merge assembles the shards' chunks in one process: drop --shard and --nproc-per-node, "
                         "and run it without torchrun")
    if args.nproc_per_node is not None and (args.nproc_per_node < 1 or env.world_size > 1):
        raise ValueError(f"--nproc-per-node must be a positive integer, and not given under torchrun; got "
                         f"{args.nproc_per_node}")
    options = ResumeOptions(chunk_size=args.chunk_size, shard=shard, restart=args.restart,
                            keep_parts=args.keep_parts, vti=getattr(args, "vti", False))
    if args.nproc_per_node and args.nproc_per_node > 1:
        SurfaceJob(request, chunk_size=args.chunk_size, evaluates=False)  # bad input: one line, before any worker
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # as torchrun: one thread per worker unless set
        launch_local(args.nproc_per_node, _without_nproc(args.argv))
        return 0
    with stop_on_signals():
        if args.merge:
            _report(merge_shards(request, options))
            return 0
        outcome = compute_surface(request, options, env=env)
    if env.rank != 0:
        return 0
    if outcome.points:
        procs = f" by {env.world_size} processes" if env.world_size > 1 else ""
        print(f"evaluated {outcome.points} points in {outcome.seconds:.2f} s{procs} "
              f"({outcome.points / max(outcome.seconds, 1e-9):.1f} points/s)", file=sys.stderr)
    if outcome.complete:
        what = "volume" if Path(outcome.out).suffix.lower() == ".vti" else "surface"
        print(f"{outcome.out} already holds this {what} (the same fingerprint): kept; pass --restart to compute "
              f"it again", file=sys.stderr)
    elif outcome.resumed:
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


def _report(outcome: Any) -> None:
    s = outcome.surface
    import numpy as np

    bounded, invalid = int(s.bounded.sum()), int((s.valid == 0).sum())
    nonfinite = int((~np.isfinite(s.loss)).sum())
    what = "volume" if s.grid.ndim == 3 else "surface"
    print(f"{what} {'x'.join(map(str, s.grid.shape))}: {s.grid.size - invalid} of {s.grid.size} points valid"
          + (f"; {bounded} above the cap" if bounded else "") + (f"; {nonfinite} non-finite" if nonfinite else ""),
          file=sys.stderr)
    h = s.meta.get("hessian")
    if isinstance(h, dict) and "eig_ratio" in s.extra:
        ratio = s.extra["eig_ratio"]
        shown = ratio[np.isfinite(ratio)]
        span = f"eig_ratio in [{shown.min():.3g}, {shown.max():.3g}]" if shown.size else "no finite eig_ratio"
        print(f"curvature maps: {span}; tol {h.get('tol'):g}, parameters {h.get('ignore')}", file=sys.stderr)
        if h.get("unconverged_points"):
            print(f"lossvista surface: warning: {h['unconverged_points']} points stopped at --hessian-iters "
                  f"{h.get('max_iter')} above --hessian-tol {h.get('tol'):g} (worst estimated error "
                  f"{h.get('worst_error'):.2g} of the spectral radius)", file=sys.stderr)
    print(outcome.written)
