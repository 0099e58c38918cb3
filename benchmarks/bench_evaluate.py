#!/usr/bin/env python
"""Evaluation engine benchmarks W1 and W2 (issue 3), plus the early-exit saving (issue 6 part 4).

    .venv/bin/python benchmarks/bench_evaluate.py [--threads 2] [--only w1,w2,e1] [--json FILE]

Every method runs in its own fresh process (so each one's peak RSS is its own), one after
the other, with ``torch.set_num_threads(--threads)``; models, data and directions are built
once here and handed over as files, so all methods see the same weights. Each child runs an
untimed warm-up first (oneDNN compiles its kernels for each new shape). This machine is shared
(other sessions run tests on the same two cores), so W1 and W2 run ``--rounds`` interleaved
rounds and every method keeps its fastest round (the table); the load average is printed with
each run. Even so one lucky window decides a best-of figure, so the *ratios* judged against
the targets come from paired windows: one process runs the methods in turn on short windows
(W1: 50 points each; W2: fp32 and bf16 on one point each), 8 rounds, and the median of the
per-round ratios counts (load that comes and goes hits both members of a pair alike).

W1: the digits CNN trained briefly (3 epochs, seeded) on the whole digits set (1797 samples =
    train + test concatenated); a 41x41 filter-normalized random plane over [-1, 1]^2.
    - ``lossvista``: ``pipeline.surface.evaluate`` on the whole plane, fp32, automatic plan.
    - ``lossvista vmap``: the same engine forced to 8 points per vmapped forward (first 400
      points): shows why the automatic plan does not stack points on this CPU.
    - ``plain loop``: per point, ``load_state_dict(theta + a x + b y)``, then a ``DataLoader``
      over the set in batches of 128, summed cross-entropy; first 200 points, extrapolated.
      lossvista's values are compared with it at those points (max relative error).
    - ``loss-landscapes``: the PyPI package's ``random_plane(model, Loss(cross_entropy, X, Y),
      distance=1, steps=41, normalization='filter', deepcopy_model=True)``, the whole set as
      its one batch; timed over its first 200 metric calls (its own directions and grid), so
      its points/s are extrapolated.
    Target (fp32): lossvista >= 2x loss-landscapes and >= 1.5x the plain loop.
W2: CIFAR ResNet-20 (seeded initial weights) on 1024 synthetic 3x32x32 images; a 7x7 plane.
    Achieved GFLOP/s = forward FLOPs per sample (``torch.utils.flop_counter.FlopCounterMode``)
    x samples x points / seconds, as a fraction of this machine's fp32 matmul rate measured in
    the same run (the best of repeated 2048x2048 sgemm loops, measured before, between and
    after the methods: the highest is the peak, so contention only lowers the fraction).
    - ``lossvista fp32`` and ``lossvista bf16`` (whole plane); the bf16 row prints its max
      relative loss error against fp32 at the 49 points.
    - ``plain loop`` (as in W1, DataLoader batches of 128; first 7 points).
    - ``loss-landscapes`` feeding all 1024 images at once (steps=7; first 5 points). Its
      filter normalization raises ZeroDivisionError on ResNet-20 (all-zero BatchNorm biases
      at initialization, the DESIGN.md pitfall), so this row uses its 'model' normalization,
      which costs the same per point.
    Targets: lossvista fp32 >= 65 % of the sgemm rate; bf16 >= 2.5x the fp32 points/s.
E1: early exit on the W1 model: a 21x21 plane over [-1, 1]^2, evaluated without a cap and with
    cap = 5 x the centre loss (the renderer's default cap) and cap = the median of the plane
    (exactly half above). Forward samples with and without the cap, one point per forward and
    8 points per vmapped forward (exited points leave their group); the values below the cap
    must be bitwise the uncapped ones and every bound must lie between the cap and the true
    loss. (The saving is the value printed with each E1 target line; a point just above the
    cap needs most of its samples to prove it, so the saving depends on how far above the
    cap the bounded points lie.)
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

W1_STEPS, W1_PEER_POINTS, W1_VMAP_POINTS = 41, 200, 400
W2_STEPS, W2_PLAIN_POINTS, W2_LL_POINTS = 7, 7, 5
W2_SAMPLES = 1024
E1_RANGE, E1_STEPS = 1.0, 21
PAIRED_ROUNDS, PAIRED_POINTS = 8, 50  # paired ratio windows (W1: 50 points each; W2: 1 point each)


# ------------------------------------------------------------------------------------------
# setup (parent process)


def build_artifacts(work: Path, threads: int) -> dict:
    """Train/build the models, data and directions once; save them under ``work``."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.data import load_dataset
    from pipeline.directions import random_directions
    from pipeline.models import build_model

    torch.set_num_threads(threads)
    ds = load_dataset("digits")
    x = torch.cat([ds.train.inputs, ds.test.inputs])  # (1797, 1, 8, 8)
    y = torch.cat([ds.train.targets, ds.test.targets])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cnn = build_model("digits-cnn")
        opt = torch.optim.SGD(cnn.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        g = torch.Generator().manual_seed(0)
        for _ in range(3):  # "trained briefly": 3 epochs of batches of 32
            order = torch.randperm(len(x), generator=g)
            for s in range(0, len(x), 32):
                idx = order[s:s + 32]
                loss = F.cross_entropy(cnn(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    cnn.eval()
    torch.save({"state": cnn.state_dict(), "x": x, "y": y}, work / "w1.pt")
    random_directions(cnn, norm="filter", ignore="biasbn", seed=0).save(work / "w1_dirs.pt")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        resnet = build_model("resnet20").eval()
    data = load_dataset(f"synthetic:3x32x32:{W2_SAMPLES}:10", seed=0).train
    torch.save({"state": resnet.state_dict(), "x": data.inputs, "y": data.targets}, work / "w2.pt")
    random_directions(resnet, norm="filter", ignore="biasbn", seed=0).save(work / "w2_dirs.pt")
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        resnet(data.inputs[:8])
    with torch.no_grad(), FlopCounterMode(display=False) as fc1:
        cnn(x[:8])
    return {"w2_flops": fc.get_total_flops() / 8, "w1_flops": fc1.get_total_flops() / 8}


def sgemm_gflops(threads: int, n: int = 2048, reps: int = 8, rounds: int = 5) -> float:
    """Best fp32 matmul rate (GFLOP/s) of ``rounds`` loops of ``reps`` n x n products."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


# ------------------------------------------------------------------------------------------
# methods (each in a child process)


def _load(work: str, name: str):
    import torch

    from pipeline.directions import Directions
    from pipeline.models import build_model

    blob = torch.load(Path(work) / f"{name}.pt", weights_only=True)
    model = build_model("digits-cnn" if name == "w1" else "resnet20")
    model.load_state_dict(blob["state"])
    return model.eval(), Directions.load(Path(work) / f"{name}_dirs.pt"), blob["x"], blob["y"]


def _plain_loop(model, directions, coords, x, y, batch_size=128):
    """The typical hand-written loop: weights copied in per point, DataLoader batches."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    theta = {k: v.clone() for k, v in model.state_dict().items()}
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    losses = []
    with torch.no_grad():
        for a, b in coords:
            a, b = float(a), float(b)
            model.load_state_dict({k: v + a * directions.x[k] + b * directions.y[k] if v.is_floating_point() else v
                                   for k, v in theta.items()})
            total, n = 0.0, 0
            for xb, yb in loader:
                total += F.cross_entropy(model(xb), yb, reduction="sum").item()
                n += len(yb)
            losses.append(total / n)
    model.load_state_dict(theta)
    return losses


class _Enough(Exception):
    pass


def _loss_landscapes(model, x, y, steps, calls, normalization="filter"):
    """Seconds per point of loss_landscapes.random_plane, over its first ``calls`` metric calls."""
    import loss_landscapes
    import torch.nn.functional as F
    from loss_landscapes.metrics import Loss

    class Counted(Loss):
        def __init__(self, *a):
            super().__init__(*a)
            self.n = 0

        def __call__(self, wrapper):
            self.n += 1
            if self.n > calls:
                raise _Enough
            return super().__call__(wrapper)

    metric = Counted(F.cross_entropy, x, y)
    t0 = time.perf_counter()
    try:
        loss_landscapes.random_plane(model, metric, distance=1, steps=steps, normalization=normalization,
                                     deepcopy_model=True)
    except _Enough:
        pass
    t1 = time.perf_counter()
    return calls, t1 - t0


def child(task: dict) -> dict:
    import torch

    from pipeline.datamodel import Grid
    from pipeline.engine import EvalConfig, evaluate_points
    from pipeline.surface import evaluate

    torch.set_num_threads(task["threads"])
    work, method = task["work"], task["method"]
    out: dict = {"method": method}
    if method.startswith("w1") or method.startswith("e1"):
        model, d, x, y = _load(work, "w1")
        grid = Grid(-1, 1, W1_STEPS, -1, 1, W1_STEPS)
    else:
        model, d, x, y = _load(work, "w2")
        grid = Grid(-1, 1, W2_STEPS, -1, 1, W2_STEPS)
    coords = grid.coords()
    cpu = EvalConfig(device="cpu")

    if method in ("w1_lossvista", "w2_fp32", "w2_bf16"):
        config = EvalConfig(device="cpu", precision="bf16" if method == "w2_bf16" else "fp32")
        evaluate_points(model, d, coords[:2], (x, y), config, progress=False)  # warm-up
        if method == "w1_lossvista":  # the peers' window: the same first points, a few seconds
            t = time.perf_counter()
            evaluate_points(model, d, coords[:W1_PEER_POINTS], (x, y), config, progress=False)
            out["window"] = {"points": W1_PEER_POINTS, "seconds": time.perf_counter() - t}
        t = time.perf_counter()
        s = evaluate(model, d, grid, (x, y), config=config, progress=False)
        out.update(points=grid.size, seconds=time.perf_counter() - t, losses=s.loss.ravel().tolist(),
                   plan=s.meta["engine"]["plan"])
    elif method == "w1_vmap":
        config = EvalConfig(device="cpu", points_per_batch=8)
        evaluate_points(model, d, coords[:8], (x, y), config, progress=False)
        t = time.perf_counter()
        r = evaluate_points(model, d, coords[:W1_VMAP_POINTS], (x, y), config, progress=False)
        out.update(points=W1_VMAP_POINTS, seconds=time.perf_counter() - t, losses=r.loss.tolist(),
                   plan=r.plan.to_dict())
    elif method == "w1_paired":
        # ABC ABC ...: short windows of each method in turn in one process, so the other
        # sessions on this machine load all three alike; the ratios of each round are paired
        config = EvalConfig(device="cpu")
        evaluate_points(model, d, coords[:2], (x, y), config, progress=False)
        _plain_loop(model, d, coords[:1], x, y)
        _loss_landscapes(model, x, y, W1_STEPS, 2)
        rates: dict[str, list[float]] = {"lossvista": [], "plain": [], "ll": []}
        for k in range(PAIRED_ROUNDS):
            part = coords[k * PAIRED_POINTS:(k + 1) * PAIRED_POINTS]
            t = time.perf_counter()
            evaluate_points(model, d, part, (x, y), config, progress=False)
            rates["lossvista"].append(len(part) / (time.perf_counter() - t))
            t = time.perf_counter()
            _plain_loop(model, d, part[:PAIRED_POINTS // 2], x, y)
            rates["plain"].append(PAIRED_POINTS // 2 / (time.perf_counter() - t))
            n, sec = _loss_landscapes(model, x, y, W1_STEPS, PAIRED_POINTS)
            rates["ll"].append(n / sec)
        out.update(points=0, seconds=1.0, rates=rates)
    elif method == "w2_paired":
        fp32, bf16 = EvalConfig(device="cpu"), EvalConfig(device="cpu", precision="bf16")
        for c in (fp32, bf16):
            evaluate_points(model, d, coords[:1], (x, y), c, progress=False)
        rates = {"fp32": [], "bf16": []}
        for k in range(PAIRED_ROUNDS):
            part = coords[k % len(coords):k % len(coords) + 1]
            for name, c in (("fp32", fp32), ("bf16", bf16)):
                t = time.perf_counter()
                evaluate_points(model, d, part, (x, y), c, progress=False)
                rates[name].append(1 / (time.perf_counter() - t))
        out.update(points=0, seconds=1.0, rates=rates)
    elif method in ("w1_plain", "w2_plain"):
        k = W1_PEER_POINTS if method == "w1_plain" else W2_PLAIN_POINTS
        _plain_loop(model, d, coords[:1], x, y)  # warm-up
        t = time.perf_counter()
        losses = _plain_loop(model, d, coords[:k], x, y)
        out.update(points=k, seconds=time.perf_counter() - t, losses=losses)
    elif method in ("w1_ll", "w2_ll"):
        steps, calls = (W1_STEPS, W1_PEER_POINTS) if method == "w1_ll" else (W2_STEPS, W2_LL_POINTS)
        with torch.no_grad():
            model(x[:256])  # warm-up of the kernels
        # its filter normalization divides by zero on ResNet-20's all-zero BatchNorm biases (the
        # DESIGN.md pitfall), so W2 uses its 'model' normalization: same cost per point
        points, seconds = _loss_landscapes(model, x, y, steps, calls, "filter" if method == "w1_ll" else "model")
        out.update(points=points, seconds=seconds)
    elif method.startswith("e1"):
        lanes = 8 if method == "e1_lanes" else None
        g = Grid(-E1_RANGE, E1_RANGE, E1_STEPS, -E1_RANGE, E1_RANGE, E1_STEPS)
        base = EvalConfig(device="cpu", points_per_batch=lanes)
        evaluate_points(model, d, g.coords()[:2], (x, y), base, progress=False)
        t = time.perf_counter()
        full = evaluate_points(model, d, g.coords(), (x, y), base, progress=False)
        out.update(points=g.size, seconds_full=time.perf_counter() - t, samples_full=int(full.samples.sum()),
                   plan=full.plan.to_dict(), caps=[])
        centre = float(full.loss[(g.size - 1) // 2])  # the grid is odd: its middle point is (0, 0)
        for label, cap in (("5 x centre loss", 5 * centre), ("median", float(np.median(full.loss)))):
            t = time.perf_counter()
            capped = evaluate_points(model, d, g.coords(), (x, y), EvalConfig(device="cpu", points_per_batch=lanes,
                                                                              cap=cap), progress=False)
            below = ~capped.bounded
            out["caps"].append(dict(
                label=label, cap=cap, above=float(np.mean(full.loss > cap)), bounded=int(capped.bounded.sum()),
                samples_cap=int(capped.samples.sum()), seconds_cap=time.perf_counter() - t,
                identical_below=bool(np.array_equal(full.loss[below], capped.loss[below])),
                bounds_ok=bool(np.all(full.loss[capped.bounded] > cap)
                               and np.all(capped.loss[capped.bounded] <= full.loss[capped.bounded]))))
    else:
        raise ValueError(f"unknown method {method!r}")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def in_fresh_process(fn, task: dict) -> dict:
    """``fn(task)`` in a new process (spawn): nothing loaded or cached by one method helps another."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, (task,))


def run_child(task: dict) -> dict:
    return in_fresh_process(child, task)


# ------------------------------------------------------------------------------------------
# report


def _cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "cpu"


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _faster(a: dict | None, b: dict | None) -> dict | None:
    if a is None or b is None:
        return a or b
    return a if a["points"] / a["seconds"] >= b["points"] / b["seconds"] else b


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for every method (default: 2)")
    p.add_argument("--only", default="w1,w2,e1", help="comma-separated subset of w1,w2,e1 (default: all)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of W1/W2 methods; each keeps its best (default: 3)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1; got {args.rounds}")
    parts = set(args.only.split(","))
    if not parts <= {"w1", "w2", "e1"}:
        p.error(f"--only must be a subset of w1,w2,e1; got {args.only!r}")

    import torch

    flags = _cpu_flags()
    print(f"CPU: {_cpu_name()}, {os.cpu_count()} cores, threads={args.threads}, torch {torch.__version__}; "
          f"avx512_bf16={'avx512_bf16' in flags}, amx_bf16={'amx_bf16' in flags}")
    from pipeline.engine.tuning import cache_facts

    caches = ", ".join(f"{k} {v >> 10} KiB" for k, v in cache_facts().items())
    print(f"caches (per core unless shared): {caches or 'unknown'}")
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f} (other processes on these cores lower every figure)")
    peaks = [sgemm_gflops(args.threads)]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        work = Path(tmp)
        facts = build_artifacts(work, args.threads)

        def run(method: str) -> dict:
            r = run_child({"work": str(work), "method": method, "threads": args.threads})
            peaks.append(sgemm_gflops(args.threads))
            took = "paired windows" if method.endswith("paired") else f"{r.get('seconds', r.get('seconds_full', 0)):.1f} s"
            print(f"  {method}: {took} (load {os.getloadavg()[0]:.2f})", flush=True)
            return r

        def best_of(methods: tuple[str, ...]) -> None:
            # rounds interleave the methods, so a busy spell of the shared machine does not
            # fall on one method only; each keeps its fastest round (and its largest RSS)
            for k in range(args.rounds):
                print(f" round {k + 1}/{args.rounds}", flush=True)
                for m in methods:
                    r = run(m)
                    if m not in res or r["points"] / r["seconds"] > res[m]["points"] / res[m]["seconds"]:
                        r["peak_rss_mb"] = max(r["peak_rss_mb"], res.get(m, {}).get("peak_rss_mb", 0))
                        r["window"] = _faster(r.get("window"), res.get(m, {}).get("window"))
                        res[m] = r
                    else:
                        res[m]["peak_rss_mb"] = max(r["peak_rss_mb"], res[m]["peak_rss_mb"])
                        res[m]["window"] = _faster(r.get("window"), res[m].get("window"))

        res: dict[str, dict] = {}
        if "w1" in parts:
            best_of(("w1_lossvista", "w1_vmap", "w1_plain", "w1_ll"))
            res["w1_paired"] = run("w1_paired")
        if "w2" in parts:
            best_of(("w2_fp32", "w2_bf16", "w2_plain", "w2_ll"))
            res["w2_paired"] = run("w2_paired")
        if "e1" in parts:
            for m in ("e1_plain", "e1_lanes"):
                res[m] = run(m)

    peak = max(peaks)
    print(f"\nfp32 sgemm 2048^2 ({args.threads} threads): {peak:.1f} GFLOP/s (best of {len(peaks)} measurements: "
          + ", ".join(f"{v:.0f}" for v in peaks) + ")")
    print(f"\n{'workload':8s} {'method':34s} {'points/s':>9s} {'GFLOP/s':>8s} {'% peak':>7s} {'peak RSS':>9s}")

    def row(work: str, label: str, r: dict, flops: float, note: str = "") -> dict:
        pts = r["points"] / r["seconds"]
        gf = pts * flops / 1e9
        print(f"{work:8s} {label:34s} {pts:9.1f} {gf:8.1f} {100 * gf / peak:6.1f}% {r['peak_rss_mb']:7.0f} MB"
              + (f"  {note}" if note else ""))
        d = {"workload": work, "method": label, "points_per_s": pts, "gflops": gf, "peak_fraction": gf / peak,
             "peak_rss_mb": r["peak_rss_mb"], "points_timed": r["points"], "seconds": r["seconds"]}
        rows.append(d)
        return d

    verdicts = []
    if "w1" in parts:
        f1 = facts["w1_flops"] * 1797
        plan1 = res["w1_lossvista"]["plan"]
        row("W1", "lossvista fp32 (auto plan)", res["w1_lossvista"], f1,
            f"whole plane; batch {plan1['batch_size']}, {plan1['points_per_batch']} pt/forward, "
            f"{plan1['memory_format']}")
        ours = row("W1", "lossvista fp32, first 200 points", {**res["w1_lossvista"]["window"],
                                                             "peak_rss_mb": res["w1_lossvista"]["peak_rss_mb"]},
                   f1, "the peers' window (used for the ratios)")
        vm = row("W1", "lossvista fp32, 8 points/vmap", res["w1_vmap"], f1, f"first {W1_VMAP_POINTS} points")
        plain = row("W1", "plain loop (DataLoader 128)", res["w1_plain"], f1, f"first {W1_PEER_POINTS} points, extrapolated")
        ll = row("W1", "loss-landscapes (whole set)", res["w1_ll"], f1, f"first {W1_PEER_POINTS} points, extrapolated")
        ref = np.array(res["w1_plain"]["losses"])
        got = np.array(res["w1_lossvista"]["losses"][:len(ref)])
        err = float(np.max(np.abs(got - ref) / np.abs(ref)))
        vm_err = float(np.max(np.abs(np.array(res["w1_vmap"]["losses"][:len(ref)]) - ref) / np.abs(ref)))
        print(f"W1 check: lossvista vs plain loop at the first {len(ref)} points: max relative error {err:.2e} "
              f"(vmap path: {vm_err:.2e})")
        rates = {k: np.array(v) for k, v in res["w1_paired"]["rates"].items()}
        r_ll = float(np.median(rates["lossvista"] / rates["ll"]))
        r_plain = float(np.median(rates["lossvista"] / rates["plain"]))
        print(f"W1 paired windows ({PAIRED_ROUNDS} rounds of {PAIRED_POINTS} points, one process, methods in turn): "
              f"points/s lossvista {np.median(rates['lossvista']):.0f}, plain loop {np.median(rates['plain']):.0f}, "
              f"loss-landscapes {np.median(rates['ll']):.0f} (medians); median paired ratios: "
              f"{r_ll:.2f}x loss-landscapes (range {np.min(rates['lossvista'] / rates['ll']):.2f}-"
              f"{np.max(rates['lossvista'] / rates['ll']):.2f}), {r_plain:.2f}x the plain loop")
        best_ratio = ours["points_per_s"] / ll["points_per_s"]
        print(f"W1 best-of-rounds ratio (separate processes, noisier): {best_ratio:.2f}x loss-landscapes, "
              f"{ours['points_per_s'] / plain['points_per_s']:.2f}x the plain loop")
        verdicts += [("W1 lossvista >= 2x loss-landscapes (median paired ratio)", r_ll, r_ll >= 2.0),
                     ("W1 lossvista >= 1.5x plain loop (median paired ratio)", r_plain, r_plain >= 1.5),
                     ("W1 values match the plain loop (rel <= 1e-5)", err, err <= 1e-5)]
    if "w2" in parts:
        f2 = facts["w2_flops"] * W2_SAMPLES
        plan = res["w2_fp32"]["plan"]
        fp32 = row("W2", "lossvista fp32", res["w2_fp32"], f2, f"batch {plan['batch_size']}, {plan['memory_format']}")
        bf16 = row("W2", "lossvista bf16 (autocast)", res["w2_bf16"], f2, "vs the fp32 sgemm rate")
        row("W2", "plain loop (DataLoader 128)", res["w2_plain"], f2, f"first {W2_PLAIN_POINTS} points")
        row("W2", "loss-landscapes (1024 at once)", res["w2_ll"], f2,
            f"first {W2_LL_POINTS} points; normalization='model' (its 'filter' divides by zero here)")
        a, b = np.array(res["w2_fp32"]["losses"]), np.array(res["w2_bf16"]["losses"])
        bf_err = float(np.max(np.abs(b - a) / np.abs(a)))
        pr = {k: np.array(v) for k, v in res["w2_paired"]["rates"].items()}
        speed = float(np.median(pr["bf16"] / pr["fp32"]))
        print(f"W2 paired windows ({PAIRED_ROUNDS} rounds of one point each): median bf16/fp32 speed {speed:.2f}x "
              f"(range {np.min(pr['bf16'] / pr['fp32']):.2f}-{np.max(pr['bf16'] / pr['fp32']):.2f}); "
              f"best-of-rounds: {bf16['points_per_s'] / fp32['points_per_s']:.2f}x")
        print(f"W2: {facts['w2_flops'] / 1e6:.1f} MFLOP/sample forward; bf16 max relative loss error vs fp32 over "
              f"{len(a)} points: {bf_err:.2e}")
        verdicts += [("W2 lossvista fp32 >= 65% of sgemm", fp32["peak_fraction"], fp32["peak_fraction"] >= 0.65),
                     ("W2 bf16 >= 2.5x fp32 points/s (median paired ratio)", speed, speed >= 2.5)]
    if "e1" in parts:
        for m, label in (("e1_plain", "1 point/forward"), ("e1_lanes", "8 points/vmap")):
            r = res[m]
            for c in r["caps"]:
                saving = r["samples_full"] / c["samples_cap"]
                print(f"E1 early exit ({label}, cap = {c['label']} = {c['cap']:.3g}): {r['points']} points, "
                      f"{100 * c['above']:.0f}% above, {c['bounded']} bounded; forward samples {r['samples_full']} -> "
                      f"{c['samples_cap']} ({saving:.2f}x fewer); time {r['seconds_full']:.1f} -> {c['seconds_cap']:.1f} s; "
                      f"below-cap values bitwise identical: {c['identical_below']}; bounds valid: {c['bounds_ok']}")
                verdicts.append((f"E1 ({label}, {c['label']}): values below the cap identical, bounds valid",
                                 saving, c["identical_below"] and c["bounds_ok"]))
    print("\ntargets:")
    for label, value, ok in verdicts:
        print(f"  {'MET    ' if ok else 'NOT MET'} {label}: {value:.3g}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"peak_gflops": peak, "peaks": peaks, "rows": rows, "facts": facts,
                                         "targets": [{"target": t, "value": v, "met": ok} for t, v, ok in verdicts],
                                         "raw": {k: {kk: vv for kk, vv in v.items() if kk != "losses"}
                                                 for k, v in res.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
