"""Curvature: lambda_max and lambda_min of ResNet-20's Hessian, lossvista vs PyHessian and the
official loss-landscape code's shift method, side by side in one run.

Setup: ResNet-20 (``pipeline.models``, 0.27M parameters) on 1024 synthetic 32 x 32 images
(``synthetic:3x32x32:1024:10``), at its weights after a short seeded training (``--steps`` SGD
steps of 128 samples from the seeded initialisation), cross-entropy over the 1024 samples,
model in eval mode. Three comparisons, each on the same operator for both sides:

1. lambda_max over every parameter (PyHessian differentiates every parameter): lossvista's
   ``Hessian(..., ignore="none").lanczos(1, "largest", tol=1e-3)`` (start vector: the gradient
   and a random vector; stopped on the estimated eigenvalue error, docs/curvature.md) vs PyHessian's
   ``hessian(model, criterion, data=(x, y), cuda=False).eigenvalues(maxIter=100, tol=1e-3)``
   (power iteration; its tolerance is the relative change between two iterations). Both are
   compared with a reference: lossvista's Krylov space continued to ``tol=1e-6``.
2. lambda_min over the parameters with more than one dimension (the official code's choice,
   ``ignore="biasbn"``): lossvista's ``lanczos(1, "both", tol=1e-3)`` (both ends from one run)
   vs the official ``min_max_hessian_eigs``: scipy's ``eigsh(k=1, tol=1e-2)`` on the Hessian,
   then on ``H - 0.51 lambda_max I`` (reimplemented here with their Hessian-vector product,
   which recomputes the forward and the gradient graph at every product, and their tolerance).
   Their product sums the Hessians of the batch means over the data loader's batches
   (``--batch-size``, default 128): ``n_batches`` times the Hessian of the mean loss with equal
   batches, so their eigenvalues are divided by ``n_batches`` to be compared (their ratio
   ``|lambda_min / lambda_max|`` is unchanged). Reference: lossvista continued to ``tol=1e-6``.

Both keep the gradient graph of the data between products: PyHessian its whole batch's,
lossvista each batch's (``graph_memory``, given ``--graph-memory-gib`` 16 here; the library's
default is 2 GiB, above which the graphs are built again for every product).

Counted: Hessian-vector products (PyHessian's by wrapping ``hessian_vector_product``), seconds
(wall clock, each method once, the order lossvista, peer), and the agreement. Target: at least
3x fewer products and 2x less time than PyHessian at the same tolerance.

Usage: ``python benchmarks/bench_curvature.py [--samples 1024] [--steps 40] [--only-max] [--json FILE]``.
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

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def trained_resnet20(samples: int, steps: int, seed: int = 0):
    from pipeline.data import load_dataset
    from pipeline.models import build_model

    torch.manual_seed(seed)
    data = load_dataset(f"synthetic:3x32x32:{samples}:10", seed=seed).train
    x, y = data.inputs[:samples], data.targets[:samples]
    model = build_model("resnet20", num_classes=10, in_channels=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model.eval(), x, y


def ours(model, x, y, ignore: str, which: str, tol: float, reference_tol: float, graph_memory: int):
    from pipeline.curvature import Hessian

    t0 = time.perf_counter()
    hess = Hessian(model, (x, y), loss="cross_entropy", ignore=ignore, device="cpu", graph_memory=graph_memory)
    r = hess.lanczos(1, which, tol=tol, max_iter=300, warn=False)
    seconds = time.perf_counter() - t0
    hvps = hess.hvps
    ref = hess.lanczos(1, which, tol=reference_tol, max_iter=600, warn=False)
    return {"values": [float(v) for v in r.values], "hvps": hvps, "seconds": seconds,
            "errors": [float(v) for v in r.relative_errors],
            "residuals": [float(v) for v in r.relative_residuals], "converged": r.converged,
            "graphs_kept": hess._graphs is not None, "parameters": hess.n,
            "reference": [float(v) for v in ref.values], "reference_hvps": hess.hvps,
            "reference_converged": ref.converged}


def pyhessian_top(model, x, y, tol: float):
    import pyhessian  # noqa: F401  (its package binds the name 'hessian' to the class; the module is in sys.modules)

    ph = sys.modules["pyhessian.hessian"]

    count = [0]
    original = ph.hessian_vector_product

    def counted(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    ph.hessian_vector_product = counted
    try:
        torch.manual_seed(0)  # its random start vector
        t0 = time.perf_counter()
        h = ph.hessian(model, nn.CrossEntropyLoss(), data=(x, y), cuda=False)
        values, _ = h.eigenvalues(maxIter=100, tol=tol, top_n=1)
        seconds = time.perf_counter() - t0
    finally:
        ph.hessian_vector_product = original
        model.zero_grad(set_to_none=True)
    return {"values": [float(values[0])], "hvps": count[0], "seconds": seconds,
            "parameters": sum(p.numel() for p in model.parameters())}


def official_shift(model, x, y, batch_size: int):
    """min_max_hessian_eigs of the official code: eigsh(k=1, tol=1e-2) on H, then on H - 0.51 lambda_max I,
    with their Hessian-vector product (eval_hess_vec_prod) over a data loader, parameters with dim > 1."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    params = [p for p in model.parameters() if len(p.size()) > 1]
    n = sum(p.numel() for p in params)
    loader = [(x[s:s + batch_size], y[s:s + batch_size]) for s in range(0, len(x), batch_size)]
    criterion = nn.CrossEntropyLoss()
    count = [0]

    def hess_vec_prod(vec):
        count[0] += 1
        vec = torch.as_tensor(np.asarray(vec, dtype=np.float32).reshape(-1))
        pieces, i = [], 0
        for p in params:
            pieces.append(vec[i:i + p.numel()].view_as(p))
            i += p.numel()
        model.eval()
        model.zero_grad()
        for inputs, targets in loader:
            loss = criterion(model(inputs), targets)
            grad_f = torch.autograd.grad(loss, inputs=params, create_graph=True)
            prod = sum((g * v).sum() for g, v in zip(grad_f, pieces))
            prod.backward()
        return torch.cat([p.grad.reshape(-1) for p in params]).double().numpy()

    t0 = time.perf_counter()
    A = LinearOperator((n, n), matvec=hess_vec_prod, dtype=np.float64)
    maxeig = float(eigsh(A, k=1, tol=1e-2)[0][0])
    shift = maxeig * .51
    B = LinearOperator((n, n), matvec=lambda v: hess_vec_prod(v) - shift * np.asarray(v).reshape(-1), dtype=np.float64)
    mineig = float(eigsh(B, k=1, tol=1e-2)[0][0]) + shift
    seconds = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    scale = len(loader)  # their sum of batch means is len(loader) times the mean loss (equal batches)
    return {"values": [maxeig / scale, mineig / scale], "raw_values": [maxeig, mineig], "batches": scale,
            "hvps": count[0], "seconds": seconds, "parameters": n}


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=40, help="SGD steps from the seeded initialisation")
    ap.add_argument("--batch-size", type=int, default=128, help="the official code's data loader batch size")
    ap.add_argument("--graph-memory-gib", type=float, default=16.0,
                    help="lossvista keeps the gradient graphs up to this size (PyHessian keeps its whole graph)")
    ap.add_argument("--only-max", action="store_true", help="the lambda_max comparison alone (lossvista, PyHessian)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "curvature.json"))
    args = ap.parse_args()

    load_before = os.getloadavg()
    print(f"load average before: {load_before}, torch threads {torch.get_num_threads()}", flush=True)
    model, x, y = trained_resnet20(args.samples, args.steps)
    print(f"ResNet-20, {args.samples} synthetic samples, {args.steps} SGD steps; loss "
          f"{float(nn.functional.cross_entropy(model(x), y).detach()):.4f}", flush=True)

    room = int(args.graph_memory_gib * (1 << 30))
    top_ours = ours(model, x, y, "none", "largest", 1e-3, 1e-6, room)
    print(f"lossvista lambda_max: {top_ours}", flush=True)
    top_theirs = pyhessian_top(model, x, y, 1e-3)
    print(f"pyhessian lambda_max: {top_theirs}", flush=True)
    both_ours = shift = None
    if not args.only_max:
        both_ours = ours(model, x, y, "biasbn", "both", 1e-3, 1e-6, room)
        print(f"lossvista lambda_max, lambda_min: {both_ours}", flush=True)
        shift = official_shift(model, x, y, args.batch_size)
        print(f"official shift method: {shift}", flush=True)
    load_after = os.getloadavg()

    ref_top = top_ours["reference"][0]
    rows = [
        ("lambda_max, all parameters", "lossvista Lanczos tol 1e-3", top_ours["values"][0], ref_top, top_ours),
        ("", "PyHessian power iteration tol 1e-3", top_theirs["values"][0], ref_top, top_theirs),
    ]
    if both_ours is not None:
        ref_min = both_ours["reference"][1]
        rows += [
            ("lambda_min, dim > 1", "lossvista Lanczos (both ends) tol 1e-3", both_ours["values"][1], ref_min, both_ours),
            ("", "official eigsh + shift 0.51 lambda_max", shift["values"][1], ref_min, shift),
        ]
    print(f"\n{'quantity':28s} {'method':40s} {'value':>12s} {'rel. error':>10s} {'HVPs':>5s} {'seconds':>8s}")
    for q, m, v, ref, r in rows:
        print(f"{q:28s} {m:40s} {v:12.6g} {rel(v, ref):10.2e} {r['hvps']:5d} {r['seconds']:8.1f}")
    ratio_hvps = top_theirs["hvps"] / top_ours["hvps"]
    ratio_time = top_theirs["seconds"] / top_ours["seconds"]
    print(f"\nlambda_max: {ratio_hvps:.2f}x fewer Hessian-vector products, {ratio_time:.2f}x less time than PyHessian "
          f"(target 3x and 2x); agreement {rel(top_ours['values'][0], top_theirs['values'][0]):.2e} relative")
    if both_ours is not None:
        print(f"lambda_min: {shift['hvps'] / both_ours['hvps']:.2f}x fewer products, "
              f"{shift['seconds'] / both_ours['seconds']:.2f}x less time than the shift method (which also gives "
              f"lambda_max to tol 1e-2); reference lambda_min {ref_min:.6g}, lambda_max {both_ours['reference'][0]:.6g}")
    print(f"load average after: {load_after}")
    out = {"samples": args.samples, "steps": args.steps, "load_before": list(load_before), "load_after": list(load_after),
           "threads": torch.get_num_threads(), "lossvista_top": top_ours, "pyhessian_top": top_theirs,
           "lossvista_both": both_ours, "official_shift": shift, "hvp_ratio": ratio_hvps, "time_ratio": ratio_time}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
