"""`lossvista analyze`: critical points, persistence and basins of a surface (or volume) file."""
from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
examples:
  lossvista analyze runs/digits/surface_random.vts
  lossvista analyze surface_pca.vts --persistence 0.05 --relative
  lossvista analyze surface_random.vts --array test_loss
  lossvista analyze runs/digits/volume_pca.vti     # minima, 1-saddles, 2-saddles, maxima

Writes beside FILE: critical_points_<kind>.vtp (CriticalType in TTK codes 0 min, 1 saddle,
3 max, 4 degenerate; persistence; loss; vertex_id = i + nx*j), topology_<kind>.json, and
adds the int32 array 'basin' (-1 where none) to FILE. <kind> comes from the file name
surface_<kind>.vts (else the metadata's direction kind); a volume volume_<kind>.vti gives
topology_volume_<kind>.json and critical_points_volume_<kind>.vtp (TTK's 3D codes: 0 min,
1 1-saddle, 2 2-saddle, 3 max, 4 degenerate). Conventions: docs/topology.md;
basins and widths: 'python -c "import pipeline.topology; help(pipeline.topology)"'."""


def register(sub) -> None:
    p = sub.add_parser(
        "analyze", help="critical points, persistence pairs and basins of a surface",
        description="Classify the PL critical points of the surface's loss, pair them by persistence, "
        "simplify below a threshold and label the basins of the surviving minima.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE.vts", help="surface file ('lossvista surface') or volume FILE.vti "
                   "('lossvista volume')")
    p.add_argument("--persistence", type=float, default=0.0, metavar="P",
                   help="keep features whose persistence exceeds P (loss units; default: %(default)s, "
                   "which drops only ties)")
    p.add_argument("--relative", action="store_true", help="P is a fraction (0..1) of the value range")
    p.add_argument("--array", default="loss", metavar="NAME",
                   help="point array to analyze (default: %(default)s; e.g. test_loss)")
    p.add_argument("--delta", type=float, metavar="D",
                   help="width of each minimum at level value + D (default: 5%% of the value range)")
    p.add_argument("--max-rows", type=int, default=10, metavar="N", help="minima listed in the table (default: 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analyze import analyze_file

    if args.max_rows < 0:
        raise ValueError(f"--max-rows must be >= 0; got {args.max_rows}")
    topo, files = analyze_file(Path(args.file), array=args.array, persistence=args.persistence,
                               relative=args.relative, delta=args.delta)
    print(summary_table(topo, args.max_rows))
    for f in (files.critical_points, files.topology, files.surface):
        print(f"wrote {f}")
    return 0


def summary_table(topo, max_rows: int = 10) -> str:
    """A short plain-text report: counts and the most persistent minima."""
    c, raw = topo.counts(), topo.counts(simplified=False)
    lo, hi = topo.value_range
    kinds = ("minimum", "saddle", "degenerate", "maximum") if topo.ndim == 2 else (
        "minimum", "1-saddle", "2-saddle", "degenerate", "maximum")
    short = {"minimum": "min", "maximum": "max"}
    names = ("alpha", "beta", "gamma")[:topo.ndim]
    lines = [f"{topo.meta.get('array', 'values')} on a {'x'.join(map(str, topo.shape))} "
             f"{'grid' if topo.ndim == 2 else 'lattice'}, range [{lo:.4g}, {hi:.4g}]; persistence threshold "
             f"{topo.threshold:.4g}",
             "critical points: " + ", ".join(f"{c[k]} {short.get(k, k)}" for k in kinds)
             + " (before simplification: " + ", ".join(str(raw[k]) for k in kinds) + ")",
             "",
             f"{'basin':>5} " + " ".join(f"{n:>8}" for n in names) + f" {'value':>10} {'persistence':>11} "
             f"{'basin %':>7} {'width':>8} {'curvature (min, max)':>22}"]
    m = topo.minima
    for k in range(min(len(m), max_rows)):
        cu = m.curvature[k]
        lines.append(f"{k:>5} " + " ".join(f"{a:>8.3g}" for a in m.coords[k]) + f" {m.value[k]:>10.4g} "
                     f"{m.persistence[k]:>11.4g} {100 * m.basin_fraction[k]:>7.1f} {m.width_diameter[k]:>8.3g} "
                     f"{cu[0]:>10.3g} {cu[-1]:>11.3g}")
    if len(m) > max_rows:
        lines.append(f"... {len(m) - max_rows} more minima in the JSON file")
    return "\n".join(lines)
