"""Per-minimum measures: dual-cell areas, sublevel components (width) and local curvature."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._merge import Sweep


def dual_widths(x: np.ndarray) -> np.ndarray:
    """(n,) length of each point's dual cell on a 1D grid (half cells at both ends)."""
    mid = 0.5 * (x[1:] + x[:-1])
    return np.diff(np.concatenate([x[:1], mid, x[-1:]]))


def cell_areas(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(nx, ny) area of each grid point's dual cell in (alpha, beta) units; they sum to the
    rectangle's area."""
    return np.outer(dual_widths(np.asarray(xs, float)), dual_widths(np.asarray(ys, float)))


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
    """Sublevel components, one per query. Arrays of shape (K,).

    count : vertices in the component; area : sum of their dual-cell areas;
    imin, imax, jmin, jmax : index bounding box.
    """

    count: np.ndarray
    area: np.ndarray
    imin: np.ndarray
    imax: np.ndarray
    jmin: np.ndarray
    jmax: np.ndarray


def sublevel_components(sw: Sweep, leaf: np.ndarray, order: np.ndarray, rank: np.ndarray,
                        cv: np.ndarray, n_finite: int, weight: np.ndarray, nx: int,
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
    vi, vj = verts % nx, verts // nx
    span_j = int(vj.max()) + 1
    # running aggregates along each arc, from its lowest vertex up
    run = np.stack([np.arange(n_v) - np.searchsorted(arc, arc) + 1,  # count
                    np.cumsum(weight[verts]),  # area (minus the arc's start, below)
                    _segmented(vi, arc, nx, np.minimum), _segmented(vi, arc, nx, np.maximum),
                    _segmented(vj, arc, span_j, np.minimum), _segmented(vj, arc, span_j, np.maximum)],
                   axis=1).astype(np.float64)  # (n_v, 6)
    start = np.searchsorted(arc, np.arange(n_nodes), side="left")
    end = np.searchsorted(arc, np.arange(n_nodes), side="right")
    area_before = np.concatenate([[0.0], run[:, 1]])[start]  # cumulative area before each arc
    empty = np.array([0, 0.0, nx, -1, span_j, -1], dtype=np.float64)

    def prefix(a: np.ndarray, last: np.ndarray) -> np.ndarray:
        """(len(a), 6) aggregates of arc ``a``'s vertices at positions start[a]..last."""
        out = np.where((last >= start[a])[:, None], run[np.maximum(last, 0)], empty)
        out[:, 1] -= np.where(last >= start[a], area_before[a], 0.0)
        return out

    # aggregates of everything strictly below each node's arc; children precede parents
    arc_total = prefix(np.arange(n_nodes), end - 1).tolist()
    below = [[0, 0.0, nx, -1, span_j, -1] for _ in range(n_nodes)]
    parent = sw.node_parent.tolist()
    relevant = np.flatnonzero(node_cv[:-1] <= levels.max()).tolist()  # the root has no parent
    for a in relevant:
        b, c, t = below[a], arc_total[a], below[parent[a]]
        t[0] += b[0] + c[0]
        t[1] += b[1] + c[1]
        t[2] = min(t[2], b[2], c[2])
        t[3] = max(t[3], b[3], c[3])
        t[4] = min(t[4], b[4], c[4])
        t[5] = max(t[5], b[5], c[5])

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
    b = np.array(below, dtype=np.float64)[node]
    out = np.stack([b[:, 0] + part[:, 0], b[:, 1] + part[:, 1],
                    np.minimum(b[:, 2], part[:, 2]), np.maximum(b[:, 3], part[:, 3]),
                    np.minimum(b[:, 4], part[:, 4]), np.maximum(b[:, 5], part[:, 5])], axis=1)
    ints = out[:, [0, 2, 3, 4, 5]].astype(np.int64)
    return Components(ints[:, 0], out[:, 1], *ints[:, 1:].T)


def quadratic_hessian(values: np.ndarray, xs: np.ndarray, ys: np.ndarray, i: np.ndarray,
                      j: np.ndarray, radius: int) -> np.ndarray:
    """(K, 2) eigenvalues (ascending) of the Hessian of a least-squares quadratic fit at each (i, j).

    Each fit uses the ``(2 radius + 1)``-point square window of the grid around ``(i[k], j[k])``
    (shifted inwards at the boundary, clipped to the grid), finite values only, in
    (alpha, beta) units. NaN where fewer than 6 independent points remain.

    Parameters
    ----------
    values : (nx, ny) float64, ``values[i, j]`` at ``(xs[i], ys[j])``.
    i, j : (K,) int indices.
    """
    nx, ny = values.shape
    size_x, size_y = min(2 * radius + 1, nx), min(2 * radius + 1, ny)
    i0 = np.clip(np.asarray(i) - radius, 0, nx - size_x)
    j0 = np.clip(np.asarray(j) - radius, 0, ny - size_y)
    wi = i0[:, None, None] + np.arange(size_x)[None, :, None]  # (K, sx, 1)
    wj = j0[:, None, None] + np.arange(size_y)[None, None, :]  # (K, 1, sy)
    sx = (xs[-1] - xs[0]) / (nx - 1)  # scales that keep the normal matrix well conditioned
    sy = (ys[-1] - ys[0]) / (ny - 1)
    a = np.broadcast_to((xs[wi] - xs[i][:, None, None]) / sx, (len(i0), size_x, size_y)).reshape(len(i0), -1)
    b = np.broadcast_to((ys[wj] - ys[j][:, None, None]) / sy, (len(i0), size_x, size_y)).reshape(len(i0), -1)
    f = values[wi, wj].reshape(len(i0), -1)
    ok = np.isfinite(f)
    design = np.stack([np.ones_like(a), a, b, 0.5 * a * a, a * b, 0.5 * b * b], axis=2) * ok[:, :, None]
    normal = np.einsum("kwp,kwq->kpq", design, design)  # (K, 6, 6)
    scale = np.sqrt(np.einsum("kpp->kp", normal)) + 1e-300  # Jacobi scaling before the rank test
    normal_s = normal / scale[:, :, None] / scale[:, None, :]
    eig = np.linalg.eigvalsh(normal_s)  # (K, 6) ascending
    full_rank = eig[:, 0] > 1e-10 * eig[:, -1]
    normal_s[~full_rank] = np.eye(6)  # keep the batched solve defined; results are masked below
    rhs = np.einsum("kwp,kw->kp", design, np.where(ok, f, 0.0)) / scale
    coef = np.linalg.solve(normal_s, rhs[:, :, None])[:, :, 0] / scale
    hxx, hxy, hyy = coef[:, 3] / sx**2, coef[:, 4] / (sx * sy), coef[:, 5] / sy**2
    mean, half_gap = 0.5 * (hxx + hyy), np.hypot(0.5 * (hxx - hyy), hxy)
    out = np.stack([mean - half_gap, mean + half_gap], axis=1)
    out[~full_rank] = np.nan
    return out
