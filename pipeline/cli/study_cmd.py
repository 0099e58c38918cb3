"""`lossvista study`: several models trained alike, their landscapes computed alike, compared."""
from __future__ import annotations

import argparse
import sys
import time

from ._common import add_compile_option, shown_path, stop_on_signals

EPILOG = """\
examples:
  lossvista study                                  # the bundled 'fashion' study (make study)
  lossvista study --preset tiny --out runs/tiny    # two models on digits, in seconds
  lossvista study --preset mystudy.toml --out runs/mine

Each model's run goes to OUT/<model> (the run directory of 'lossvista run'); OUT/study.json
records the finished ones, so a rerun after an interruption continues where it stopped
(training from its last checkpoint, surfaces from their finished chunks). Then OUT gets
compare_<plane>.md/.json/.png ('lossvista compare' across the models) and
side_by_side_<plane>_<view>.png (the same pictures of every model in one row)."""


def register(sub) -> None:
    p = sub.add_parser(
        "study", help="train several models alike and compare their landscapes (resumable)",
        description="Train every model of a study preset on the same data, compute their random and PCA "
        "landscapes on the same samples, analyse them, and compare them side by side.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="fashion", metavar="NAME|FILE.toml",
                   help="a bundled study (fashion, tiny) or a study TOML file (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", help="study directory (default: runs/study-<name>)")
    p.add_argument("--backend", choices=["auto", "paraview", "pyvista", "none"],
                   help="pictures: as 'lossvista run --backend' (default: the preset's, else auto)")
    add_compile_option(p, default=None)
    p.set_defaults(func=_study)


def _study(args: argparse.Namespace) -> int:
    import dataclasses

    from ..study import load_study, run_study

    study = load_study(args.preset)
    if args.backend:
        study = dataclasses.replace(study, options=dataclasses.replace(study.options, backend=args.backend))
    if args.compile:
        study = dataclasses.replace(study, options=dataclasses.replace(study.options, compile=args.compile))
    out = args.out or f"runs/study-{study.name}"
    t0 = time.perf_counter()
    with stop_on_signals():
        result = run_study(study, out, notice=lambda m: print(f"lossvista study: {m}", file=sys.stderr))
    err = sys.stderr
    print(f"\nlossvista study finished in {time.perf_counter() - t0:.0f} s (all sessions: "
          f"{result.record['wall_seconds']:.0f} s): {shown_path(result.root)}/", file=err)
    for plane, files in result.comparisons.items():
        print(f"  {plane:6s} {shown_path(files['markdown'])}", file=err)
    for picture in result.pictures:
        print(f"  {shown_path(picture)}", file=err)
    print(shown_path(result.root))
    return 0
