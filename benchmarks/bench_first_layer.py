"""What the linearity of a network's first layer could save per grid point (a measurement of a
method the engine does not use yet; docs/compile.md, "Beyond compiling").

The first layer of LeNet is a convolution, linear in its weights: at the point
``theta + a*x + b*y`` its output is ``conv(X, W) + a*conv(X, dW_x) + b*conv(X, dW_y)`` (the bias
directions are 0 under the default ``ignore=biasbn``). With the three convolutions of every
batch computed once and kept, each point's first layer is two elementwise multiply-adds instead
of a convolution. This script times one grid point over N images (batch 256, two threads), the
whole LeNet forward and cross-entropy against the same with the first layer's three outputs
cached, eager and compiled (``torch.compile``, steady state: after a warm-up point), and prints
the largest relative difference of the losses and the memory the cache takes.

    flock /tmp/lossvista-bench.lock .venv/bin/python benchmarks/bench_first_layer.py [--samples 10000]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from pipeline.models import LeNet


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000, help="images per point (default: %(default)s)")
    parser.add_argument("--points", type=int, default=5, help="timed points per method (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    n, batch = args.samples - args.samples % 256, 256
    model = LeNet().eval()
    x, y = torch.randn(n, 1, 28, 28), torch.randint(0, 10, (n,))
    dx, dy = torch.randn_like(model.conv1.weight), torch.randn_like(model.conv1.weight)
    starts = range(0, n, batch)

    def rest(h):
        h = F.max_pool2d(F.relu(h), 2)
        h = F.max_pool2d(F.relu(model.conv2(h)), 2)
        h = F.relu(model.fc1(h.flatten(1)))
        return model.fc3(F.relu(model.fc2(h)))

    def loss_full(xb, w, t):
        return F.cross_entropy(rest(F.conv2d(xb, w, model.conv1.bias, padding=2)), t, reduction="sum")

    def loss_cached(h, t):
        return F.cross_entropy(rest(h), t, reduction="sum")

    results = {}
    with torch.inference_mode():
        cache = [(F.conv2d(x[i:i + batch], model.conv1.weight, model.conv1.bias, padding=2),
                  F.conv2d(x[i:i + batch], dx, None, padding=2), F.conv2d(x[i:i + batch], dy, None, padding=2))
                 for i in starts]
        cache_bytes = sum(t.numel() * t.element_size() for triple in cache for t in triple)
        for compiled in (False, True):
            full = torch.compile(loss_full, dynamic=False) if compiled else loss_full
            cached = torch.compile(loss_cached, dynamic=False) if compiled else loss_cached

            def point_full(a, b):
                w = model.conv1.weight + a * dx + b * dy
                return sum(full(x[i:i + batch], w, y[i:i + batch]).item() for i in starts) / n

            def point_cached(a, b):
                return sum(cached(torch.add(torch.add(y0, y1, alpha=a), y2, alpha=b), y[i:i + batch]).item()
                           for (y0, y1, y2), i in zip(cache, starts)) / n

            for name, fn in (("full", point_full), ("first layer cached", point_cached)):
                fn(0.3, 0.2)  # warm-up (the compile, for the compiled ones)
                t0 = time.perf_counter()
                values = [fn(0.1 * k, -0.05 * k) for k in range(args.points)]
                results[(compiled, name)] = ((time.perf_counter() - t0) / args.points, values)
    eager_full = results[(False, "full")][0]
    print(f"LeNet, {n} random 28 x 28 images per point, batch {batch}, {args.threads} threads; "
          f"the cache holds {cache_bytes / 2**20:.0f} MiB")
    print(f"{'':10} {'method':20} {'ms/point':>9} {'vs eager full':>14} {'max rel. diff.':>15}")
    rows = []
    for (compiled, name), (seconds, values) in results.items():
        ref = results[(compiled, "full")][1]
        diff = max(abs(v - r) / abs(r) for v, r in zip(values, ref))
        mode = "compiled" if compiled else "eager"
        print(f"{mode:10} {name:20} {seconds * 1e3:9.0f} {eager_full / seconds:13.2f}x {diff:15.1e}")
        rows.append({"mode": mode, "method": name, "ms_per_point": seconds * 1e3, "speedup": eager_full / seconds,
                     "max_rel_diff": diff})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"samples": n, "batch": batch, "threads": args.threads, "cache_mib": cache_bytes / 2**20,
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
