"""PCA memory: lossvista's streamed PCA vs scikit-learn's PCA on the stacked matrix (ResNet-50).

Two PCA directions from E = 11 checkpoints of a torchvision ResNet-50 (25.6M parameters). The
checkpoints are seeded synthetic trajectories written to a temporary directory (the final
weights of ``resnet50(weights=None)`` plus a decaying drift, a transient bump and noise), so
the components are well defined.

Each method runs in its own subprocess; the parent reads that child's peak resident set size
from ``os.wait4`` (``ru_maxrss``, the kernel's high-water mark of the child alone):

- ``import torch``: a child that only imports torch and pipeline.directions (the floor both
  methods pay, since both read checkpoints with torch);
- ``lossvista``: ``pipeline.directions.pca_directions(paths, ignore="none")`` (memory-mapped
  checkpoints, Gram matrix, components built piece by piece);
- ``scikit-learn``: the (E x P) float32 matrix of ``theta_e - theta_final`` filled row by row
  from memory-mapped checkpoints, then ``sklearn.decomposition.PCA(n_components=2).fit``
  (default solver), which is what the reference implementation did.

Children end with ``os._exit(0)`` once their result file is written: on this CUDA build of
torch (2.14.1+cu130) the interpreter's teardown alone raises the peak RSS of a bare
``python -c "import torch"`` from 520 MB to 648 MB, which belongs to neither method.

Both see the same P parameters (all of them). The parent then compares the two results
(|cosine| of each component, explained variance ratios). Target: lossvista at most 1 GB and at
most a quarter of scikit-learn's figure.

Usage: ``python benchmarks/bench_pca_memory.py [--checkpoints 11] [--keep DIR]``.
Results also go to ``benchmarks/results/pca_memory.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GB = 1e9
MB = 1e6


def _param_keys(state) -> list[str]:
    return [k for k, v in state.items() if v.is_floating_point() and not k.endswith(("running_mean", "running_var"))]


# ------------------------------------------------------------------------------- children


def child_make(workdir: Path, n: int, seed: int) -> dict:
    """Write n checkpoints epoch_000..: theta_e = theta_c + (1 - t) 0.02 u + sin(pi t) 0.01 v + 0.002 noise."""
    import math

    import torch
    import torchvision

    torch.manual_seed(seed)
    final = torchvision.models.resnet50(weights=None).state_dict()
    keys = _param_keys(final)
    g = torch.Generator().manual_seed(seed)
    u = {k: torch.randn(final[k].shape, generator=g) * final[k].std().clamp_min(1e-3) for k in keys}
    v = {k: torch.randn(final[k].shape, generator=g) * final[k].std().clamp_min(1e-3) for k in keys}
    for e in range(n):
        t = e / (n - 1)
        ge = torch.Generator().manual_seed(seed * 1000 + e + 1)
        state = dict(final)
        for k in keys:
            noise = torch.randn(final[k].shape, generator=ge) * final[k].std().clamp_min(1e-3)
            state[k] = final[k] + (1 - t) * 2.0 * u[k] + math.sin(math.pi * t) * 1.0 * v[k] + 0.2 * (1 - t) * noise
        if e == n - 1:
            state = final
        torch.save(state, workdir / f"epoch_{e:03d}.pt")
    return {"parameters": sum(final[k].numel() for k in keys), "checkpoints": n}


def child_floor(workdir: Path) -> dict:
    import torch  # noqa: F401

    import pipeline.directions  # noqa: F401

    return {}


def child_lossvista(workdir: Path) -> dict:
    from pipeline.directions import pca_directions

    paths = sorted(workdir.glob("epoch_*.pt"))
    t0 = time.perf_counter()
    d = pca_directions(paths, ignore="none")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    d.save(workdir / "lossvista.pt")
    return {"seconds": seconds, "peak_before_save": peak, "explained_variance": d.meta["explained_variance"]}


def child_sklearn(workdir: Path) -> dict:
    import numpy as np
    import torch
    from sklearn.decomposition import PCA

    paths = sorted(workdir.glob("epoch_*.pt"))
    t0 = time.perf_counter()
    centre = torch.load(paths[-1], mmap=True, weights_only=True)
    keys = _param_keys(centre)
    P = sum(centre[k].numel() for k in keys)
    X = np.empty((len(paths), P), dtype=np.float32)  # the stacked matrix, filled in place
    for i, p in enumerate(paths):
        state = torch.load(p, mmap=True, weights_only=True)
        pos = 0
        for k in keys:
            n = centre[k].numel()
            X[i, pos:pos + n] = (state[k].reshape(-1) - centre[k].reshape(-1)).numpy()
            pos += n
        del state
    del centre
    pca = PCA(n_components=2).fit(X)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    np.save(workdir / "sklearn_components.npy", pca.components_.astype(np.float32))
    return {"seconds": seconds, "peak_before_save": peak, "solver": pca._fit_svd_solver,
            "explained_variance": pca.explained_variance_ratio_.tolist()}


CHILDREN = {"make": child_make, "floor": child_floor, "lossvista": child_lossvista, "sklearn": child_sklearn}


# ------------------------------------------------------------------------------- parent


def run_child(name: str, workdir: Path, *extra: str) -> tuple[dict, int]:
    """Run one child; return its JSON result and its own peak RSS in bytes (from wait4)."""
    out = workdir / f"{name}.json"
    with open(workdir / f"{name}.log", "w") as log:
        proc = subprocess.Popen([sys.executable, __file__, "--child", name, "--workdir", str(workdir), *extra],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {name} failed (exit {proc.returncode}); see {workdir / (name + '.log')}:\n"
                         + (workdir / f"{name}.log").read_text()[-2000:])
    return json.loads(out.read_text()), usage.ru_maxrss * 1024


def compare(workdir: Path) -> list[float]:
    import numpy as np
    import torch

    from pipeline.directions import Directions

    d = Directions.load(workdir / "lossvista.pt")
    centre = torch.load(workdir / "epoch_000.pt", mmap=True, weights_only=True)
    keys = _param_keys(centre)
    ref = np.load(workdir / "sklearn_components.npy", mmap_mode="r")
    cos = []
    for k, comp in enumerate((d.x, d.y)):
        v = torch.cat([comp[key].reshape(-1) for key in keys]).double().numpy()
        r = np.asarray(ref[k], dtype=np.float64)
        cos.append(float(abs(v @ r) / (np.linalg.norm(v) * np.linalg.norm(r))))
    return cos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", type=int, default=11)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the checkpoints (default: a temp dir)")
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        workdir = Path(args.workdir)
        fn = CHILDREN[args.child]
        result = fn(workdir, args.checkpoints, args.seed) if args.child == "make" else fn(workdir)
        (workdir / f"{args.child}.json").write_text(json.dumps(result))
        sys.stdout.flush()
        os._exit(0)  # skip interpreter teardown: see the module docstring

    ctx = tempfile.TemporaryDirectory(prefix="lossvista-pca-bench-") if not args.keep else None
    workdir = Path(args.keep or ctx.name)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"writing {args.checkpoints} ResNet-50 checkpoints to {workdir} ...", file=sys.stderr)
        made, _ = run_child("make", workdir, "--checkpoints", str(args.checkpoints), "--seed", str(args.seed))
        P, E = made["parameters"], made["checkpoints"]
        rows = {}
        for name in ("floor", "lossvista", "sklearn"):
            print(f"running {name} ...", file=sys.stderr)
            rows[name] = run_child(name, workdir)
        cos = compare(workdir)
    finally:
        if ctx is not None:
            ctx.cleanup()

    floor = rows["floor"][1]
    lc, sk = rows["lossvista"], rows["sklearn"]
    print(f"\nPCA memory: {E} checkpoints x {P / 1e6:.2f}M parameters of torchvision ResNet-50 "
          f"(stacked float32 matrix {E * P * 4 / MB:.0f} MB)")
    print(f"{'method':<34}{'peak RSS (MB)':>14}{'above floor':>13}{'time (s)':>10}")
    print(f"{'import torch (floor)':<34}{floor / MB:>14.0f}{'':>13}{'':>10}")
    print(f"{'lossvista pca_directions (mmap)':<34}{lc[1] / MB:>14.0f}{(lc[1] - floor) / MB:>13.0f}"
          f"{lc[0]['seconds']:>10.1f}")
    print(f"{'scikit-learn PCA (' + sk[0]['solver'] + ')':<34}{sk[1] / MB:>14.0f}{(sk[1] - floor) / MB:>13.0f}"
          f"{sk[0]['seconds']:>10.1f}")
    ratio = lc[1] / sk[1]
    print(f"\nlossvista / scikit-learn peak RSS: {ratio:.3f}  (target <= 0.25); lossvista <= 1 GB: "
          f"{'yes' if lc[1] <= GB else 'NO'}")
    print(f"agreement |cos|: PC1 {cos[0]:.6f}, PC2 {cos[1]:.6f}")
    print(f"explained variance: lossvista {[round(v, 6) for v in lc[0]['explained_variance']]}, "
          f"scikit-learn {[round(v, 6) for v in sk[0]['explained_variance']]}")
    results = {"checkpoints": E, "parameters": P, "floor_rss": floor, "lossvista_rss": lc[1], "sklearn_rss": sk[1],
               "ratio": ratio, "cosine": cos, "lossvista": lc[0], "sklearn": sk[0]}
    out = ROOT / "benchmarks" / "results" / "pca_memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    ok = lc[1] <= GB and ratio <= 0.25 and min(cos) > 0.999
    print("targets met" if ok else "TARGETS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
