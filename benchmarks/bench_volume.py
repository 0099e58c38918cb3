"""Benchmark: volumes beside planes, and the topology of a 3-D field.

    .venv/bin/python benchmarks/bench_volume.py [--run runs/demo] [--points 21] [--slabs 7]
        [--max-samples N] [--repeat 3] [--topology 129] [--out benchmarks/results/volume.json]

* ``engine``: the loss of the run's last checkpoint on a ``points^3`` lattice of three seeded
  filter-normalized directions and on a plane of as many points (``points x points^2``), both
  through ``pipeline.surface.evaluate`` (the one engine), interleaved after one untimed warm-up
  call of each: a slab of the lattice and a strip of the plane of the same size, ``--slabs``
  times, each first every other time; ``--max-samples`` evaluates a
  seeded subset of the training split. Target: the volume's points/s within 10 % of the plane's.
* ``topology``: ``pipeline.topology.analyze`` of a ``n^3`` rugged field (a bowl plus random
  Fourier modes) at threshold 0 (classification, both sweeps, basins, merge tree, widths and
  curvature of every minimum), beside gudhi's ``CubicalComplex`` 0-dimensional persistence of
  the same values (building included). Target: under 10 s at 129^3.

Prints the load average beside the figures (the machine is shared; figures taken beside other
work are not comparable).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rugged3(n: int, seed: int = 0, modes: int = 300, kmax: float = 40.0) -> np.ndarray:
    """(n, n, n) samples of one fixed rugged landscape on [-1, 1]^3."""
    rng = np.random.default_rng(seed)
    k = rng.uniform(-kmax, kmax, size=(modes, 3))
    amp = np.linalg.norm(k, axis=1).clip(1.0) ** -1.5
    phase = rng.uniform(0, 2 * np.pi, modes)
    x = np.linspace(-1, 1, n)
    f = 0.5 * (x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2)
    for (kx, ky, kz), a, p in zip(k, amp, phase):  # separable cos(kx x + ky y + kz z + p)
        ex, ey, ez = (np.exp(1j * kk * x) for kk in (kx, ky, kz))
        f += a * np.real(np.exp(1j * p) * ex[:, None, None] * ey[None, :, None] * ez[None, None, :])
    return f


def bench_engine(run_dir: str, points: int, slabs: int, max_samples: int | None) -> dict:
    """The volume's points/s beside the plane's, interleaved: the ``points^3`` lattice is evaluated
    in ``slabs`` slabs along its third axis, each followed by a strip of a plane of as many points,
    so both see the same load; every call is ``pipeline.surface.evaluate`` (the one engine)."""
    import torch

    from pipeline.datamodel import Grid, Lattice
    from pipeline.directions import random_directions
    from pipeline.engine import EvalConfig
    from pipeline.run import Run
    from pipeline.surface import evaluate

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    run = Run(run_dir)
    model, epoch = run.build_model()
    data = run.data("train")
    d3 = random_directions(model, seed=0, ndim=3)
    d2 = d3.plane()
    lattice = Lattice(-1, 1, points, -1, 1, points, -1, 1, points)
    zs = np.array_split(lattice.zs, slabs)
    plane_ys = np.linspace(-1, 1, points * points)  # the plane: points x points^2, strips of it per slab
    strips = np.array_split(plane_ys, slabs)
    config = EvalConfig(device="cpu", max_samples=max_samples)
    seconds = {"volume": 0.0, "plane": 0.0}
    counted = {"volume": 0, "plane": 0}
    for d, g in ((d3, Lattice(-1, 1, 2, -1, 1, 2, -1, 1, 2)), (d2, Grid(-1, 1, 2, -1, 1, 4))):  # warm up, untimed
        evaluate(model, d, g, data, config=config, progress=False)
    for k, (z, y) in enumerate(zip(zs, strips)):
        slab = Lattice(-1, 1, points, -1, 1, points, float(z[0]), float(z[-1]), len(z))
        strip = Grid(-1, 1, points, float(y[0]), float(y[-1]), len(y))
        pair = [("volume", d3, slab), ("plane", d2, strip)]
        for name, d, g in pair if k % 2 == 0 else pair[::-1]:  # each goes first every other round
            t0 = time.perf_counter()
            evaluate(model, d, g, data, config=config, progress=False)
            seconds[name] += time.perf_counter() - t0
            counted[name] += g.size
    out = {"run": run_dir, "epoch": epoch, "volume_points": counted["volume"], "plane_points": counted["plane"],
           "slabs": slabs, "max_samples": max_samples, "samples": data.n if max_samples is None else max_samples,
           "seconds": seconds}
    out["volume_points_per_s"] = counted["volume"] / seconds["volume"]
    out["plane_points_per_s"] = counted["plane"] / seconds["plane"]
    out["ratio"] = out["volume_points_per_s"] / out["plane_points_per_s"]
    return out


def bench_topology(n: int, repeat: int) -> dict:
    from pipeline.topology import analyze

    f = rugged3(n)
    ours = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        topo = analyze(f)
        ours.append(time.perf_counter() - t0)
    out = {"n": n, "ours_seconds": min(ours), "minima": len(topo.minima), "counts": topo.counts(simplified=False)}
    try:
        import gudhi

        t0 = time.perf_counter()
        cc = gudhi.CubicalComplex(vertices=f)
        cc.compute_persistence()
        out["gudhi_cubical_seconds"] = time.perf_counter() - t0
        out["gudhi_minima"] = len(cc.persistence_intervals_in_dimension(0))
    except ImportError:
        out["gudhi_cubical_seconds"] = None
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="runs/demo")
    p.add_argument("--points", type=int, default=21)
    p.add_argument("--slabs", type=int, default=7, help="interleaved rounds of the engine benchmark")
    p.add_argument("--max-samples", type=int, help="engine: a seeded subset of the training split")
    p.add_argument("--no-engine", dest="engine", action="store_false", help="the topology benchmark only")
    p.add_argument("--repeat", type=int, default=3, help="topology: best of")
    p.add_argument("--topology", type=int, default=129)
    p.add_argument("--out", default="benchmarks/results/volume.json")
    args = p.parse_args(argv)
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    engine = bench_engine(args.run, args.points, args.slabs, args.max_samples) if args.engine else None
    if engine is not None:
        print(f"engine ({engine['samples']} samples, {args.slabs} interleaved slabs): volume {engine['volume_points']} "
              f"points {engine['volume_points_per_s']:.2f} points/s, plane {engine['plane_points']} points "
              f"{engine['plane_points_per_s']:.2f} points/s, ratio {engine['ratio']:.3f} (target 0.9-1.1); seconds "
              f"{engine['seconds']}")
        load = os.getloadavg()
        print(f"load average after the engine: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    topo = bench_topology(args.topology, args.repeat)
    gudhi_s = topo["gudhi_cubical_seconds"]
    print(f"topology {args.topology}^3: ours {topo['ours_seconds']:.2f} s (target < 10 s), {topo['minima']} minima; "
          f"gudhi cubical 0-dim persistence {gudhi_s if gudhi_s is None else f'{gudhi_s:.2f} s'}")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"engine": engine, "topology": topo, "load_after": load}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
