"""Benchmark: ``pipeline.topology.analyze`` beside gudhi's 0-dimensional persistence.

    .venv/bin/python benchmarks/bench_topology.py [--sizes 257 513 1025] [--repeat 3]
        [--exact-max 513] [--noise] [--out benchmarks/results/topology.json]

One rugged field, defined in closed form on [-1, 1]^2 (a bowl plus 1000 random Fourier
modes, |k| <= 500, amplitudes ~ |k|^-1.5), is sampled at each size, so the grids are
refinements of the same landscape. For each size, in the same process:

* ``ours``: the whole ``analyze`` (classification, both sweeps, basins, merge tree,
  widths and curvature of every minimum) at threshold 0.
* ``cub4``: gudhi ``CubicalComplex(vertices=f)``: values on vertices, sublevel sets
  connected through grid edges only (4-neighbours).
* ``cub8``: gudhi ``CubicalComplex(top_dimensional_cells=f)``: values on pixels, which
  touch through corners too (8-neighbours).
* ``tri`` (sizes <= --exact-max): gudhi ``SimplexTree`` of *our* triangulation with the
  lower-star filtration by our total order. The conventions then agree exactly, and so must
  every min-saddle pair (birth vertex, death vertex): reported as "exact pairs".

Our 6-neighbourhood sits between 4 and 8, so the cubical complexes see more (4) or fewer
(8) minima, and a pair's saddle can differ where the connection runs through the extra
diagonal. What does agree is the large-scale structure: the multisets of 0-dimensional
persistence above a threshold (here 2 % of the range) are compared after sorting: the
table gives how many each side has and the largest difference between the k-th largest
values of both, k up to the smaller count (so with unequal counts it compares the most
persistent features only). On white noise (``--noise``) no such agreement is expected:
every pair lives at grid scale, where the connectivities differ. Timings are the best of
``--repeat`` runs; the gudhi times include building the complex.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.topology import analyze  # noqa: E402


def rugged(n: int, seed: int = 0, modes: int = 1000, kmax: float = 500.0) -> np.ndarray:
    """(n, n) samples of one fixed rugged landscape on [-1, 1]^2 (independent of n)."""
    rng = np.random.default_rng(seed)
    k = rng.uniform(-kmax, kmax, size=(modes, 2))
    k = k[np.hypot(*k.T) > 1.0]
    amp = np.hypot(*k.T) ** -1.5 * rng.standard_normal(len(k))
    phase = rng.uniform(0, 2 * np.pi, len(k))
    x = np.linspace(-1, 1, n)
    u = np.exp(1j * np.outer(x, k[:, 0]))  # (n, M): cos(kx x + ky y + p) is separable
    v = np.exp(1j * np.outer(x, k[:, 1]))
    waves = ((u * (amp * np.exp(1j * phase))) @ v.T).real
    X, Y = np.meshgrid(x, x, indexing="ij")
    return 0.5 * (X**2 + 0.6 * Y**2) + waves


def best_time(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def gudhi_cubical(f: np.ndarray, on_vertices: bool) -> np.ndarray:
    import gudhi

    cc = gudhi.CubicalComplex(vertices=f) if on_vertices else gudhi.CubicalComplex(top_dimensional_cells=f)
    cc.compute_persistence()
    return cc.persistence_intervals_in_dimension(0)


def gudhi_triangulation_pairs(f: np.ndarray) -> set:
    """Min-saddle pairs (birth vertex, death vertex) of our triangulation, by gudhi."""
    import gudhi

    nx, ny = f.shape
    vid = np.arange(nx * ny).reshape(ny, nx).T  # vid[i, j] = i + nx * j
    rank = np.empty(nx * ny, dtype=np.int64)
    rank[np.argsort(f.T.ravel(), kind="stable")] = np.arange(nx * ny)  # our total order (finite f)
    st = gudhi.SimplexTree()
    st.insert_batch(vid.ravel()[None, :], rank[vid.ravel()].astype(float))
    a, b, c, d = vid[:-1, :-1].ravel(), vid[1:, :-1].ravel(), vid[:-1, 1:].ravel(), vid[1:, 1:].ravel()
    for simplices in ([a, b], [a, c], [b, c], [b, d], [c, d], [a, b, c], [b, d, c]):
        s = np.array(simplices)
        st.insert_batch(s, rank[s].max(axis=0).astype(float))
    st.compute_persistence()
    by_rank = np.argsort(rank)
    return {(int(by_rank[int(x)]), int(by_rank[int(y)])) for x, y in st.persistence_intervals_in_dimension(0)
            if np.isfinite(y) and y > x}


def finite_persistence(intervals: np.ndarray) -> np.ndarray:
    fin = intervals[np.isfinite(intervals[:, 1])]
    return np.sort(fin[:, 1] - fin[:, 0])[::-1]


def agreement(ours: np.ndarray, theirs: np.ndarray, tau: float) -> tuple[int, int, float]:
    """Counts above ``tau`` and the largest difference between matched (sorted) values."""
    a, b = ours[ours > tau], theirs[theirs > tau]
    k = min(len(a), len(b))
    return len(a), len(b), float(np.abs(a[:k] - b[:k]).max()) if k else 0.0


def run(sizes, repeat: int, exact_max: int, noise: bool) -> list[dict]:
    rows = []
    fields = [("rugged", n, rugged(n)) for n in sizes]
    if noise:
        fields.append(("noise", sizes[-1], np.random.default_rng(0).standard_normal((sizes[-1],) * 2)))
    for name, n, f in fields:
        span = float(f.max() - f.min())
        tau = 0.02 * span
        t_ours, topo = best_time(lambda: analyze(f), repeat)
        ours = np.sort(topo.pairs.persistence[topo.pairs.kind == 0])[::-1]
        row = {"field": name, "n": n, "ours_s": t_ours, "minima": int(topo.counts(False)["minimum"]),
               "range": span, "tau": tau}
        for key, on_vertices in (("cub4", True), ("cub8", False)):
            t, iv = best_time(lambda: gudhi_cubical(f, on_vertices), repeat)
            theirs = finite_persistence(iv)
            n_a, n_b, diff = agreement(ours, theirs, tau)
            row |= {f"{key}_s": t, f"{key}_minima": len(theirs) + 1, f"ours_above": n_a,
                    f"{key}_above": n_b, f"{key}_maxdiff": diff}
        if n <= exact_max:
            t, pairs = best_time(lambda: gudhi_triangulation_pairs(f), 1)
            p = topo.pairs
            mine = set(zip(p.birth[(p.kind == 0) & (p.persistence > 0)].tolist(),
                           p.death[(p.kind == 0) & (p.persistence > 0)].tolist()))
            row |= {"tri_s": t, "tri_exact": f"{len(mine & pairs)}/{len(mine | pairs)}"}
        rows.append(row)
        print_row(row, header=len(rows) == 1)
    return rows


def print_row(r: dict, header: bool) -> None:
    if header:
        print(f"{'field':>7} {'n':>5} {'ours s':>7} {'cub4 s':>7} {'cub8 s':>7} {'tri s':>6} | "
              f"{'minima ours/4/8':>19} | {'pairs>tau ours/4/8':>18} {'max|dp| 4':>9} {'max|dp| 8':>9} | exact pairs")
    tri = f"{r['tri_s']:6.2f}" if "tri_s" in r else f"{'-':>6}"
    print(f"{r['field']:>7} {r['n']:>5} {r['ours_s']:7.2f} {r['cub4_s']:7.2f} {r['cub8_s']:7.2f} {tri} | "
          f"{r['minima']:>6}/{r['cub4_minima']:>6}/{r['cub8_minima']:>5} | "
          f"{r['ours_above']:>6}/{r['cub4_above']:>5}/{r['cub8_above']:>5} "
          f"{r['cub4_maxdiff'] / r['range']:9.2%} {r['cub8_maxdiff'] / r['range']:9.2%} | {r.get('tri_exact', '-')}",
          flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[257, 513, 1025])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--exact-max", type=int, default=513, help="largest size for the gudhi simplex-tree check")
    ap.add_argument("--noise", action="store_true", help="add white noise at the largest size (worst case)")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    try:
        import gudhi
    except ImportError:
        print("gudhi is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"gudhi {gudhi.__version__}; best of {args.repeat}; tau = 2 % of the range; "
          "max|dp| as a fraction of the range")
    rows = run(args.sizes, args.repeat, args.exact_max, args.noise)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
