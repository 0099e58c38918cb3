"""`lossvista export`: the warped surface of a .vts as a PLY/OBJ/STL triangle mesh."""
from __future__ import annotations

import argparse

EPILOG = """\
examples:
  lossvista export runs/digits/surface_random.vts --format ply
  lossvista export surface_pca.vts --format stl --out pca.stl --scale 0.2 --log

Heights are z = scale * loss (or scale * log10(loss) with --log). Points whose loss is not
finite or not exact (valid == 0) are left out with their triangles; they are never written
as 0. PLY files also carry the raw value per vertex."""


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="write the warped surface as a PLY/OBJ/STL mesh",
        description="Triangulate the surface in FILE.vts, lift it to z = scale * loss and write it through meshio.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE.vts", help="surface file ('lossvista surface')")
    # validated by export_mesh (not argparse choices) so a bad value is a one-line error
    p.add_argument("--format", required=True, metavar="ply|obj|stl", help="mesh format")
    p.add_argument("--out", metavar="PATH", help="output file (default: FILE with the format's suffix)")
    p.add_argument("--scale", type=float, metavar="S",
                   help="height factor (default: the height range equals the larger side of the plane)")
    p.add_argument("--log", action="store_true", help="heights from log10 of the value (non-positive values dropped)")
    p.add_argument("--array", default="loss", metavar="NAME",
                   help="point array for the heights (default: %(default)s; e.g. test_loss, accuracy)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..vtkio import export_file

    print(export_file(args.file, args.format, out=args.out, array=args.array, scale=args.scale, log=args.log))
    return 0
