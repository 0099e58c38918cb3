"""`lossvista compare`: the landscapes of several runs on the same kind of plane, side by side."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

EPILOG = """\
examples:
  lossvista compare runs/resnet56 runs/resnet56-noshort
  lossvista compare runs/a runs/b runs/c --plane pca --cap 10 --out reports/
  lossvista compare runs/a/surface_random.vts runs/b/surface_random.vts --persistence 0.02
  lossvista compare runs/a runs/b --plane volume_random          # their volumes (lossvista volume)

Each run's RUN/surface_<plane>.vts is analysed afresh with the same settings. Reported per
run: minima whose persistence exceeds the threshold and their persistence, the global
minimum's basin (share of the plane), width (diameter of the sublevel set at min + delta)
and curvature (Hessian eigenvalues of a local quadratic fit), and the share of the plane
that diverges (loss above the cap, non-finite or invalid). Writes compare_<plane>.md,
compare_<plane>.json and compare_<plane>.png (persistence diagrams) into --out."""


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare the landscapes of several runs (table, JSON, persistence diagrams)",
        description="Compare runs on the same kind of plane: number and persistence of minima, basin, "
        "width and curvature of the global minimum, and how much of the plane diverges.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or surface .vts, volume .vti files), "
                   "two or more")
    p.add_argument("--plane", metavar="random|pca|volume_random|volume_pca",
                   help="which plane's surface_<plane>.vts (or volume_<kind>.vti) to compare (default: the first "
                   "file's, or random for run directories)")
    p.add_argument("--persistence", type=float, metavar="P",
                   help="persistence threshold in loss units (default: 1%% of each run's loss range)")
    p.add_argument("--relative", action="store_true", help="P is a fraction (0..1) of each run's loss range")
    p.add_argument("--cap", metavar="C|Nx",
                   help="divergence cap: a loss value C, or N times each run's reference loss "
                   "max(centre loss, ln(classes)) as 'Nx' (default: 5x, as in the pictures)")
    p.add_argument("--delta", type=float, default=0.1, metavar="D",
                   help="width of the global minimum at loss min + D (default: %(default)s)")
    p.add_argument("--out", default=".", metavar="DIR", help="output directory (default: the current one)")
    p.set_defaults(func=run)


def parse_cap(text: str | None) -> tuple[float | None, float]:
    """``'10'`` -> (10.0, default factor); ``'5x'`` -> (None, 5.0); None -> (None, 5.0)."""
    if text is None:
        return None, 5.0
    raw = text.strip().lower()
    try:
        value = float(raw[:-1] if raw.endswith("x") else raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0) or (raw.endswith("x") and value < 1):
        raise ValueError(f"--cap must be a positive loss value (e.g. 10) or a factor of at least 1 like '5x'; got {text!r}")
    return (None, value) if raw.endswith("x") else (value, 5.0)


def run(args: argparse.Namespace) -> int:
    from ..compare import compare_runs, comparison_markdown, write_comparison

    cap, factor = parse_cap(args.cap)
    summaries = compare_runs(args.runs, plane=args.plane, persistence=args.persistence, relative=args.relative,
                             cap=cap, cap_factor=factor, delta=args.delta)
    files = write_comparison(summaries, Path(args.out))
    print(comparison_markdown(summaries))
    for f in files.values():
        print(f"wrote {f}")
    return 0
