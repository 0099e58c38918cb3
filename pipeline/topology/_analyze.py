"""``analyze``: classification, both sweeps, simplification and the per-minimum measures (2D and 3D)."""
from __future__ import annotations

import math

import numpy as np

from . import _mesh
from ._measures import cell_areas, quadratic_hessian, sublevel_components
from ._merge import Sweep, death_persistence, survivors, sweep
from ._mesh import DEGENERATE, SADDLE, SADDLE2
from .result import CriticalPoints, MergeTree, Minima, Pairs, Topology

DEFAULT_DELTA = 0.05  # width level above a minimum, as a fraction of the value range
AXES = ("xs", "ys", "zs")


def _check_values(values) -> np.ndarray:
    v = np.asarray(values)
    if v.ndim not in (2, 3) or min(v.shape) < 2:
        raise ValueError(f"values must be a 2D array (nx, ny) or a 3D array (nx, ny, nz), every size >= 2; "
                         f"got shape {v.shape}")
    if v.dtype.kind not in "biuf":
        raise ValueError(f"values must be real numbers (bool, int or float); got dtype {v.dtype}")
    v = v.astype(np.float64)
    if not np.isfinite(v).any():
        raise ValueError(f"values has no finite value (shape {v.shape}); nothing to analyze")
    return v


