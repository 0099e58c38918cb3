#!/usr/bin/env python
"""Scale-out and early exit of ``lossvista surface`` on this machine (issue 6 "Must show").

1. **1 vs 2 processes.** The same digits-CNN plane (``--grid``, whole training split, fp32) by
   one process and by ``torchrun --standalone --nproc-per-node 2`` (gloo), one thread per
   process (``OMP_NUM_THREADS=1``). Reports the command's wall time (imports, data, rendezvous
   included) and the evaluation's own time (the ``evaluated N points in T s`` line), their
   speedups, and checks that both grids are bitwise equal. Target: speedup >= 1.7x.
2. **Early exit.** Planes ``[-R, R]^2`` wide enough that their edges diverge (``--cap-ranges``;
   the trained digits CNN's loss grows ~1000x from the centre to R = 1.5), without and with
   ``--cap ln(10)`` (the cross-entropy of a uniform guess: above it the model is worse than
   chance): forward samples run through the model (``forward_samples`` in the file's metadata),
   the fraction of the plane above the cap, and whether every value that was not stopped early
   is bitwise the uncapped one. Target: at least 2x fewer forward samples with about half the
   plane above the cap.

Each configuration runs ``--repeat`` times; the best wall time counts (other processes share
this machine's two cores). Everything is written under ``--work`` (default
``benchmarks/results/scale``), figures also to ``scale.json`` there.

    .venv/bin/python benchmarks/bench_scale.py            # ~6 minutes on the idle 2-core machine
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.vtkio import read_surface  # noqa: E402

PY = sys.executable
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
EVAL_RE = re.compile(r"evaluated (\d+) points in ([\d.]+) s")


def prepare(work: Path) -> tuple[Path, Path]:
    """A trained digits run and its random filter-normalized directions (made once, reused)."""
    from pipeline.rundir import RunDir
    from pipeline.config import TrainConfig
    from pipeline.directions import random_directions
    from pipeline.train import train

    run = RunDir(work / "digits")
    if not (run.run_json.exists() and 5 in run.epochs()):
        train(TrainConfig(epochs=5), run.root)
    dirs = run.directions("random")
    if not dirs.exists():
        random_directions(run.checkpoint(5), seed=0, model_name="digits-cnn").save(dirs)
    return run.root, dirs


def surface(cmd_prefix: list[str], run: Path, dirs: Path, out: Path, *args: str) -> tuple[float, float, str]:
    """Run one surface command; (wall seconds, evaluation seconds, stderr)."""
    cmd = [*cmd_prefix, "surface", "--run", str(run), "--directions", str(dirs), "--out", str(out), "--restart", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    m = EVAL_RE.search(proc.stderr)
    return wall, float(m.group(2)) if m else float("nan"), proc.stderr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", default="81x81", help="plane of the scaling test, over [-1, 1]^2 (default: %(default)s; "
                   "large enough that the fixed start-up of torchrun and of each process is amortized)")
    p.add_argument("--cap-grid", default="21x21", help="planes of the early-exit test (default: %(default)s)")
    p.add_argument("--cap-batch-sizes", type=int, nargs="+", default=[0, 64],
                   help="samples per forward for the early-exit planes; 0: the engine's choice (default: %(default)s)")
    p.add_argument("--cap-ranges", type=float, nargs="+", default=[1.25, 1.5, 2.0],
                   help="their half-widths R in direction units (default: %(default)s)")
    p.add_argument("--cap", type=float, default=float(np.log(10.0)),
                   help="the cap (default: ln 10 = 2.303, the cross-entropy of a uniform guess over 10 classes)")
    p.add_argument("--repeat", type=int, default=2, help="runs per configuration, best wall time counts")
    p.add_argument("--parts", default="scaling,cap", help="which parts to run (default: %(default)s)")
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "results" / "scale")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    run, dirs = prepare(args.work)
    single = [PY, "-m", "pipeline", "-q"]
    dual = [TORCHRUN, "--standalone", "--nproc-per-node=2", "-m", "pipeline", "--", "-q"]

    figures: dict = {}
    if "scaling" in args.parts:
        figures["scaling"] = scaling(args, run, dirs, single, dual)
    if "cap" in args.parts:
        figures["early_exit"] = early_exit(args, run, dirs, single)
    (args.work / "scale.json").write_text(json.dumps(figures, indent=2))
    ok = figures.get("scaling", {}).get("bitwise_equal", True) and all(
        e["identical"] and e["bounded_only_above"] for e in figures.get("early_exit", {}).get("planes", []))
    return 0 if ok else 1


def scaling(args, run: Path, dirs: Path, single: list[str], dual: list[str]) -> dict:
    """1 process vs 2 (torchrun) on the same plane."""
    nx, ny = (int(v) for v in args.grid.split("x"))
    grid_args = ["--x", f"-1:1:{nx}", "--y", f"-1:1:{ny}"]
    rows = {}
    for name, prefix in (("1 process", single), ("2 processes (torchrun)", dual)):
        best = None
        for _ in range(args.repeat):
            out = args.work / f"scale_{len(rows)}.vts"
            wall, ev, _ = surface(prefix, run, dirs, out, *grid_args)
            if best is None or wall < best[0]:
                best = (wall, ev, out)
        rows[name] = best
    (w1, e1, o1), (w2, e2, o2) = rows.values()
    equal = all(np.array_equal(getattr(read_surface(o1), a), getattr(read_surface(o2), a), equal_nan=True)
                for a in ("loss", "accuracy", "valid"))
    print(f"\n1. digits-cnn, {nx}x{ny} plane ({nx * ny} points), 1437 training samples, fp32, 1 thread per process")
    print(f"{'':26s} {'wall (s)':>9s} {'evaluation (s)':>15s} {'points/s':>9s}")
    for name, (w, e, _) in rows.items():
        print(f"{name:26s} {w:9.2f} {e:15.2f} {nx * ny / e:9.1f}")
    print(f"{'speedup':26s} {w1 / w2:8.2f}x {e1 / e2:14.2f}x        (target >= 1.7x)   grids bitwise equal: {equal}")

    return {"grid": [nx, ny], "wall_s": [w1, w2], "eval_s": [e1, e2], "speedup_wall": w1 / w2,
            "speedup_eval": e1 / e2, "bitwise_equal": equal}


def early_exit(args, run: Path, dirs: Path, single: list[str]) -> dict:
    """Planes of growing width (a growing fraction above the cap), without and with --cap."""
    cx, cy = (int(v) for v in args.cap_grid.split("x"))
    cap = args.cap
    exits = []
    for batch, r in itertools.product(args.cap_batch_sizes, args.cap_ranges):
        cap_grid = ["--x", f"{-r}:{r}:{cx}", "--y", f"{-r}:{r}:{cy}"] + (["--batch-size", str(batch)] if batch else [])
        full, capped = args.work / f"cap_none_{r}_{batch}.vts", args.work / f"cap_{r}_{batch}.vts"
        _, ef, _ = surface(single, run, dirs, full, *cap_grid)
        _, ec, _ = surface(single, run, dirs, capped, *cap_grid, "--cap", repr(cap))
        ref, got = read_surface(full), read_surface(capped)
        above = ref.loss > cap
        free = ~got.bounded
        exits.append({
            "range": r, "fraction_above": float(above.mean()), "bounded": int(got.bounded.sum()),
            "forward_samples": [int(ref.meta["forward_samples"]), int(got.meta["forward_samples"])],
            "eval_s": [ef, ec], "edge_loss": float(np.nanmax(ref.loss)), "centre_loss": float(ref.meta["centre_loss"]),
            "batch_size": int(got.meta["engine"]["plan"]["batch_size"]), "samples": int(got.meta["samples"]),
            # every point that was not stopped early holds exactly its uncapped value and accuracy
            "identical": bool(np.array_equal(got.loss[free], ref.loss[free])
                              and np.array_equal(got.accuracy[free], ref.accuracy[free])),
            "bounded_only_above": bool(not (got.bounded & ~above).any()),
        })
    e0 = exits[0]
    print(f"\n2. early exit: {cx}x{cy} planes over [-R, R]^2, cap = {cap:.4f} (ln 10: chance-level cross-entropy); "
          f"centre loss {e0['centre_loss']:.4f}; {e0['samples']} samples per point; batch: the engine's choice "
          f"({e0['batch_size']}) or --batch-size")
    print(f"{'batch':>5s} {'R':>5s} {'above cap':>9s} {'max loss':>9s} {'forward samples':>17s} {'--cap':>9s} {'saving':>7s} "
          f"{'bound 1/(1-f)':>13s} {'eval s':>13s} {'identical below cap':>19s}")
    for e in exits:
        f = e["fraction_above"]
        s_full, s_cap = e["forward_samples"]
        e["saving"] = s_full / s_cap
        bound = f"{1 / (1 - f):.2f}x" if f < 1 else "inf"
        print(f"{e['batch_size']:5d} {e['range']:5.2f} {f:9.0%} {e['edge_loss']:9.1f} {s_full:17d} {s_cap:9d} {e['saving']:6.2f}x "
              f"{bound:>13s} {e['eval_s'][0]:6.1f}/{e['eval_s'][1]:<6.1f} "
              f"{str(e['identical'] and e['bounded_only_above']):>19s}")
    print("(target: >= 2x fewer forward samples with about half the plane above the cap; every bounded point costs at "
          "least one batch, so with a fraction f above the saving is below 1/(1-f))")

    return {"grid": [cx, cy], "cap": cap, "planes": exits}

if __name__ == "__main__":
    sys.exit(main())
