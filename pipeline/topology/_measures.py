"""Per-minimum measures: dual-cell areas (volumes in 3D), sublevel components (width) and local curvature."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._merge import Sweep


def dual_widths(x: np.ndarray) -> np.ndarray:
    """(n,) length of each point's dual cell on a 1D grid (half cells at both ends)."""
    mid = 0.5 * (x[1:] + x[:-1])
    return np.diff(np.concatenate([x[:1], mid, x[-1:]]))


def cell_areas(*axes: np.ndarray) -> np.ndarray:
    """(nx, ny) area of each grid point's dual cell in (alpha, beta) units; they sum to the
    rectangle's area. Three axes: (nx, ny, nz) volumes of the dual boxes."""
    out = np.ones(())
    for a in axes:
        out = np.multiply.outer(out, dual_widths(np.asarray(a, float)))
    return out


def _segmented(values: np.ndarray, group: np.ndarray, span: int, op) -> np.ndarray:
    """Running min/max of ``values`` (ints in [0, span)) restarted at every new ``group``.

    Groups must be sorted ascending. Shifting each group by a multiple of ``span + 1``
    keeps earlier groups out of the running min (or max) of later ones.
    """
    shift = group.astype(np.int64) * (span + 1)
    if op is np.minimum:
        return op.accumulate(values - shift) + shift
    return op.accumulate(values + shift) - shift


@dataclass
class Components:
    """Sublevel components, one per query.

    count : (K,) vertices in the component; area : (K,) sum of their dual-cell areas (volumes);
    lo, hi : (K, ndim) index bounding box (i, j[, k]).
    """

    count: np.ndarray
    area: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def sublevel_components(sw: Sweep, leaf: np.ndarray, order: np.ndarray, rank: np.ndarray,
                        cv: np.ndarray, n_finite: int, weight: np.ndarray, shape: tuple[int, ...],
                        minima: np.ndarray, levels: np.ndarray) -> Components:
    """The component of ``{f <= level}`` that holds each queried minimum, from the join tree.

    Every finite vertex is put on its join-tree arc (the highest node on its steepest
    descent minimum's path to the root that it is not below, found by binary lifting).
    A component at level L above node ``a`` (the highest node of the minimum's path at or
    below L) is the whole subtree under ``a``'s arc plus the part of that arc up to L.

    Parameters
    ----------
    sw : the sublevel ``Sweep``.
    leaf : (N,) index into ``sw.extrema`` of each vertex's steepest-descent minimum.
    order, rank : the total order (see ``_mesh.vertex_order``).
    cv : (N,) values, non-finite ones replaced by the largest finite value.
    n_finite : number of finite vertices (a prefix of ``order``).
    weight : (N,) dual-cell area of each vertex.
    shape : (nx, ny[, nz]) of the grid (vertex id ``i + nx * j + nx * ny * k``).
    minima : (K,) indices into ``sw.extrema``; levels : (K,) value of each query's level.
    """
    n_nodes = len(sw.node_vertex)
    up = np.where(sw.node_parent < 0, np.arange(n_nodes), sw.node_parent)
    lifts = [up]
    while len(lifts) < max(1, n_nodes.bit_length()):
        lifts.append(lifts[-1][lifts[-1]])
    node_rank = rank[sw.node_vertex]
    node_cv = cv[sw.node_vertex]

    # vertices that can be in any queried component: finite and not above the top level
    n_v = min(int(np.searchsorted(cv[order], levels.max(), side="right")), n_finite)
    verts = order[:n_v]
    arc = leaf[verts]
    rv = rank[verts]
    for lift in reversed(lifts):
        anc = lift[arc]
        arc = np.where(node_rank[anc] <= rv, anc, arc)

    g = np.argsort(arc, kind="stable")  # by arc, then by rank (verts are in rank order)
    arc, verts = arc[g], verts[g]
    nd = len(shape)
    index = np.unravel_index(verts, shape[::-1])[::-1]  # (i, j[, k]) of each vertex
    spans = [int(v.max()) + 1 if v.size else 1 for v in index]
    # running aggregates along each arc, from its lowest vertex up: count, area, then min and max per axis
    columns = [np.arange(n_v) - np.searchsorted(arc, arc) + 1, np.cumsum(weight[verts])]
    for v, span in zip(index, spans):
        columns += [_segmented(v, arc, span, np.minimum), _segmented(v, arc, span, np.maximum)]
    run = np.stack(columns, axis=1).astype(np.float64)  # (n_v, 2 + 2 nd)
    start = np.searchsorted(arc, np.arange(n_nodes), side="left")
    end = np.searchsorted(arc, np.arange(n_nodes), side="right")
    area_before = np.concatenate([[0.0], run[:, 1]])[start]  # cumulative area before each arc
    empty = np.array([0, 0.0] + [v for span in spans for v in (span, -1)], dtype=np.float64)
    mins, maxs = list(range(2, 2 + 2 * nd, 2)), list(range(3, 3 + 2 * nd, 2))

    def prefix(a: np.ndarray, last: np.ndarray) -> np.ndarray:
        """(len(a), 2 + 2 nd) aggregates of arc ``a``'s vertices at positions start[a]..last."""
        out = np.where((last >= start[a])[:, None], run[np.maximum(last, 0)], empty)
        out[:, 1] -= np.where(last >= start[a], area_before[a], 0.0)
        return out

    def combine(into: list, part: list) -> None:
        into[0] += part[0]
        into[1] += part[1]
        for c in mins:
            into[c] = min(into[c], part[c])
        for c in maxs:
            into[c] = max(into[c], part[c])

    # aggregates of everything strictly below each node's arc; children precede parents
    arc_total = prefix(np.arange(n_nodes), end - 1).tolist()
    below = [empty.tolist() for _ in range(n_nodes)]
    parent = sw.node_parent.tolist()
    relevant = np.flatnonzero(node_cv[:-1] <= levels.max()).tolist()  # the root has no parent
    for a in relevant:
        combine(below[parent[a]], below[a])
        combine(below[parent[a]], arc_total[a])

    # each query's node: highest node on the minimum's path whose value is <= level
    node = minima.astype(np.int64)
    for lift in reversed(lifts):
        anc = lift[node]
        node = np.where(node_cv[anc] <= levels, anc, node)
    # last vertex of the node's arc at or below the level: search by (arc, rank)
    key = arc * np.int64(rank.size) + rank[verts]
    top_rank = np.searchsorted(cv[order], levels, side="right") - 1
    last = np.searchsorted(key, node * np.int64(rank.size) + top_rank, side="right") - 1
    part = prefix(node, last)
    b = np.array(below, dtype=np.float64).reshape(n_nodes, -1)[node]
    out = np.concatenate([b[:, :2] + part[:, :2], np.minimum(b[:, mins], part[:, mins]),
                          np.maximum(b[:, maxs], part[:, maxs])], axis=1)
    return Components(out[:, 0].astype(np.int64), out[:, 1], out[:, 2:2 + nd].astype(np.int64),
                      out[:, 2 + nd:].astype(np.int64))


