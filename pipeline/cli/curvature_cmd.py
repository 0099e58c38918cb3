"""`lossvista curvature`: Hessian eigenvalues and trace at a run's checkpoints -> RUN/curvature.json."""
from __future__ import annotations

import argparse
import sys

from ._common import add_epochs_option, parse_epochs, shown_path, stop_on_signals

EPILOG = """\
defaults: a seeded subset of 512 samples of the split, Lanczos to a residual of 1e-3 of the
spectral radius (at most 200 steps), 10 Hutchinson vectors for the trace, a density of 4
vectors x 40 steps at the last checkpoint: the 21 checkpoints of the digits demo in under
a minute on two CPU cores. --max-samples 0 takes the whole split. The method, its conventions
and tolerances: docs/curvature.md. Evaluated eagerly (no --compile): every step is a
Hessian-vector product, a second derivative of the loss, and a graph compiled by torch.compile
cannot be differentiated twice.

examples:
  lossvista curvature runs/demo
  lossvista curvature runs/demo --epochs 0,10,20 --max-samples 0 --tol 1e-4"""


def register(sub) -> None:
    p = sub.add_parser(
        "curvature", help="Hessian eigenvalues (sharpness) and trace at a run's checkpoints",
        description="At each checkpoint of RUN: the largest and the smallest eigenvalue of the Hessian of the "
        "run's loss (one Lanczos run with full reorthogonalisation finds both), and its trace (Hutchinson, with "
        "its standard error); at the last one also the spectral density (stochastic Lanczos quadrature). Writes "
        "RUN/curvature.json and the pictures RUN/renders/curvature_sharpness.png (lambda_max and the trace "
        "against the epoch) and curvature_density.png.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="run directory (checkpoints/, run.json)")
    add_epochs_option(p, "checkpoints to measure (default: all)")
    p.add_argument("--split", choices=["train", "test"], default="train", help="data split (default: %(default)s)")
    p.add_argument("--max-samples", type=int, default=512, metavar="N",
                   help="a fixed seeded subset of N samples (default: %(default)s; 0: the whole split)")
    p.add_argument("--sample-seed", type=int, default=0, metavar="S", help="seed of that subset (default: 0)")
    p.add_argument("--ignore", choices=["biasbn", "none"], default="biasbn",
                   help="parameters: biasbn leaves out biases and BatchNorm, as the directions do (default: "
                   "%(default)s)")
    p.add_argument("--tol", type=float, default=1e-3,
                   help="Lanczos tolerance: the eigenvalues' estimated error relative to the spectral radius "
                   "(default: %(default)s)")
    p.add_argument("--max-iter", type=int, default=200, metavar="N",
                   help="Lanczos steps at most per checkpoint (default: %(default)s)")
    p.add_argument("--trace-samples", type=int, default=10, metavar="N",
                   help="Hutchinson vectors per checkpoint, 0 (no trace) or at least 2 (default: %(default)s)")
    p.add_argument("--density-vectors", type=int, default=4, metavar="N",
                   help="start vectors of the spectral density at the last checkpoint (default: %(default)s; 0: none)")
    p.add_argument("--density-steps", type=int, default=40, metavar="N",
                   help="Lanczos steps per density vector (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random vectors (default: 0)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out", metavar="FILE.json", help="output (default: RUN/curvature.json)")
    p.add_argument("--no-pictures", dest="pictures", action="store_false", help="write curvature.json only")
    p.set_defaults(func=_curvature)


def _curvature(args: argparse.Namespace) -> int:
    from ..curvature.stage import CurvatureOptions, curvature_run

    options = CurvatureOptions(
        epochs=parse_epochs(args.epochs), split=args.split,
        max_samples=args.max_samples or None, sample_seed=args.sample_seed, ignore=args.ignore, tol=args.tol,
        max_iter=args.max_iter, trace_samples=args.trace_samples, density_vectors=args.density_vectors,
        density_steps=args.density_steps, seed=args.seed, device=args.device)
    with stop_on_signals():
        record, files = curvature_run(args.run, options, out=args.out, pictures=args.pictures,
                                      notice=lambda m: print(f"lossvista curvature: warning: {m}", file=sys.stderr))
    rows = [r for r in record["checkpoints"] if r.get("lambda_max") is not None]
    unit = record["unit"]
    print(f"curvature of {record['model']} ({record['parameters']:,} parameters, {record['samples']} samples of "
          f"the {record['split']} split):", file=sys.stderr)
    for r in rows:
        trace = f", trace {r['trace']:.4g} ± {r['trace_stderr']:.2g}" if r.get("trace") is not None else ""
        rough = "" if r["converged"] else f" (not converged: estimated error {max(r['error_max'], r['error_min']):.2g})"
        print(f"  {unit} {r['epoch']:>4}: lambda_max {r['lambda_max']:.5g}, lambda_min {r['lambda_min']:.4g}"
              f"{trace}  [{r['hvps']} Hessian-vector products]{rough}", file=sys.stderr)
    for path in files[1:]:
        print(f"  picture: {shown_path(path)}", file=sys.stderr)
    print(files[0])
    return 0
