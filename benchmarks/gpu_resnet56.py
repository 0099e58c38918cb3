#!/usr/bin/env python
"""ResNet-56 loss surface on a GPU: points/s, achieved TFLOP/s and the fraction of the card's peak.

Issue 6 part 3. A CIFAR ResNet-56 (seeded initial weights) on 10,000 synthetic CIFAR-shaped
samples, a 51x51 filter-normalized random plane, evaluated through the same path as
``lossvista surface`` (``pipeline.surface.make_chunk_evaluator`` on
``pipeline.engine.evaluate_points``, data resident on the device), in each mode:

- ``fp32``: float32 with TF32 off (compared with the card's FP32 peak);
- ``tf32``: float32 with TF32 tensor cores allowed (compared with the dense TF32 peak);
- ``bf16``: ``--precision bf16`` mixed precision (compared with the dense BF16 peak).

Forward FLOPs per sample come from ``torch.utils.flop_counter.FlopCounterMode`` on one
batch; achieved TFLOP/s = FLOPs/sample x samples evaluated / seconds. Each mode runs chunks of
the plane (in grid order) for at most ``--budget-s`` seconds after one untimed warm-up chunk,
then reports the projected time of the whole plane. Losses of a mode are compared with the
fp32 ones at the points both evaluated (maximum relative error).

    python benchmarks/gpu_resnet56.py                    # on a GPU machine (see gpu_run.sh)
    python benchmarks/gpu_resnet56.py --smoke            # tiny sizes on the CPU (tested in CI)
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.datamodel import Grid  # noqa: E402
from pipeline.data import load_dataset  # noqa: E402
from pipeline.directions import random_directions  # noqa: E402
from pipeline.engine import EvalConfig  # noqa: E402
from pipeline.models import build_model  # noqa: E402
from pipeline.surface import make_chunk_evaluator  # noqa: E402

# Dense (no structured sparsity) peak TFLOP/s from NVIDIA's datasheets. The first entry whose
# name fragment is in torch.cuda.get_device_name() wins, so the specific names come first.
PEAKS: list[tuple[str, dict[str, float]]] = [
    ("H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    ("H200", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),  # SXM (NVIDIA H200, 141 GB HBM3e)
    ("H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}),
    ("H100", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),  # SXM ("NVIDIA H100 80GB HBM3")
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),  # SXM and PCIe alike
]
MODES = ("fp32", "tf32", "bf16")


def card_peaks(name: str) -> dict[str, float] | None:
    for fragment, peaks in PEAKS:
        if fragment.lower() in name.lower():
            return peaks
    return None


def flops_per_sample(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Forward FLOPs of one sample (FlopCounterMode counts a multiply-add as 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / len(x)


def run_mode(mode: str, model, directions, data, coords: np.ndarray, device: str, chunk: int, budget_s: float,
             batch_size: int | None, points_per_batch: int | None, deterministic: bool = True) -> dict:
    extra = {k: v for k, v in (("batch_size", batch_size), ("points_per_batch", points_per_batch)) if v}
    # the engine sets the TF32 flags itself from the precision ('tf32': tensor cores; 'fp32': strict)
    config = EvalConfig(device=device, precision=mode, deterministic=deterministic, **extra)
    evaluate = make_chunk_evaluator(model, directions, data, config)
    evaluate(coords[:chunk])  # warm-up: cuDNN algorithm choice, allocator; not timed
    losses, samples, done, plan = [], 0, 0, {}
    t0 = time.perf_counter()
    while done < len(coords) and (done == 0 or time.perf_counter() - t0 < budget_s):
        r = evaluate(coords[done:done + chunk])
        plan = r.get("info", {}).get("plan", plan)
        losses.append(np.asarray(r["loss"], dtype=np.float64))
        samples += int(np.sum(r["samples"]))
        done += len(r["loss"])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"mode": mode, "points": done, "samples": samples, "seconds": seconds, "loss": np.concatenate(losses),
            "plan": plan}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (16 samples, 3x3 plane, 1 s per mode)")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--grid", default="51x51", help="NXxNY plane over [-1, 1]^2 (default: %(default)s)")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of fp32,tf32,bf16")
    p.add_argument("--budget-s", type=float, default=60.0, help="timed seconds per mode (default: %(default)s)")
    p.add_argument("--chunk", type=int, default=64, help="points per evaluate call (default: %(default)s)")
    p.add_argument("--batch-size", type=int, help="samples per forward (default: the engine's choice)")
    p.add_argument("--points-per-batch", type=int, help="points per forward (default: the engine's choice)")
    p.add_argument("--no-deterministic", dest="deterministic", action="store_false",
                   help="allow cuDNN autotuning (faster, not bitwise reproducible); default: deterministic")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.smoke:
        args.samples, args.grid, args.chunk, args.budget_s = 16, "3x3", 3, 1.0
        args.device = args.device or "cpu"
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in modes):
        p.error(f"--modes must be a subset of {','.join(MODES)}; got {args.modes!r}")
    nx, ny = (int(v) for v in args.grid.lower().split("x"))
    grid = Grid(-1.0, 1.0, nx, -1.0, 1.0, ny)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model("resnet56", num_classes=10, in_channels=3).eval()
    data = load_dataset(f"synthetic:3x32x32:{args.samples}:10").train
    directions = random_directions(model, seed=0, model_name="resnet56")
    fps = flops_per_sample(model, data.inputs[:8])
    model = model.to(device)
    data = data.to(device)  # resident on the device for every chunk
    directions = type(directions)({k: v.to(device) for k, v in directions.x.items()},
                                  {k: v.to(device) for k, v in directions.y.items()}, directions.meta)

    name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else platform.processor() or "cpu"
    peaks = card_peaks(name) if device.startswith("cuda") else None
    print(f"device: {device} ({name}); peaks (dense TFLOP/s): "
          + (", ".join(f"{k} {v}" for k, v in peaks.items()) if peaks else "not in the table"))
    print(f"resnet56: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
          f"{fps / 1e9:.4f} GFLOP/sample forward; {len(data)} samples; plane {nx}x{ny} ({grid.size} points)")
    coords = grid.coords()
    rows = []
    for mode in modes:
        if mode == "tf32" and not device.startswith("cuda"):
            continue  # TF32 is a tensor-core mode
        r = run_mode(mode, model, directions, data, coords, device, args.chunk, args.budget_s, args.batch_size,
                     args.points_per_batch, args.deterministic)
        r["points_per_s"] = r["points"] / r["seconds"]
        r["tflops"] = fps * r["samples"] / r["seconds"] / 1e12
        r["peak_fraction"] = r["tflops"] / peaks[mode] if peaks else None
        r["full_plane_s"] = grid.size / r["points_per_s"]
        rows.append(r)
    ref = next((r for r in rows if r["mode"] == "fp32"), None)
    print(f"{'mode':5s} {'points':>6s} {'seconds':>8s} {'points/s':>9s} {'TFLOP/s':>8s} {'% peak':>7s} "
          f"{'51x51 (s)' if grid.size == 2601 else 'plane (s)':>10s} {'max rel err vs fp32':>20s}")
    for r in rows:
        n = min(len(r["loss"]), len(ref["loss"])) if ref else 0
        err = (float(np.max(np.abs(r["loss"][:n] - ref["loss"][:n]) / np.abs(ref["loss"][:n])))
               if ref is not None and n else None)
        r["max_rel_err_vs_fp32"] = err
        pct = "n/a" if r["peak_fraction"] is None else f"{100 * r['peak_fraction']:.1f}"
        err_text = "n/a" if err is None else f"{err:.2e}"
        print(f"{r['mode']:5s} {r['points']:6d} {r['seconds']:8.2f} {r['points_per_s']:9.2f} {r['tflops']:8.3f} "
              f"{pct:>7s} {r['full_plane_s']:10.1f} {err_text:>20s}")
        print(f"      engine plan: batch {r['plan'].get('batch_size')} samples x {r['plan'].get('points_per_batch')} "
              f"points per forward, {r['plan'].get('memory_format')}")
        if not np.isfinite(r["loss"]).all():
            print(f"error: non-finite loss in mode {r['mode']}", file=sys.stderr)
            return 1
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        keep = [{k: v for k, v in r.items() if k != "loss"} for r in rows]
        args.json.write_text(json.dumps({"device": device, "name": name, "peaks": peaks, "flops_per_sample": fps,
                                         "samples": len(data), "grid": [nx, ny], "rows": keep}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