def quadratic_hessian(values: np.ndarray, axes: tuple[np.ndarray, ...], index: np.ndarray,
                      radius: int) -> np.ndarray:
    """(K, ndim) eigenvalues (ascending) of the Hessian of a least-squares quadratic fit at each point.

    Each fit uses the ``(2 radius + 1)``-point square (cube) window of the grid around the point
    (shifted inwards at the boundary, clipped to the grid), finite values only, in the axes'
    units. NaN where fewer independent points remain than the quadratic has coefficients.

    Parameters
    ----------
    values : (nx, ny[, nz]) float64, ``values[i, j]`` at ``(xs[i], ys[j])``.
    axes : (xs, ys[, zs]).
    index : (K, ndim) int indices ``(i, j[, k])``.
    """
    nd = values.ndim
    k_pts = len(index)
    sizes = [min(2 * radius + 1, n) for n in values.shape]
    starts = [np.clip(index[:, d] - radius, 0, values.shape[d] - sizes[d]) for d in range(nd)]
    grids = np.meshgrid(*[np.arange(m) for m in sizes], indexing="ij")
    win = [starts[d][:, None] + grids[d].ravel()[None, :] for d in range(nd)]  # (K, W) index per axis
    scale = [(a[-1] - a[0]) / (len(a) - 1) for a in axes]  # keep the normal matrix well conditioned
    u = [(axes[d][win[d]] - axes[d][index[:, d]][:, None]) / scale[d] for d in range(nd)]  # (K, W) each
    f = values[tuple(win)]
    ok = np.isfinite(f)
    pairs = [(a, b) for a in range(nd) for b in range(a, nd)]
    terms = [np.ones_like(u[0]), *u] + [(0.5 if a == b else 1.0) * u[a] * u[b] for a, b in pairs]
    design = np.stack(terms, axis=2) * ok[:, :, None]  # (K, W, P)
    p = design.shape[2]
    normal = np.einsum("kwp,kwq->kpq", design, design)  # (K, P, P)
    col = np.sqrt(np.einsum("kpp->kp", normal)) + 1e-300  # Jacobi scaling before the rank test
    normal_s = normal / col[:, :, None] / col[:, None, :]
    eig = np.linalg.eigvalsh(normal_s)  # (K, P) ascending
    full_rank = eig[:, 0] > 1e-10 * eig[:, -1]
    normal_s[~full_rank] = np.eye(p)  # keep the batched solve defined; results are masked below
    rhs = np.einsum("kwp,kw->kp", design, np.where(ok, f, 0.0)) / col
    coef = np.linalg.solve(normal_s, rhs[:, :, None])[:, :, 0] / col
    hess = np.zeros((k_pts, nd, nd))
    for c, (a, b) in enumerate(pairs):
        h = coef[:, 1 + nd + c] / (scale[a] * scale[b])
        hess[:, a, b] = hess[:, b, a] = h
    out = np.linalg.eigvalsh(hess)
    out[~full_rank] = np.nan
    return out
