"""`lossvista paraview`: open a run (or a run's saved state) in the ParaView GUI."""
from __future__ import annotations

import argparse

from ..display import HESSIAN_VIEWS, PLANES, VIEWS

EPILOG = """\
examples:
  lossvista paraview runs/demo                          # the random plane's 3d_surface
  lossvista paraview runs/demo --plane pca --view 2d_contours
  lossvista paraview runs/demo/states/pca_3d_surface.pvsm   # a state 'lossvista render' saved
  xvfb-run -a lossvista paraview runs/demo              # no screen: a virtual one
  lossvista paraview runs/demo --dry-run                # print the command instead

ParaView starts with the lossvista plugin loaded (Filters > Loss Landscape; with the shim that
Debian's ParaView 5.11 needs on Python 3.11) and the view loaded on the plane's files, fitted
as 'lossvista render' fits its pictures, alone in its layout; no dialog is asked. The command
ends when ParaView is closed. 'lossvista render' also saves each view it draws as
RUN/states/<plane>_<view>.pvsm, its data files relative to the state, so that it opens after
the run directory has moved (in the GUI: File > Load State, then 'Search files under
specified directory', whose default is the state's folder; the plugin must be loaded first)."""


def register(sub) -> None:
    p = sub.add_parser(
        "paraview", help="open a run's view in the ParaView GUI, plugin and state loaded",
        description="Start the ParaView GUI (Debian's paraview) on a run directory's plane: the package's "
        "state of the view loaded on surface_<plane>.vts and trajectory_<plane>.vtp, or a state file .pvsm "
        "saved by 'lossvista render'. It needs a display (DISPLAY); without one, run it under xvfb-run.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="RUN|STATE.pvsm",
                   help="run directory, or a state file RUN/states/<plane>_<view>.pvsm")
    p.add_argument("--plane", choices=PLANES,
                   help="plane of a run (default: the first of random, pca, hessian that it has computed)")
    p.add_argument("--view", choices=VIEWS + HESSIAN_VIEWS,
                   help="view of a run (default: 3d_surface; eig_ratio needs a surface with curvature maps)")
    p.add_argument("--paraview", metavar="PATH", help="the ParaView GUI executable (default: paraview on PATH)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the command (and its environment variable) instead of starting ParaView")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..render.gui import open_paraview, paraview_launch

    launch = paraview_launch(args.target, plane=args.plane, view=args.view, paraview=args.paraview,
                             check_display=not args.dry_run)
    if args.dry_run:
        print(launch.shell())
        return 0
    open_paraview(launch)
