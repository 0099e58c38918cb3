"""`lossvista evolve`: the landscape along training, the plane around several checkpoints."""
from __future__ import annotations

import argparse
import sys

from ..errors import ParameterError
from ._common import add_compile_option, add_epochs_option, parse_epochs, shown_path, stop_on_signals
from .surface_cmd import allow_negative_specs

EPILOG = """\
examples:
  lossvista evolve runs/demo                          # 6 checkpoints from the first to the last, 31 x 31
  lossvista evolve runs/demo --epochs 0 1 2 5 10 --x -0.5:0.5:41 --y -0.5:0.5:41
  lossvista evolve runs/demo --no-pictures            # the surfaces, their analysis and the .pvd only

For each checkpoint theta_e: the random plane with the same seed (the run's random plane's, else 0),
normalized to theta_e's filters, evaluated around theta_e and analysed. Files in RUN/evolve/:
surface_epoch_<eee>.vts, topology_epoch_<eee>.json, landscape.pvd (a time series ParaView plays),
evolution.json and evolution.png (the central basin and the critical points against epoch), and
ParaView's animations (states/animation_*.pvsm played by pvbatch, frames in frames/):
landscape.gif and, when the run has its PCA plane, path_pca.gif (a marker travelling along the
descent path over the PCA surface, from path_pca.pvd). Without ParaView (or --backend pyvista)
the matplotlib quick looks of both go to quicklook/ instead. An interrupted run continues
where it stopped."""


def register(sub) -> None:
    p = sub.add_parser(
        "evolve", help="the landscape along training: the plane around several checkpoints, as a time series",
        description="Evaluate the filter-normalized random plane around several checkpoints (the same seed, each "
        "normalized to its checkpoint's filters), analyse each, and write them as a time series with plots and "
        "animations into RUN/evolve/.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    allow_negative_specs(p)
    p.add_argument("run", metavar="RUN", help="run directory (checkpoints/, run.json)")
    add_epochs_option(p, "checkpoints to centre planes on (default: 6 spread from the first to the last)")
    p.add_argument("--x", metavar="MIN:MAX:N", help="first axis of every plane (default -1:1:31)")
    p.add_argument("--y", metavar="MIN:MAX:N", help="second axis (default as --x)")
    p.add_argument("--seed", type=int, help="seed of the directions (default: the run's random plane's, else 0)")
    p.add_argument("--split", choices=["train", "test"], default="train", help="data split (default: %(default)s)")
    p.add_argument("--max-samples", type=int, metavar="N", help="evaluate a fixed seeded subset of N samples")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    add_compile_option(p)
    p.add_argument("--persistence", type=float, default=0.01, metavar="P",
                   help="relative persistence threshold of each plane's analysis (default: %(default)s)")
    p.add_argument("--delta", type=float, default=0.1, metavar="D",
                   help="the central basin's width is taken at its minimum + D, in loss units, the same D at every "
                   "epoch (default: %(default)s)")
    p.add_argument("--backend", choices=["paraview", "pyvista"],
                   help="animations: paraview (pvbatch plays the time series) or pyvista (the matplotlib quick "
                   "looks in RUN/evolve/quicklook/); default: paraview when pvbatch is found, else pyvista (with a "
                   "notice)")
    p.add_argument("--size", nargs=2, type=int, default=[960, 720], metavar=("W", "H"),
                   help="frame size in pixels of ParaView's animations (default: %(default)s)")
    p.add_argument("--no-pictures", dest="pictures", action="store_false",
                   help="no evolution.png, GIFs or frames (the surfaces, analysis, .pvd and evolution.json only)")
    p.set_defaults(func=_evolve)


def _evolve(args: argparse.Namespace) -> int:
    from ..datamodel import Grid, parse_axis
    from ..engine import EvalConfig
    from ..render.animate import landscape_animation, path_animation, plot_evolution
    from ..rundir import RunDir
    from ..workflow.evolve import EvolveOptions, evolve

    if min(args.size) < 64:  # before any plane is computed, not when the animation is played
        raise ParameterError(f"--size must be at least 64 x 64 pixels; got {args.size[0]} {args.size[1]}")
    grid = None
    if args.x is not None or args.y is not None:
        x = parse_axis(args.x or args.y, "x")
        y = parse_axis(args.y or args.x, "y")
        grid = Grid(*x, *y)
    engine = {"device": args.device, "max_samples": args.max_samples, "compile": args.compile}
    options = EvolveOptions(epochs=parse_epochs(args.epochs), grid=grid, seed=args.seed,
                            split=args.split, persistence=args.persistence, delta=args.delta,
                            eval=EvalConfig(**{k: v for k, v in engine.items() if v is not None}))
    with stop_on_signals():  # each finished plane is kept: a rerun goes on from there
        result = evolve(RunDir(args.run), options)
    err = sys.stderr
    print(f"planes around {len(result.epochs)} checkpoints ({', '.join(map(str, result.epochs))}):", file=err)
    for r in result.rows:
        b, n = r["central_basin"], r["counts"]["minimum"]
        print(f"  {result.unit} {r['epoch']:>4}: {result.loss_name} {r['centre_loss']:.4g}, "
              f"{n} minim{'um' if n == 1 else 'a'}, central basin width {b['width_diameter']:.3g} at "
              f"+{options.delta:g}", file=err)
    files = [result.pvd, result.summary]
    if args.pictures:
        from ..render import pvbatch

        run = RunDir(args.run)
        files.append(plot_evolution(result.rows, result.pvd.parent / "evolution.png", delta=options.delta,
                                    unit=result.unit, loss_name=result.loss_name))
        if result.markers is None:
            print("  no PCA plane in the run: the path's animation is left out (lossvista run makes it)", file=err)
        paraview = args.backend == "paraview" or (args.backend is None and pvbatch.paraview_available())
        if args.backend is None and not paraview:
            print("lossvista evolve: notice: ParaView (pvbatch, and xvfb-run without a display) not found: writing "
                  "the matplotlib quick looks of the animations to RUN/evolve/quicklook/", file=err)
        if paraview:
            names = ["landscape"] + (["path"] if result.markers is not None else [])
            files += pvbatch.render_animations(run.root, names, size=tuple(args.size))
        else:
            files.append(landscape_animation(run)[1])
            if result.markers is not None:
                files.append(path_animation(run, "pca")[1])
    for f in files:
        print(f"  {shown_path(f)}", file=err)
    return 0
