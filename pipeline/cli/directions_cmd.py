"""`lossvista directions`: random, PCA or interpolation directions for a run, saved as .pt."""
from __future__ import annotations

import argparse
import sys

def register(sub) -> None:
    p = sub.add_parser(
        "directions", help="make random, PCA, interpolation or Hessian directions for a run",
        description="Build the directions of a loss-landscape plane around a run's checkpoint and save them "
        "(with their metadata) as a .pt file. random: Gaussian directions normalized to the weights; "
        "pca: the top two (--ndim 3: three) principal components of the trajectory (checkpoints minus the "
        "centre), streamed from memory-mapped checkpoints; interp: the 1D direction from epoch --from to epoch --to; "
        "hessian: the top two eigenvectors of the Hessian of the run's loss on its train split (Lanczos; the plane "
        "where the loss curves most), unit vectors with a grid where their quadratic model reaches chance level, or "
        "filter-normalized (--norm filter) with the grid -1..1.")
    p.add_argument("--run", required=True, metavar="RUN", help="run directory (checkpoints/, run.json)")
    p.add_argument("--kind", required=True, metavar="KIND", help="random | pca | interp | hessian")
    p.add_argument("--norm", metavar="NORM", help="random: filter (default) | layer | weight | none; hessian: none "
                   "(default, unit eigenvectors) | filter")
    p.add_argument("--ignore", metavar="RULE", help="random, pca, hessian: biasbn (default; zero on tensors with "
                   "dim <= 1) "
                   "| none")
    p.add_argument("--dir-type", metavar="TYPE", help="weights | states (also BatchNorm running statistics); "
                   "default weights for random/pca, states for interp")
    p.add_argument("--seed", type=int, default=0, help="random: seed of the Gaussian directions; hessian: of the "
                   "Lanczos start vector (default 0)")
    p.add_argument("--ndim", type=int, help="random: 1, 2 or 3 directions; pca: 2 or 3 components "
                   "(default 2); 3 spans a volume and goes to RUN/directions/<kind>_3d.pt")
    p.add_argument("--epoch", type=int, metavar="E", help="random, pca, hessian: the centre checkpoint (default: the "
                   "last); pca uses the checkpoints up to E")
    p.add_argument("--from", dest="from_epoch", type=int, metavar="E1", help="interp: start epoch (default 0)")
    p.add_argument("--to", dest="to_epoch", type=int, metavar="E2", help="interp: end epoch (default: the last)")
    p.add_argument("--out", metavar="FILE.pt", help="output file (default: RUN/directions/<kind>.pt, "
                   "<kind>_3d.pt for three)")
    h = p.add_argument_group("hessian")
    h.add_argument("--tol", type=float, metavar="T", help="Lanczos residual of the eigenvectors relative to the "
                   "spectral radius (default 1e-3)")
    h.add_argument("--max-iter", type=int, metavar="N", help="Lanczos steps at most (default 200)")
    h.add_argument("--max-samples", type=int, metavar="N", help="a fixed seeded subset of N training samples "
                   "(default: all)")
    h.add_argument("--sample-seed", type=int, metavar="S", help="seed of that subset (default 0)")
    h.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=_directions)


def _only(args: argparse.Namespace, kinds: tuple[str, ...], *options: str) -> None:
    """Refuse options that do not apply to ``args.kind`` (rather than silently ignoring them)."""
    defaults = {"seed": 0}
    for opt in options:
        if getattr(args, opt) not in (None, defaults.get(opt)) and args.kind not in kinds:
            flag = "--" + {"from_epoch": "from", "to_epoch": "to"}.get(opt, opt).replace("_", "-")
            raise ValueError(f"{flag} applies to --kind {' or '.join(kinds)} only; got --kind {args.kind}")


def _directions(args: argparse.Namespace) -> int:
    from ..rundir import RunDir
    from ..workflow import DIRECTION_KINDS, make_directions

    if args.kind not in DIRECTION_KINDS:
        raise ValueError(f"--kind must be one of {', '.join(map(repr, DIRECTION_KINDS))}; got {args.kind!r}")
    _only(args, ("random", "hessian"), "norm", "seed")
    _only(args, ("random", "pca"), "ndim")
    _only(args, ("random", "pca", "hessian"), "ignore", "epoch")
    _only(args, ("interp",), "from_epoch", "to_epoch")
    _only(args, ("hessian",), "tol", "max_iter", "max_samples", "sample_seed", "device")
    hessian = None
    if args.kind == "hessian":
        from ..directions.hessian import HessianOptions

        given = {k: getattr(args, k) for k in ("tol", "max_iter", "max_samples", "sample_seed", "device")
                 if getattr(args, k) is not None}
        hessian = HessianOptions(**given)
    ndim = 2 if args.ndim is None else args.ndim
    d, out = make_directions(RunDir(args.run), args.kind, norm=args.norm, ignore=args.ignore, dir_type=args.dir_type,
                             seed=args.seed, ndim=ndim, epoch=args.epoch, from_epoch=args.from_epoch,
                             to_epoch=args.to_epoch, out=args.out, hessian=hessian)
    m = d.meta
    if args.kind == "random":
        summary = (f"random directions ({m['norm']}, ignore {m.get('ignore')}, seed {args.seed})"
                   + (f": cosine(x, y) = {m['cosine']:.2e}" if d.y is not None else "")
                   + (f", cosine(x, z) = {m['cosine_xz']:.2e}, cosine(y, z) = {m['cosine_yz']:.2e}"
                      if d.z is not None else ""))
    elif args.kind == "pca":
        ev = m["explained_variance"]
        summary = (f"PCA directions of {m.get('num_checkpoints', '?')} checkpoints: explained variance "
                   + " + ".join(f"{100 * v:.1f}%" for v in ev))
    elif args.kind == "hessian":
        ev, res = m["eigenvalues"], m["residuals"]
        summary = (f"Hessian directions ({m['norm']}, ignore {m['ignore']}): eigenvalues {ev[0]:.5g}, {ev[1]:.5g} "
                   f"(residuals {max(res):.1g} of the spectral radius, {m['hvps']} Hessian-vector products)")
    else:
        summary = (f"interpolation from epoch {m.get('from_epoch', '?')} to {m.get('to_epoch', '?')}: distance "
                   f"{m['distance']:.4g}")
    print(f"{summary} -> {out}", file=sys.stderr)
    print(out)
    return 0
