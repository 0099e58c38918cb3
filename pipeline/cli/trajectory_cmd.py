"""`lossvista trajectory`: project a run's checkpoints onto a directions file, write a .vtp."""
from __future__ import annotations

import argparse
import sys

from ._common import add_compile_option, stop_on_signals


def register(sub) -> None:
    p = sub.add_parser(
        "trajectory", help="project the training path onto a plane (writes a .vtp polyline)",
        description="Project every checkpoint of RUN onto the directions (least squares, relative to the "
        "directions' centre checkpoint), evaluate each checkpoint's loss and the loss at its projected "
        "point, and write RUN/trajectory_<kind>.vtp (points (alpha, beta, 0); arrays epoch, loss, "
        "surface_loss, residual).")
    p.add_argument("--run", required=True, metavar="RUN", help="run directory (checkpoints/, run.json)")
    p.add_argument("--directions", required=True, metavar="FILE.pt", help="a file from 'lossvista directions'")
    p.add_argument("--split", default="train", metavar="SPLIT", help="train (default) | test: data of the losses")
    p.add_argument("--max-samples", type=int, metavar="N", help="evaluate on a fixed seeded subset of N samples "
                   "(use the same as for 'lossvista surface' so surface_loss matches the surface)")
    p.add_argument("--sample-seed", type=int, default=0, metavar="S", help="seed of that subset (default: 0)")
    p.add_argument("--epoch", type=int, metavar="E", help="centre checkpoint (default: the one the directions were "
                   "made around, else the last epoch)")
    p.add_argument("--no-loss", action="store_true", help="only project (loss and surface_loss are NaN)")
    p.add_argument("--device", default="cpu", help="evaluation device: cpu (default) or cuda")
    add_compile_option(p)
    p.add_argument("--out", metavar="FILE.vtp", help="output file (default: RUN/trajectory_<kind>.vtp)")
    p.set_defaults(func=_trajectory)


def _trajectory(args: argparse.Namespace) -> int:
    import numpy as np

    from ..rundir import RunDir
    from ..workflow import make_trajectory

    with stop_on_signals():
        traj, out = make_trajectory(RunDir(args.run), args.directions, split=args.split,
                                    max_samples=args.max_samples, sample_seed=args.sample_seed, epoch=args.epoch,
                                    device=args.device, with_loss=not args.no_loss, out=args.out,
                                    compile=args.compile)
    end = traj.coords[np.argmax(traj.epoch)]
    kind = traj.meta.get("kind", "?")
    print(f"{len(traj.epoch)} checkpoints projected onto the {kind} plane (epoch {traj.epoch[0]} at "
          f"({traj.coords[0, 0]:.3g}, {traj.coords[0, 1]:.3g}), epoch {traj.epoch[-1]} at ({end[0]:.3g}, {end[1]:.3g}); "
          f"max residual {np.nanmax(traj.residual):.3g}) -> {out}", file=sys.stderr)
    print(out)
    return 0
