"""`lossvista export`: the warped surface of a .vts as a PLY/OBJ/STL mesh, or a run as one HTML page."""
from __future__ import annotations

import argparse

EPILOG = """\
examples:
  lossvista export runs/demo --format html                    # runs/demo/index.html
  lossvista export runs/demo --format html --out demo.html
  lossvista export runs/digits/surface_random.vts --format ply
  lossvista export runs/demo/surface_pca.vts --out pca.obj         # the format from the suffix
  lossvista export surface_pca.vts --format stl --out pca.stl --scale 0.2 --log

html: one self-contained page (plotly.js inline, nothing loaded from the network) with every
plane of the run in 3D and as 2D contour lines, the descent path, the critical points, the
values under the cursor and the run's summary; from a single .vts, that plane alone.

Meshes: heights are z = scale * loss (or scale * log10(loss) with --log). Points whose loss is
not finite or not exact (valid == 0) are left out with their triangles; they are never written
as 0. PLY files also carry the raw value per vertex."""


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="write a run as one interactive HTML page, or a surface as a PLY/OBJ/STL mesh",
        description="html: the run directory RUN (or one surface FILE.vts) as a self-contained interactive page. "
        "ply, obj, stl: triangulate the surface in FILE.vts, lift it to z = scale * loss and write it through meshio.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="RUN|FILE.vts", help="run directory (html) or surface file ('lossvista surface')")
    # validated by the library (not argparse choices) so a bad value is a one-line error
    p.add_argument("--format", metavar="html|ply|obj|stl",
                   help="output format (default: the suffix of --out, else html for a run directory)")
    p.add_argument("--out", metavar="PATH",
                   help="output file (default: RUN/index.html, or FILE with the format's suffix)")
    p.add_argument("--scale", type=float, metavar="S",
                   help="meshes: height factor (default: the height range equals the larger side of the plane)")
    p.add_argument("--log", action="store_true",
                   help="meshes: heights from log10 of the value (non-positive values dropped)")
    p.add_argument("--array", default="loss", metavar="NAME",
                   help="point array for the heights of a mesh, or the page's first colouring "
                   "(default: %(default)s; e.g. test_loss, accuracy)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..workflow import export

    print(export(args.file, args.format, out=args.out, array=args.array, scale=args.scale, log=args.log))
    return 0
