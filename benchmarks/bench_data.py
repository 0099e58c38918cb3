#!/usr/bin/env python
"""The user's data forms and losses: what they cost beside the tensor path, and streaming.

    .venv/bin/python benchmarks/bench_data.py [--threads 2] [--rounds 5] [--only d1,d2] [--gb 2] [--json FILE]

D1: the W1 workload of bench_evaluate.py (the digits CNN trained briefly, seeded, on all 1797
    digits; its filter-normalized random plane over [-1, 1]^2, 41 x 41) evaluated through
    ``pipeline.engine.evaluate_points`` with the data and the loss given four ways:
    - ``tensors``: ``(x, y)`` and the default loss (cross-entropy), the tensor path;
    - ``DataLoader + named loss``: ``DataLoader(TensorDataset(x, y), batch_size=128)`` and
      ``loss=LossSpec("cross_entropy")``;
    - ``Dataset``: the ``TensorDataset`` itself, named loss;
    - ``user loss``: tensors and ``loss="benchmarks.bench_data:per_sample_ce"`` (a function
      returning per-sample losses, imported by name as the CLI does).
    The methods take turns on windows of 100 points of the plane, ``--rounds`` rounds in one
    process after a warm-up (load that comes and goes hits every method alike); each row shows
    its best window's points/s and the median over rounds of its ratio to the tensor path in
    the same round. The losses must equal the tensor path's to 1e-6 (printed).
    Target: DataLoader + named loss >= 0.9 x the tensor path.
D2: a streamed Dataset of ``--gb`` GB generated on the fly (3 x 64 x 64 float32 images, each made
    from its index by a seeded generator; labels index mod 10), a small CNN (two strided
    convolutions, 7.6k parameters), 3 points of a random plane evaluated through a
    ``DataLoader(batch_size=256)``, in a fresh process. Peak RSS is that process's
    ``ru_maxrss`` (Python, torch and the model included), measured after the evaluation; the
    data never sits in memory whole (the engine streams it: ``in_memory`` is printed).
    Target: peak RSS < 1 GB.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WINDOW = 100
SAMPLE_SHAPE = (3, 64, 64)


def per_sample_ce(outputs, targets):
    """A user's loss as ``module:function``: per-sample cross-entropy."""
    import torch.nn.functional as F

    return F.cross_entropy(outputs, targets, reduction="none")


# D1 ---------------------------------------------------------------------------------------------

def d1(threads: int, rounds: int) -> dict:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from benchmarks.bench_evaluate import W1_STEPS, build_artifacts
    from pipeline.datamodel import Grid
    from pipeline.directions import Directions
    from pipeline.engine import EvalConfig, evaluate_points
    from pipeline.models import build_model
    from pipeline.objective import LossSpec

    with tempfile.TemporaryDirectory() as tmp:
        build_artifacts(Path(tmp), threads)
        saved = torch.load(Path(tmp) / "w1.pt")
        d = Directions.load(Path(tmp) / "w1_dirs.pt")
    torch.set_num_threads(threads)
    model = build_model("digits-cnn")
    model.load_state_dict(saved["state"])
    model.eval()
    x, y = saved["x"], saved["y"]
    coords = Grid(-1, 1, W1_STEPS, -1, 1, W1_STEPS).coords()
    named = LossSpec("cross_entropy")
    methods = {
        "tensors": dict(data=(x, y), loss=None),
        "DataLoader + named loss": dict(data=DataLoader(TensorDataset(x, y), batch_size=128), loss=named),
        "Dataset": dict(data=TensorDataset(x, y), loss=named),
        "user loss": dict(data=(x, y), loss=LossSpec("benchmarks.bench_data:per_sample_ce", search=(str(ROOT),))),
    }
    config = EvalConfig(device="cpu")

    def window(method: str, start: int) -> tuple[float, np.ndarray]:
        m = methods[method]
        t = time.perf_counter()
        r = evaluate_points(model, d, coords[start:start + WINDOW], m["data"], config, loss=m["loss"], progress=False)
        return time.perf_counter() - t, r.loss

    for method in methods:  # warm-up: oneDNN kernels, the user's module imported
        window(method, 0)
    seconds = {m: [] for m in methods}
    losses = {m: [] for m in methods}
    for r in range(rounds):
        start = (r * WINDOW) % (len(coords) - WINDOW)
        for method in methods:
            sec, loss = window(method, start)
            seconds[method].append(sec)
            losses[method].append(loss)
    out = {}
    for method in methods:
        ratios = [seconds["tensors"][k] / seconds[method][k] for k in range(rounds)]
        err = max(float(np.max(np.abs(a - b) / np.abs(b))) for a, b in zip(losses[method], losses["tensors"]))
        out[method] = {"points_per_second": WINDOW / min(seconds[method]), "ratio": statistics.median(ratios),
                       "max_rel_err": err}
    return out


