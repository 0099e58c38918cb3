"""What a landscape costs per model: forward FLOPs per sample, the measured cost of one
(point, sample) pair in the point engine on this machine, and the expected time of a surface.

For each model of the Fashion-MNIST study (1 x 28 x 28 inputs) and of the course report's
CIFAR-10 presets (3 x 32 x 32: ``cifar10-resnet50``, ``cifar10-vgg11``), the script

* counts the forward FLOPs of one sample (``torch.utils.flop_counter.FlopCounterMode``; a
  multiply-add counts 2),
* times :func:`pipeline.engine.evaluate_points` (the engine every surface uses, model in eval
  mode, cross-entropy and accuracy) on ``--points`` points of a filter-normalized random plane
  over ``--samples`` synthetic samples of the model's input shape, after one untimed warm-up
  point, and divides by points x samples: seconds per (point, sample),
* projects the time of a surface: the study's (441 random + 441 PCA points on 300 test images)
  and the CIFAR presets' (25 x 25 = 625 points on the 50,000 training images), from the
  measured cost on this machine, and from the FLOPs at a sustained rate given by
  ``--gpu-tflops`` (an assumption about the GPU, printed as such: no GPU was measured).

Usage::

    python benchmarks/bench_study_cost.py [--threads 2] [--samples 256] [--points 3] [--json F]

Figures and how they were taken: docs/study.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STUDY_MODELS = ("resnet20", "resnet20-noshort", "resnet56", "resnet56-noshort", "vgg9")
CIFAR_MODELS = ("resnet50", "vgg11")
STUDY_POINTS, STUDY_SAMPLES = 2 * 21 * 21, 300  # fashion.toml: 21 x 21 random and PCA grids, 300 test images
CIFAR_POINTS, CIFAR_SAMPLES = 25 * 25, 50_000  # the report: a 25 x 25 grid on the training set


def measure(name: str, shape: tuple[int, ...], samples: int, points: int, threads: int) -> dict:
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.directions import random_directions
    from pipeline.engine import EvalConfig, evaluate_points
    from pipeline.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(name, in_channels=shape[0]).eval()
    x = torch.randn(samples, *shape)
    y = torch.randint(0, 10, (samples,))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x[:4])
    flops = fc.get_total_flops() / 4
    dirs = random_directions(model, norm="filter", ignore="biasbn", seed=0)
    config = EvalConfig(device="cpu")
    evaluate_points(model, dirs, np.array([[0.1, 0.1]]), (x, y), config, progress=False)  # warm-up
    coords = np.stack([np.linspace(-0.5, 0.5, points), np.linspace(0.5, -0.5, points)], axis=1)
    t0 = time.perf_counter()
    evaluate_points(model, dirs, coords, (x, y), config, progress=False)
    seconds = time.perf_counter() - t0
    per = seconds / (points * samples)
    return {"model": name, "input": "x".join(map(str, shape)),
            "params": sum(p.numel() for p in model.parameters()), "flops_per_sample": flops,
            "seconds_per_point_sample": per, "gflops": flops / per / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--points", type=int, default=3)
    ap.add_argument("--gpu-tflops", type=float, default=30.0,
                    help="assumed sustained forward rate of a GPU, TFLOP/s (not measured)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    rows = [measure(m, (1, 28, 28), args.samples, args.points, args.threads) for m in STUDY_MODELS]
    rows += [measure(m, (3, 32, 32), args.samples, args.points, args.threads) for m in CIFAR_MODELS]
    print(f"load average {os.getloadavg()[0]:.2f}; {args.threads} threads; {args.samples} samples x "
          f"{args.points} points per model after a warm-up point")
    print(f"\n{'model':18s} {'input':8s} {'params':>8s} {'MFLOP/smp':>10s} {'us/(pt*smp)':>12s} {'GFLOP/s':>8s} "
          f"{'surface here':>14s} {'at ' + format(args.gpu_tflops, 'g') + ' TFLOP/s':>16s}")
    for r in rows:
        points, samples = (CIFAR_POINTS, CIFAR_SAMPLES) if r["model"] in CIFAR_MODELS else (STUDY_POINTS, STUDY_SAMPLES)
        r["surface_points"], r["surface_samples"] = points, samples
        r["surface_seconds_here"] = points * samples * r["seconds_per_point_sample"]
        r["surface_seconds_gpu_assumed"] = points * samples * r["flops_per_sample"] / (args.gpu_tflops * 1e12)
        print(f"{r['model']:18s} {r['input']:8s} {r['params'] / 1e6:7.2f}M {r['flops_per_sample'] / 1e6:10.1f} "
              f"{r['seconds_per_point_sample'] * 1e6:12.1f} {r['gflops']:8.1f} "
              f"{_duration(r['surface_seconds_here']):>14s} {_duration(r['surface_seconds_gpu_assumed']):>16s}")
    print(f"\nsurface: study models {STUDY_POINTS} points x {STUDY_SAMPLES} samples (both planes); CIFAR presets "
          f"{CIFAR_POINTS} points x {CIFAR_SAMPLES} samples (one plane). The last column assumes a sustained "
          f"{args.gpu_tflops:g} TFLOP/s; it is FLOPs divided by that rate, not a measurement.")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "gpu_tflops_assumed": args.gpu_tflops,
                                         "rows": rows}, indent=2))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


if __name__ == "__main__":
    main()
