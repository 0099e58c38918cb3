#!/usr/bin/env python
"""Compiled evaluation (``EvalConfig(compile='on')``) against today's eager engine, side by side.

    .venv/bin/python benchmarks/bench_compile.py [--threads 2] [--only w3,w1,w2,calibrate] [--rounds 8]
                                                 [--w3-steps 31] [--json FILE]

Each workload is evaluated by ``pipeline.surface.evaluate`` on its whole plane, each method in a
fresh process (``spawn``) with ``torch.set_num_threads(--threads)``, so that nothing compiled
or cached in memory by one method helps another:

- ``eager``: ``compile='off'``, the engine as it was (automatic plan);
- ``compiled, cold``: ``compile='on'`` with an empty inductor cache (a fresh machine): the
  time includes tracing, lowering, the C++ build and the check against eager at the centre;
- ``compiled, warm``: ``compile='on'`` again with the cache the cold run left (a rerun, a
  resume, the second plane of a run: only tracing and loading are paid).

End to end is the whole ``evaluate`` call (the plane, the centre, the compile); steady state is
the median over ``--rounds`` of paired windows in one process after a warm-up (eager and
compiled in turn on the same points, so load that comes and goes hits both alike). GFLOP/s =
forward FLOPs per sample (FlopCounterMode) x samples x points / seconds, against the fp32
sgemm rate measured in the same run (best of repeated 2048 x 2048 products before, between and
after the methods). The compiled losses are compared with the eager ones at every point.

W3: LeNet (seeded initial weights) on Fashion-MNIST's 10,000 test images
    (``load_dataset("fashion-mnist")``), a 31 x 31 filter-normalized random plane over [-1, 1]^2
    (``--w3-steps N``: N x N, for a machine where the whole plane takes too long; fewer points
    weigh the compile more, so the end-to-end ratio of a smaller plane is a lower bound).
    Target: compiled end to end (cold) >= 1.6 x eager.
W1: bench_evaluate.py's W1: the digits CNN trained briefly on all 1797 digits, 41 x 41.
    Target: compiled >= 1.3 x eager (end to end, cold).
W2: bench_evaluate.py's W2: ResNet-20 on 1024 synthetic 3 x 32 x 32 images, 7 x 7.
    Target: compiled end to end not slower than eager.
calibrate: the measurements behind the ``auto`` rule's constants (pipeline/engine/compiled.py):
    for each model of a set of shapes, eager and compiled seconds per sample at the engine's
    batch, the operators of a forward, and the cold and warm compile costs (the first call's
    time beyond its steady cost, on an empty and on a filled cache), one thread, CPU time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_evaluate import _cpu_flags, _cpu_name, build_artifacts, in_fresh_process, sgemm_gflops  # noqa: E402

W3_STEPS, W1_STEPS, W2_STEPS = 31, 41, 7
WINDOW = {"w3": 2, "w1": 50, "w2": 1}  # points per paired window


# ------------------------------------------------------------------------------------------
# workloads (built once in the parent, saved as files)


def build_w3(work: Path) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.data import load_dataset
    from pipeline.directions import random_directions
    from pipeline.models import build_model

    test = load_dataset("fashion-mnist").test
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lenet = build_model("lenet").eval()
    torch.save({"state": lenet.state_dict(), "x": test.inputs, "y": test.targets}, work / "w3.pt")
    random_directions(lenet, norm="filter", ignore="biasbn", seed=0).save(work / "w3_dirs.pt")
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        lenet(test.inputs[:8])
    return fc.get_total_flops() / 8


def _load(work: str, name: str):
    import torch

    from pipeline.directions import Directions
    from pipeline.models import build_model

    blob = torch.load(Path(work) / f"{name}.pt", weights_only=True)
    model = build_model({"w1": "digits-cnn", "w2": "resnet20", "w3": "lenet"}[name])
    model.load_state_dict(blob["state"])
    return model.eval(), Directions.load(Path(work) / f"{name}_dirs.pt"), blob["x"], blob["y"]


def _steps(name: str, w3_steps: int = W3_STEPS) -> int:
    return {"w1": W1_STEPS, "w2": W2_STEPS, "w3": w3_steps}[name]


# ------------------------------------------------------------------------------------------
# methods (each in a fresh process)


def child(task: dict) -> dict:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = task["cache"]  # before torch looks at it
    import torch

    from pipeline.datamodel import Grid
    from pipeline.engine import EvalConfig, evaluate_points
    from pipeline.surface import evaluate

    torch.set_num_threads(task["threads"])
    name, method = task["workload"], task["method"]
    model, d, x, y = _load(task["work"], name)
    steps = _steps(name, task["w3_steps"])
    grid = Grid(-1, 1, steps, -1, 1, steps)
    out: dict = {"workload": name, "method": method}
    if method in ("eager", "cold", "warm"):
        config = EvalConfig(device="cpu", compile="off" if method == "eager" else "on")
        t, c = time.perf_counter(), time.process_time()
        s = evaluate(model, d, grid, (x, y), config=config, progress=False)
        out.update(seconds=time.perf_counter() - t, cpu_seconds=time.process_time() - c, points=grid.size,
                   losses=s.loss.ravel().tolist(), plan=s.meta["engine"]["plan"])
        if method == "eager":  # what compile='auto' would choose for this job (from shapes: not timed)
            from pipeline.engine.points import compile_decision

            out["auto"] = compile_decision(model, (x, y), EvalConfig(device="cpu"), grid.size).to_dict()
    elif method == "paired":
        coords = grid.coords()
        k = WINDOW[name]
        eager, compiled = EvalConfig(device="cpu", compile="off"), EvalConfig(device="cpu", compile="on")
        for c in (eager, compiled):  # warm-up: the compile, the kernels' first calls
            evaluate_points(model, d, coords[:1], (x, y), c, progress=False)
        rates: dict[str, list[float]] = {"eager": [], "compiled": []}
        for r in range(task["rounds"]):
            part = coords[(r * k) % len(coords):(r * k) % len(coords) + k]
            for label, c in (("eager", eager), ("compiled", compiled)):
                t = time.perf_counter()
                evaluate_points(model, d, part, (x, y), c, progress=False)
                rates[label].append(len(part) / (time.perf_counter() - t))
        out.update(rates=rates)
    else:
        raise ValueError(f"unknown method {method!r}")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_child(task: dict) -> dict:
    return in_fresh_process(child, task)


# ------------------------------------------------------------------------------------------
# calibration of the auto rule (one thread, CPU time)


def _calibration_models():
    """(label, builder, (N, *input) maker, loss) of the shapes the rule is fitted on."""
    import torch
    from torch import nn

    from pipeline.data import load_dataset
    from pipeline.models import build_model

    def images(c, h, n):
        g = torch.Generator().manual_seed(0)
        return torch.randn(n, c, h, h, generator=g), torch.randint(0, 10, (n,), generator=g)

    def digits():
        ds = load_dataset("digits")
        return torch.cat([ds.train.inputs, ds.test.inputs]), torch.cat([ds.train.targets, ds.test.targets])

    def fashion(n):
        t = load_dataset("fashion-mnist").test
        return t.inputs[:n], t.targets[:n]

    def mlp():
        return nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))

    def regression(n):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 10, generator=g)
        return x, x[:, :1] * 0.5 - x[:, 1:2]

    def tokens():
        layer = nn.TransformerEncoderLayer(48, 4, 96, dropout=0.0, batch_first=True)

        class Lm(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(64, 48)
                self.blocks = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
                self.head = nn.Linear(48, 64)

            def forward(self, t):
                return self.head(self.blocks(self.embed(t)))
        return Lm()

    def token_data(n):
        g = torch.Generator().manual_seed(0)
        return torch.randint(0, 64, (n, 32), generator=g), torch.randint(0, 64, (n, 32), generator=g)

    return [
        ("digits-cnn", lambda: build_model("digits-cnn"), digits, "cross_entropy"),
        ("lenet", lambda: build_model("lenet"), lambda: fashion(2048), "cross_entropy"),
        ("resnet20", lambda: build_model("resnet20"), lambda: images(3, 32, 256), "cross_entropy"),
        ("vgg9", lambda: build_model("vgg9"), lambda: images(3, 32, 128), "cross_entropy"),
        ("mlp (regression)", mlp, lambda: regression(4096), "mse"),
        ("transformer (tokens)", tokens, lambda: token_data(512), "cross_entropy"),
    ]


def calibrate_child(task: dict) -> dict:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = task["cache"]
    import torch

    from pipeline.directions import random_directions
    from pipeline.engine import EvalConfig, evaluate_points

    torch.set_num_threads(1)
    label, build, make, loss = _calibration_models()[task["index"]]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build().eval()
        data = make()
    d = random_directions(model, seed=0, ignore="biasbn")
    coords = np.random.default_rng(0).uniform(-1, 1, (64, 2))

    def cpu_now() -> float:  # this process and its C++ compiler children
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    out: dict = {"label": label}
    per_point: dict[str, float] = {}
    first: dict[str, float] = {}
    for mode in ("off", "on"):
        config = EvalConfig(device="cpu", compile=mode)
        c = cpu_now()
        r = evaluate_points(model, d, coords[:1], data, config, loss=loss, progress=False)
        first[mode] = cpu_now() - c
        k, best = 1, float("inf")
        while True:  # enough points for about a second of work, best of 3
            c = cpu_now()
            evaluate_points(model, d, coords[:k], data, config, loss=loss, progress=False)
            took = cpu_now() - c
            if took > 0.5 or k >= 64:
                break
            k = min(64, k * 4)
        for _ in range(3):
            c = cpu_now()
            evaluate_points(model, d, coords[:k], data, config, loss=loss, progress=False)
            best = min(best, (cpu_now() - c) / k)
        per_point[mode] = best
        if mode == "on":
            out["compiled"] = r.plan.compiled
    n = r.plan.samples
    out.update(samples=n, batch=r.plan.batch_size, flops=r.plan.flops_per_sample,
               eager_us=1e6 * per_point["off"] / n, compiled_us=1e6 * per_point["on"] / n,
               compile_s=first["on"] - per_point["on"] - (first["off"] - per_point["off"]))
    from pipeline.engine.points import _PROFILE_CACHE

    profile = next(iter(_PROFILE_CACHE.values()))
    out.update(operators=profile.operators, activation_bytes=profile.activation_bytes)
    return out


def calibrate(threads: int) -> list[dict]:
    rows = []
    for i, (label, *_rest) in enumerate(_calibration_models()):
        with tempfile.TemporaryDirectory(prefix="bench-compile-cache-") as cache:
            cold = in_fresh_process(calibrate_child, {"index": i, "cache": cache})
            warm = in_fresh_process(calibrate_child, {"index": i, "cache": cache})
        cold["compile_warm_s"] = warm["compile_s"]
        rows.append(cold)
        print(f"  {label}: done (load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"\n{'model':22s} {'FLOP/sample':>12s} {'ops':>4s} {'batch':>5s} {'eager us':>9s} {'compiled us':>11s} "
          f"{'speed-up':>8s} {'eager GF/s':>10s} {'comp GF/s':>9s} {'compile cold':>12s} {'warm':>6s}")
    for r in rows:
        print(f"{r['label']:22s} {r['flops']:12.3g} {r['operators']:4d} {r['batch']:5d} {r['eager_us']:9.3g} "
              f"{r['compiled_us']:11.3g} {r['eager_us'] / r['compiled_us']:8.2f} "
              f"{r['flops'] / r['eager_us'] / 1e3:10.1f} {r['flops'] / r['compiled_us'] / 1e3:9.1f} "
              f"{r['compile_s']:11.1f}s {r['compile_warm_s']:5.1f}s" + ("" if r["compiled"] else "  (not compiled)"))
    return rows


# ------------------------------------------------------------------------------------------
# report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for every method (default: 2)")
    p.add_argument("--only", default="w3,w1,w2", help="comma-separated subset of w3,w1,w2,calibrate "
                   "(default: w3,w1,w2)")
    p.add_argument("--rounds", type=int, default=8, help="paired windows per workload (default: 8)")
    p.add_argument("--w3-steps", type=int, default=W3_STEPS, metavar="N",
                   help=f"W3's plane is N x N (default: {W3_STEPS})")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    parts = [s for s in args.only.split(",") if s]
    if not set(parts) <= {"w1", "w2", "w3", "calibrate"}:
        p.error(f"--only must be a subset of w3,w1,w2,calibrate; got {args.only!r}")

    import torch

    flags = _cpu_flags()
    print(f"CPU: {_cpu_name()}, {os.cpu_count()} cores, threads={args.threads}, torch {torch.__version__}; "
          f"avx512={'avx512f' in flags}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (other processes on these cores lower every figure)")
    report: dict = {"rows": [], "targets": []}
    workloads = [w for w in ("w3", "w1", "w2") if w in parts]
    if workloads:
        workloads_report(args, workloads, report)
    if "calibrate" in parts:
        print("\ncalibration of the auto rule (one thread, CPU time, first call minus steady cost = compile):")
        report["calibration"] = calibrate(args.threads)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    _write(args.json, report)
    return 0


def workloads_report(args: argparse.Namespace, workloads: list[str], report: dict) -> None:
    """Run W3, W1, W2 as asked, print their table, add their figures to ``report``."""
    peaks = [sgemm_gflops(args.threads)]
    res: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as tmp:
        work = Path(tmp)
        facts = build_artifacts(work, args.threads) if {"w1", "w2"} & set(workloads) else {}
        if "w3" in workloads:
            facts["w3_flops"] = build_w3(work)
        for w in workloads:
            cache = str(work / f"inductor-{w}")  # empty: the cold run fills it, the warm one reads it
            for method in ("eager", "cold", "warm", "paired"):
                r = run_child({"work": str(work), "workload": w, "method": method, "threads": args.threads,
                               "cache": cache, "rounds": args.rounds, "w3_steps": args.w3_steps})
                res[f"{w}_{method}"] = r
                _write(args.json, {**report, "partial": res})  # kept if a later step fails
                peaks.append(sgemm_gflops(args.threads))
                took = "paired windows" if method == "paired" else f"{r['seconds']:.1f} s"
                print(f"  {w} {method}: {took} (load {os.getloadavg()[0]:.2f})", flush=True)
    peak = max(peaks)
    print(f"\nfp32 sgemm 2048^2 ({args.threads} threads): {peak:.1f} GFLOP/s (best of {len(peaks)}: "
          + ", ".join(f"{v:.0f}" for v in peaks) + ")")
    samples = {"w3": 10000, "w1": 1797, "w2": 1024}
    names = {"w3": f"W3 LeNet, Fashion-MNIST 10k, {args.w3_steps}x{args.w3_steps}",
             "w1": "W1 digits CNN, 1797, 41x41", "w2": "W2 ResNet-20, 1024, 7x7"}
    targets = {"w3": 1.6, "w1": 1.3, "w2": 1.0}
    print(f"\n{'workload':36s} {'method':26s} {'seconds':>8s} {'points/s':>9s} {'GFLOP/s':>8s} {'% peak':>7s}")
    for w in workloads:
        flops = facts[f"{w}_flops"] * samples[w]
        e = res[f"{w}_eager"]
        for method, label in (("eager", "eager (today's engine)"), ("cold", "compiled, cold cache"),
                              ("warm", "compiled, warm cache")):
            r = res[f"{w}_{method}"]
            pts = r["points"] / r["seconds"]
            gf = pts * flops / 1e9
            print(f"{names[w]:36s} {label:26s} {r['seconds']:8.1f} {pts:9.2f} {gf:8.1f} {100 * gf / peak:6.1f}%")
            report["rows"].append({"workload": w, "method": method, "seconds": r["seconds"],
                                   "cpu_seconds": r["cpu_seconds"], "points_per_s": pts, "gflops": gf,
                                   "peak_fraction": gf / peak, "plan": r["plan"]})
        rates = {k: np.array(v) for k, v in res[f"{w}_paired"]["rates"].items()}
        steady = float(np.median(rates["compiled"] / rates["eager"]))
        gf_e = float(np.median(rates["eager"])) * flops / 1e9
        gf_c = float(np.median(rates["compiled"])) * flops / 1e9
        a, b = np.array(res[f"{w}_eager"]["losses"]), np.array(res[f"{w}_cold"]["losses"])
        err = float(np.max(np.abs(b - a) / np.abs(a)))
        same = np.array_equal(np.array(res[f"{w}_warm"]["losses"]), b)
        cold, warm = e["seconds"] / res[f"{w}_cold"]["seconds"], e["seconds"] / res[f"{w}_warm"]["seconds"]
        plan = res[f"{w}_cold"]["plan"]
        auto = e["auto"]
        print(f"{'':36s} compile='auto' chooses {'compiled' if auto['compiled'] else 'eager'} (expected saving "
              f"{auto['expected_saving_s']:.1f} s against a compile cost of {auto['expected_compile_s']:.1f} s)")
        ratios = rates["compiled"] / rates["eager"]
        print(f"{'':36s} steady state (paired windows, median of {len(rates['eager'])}): {steady:.2f}x "
              f"(range {np.min(ratios):.2f}-{np.max(ratios):.2f}); "
              f"eager {gf_e:.1f}, compiled {gf_c:.1f} GFLOP/s = {100 * gf_e / peak:.0f}% / {100 * gf_c / peak:.0f}% of "
              f"sgemm")
        print(f"{'':36s} end to end: {cold:.2f}x cold, {warm:.2f}x warm; compiled vs eager max relative "
              f"difference {err:.1e}; warm bitwise the cold: {same}; batch {plan['batch_size']}, "
              f"{plan['points_per_batch']} pt/forward, {plan['memory_format']}")
        report["targets"].append({"workload": w, "target": targets[w], "end_to_end_cold": cold,
                                  "end_to_end_warm": warm, "steady": steady, "max_rel_diff": err, "auto": auto,
                                  "met": cold >= targets[w] and err <= 1e-5})
    report.update(peak_gflops=peak, peaks=peaks, facts=facts)
    print("\ntargets (end to end, cold cache; values within 1e-5 of eager):")
    for t in report["targets"]:
        word = "not slower than" if t["target"] == 1.0 else f">= {t['target']}x"
        print(f"  {'MET    ' if t['met'] else 'NOT MET'} {t['workload'].upper()} compiled {word} eager: "
              f"{t['end_to_end_cold']:.2f}x (warm {t['end_to_end_warm']:.2f}x, steady {t['steady']:.2f}x)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    _write(args.json, report)


def _write(path: Path | None, report: dict) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    sys.exit(main())