def _check_axis(x, n: int, name: str) -> np.ndarray:
    if x is None:
        return np.arange(n, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match values; got {x.shape}")
    if not (np.isfinite(x).all() and (np.diff(x) > 0).all()):
        raise ValueError(f"{name} must be finite and strictly increasing; got {np.array2string(x, threshold=8)}")
    return x


def _check_number(x, name: str, upper: float = math.inf) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {x!r}") from None
    if not (math.isfinite(x) and 0.0 <= x <= upper):
        bound = "a finite number >= 0" if upper == math.inf else f"between 0 and {upper}"
        raise ValueError(f"{name} must be {bound}; got {x!r}")
    return x


def _run_sweep(rank: np.ndarray, count: np.ndarray, mask: np.ndarray, reach: np.ndarray,
               layout: tuple[int, ...], last: int, descending: bool) -> tuple[Sweep, np.ndarray]:
    """One sweep over (sub- or super-) level sets. Returns it and each vertex's extremum index.

    count, mask : link components and slot mask below (sublevel) or above (superlevel) each vertex.
    reach : (N,) extremum vertex reached by steepest descent (or ascent) from each vertex.
    layout : the grid's internal shape ((ny, nx) or (nz, ny, nx)).
    """
    key = -rank.astype(np.int64) if descending else rank
    extrema = np.flatnonzero(count == 0)
    extrema = extrema[np.argsort(key[extrema])]
    ext_id = np.full(rank.size, -1, dtype=np.int64)
    ext_id[extrema] = np.arange(len(extrema))
    saddles = np.flatnonzero(count >= 2)
    saddles = saddles[np.argsort(key[saddles])]
    nbr = _mesh.representatives(mask[saddles], saddles, layout)  # (S, R): a vertex of each link component
    labels = np.where(nbr >= 0, ext_id[reach[np.maximum(nbr, 0)]], -1)
    width = int(count[saddles].max()) if len(saddles) else 1
    labels = -np.sort(-labels, axis=1)[:, :width]  # valid labels first
    return sweep(extrema, saddles, labels, last), ext_id[reach]


def _merge_tree(join: Sweep, pers: np.ndarray, threshold: float, alive: np.ndarray,
                flat: np.ndarray, saddle: str) -> MergeTree:
    """The join tree of the surviving minima (``alive``: (M,) bool), values from ``flat`` (N,)."""
    alive = np.flatnonzero(alive)
    vertex = join.extrema[alive].tolist()
    types = ["minimum"] * len(alive)
    top = {int(m): k for k, m in enumerate(alive)}
    arcs = []
    for s, keep, die in zip(join.saddle.tolist(), join.keep.tolist(), join.die.tolist()):
        if pers[die] <= threshold:
            continue
        if vertex[-1] != s or types[-1] != saddle:
            vertex.append(s)
            types.append(saddle)
        node = len(vertex) - 1
        for m in (keep, die):
            if top[m] != node:
                arcs.append((top[m], node))
        top[keep] = node
    vertex.append(int(join.node_vertex[-1]))
    types.append("maximum")
    arcs.append((top[0], len(vertex) - 1))
    vertex = np.asarray(vertex, dtype=np.int64)
    value = np.where(np.isfinite(flat[vertex]), flat[vertex], np.nan)
    return MergeTree(vertex, tuple(types), value, np.asarray(arcs, dtype=np.int64).reshape(-1, 2))


def analyze(values, *, persistence: float = 0.0, relative: bool = False, xs=None, ys=None, zs=None,
            delta: float | None = None, curvature_radius: int = 1) -> Topology:
    """Critical points, persistence pairs, basins and merge tree of a 2D or 3D scalar field.

    Parameters
    ----------
    values : (nx, ny) or (nx, ny, nz) array_like, ``values[i, j(, k)]`` at ``(xs[i], ys[j](, zs[k]))``;
        NaN/inf allowed.
    persistence : float, default 0.0
        Simplification threshold: features whose persistence exceeds it survive
        (the global minimum and maximum always do). Value units unless ``relative``.
    relative : bool, default False
        ``persistence`` is a fraction (0..1) of the range of the finite values.
    xs, ys, zs : (nx,), (ny,), (nz,) strictly increasing coordinates; default: the indices
        (``zs`` only for a 3D field).
    delta : float or None, default None
        Width level above each minimum, in value units; None: 5 % of the value range.
    curvature_radius : int, default 1
        Half-size of the square (cube) window of the local quadratic fit (1: 3 x 3 (x 3) points).

    Returns
    -------
    Topology
    """
    v = _check_values(values)
    nd = v.ndim
    if nd == 2 and zs is not None:
        raise ValueError("zs is for a 3D field; values is 2D")
    axes = tuple(_check_axis(a, n, name) for a, n, name in zip((xs, ys, zs), v.shape, AXES))
    persistence = _check_number(persistence, "persistence", 1.0 if relative else math.inf)
    if delta is not None:
        delta = _check_number(delta, "delta")
    if isinstance(curvature_radius, bool) or not isinstance(curvature_radius, (int, np.integer)) \
            or curvature_radius < 1:
        raise ValueError(f"curvature_radius must be an integer >= 1; got {curvature_radius!r}")

    vt = np.ascontiguousarray(v.T)  # ([nz,] ny, nx): flat index == vertex id i + nx * j (+ nx * ny * k)
    layout = vt.shape
    flat = vt.ravel()
    finite = np.isfinite(flat)
    vmin, vmax = float(flat[finite].min()), float(flat[finite].max())
    span = vmax - vmin
    cv = np.where(finite, flat, vmax)  # non-finite values count as the top of the range
    threshold = persistence * span if relative else persistence

    order, rank = _mesh.vertex_order(vt)
    link = _mesh.links(rank.reshape(layout))
    lcount, ucount = link.lower_count, link.upper_count
    ctype = _mesh.classify(lcount, ucount, nd)
    down, up = _mesh.follow(link.down), _mesh.follow(link.up)

    join, leaf = _run_sweep(rank, lcount, link.lower, down, layout, int(order[-1]), descending=False)
    split, _ = _run_sweep(rank, ucount, link.upper, up, layout, int(order[0]), descending=True)
    del link, down, up
    pmin = death_persistence(join, cv, sublevel=True)
    pmax = death_persistence(split, cv, sublevel=False)
    saddle_pers = np.zeros(flat.size)
    np.maximum.at(saddle_pers, join.saddle, pmin[join.die])
    np.maximum.at(saddle_pers, split.saddle, pmax[split.die])

    # simplification and basins
    target = survivors(join, pmin, threshold)
    alive = target == np.arange(len(target))
    label_of = np.where(alive, np.cumsum(alive) - 1, -1)
    basins_flat = np.where(finite, label_of[target][leaf], -1).astype(np.int32)
    alive_max = survivors(split, pmax, threshold) == np.arange(len(split.extrema))

    # per-minimum measures
    weight = cell_areas(*axes).T.ravel()  # by vertex id
    basin_area = np.bincount(basins_flat[finite], weights=weight[finite], minlength=int(alive.sum()))
    total_area = float(weight.sum())
    kept = np.flatnonzero(alive)
    step = DEFAULT_DELTA * span if delta is None else delta
    comps = sublevel_components(join, leaf, order, rank, cv, int(finite.sum()), weight, v.shape,
                                kept, cv[join.extrema[kept]] + step)
    kv = join.extrema[kept]
    index = np.stack(np.unravel_index(kv, layout)[::-1], axis=1)  # (K, nd) (i, j[, k])
    extent = np.stack([axes[d][comps.hi[:, d]] - axes[d][comps.lo[:, d]] for d in range(nd)], axis=1)
    area = comps.area
    minima = Minima(
        vertex_id=kv, value=flat[kv], persistence=pmin[kept],
        basin_area=basin_area, basin_fraction=basin_area / total_area,
        width_delta=float(step), width_level=cv[kv] + step,
        width_extent=extent, width_area=area, width_diameter=_diameter(area, nd),
        curvature=quadratic_hessian(v, axes, index, int(curvature_radius)),
        xs=axes[0], ys=axes[1], zs=axes[2] if nd == 3 else None)

    # surviving critical points at finite vertices, by type code then value (then vertex id)
    sad = np.flatnonzero(saddle_pers > threshold)
    vid = np.concatenate([kv, split.extrema[alive_max], sad])
    pers = np.concatenate([pmin[kept], pmax[alive_max], saddle_pers[sad]])
    vid, pers = vid[finite[vid]], pers[finite[vid]]
    code = ctype[vid]
    order_cp = np.lexsort((vid, flat[vid], code))
    vid, pers, code = vid[order_cp], pers[order_cp], code[order_cp]
    saddle_like = (code == SADDLE) | (code == SADDLE2) | (code == DEGENERATE)
    mult = np.where(saddle_like, np.maximum(lcount, ucount)[vid] - 1, 0).astype(np.int8)
    points = CriticalPoints(vid, code, flat[vid], pers, mult, axes[0], axes[1], axes[2] if nd == 3 else None)

    pairs = Pairs(
        birth=np.concatenate([join.extrema[join.die], split.saddle, order[:1]]),
        death=np.concatenate([join.saddle, split.extrema[split.die], order[-1:]]),
        kind=np.concatenate([np.zeros(len(join.die), np.int8), np.ones(len(split.die), np.int8),
                             np.array([2], np.int8)]),
        persistence=np.concatenate([pmin[join.die], pmax[split.die], [span]]),
    )
    tree = _merge_tree(join, pmin, threshold, alive, flat, "saddle" if nd == 2 else "1-saddle")
    grid = lambda a: np.ascontiguousarray(a.reshape(layout).T)  # noqa: E731  vertex order -> [i, j(, k)]
    return Topology(
        xs=axes[0], ys=axes[1], zs=axes[2] if nd == 3 else None,
        persistence=persistence, relative=bool(relative), threshold=float(threshold),
        value_range=(vmin, vmax),
        critical_type=grid(ctype), lower_components=grid(lcount), upper_components=grid(ucount),
        critical_points=points, pairs=pairs, basins=grid(basins_flat),
        minima=minima, merge_tree=tree,
    )


def _diameter(measure: np.ndarray, nd: int) -> np.ndarray:
    """Diameter of the disk (ball) of the same area (volume)."""
    return 2.0 * np.sqrt(measure / np.pi) if nd == 2 else 2.0 * np.cbrt(3.0 * measure / (4.0 * np.pi))
