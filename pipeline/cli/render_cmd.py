"""`lossvista render`: a run's pictures with ParaView (pvbatch + states) or pyvista/matplotlib."""
from __future__ import annotations

import argparse
import sys

from ..display import HESSIAN_VIEWS, PLANES, VIEWS
from ._common import shown_path


def register(sub) -> None:
    p = sub.add_parser(
        "render",
        help="render a run's pictures (ParaView states via pvbatch, or pyvista)",
        description="Render <plane>_<view>.png from the run's surface_<plane>.vts and trajectory_<plane>.vtp: "
        "into RUN/renders with ParaView (the package's saved states loaded with its plugin, under xvfb-run "
        "when there is no display), into RUN/renders/quicklook with pyvista and matplotlib.",
    )
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--backend", choices=["paraview", "pyvista"],
                   help="default: paraview when pvbatch is found, else pyvista (with a notice)")
    p.add_argument("--plane", choices=PLANES, action="append",
                   help="plane to render (repeatable; default: every plane the run has)")
    p.add_argument("--views", nargs="+", choices=VIEWS + HESSIAN_VIEWS, metavar="VIEW",
                   help=f"views ({', '.join(VIEWS + HESSIAN_VIEWS)}; default: all, eig_ratio where the surface has "
                   f"curvature maps (lossvista surface --hessian); pyvista has no 3d_contours)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/renders, or RUN/renders/quicklook for pyvista)")
    p.add_argument("--size", nargs=2, type=int, default=[1200, 900], metavar=("W", "H"),
                   help="picture size in pixels, ParaView only (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..rundir import RunDir
    from ..workflow import render_pictures

    written = render_pictures(RunDir(args.run), backend=args.backend or "auto", planes=args.plane, views=args.views,
                              out=args.out, size=tuple(args.size),
                              notice=lambda m: print(f"lossvista render: notice: {m}", file=sys.stderr))
    for path in written:
        print(shown_path(path))
    return 0
