"""`lossvista volume`: the loss on a lattice of three directions, written as RUN/volume_<kind>.vti.

The same computation as ``lossvista surface`` with a third direction: resumable (``OUT.parts/``),
``--nproc-per-node``, torchrun, ``--shard``/``--merge``. See docs/volumes.md.
"""
from __future__ import annotations

import argparse
import sys

from ._common import shown_path
from .surface_cmd import _dist_env, add_engine_options, allow_negative_specs, compute, request_of

EPILOG = """\
examples:
  lossvista volume --run runs/demo --kind random                  # 21^3 points in -1..1
  lossvista volume --run runs/demo --kind pca --x -30:10:25 --z -2:2:9
  lossvista volume --run RUN --directions A.pt B.pt C.pt          # the first direction of each
  lossvista analyze runs/demo/volume_pca.vti                      # minima, 1- and 2-saddles, maxima

random: the run's random plane (directions/random.pt: its seed, norm and centre) and a third
seeded direction, so the slice at gamma 0 is that plane; pca: PC1-PC3 of the trajectory.
The directions are kept in RUN/directions/<kind>_3d.pt and the descent path in the volume in
RUN/trajectory_volume_<kind>.vtp. Rerunning an interrupted command continues where it stopped."""


def register(sub) -> None:
    p = sub.add_parser(
        "volume", help="evaluate the loss on a 3D lattice of three directions (vtkImageData)",
        description="Evaluate loss and accuracy at theta + a*x + b*y + c*z on a lattice and write "
        "RUN/volume_<kind>.vti, with the descent path in the volume. Finished points are kept in OUT.parts/ "
        "while running, so an interrupted run resumes when rerun.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    allow_negative_specs(p)
    p.add_argument("--run", required=True, metavar="RUN", help="run directory (checkpoints/, run.json)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--kind", choices=["random", "pca"], help="random: the random plane plus a third seeded "
                       "direction; pca: PC1-PC3 of the trajectory")
    which.add_argument("--directions", nargs="+", metavar="FILE.pt",
                       help="one file of three directions (lossvista directions --ndim 3), or three files whose "
                       "first directions span the volume")
    p.add_argument("--x", metavar="MIN:MAX:N", help="first axis (default -1:1:21; pca: the path's extent)")
    p.add_argument("--y", metavar="MIN:MAX:N", help="second axis (default as --x)")
    p.add_argument("--z", metavar="MIN:MAX:N", help="third axis (default as --x)")
    p.add_argument("--seed", type=int, help="random: seed of the directions (default: the random plane's, else 0)")
    p.add_argument("--epoch", type=int, metavar="E", help="centre checkpoint (default: the directions', else the "
                   "last epoch)")
    p.add_argument("--split", choices=["train", "test", "both"], default="train",
                   help="data split to evaluate (default: %(default)s)")
    p.add_argument("--max-samples", type=int, metavar="N", help="evaluate a fixed seeded subset of N samples")
    p.add_argument("--sample-seed", type=int, default=0, metavar="S", help="seed of that subset (default: 0)")
    p.add_argument("--no-path", dest="path", action="store_false",
                   help="do not write the descent path in the volume (trajectory_volume_<kind>.vtp; shards and "
                   "--merge never do: lossvista trajectory --directions RUN/directions/<kind>_3d.pt writes it)")
    p.add_argument("--out", metavar="FILE.vti", help="output (default: RUN/volume_<kind>.vti)")
    add_engine_options(p)
    p.set_defaults(func=_volume)


def _volume(args: argparse.Namespace) -> int:
    from ..datamodel import parse_axis
    from ..directions import Directions
    from ..rundir import RunDir
    from ..workflow.volume import check_made, volume_directions
    from ..workflow import make_trajectory

    run = RunDir(args.run)
    env = _dist_env()
    files = args.directions
    if files is not None and len(files) not in (1, 3):
        raise ValueError(f"--directions takes one file of three directions or three files; got {len(files)}")
    if args.seed is not None and args.kind != "random":
        raise ValueError("--seed applies to --kind random only")
    for name in ("x", "y", "z"):  # the syntax of the axes, before any work
        if getattr(args, name) is not None:
            parse_axis(getattr(args, name), name)
    if args.out is not None and not args.out.endswith(".vti"):
        raise ValueError(f"--out must end in .vti (a volume); got {args.out!r}")
    worker = env.world_size > 1  # a rank of torchrun or of --nproc-per-node: the directions exist already
    if files is not None and len(files) == 1:
        path = files[0]
        if Directions.load(path).ndim != 3:
            raise ValueError(f"{path} does not hold three directions; give three files, or make them with "
                             f"'lossvista directions --ndim 3'")
    elif worker:
        path = run.directions("stacked" if files else args.kind, 3)
        check_made(path)
    else:
        _, path = volume_directions(run, args.kind, files=files, seed=args.seed, epoch=args.epoch)
    code = compute(args, request_of(args, path, z=args.z))
    if args.path and not worker and args.shard is None and not args.merge:  # the path, once the volume is there
        split = "train" if args.split == "both" else args.split
        _, tfile = make_trajectory(run, path, split=split, max_samples=args.max_samples, sample_seed=args.sample_seed,
                                   epoch=args.epoch, device=args.device or "cpu", compile=args.compile)
        print(f"directions {shown_path(path)}, descent path in the volume {shown_path(tfile)}", file=sys.stderr)
    return code
