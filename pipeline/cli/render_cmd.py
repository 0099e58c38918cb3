"""`lossvista render`: a run's pictures with ParaView (pvbatch + states) or pyvista/matplotlib."""
from __future__ import annotations

import argparse
import sys

from ..display import ANIMATIONS, HESSIAN_VIEWS, PLANES, VIEWS, VOLUME_VIEWS
from ._common import shown_path


def register(sub) -> None:
    p = sub.add_parser(
        "render",
        help="render a run's pictures (ParaView states via pvbatch, or pyvista)",
        description="Render <plane>_<view>.png from the run's surface_<plane>.vts and trajectory_<plane>.vtp "
        "(and volume_<kind>_<view>.png from volume_<kind>.vti and its path): into RUN/renders with ParaView (the "
        "package's saved states loaded with its plugin, under xvfb-run when there is no display), into "
        "RUN/renders/quicklook with pyvista and matplotlib.",
    )
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--backend", choices=["paraview", "pyvista"],
                   help="default: paraview when pvbatch is found, else pyvista (with a notice)")
    p.add_argument("--plane", choices=[*PLANES, "volume_random", "volume_pca"], action="append",
                   help="plane (or volume_random, volume_pca) to render (repeatable; default: every plane and "
                   "volume the run has)")
    p.add_argument("--views", nargs="+", choices=[*VIEWS, *HESSIAN_VIEWS, *VOLUME_VIEWS], metavar="VIEW",
                   help=f"views of a plane ({', '.join(VIEWS + HESSIAN_VIEWS)}; default: all, eig_ratio where the "
                   f"surface has curvature maps (lossvista surface --hessian); pyvista has no 3d_contours) and of a "
                   f"volume ({', '.join(VOLUME_VIEWS)}, ParaView only)")
    p.add_argument("--animation", choices=ANIMATIONS, action="append",
                   help="ParaView's animations of lossvista evolve: landscape (the planes around the checkpoints, "
                   "RUN/evolve/landscape.gif) and path (a marker along the descent path over the PCA surface, "
                   "path_pca.gif), frames in RUN/evolve/frames/ (repeatable; alone: only the animations; default: "
                   "with every plane, those the run has)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/renders, or RUN/renders/quicklook for pyvista)")
    p.add_argument("--size", nargs=2, type=int, default=[1200, 900], metavar=("W", "H"),
                   help="picture size in pixels, ParaView only (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..rundir import RunDir
    from ..workflow import render_pictures

    planes = () if args.animation and not (args.plane or args.views) else args.plane
    written = render_pictures(RunDir(args.run), backend=args.backend or "auto", planes=planes, views=args.views,
                              out=args.out, size=tuple(args.size), animations=args.animation,
                              notice=lambda m: print(f"lossvista render: notice: {m}", file=sys.stderr))
    for path in written:
        print(shown_path(path))
    return 0