# D2 ---------------------------------------------------------------------------------------------

class OnTheFly:
    """``n`` images made from their index when asked (a data pipeline larger than memory)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import torch

        g = torch.Generator().manual_seed(int(i))
        return torch.randn(SAMPLE_SHAPE, generator=g), int(i) % 10


def _d2_child(gb: float, threads: int, queue) -> None:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from pipeline.directions import random_directions
    from pipeline.engine import EvalConfig, evaluate_points
    from pipeline.engine.batches import as_eval_data

    class Data(OnTheFly, Dataset):
        pass

    torch.set_num_threads(threads)
    n = int(gb * 2**30 / (4 * SAMPLE_SHAPE[0] * SAMPLE_SHAPE[1] * SAMPLE_SHAPE[2]))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()
    d = random_directions(model, seed=0)
    loader = DataLoader(Data(n), batch_size=256)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    data = as_eval_data(loader)
    t = time.perf_counter()
    r = evaluate_points(model, d, [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]], data, EvalConfig(device="cpu"),
                        progress=False)
    seconds = time.perf_counter() - t
    queue.put({"samples": n, "gigabytes": n * 4 * 3 * 64 * 64 / 2**30, "in_memory": data.in_memory,
               "seconds": seconds, "samples_per_second": 3 * n / seconds, "losses": r.loss.tolist(),
               "rss_before_gb": rss_before, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20})


def d2(gb: float, threads: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_d2_child, args=(gb, threads, queue))
    p.start()
    result = queue.get()
    p.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="d1,d2")
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    parts = set(args.only.split(","))
    print(f"bench_data: threads {args.threads}, load average {os.getloadavg()[0]:.2f}")
    results = {}
    if "d1" in parts:
        results["d1"] = d1(args.threads, args.rounds)
        print(f"\nD1: W1 (digits CNN, 1797 samples) through each data form, windows of {WINDOW} points, "
              f"{args.rounds} rounds")
        print(f"  {'method':26s} {'points/s':>9s} {'x tensors':>10s} {'max rel err':>12s}")
        for method, r in results["d1"].items():
            print(f"  {method:26s} {r['points_per_second']:9.1f} {r['ratio']:10.3f} {r['max_rel_err']:12.1e}")
        ok = results["d1"]["DataLoader + named loss"]["ratio"] >= 0.9
        print(f"  target DataLoader + named loss >= 0.9 x tensors: {'met' if ok else 'NOT met'}")
    if "d2" in parts:
        r = results["d2"] = d2(args.gb, args.threads)
        print(f"\nD2: a {r['gigabytes']:.2f} GB Dataset made on the fly ({r['samples']} samples of 3x64x64), "
              f"3 points, DataLoader(batch_size=256)")
        print(f"  streamed: {not r['in_memory']}, {r['seconds']:.1f} s, {r['samples_per_second']:.0f} samples/s, "
              f"peak RSS {r['peak_rss_gb']:.2f} GB (before evaluating: {r['rss_before_gb']:.2f} GB)")
        print(f"  losses {', '.join(f'{v:.6f}' for v in r['losses'])}")
        print(f"  target peak RSS < 1 GB: {'met' if r['peak_rss_gb'] < 1 else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
