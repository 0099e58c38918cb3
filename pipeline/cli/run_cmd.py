"""`lossvista run`: the whole pipeline on a preset (train -> directions -> surfaces -> analysis -> pictures)."""
from __future__ import annotations

import argparse
import shlex
import sys
import time

from ..display import PLANES
from ._common import add_compile_option, add_train_options, run_config_from_args, shown_path, stop_on_signals


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="the whole pipeline: train, directions, surfaces, trajectory, analysis, pictures",
        description="Train the preset's model (or resume it), build random and PCA directions, evaluate both "
        "loss surfaces, project the descent path, find critical points, and render the pictures, all into "
        "RUN (default runs/<preset>). A RUN recorded from your own training ('lossvista import', "
        "pipeline.Recorder) is not trained: every stage after training runs on its checkpoints, data and "
        "loss. Rerunning continues where an interrupted run stopped.")
    add_train_options(p)
    p.add_argument("--out", metavar="RUN", help="run directory (default: runs/<preset>)")
    p.add_argument("--planes", default="random,pca", metavar="LIST",
                   help="planes to compute, comma-separated: random, pca, hessian (the top two eigenvectors of the "
                   "Hessian at the final weights; see docs/curvature.md) (default: %(default)s)")
    p.add_argument("--grid", metavar="N", type=int,
                   help="points per axis of both planes (odd, so 0 is a grid point; default: the preset's random grid, "
                   "51 for digits, 25 for cifar10-resnet50 and cifar10-vgg11)")
    p.add_argument("--backend", choices=["auto", "paraview", "pyvista", "none"], default="auto",
                   help="pictures: auto = ParaView views when pvbatch is found plus pyvista/matplotlib quick looks "
                   "(default: %(default)s)")
    p.add_argument("--max-samples", type=int, metavar="N", help="evaluate on a fixed seeded subset of N samples")
    p.add_argument("--surface-device", metavar="DEV", help="device of the surface evaluation (default: cuda when "
                   "available)")
    p.add_argument("--precision", choices=["fp32", "tf32", "bf16", "fp16"], default="fp32",
                   help="precision of the surface evaluation (default: %(default)s)")
    add_compile_option(p)
    p.add_argument("--persistence", type=float, default=0.01,
                   help="analysis: keep critical points whose persistence exceeds this fraction of the loss range "
                   "(default: %(default)s)")
    p.add_argument("--restart", action="store_true", help="discard an existing training in RUN and start over")
    p.add_argument("--no-page", dest="page", action="store_false",
                   help="do not write RUN/index.html (the run as one interactive page)")
    p.add_argument("--volume", action="store_true",
                   help="also the random and PCA planes' volumes (a third direction; 21^3 = 9,261 points each, "
                   "nearly twice the points of both 51 x 51 planes together): RUN/volume_<plane>.vti, its path, "
                   "analysis and ParaView views")
    p.add_argument("--volume-grid", dest="volume_points", type=int, default=21, metavar="N",
                   help="points per axis of the volumes (default: %(default)s)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..workflow import RunOptions, run_pipeline

    cfg = run_config_from_args(args)
    if args.grid is not None:
        cfg = cfg.with_grid_points(args.grid)
    options = RunOptions(planes=tuple(p.strip() for p in args.planes.split(",") if p.strip()), backend=args.backend,
                         max_samples=args.max_samples, device=args.surface_device, precision=args.precision,
                         persistence=args.persistence, restart_training=args.restart,
                         pca_points=cfg.random_grid.nx | 1, page=args.page, compile=args.compile, volume=args.volume,
                         volume_points=args.volume_points)
    out = args.out or f"runs/{cfg.name}"
    t0 = time.perf_counter()
    with stop_on_signals():
        result = run_pipeline(cfg, out, options,
                              notice=lambda m: print(f"lossvista run: notice: {m}", file=sys.stderr))
    _print_summary(result, time.perf_counter() - t0)
    return 0


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _print_summary(result, seconds: float) -> None:
    err = sys.stderr
    acc = result.summary.get("test_accuracy")
    what = f"test accuracy {acc:.3f}" if acc is not None else "your training's checkpoints"
    print(f"\nlossvista run finished in {seconds:.0f} s: {result.root}/  ({what})", file=err)
    for plane in PLANES:
        s = result.summary.get(plane)
        if not s:
            continue
        ev = s.get("explained_variance")
        extra = f", PCs explain {100 * ev[0]:.1f}% + {100 * ev[1]:.1f}%" if ev else ""
        if s.get("eigenvalues"):
            extra += f", Hessian eigenvalues {s['eigenvalues'][0]:.4g} and {s['eigenvalues'][1]:.4g}"
        speed = f", {s['points_per_second']} points/s" if s.get("points_per_second") else ""
        counts = ", ".join(_count(s[key], one, many) for key, one, many in (
            ("minima", "minimum", "minima"), ("saddles", "saddle", "saddles"), ("maxima", "maximum", "maxima")))
        print(f"  {plane:7s} plane {s['grid']}{speed}: {counts} above the persistence threshold{extra}",
              file=err)
        for path in result.files.get(plane, []):
            print(f"    {shown_path(path)}", file=err)
    for plane in ("random", "pca"):
        s = result.summary.get(f"volume_{plane}")
        if not s:
            continue
        speed = f", {s['points_per_second']} points/s" if s.get("points_per_second") else ""
        counts = ", ".join(f"{n} {k}" for k, n in s["counts"].items() if n)
        print(f"  {plane:6s} volume {s['grid']}{speed}: {counts} above the persistence threshold", file=err)
        for path in result.files.get(f"volume_{plane}", []):
            print(f"    {shown_path(path)}", file=err)
    if result.pictures:
        print(f"  pictures ({len(result.pictures)}):", file=err)
        for path in result.pictures:
            print(f"    {shown_path(path)}", file=err)
    for path in result.files.get("page", []):
        print(f"  page (opens in any browser, offline): {shown_path(path)}", file=err)
    from ..rundir import RunDir

    drawn = [p for p in PLANES if RunDir(result.root).surface(p).is_file()]
    if drawn:  # the first is what 'lossvista paraview RUN' opens
        others = f" [--plane {'|'.join(drawn[1:])}]" if len(drawn) > 1 else ""
        shown = shlex.quote(str(shown_path(result.root)))  # pastes into a shell, spaces and all
        print(f"  open in ParaView: lossvista paraview {shown}{others} (docs/paraview.md)", file=err)
    print(result.root)
