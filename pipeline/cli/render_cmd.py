"""`losscape render`: a run's pictures with ParaView (pvbatch + states) or pyvista/matplotlib."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import LosscapeError
from ._common import shown_path

PV_VIEWS = ("2d_contours", "3d_contours", "3d_mesh", "3d_surface")  # = pipeline.render.pvbatch.VIEWS
QUICKLOOK_VIEWS = ("2d_contours", "3d_surface", "3d_mesh")
PLANES = ("random", "pca")


def register(sub) -> None:
    p = sub.add_parser(
        "render",
        help="render a run's pictures (ParaView states via pvbatch, or pyvista)",
        description="Render <plane>_<view>.png from the run's surface_<plane>.vts and trajectory_<plane>.vtp: "
        "into RUN/renders with ParaView (the states in states/ loaded with the plugin of paraview_plugins/, "
        "under xvfb-run when there is no display), into RUN/renders/quicklook with pyvista and matplotlib.",
    )
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--backend", choices=["paraview", "pyvista"],
                   help="default: paraview when pvbatch is found, else pyvista (with a notice)")
    p.add_argument("--plane", choices=PLANES, action="append",
                   help="plane to render (repeatable; default: every plane the run has)")
    p.add_argument("--views", nargs="+", choices=PV_VIEWS, metavar="VIEW",
                   help=f"views ({', '.join(PV_VIEWS)}; default: all; pyvista has no 3d_contours)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/renders, or RUN/renders/quicklook for pyvista)")
    p.add_argument("--size", nargs=2, type=int, default=[1200, 900], metavar=("W", "H"),
                   help="picture size in pixels, ParaView only (default: %(default)s)")
    p.set_defaults(func=run)


def _planes(run_dir: Path, asked: list[str] | None) -> list[str]:
    if asked:
        return list(dict.fromkeys(asked))
    found = [k for k in PLANES if (run_dir / f"surface_{k}.vts").is_file()]
    if not found:
        raise LosscapeError(f"{str(run_dir)!r} has no surface_random.vts or surface_pca.vts; compute them first "
                            f"(losscape run, or losscape surface)")
    return found


def run(args: argparse.Namespace) -> int:
    from ..render import pvbatch
    from ..render.quicklook import render_run_quicklook

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise LosscapeError(f"run directory not found: {str(run_dir)!r}")
    planes = _planes(run_dir, args.plane)
    out_dir = Path(args.out) if args.out else None
    backend = args.backend
    if backend is None:
        backend = "paraview" if pvbatch.paraview_available() else "pyvista"
        if backend == "pyvista":
            print("losscape render: notice: ParaView (pvbatch, and xvfb-run without a display) not found; "
                  "rendering quick looks with pyvista instead", file=sys.stderr)
    if backend == "paraview" and not args.plane:
        # the states draw the descent path: by default, skip (with a notice) the planes that lack one
        ready = [p for p in planes if (run_dir / f"trajectory_{p}.vtp").is_file()]
        for p in planes:
            if p not in ready:
                print(f"losscape render: notice: the {p} plane has no trajectory_{p}.vtp (losscape trajectory "
                      f"--run RUN --directions RUN/directions/{p}.pt); not rendered", file=sys.stderr)
        planes = ready or planes  # none ready: render_paraview names what is missing
    if backend == "paraview":  # one pvbatch process for all planes
        written = pvbatch.render_paraview(run_dir, planes, args.views, out_dir or run_dir / "renders",
                                          size=tuple(args.size))
    else:
        views = [v for v in (args.views or QUICKLOOK_VIEWS) if v in QUICKLOOK_VIEWS]
        skipped = [v for v in (args.views or ()) if v not in QUICKLOOK_VIEWS]
        if skipped:
            print(f"losscape render: notice: the pyvista backend has no {', '.join(skipped)} view; skipped",
                  file=sys.stderr)
        written = [p for plane in planes for p in (render_run_quicklook(run_dir, plane, views, out_dir) if views else [])]
    for path in written:
        print(shown_path(path))
    return 0
