"""pipeline.topology against slow, independent implementations of the same definitions.

The references here build the triangulation explicitly (two triangles per cell), take
links from the triangles, and run a textbook vertex-by-vertex union-find over the
triangulation's edges; gudhi (when installed) computes the same persistence from a
simplex tree. Small grids with ties, plateaus and NaN exercise the corner cases.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from pipeline.topology import analyze


def order_key(f: np.ndarray):
    """(value, vertex id) with non-finite values above every finite one; vid = i + nx*j."""
    nx, _ = f.shape
    return lambda i, j: (f[i, j] if np.isfinite(f[i, j]) else np.inf, i + nx * j)


def triangulation(nx: int, ny: int) -> list[tuple]:
    tris = []
    for i in range(nx - 1):
        for j in range(ny - 1):
            a, b, c, d = (i, j), (i + 1, j), (i, j + 1), (i + 1, j + 1)
            tris += [(a, b, c), (b, d, c)]  # diagonal (i+1, j)-(i, j+1)
    return tris


def components(verts, edges) -> int:
    """Connected components of the graph (``verts``, ``edges``: pairs of vertices), by BFS."""
    adj = {w: set() for w in verts}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    seen, comps = set(), 0
    for w in verts:
        if w in seen:
            continue
        comps += 1
        queue = deque([w])
        seen.add(w)
        while queue:
            for y in adj[queue.popleft()]:
                if y not in seen:
                    seen.add(y)
                    queue.append(y)
    return comps


def link_components(f: np.ndarray):
    """Per vertex: (#lower, #upper link components, Euler characteristic of the lower link)."""
    nx, ny = f.shape
    key = order_key(f)
    link_edges: dict[tuple, list] = {}
    for tri in triangulation(nx, ny):
        for k, v in enumerate(tri):
            link_edges.setdefault(v, []).append((tri[(k + 1) % 3], tri[(k + 2) % 3]))
    lower = np.zeros((nx, ny), int)
    upper = np.zeros((nx, ny), int)
    chi_lower = np.zeros((nx, ny), int)
    for v, edges in link_edges.items():
        for side, out in ((lambda w: key(*w) < key(*v), lower), (lambda w: key(*w) > key(*v), upper)):
            verts = {w for e in edges for w in e if side(w)}
            sub = [e for e in edges if side(e[0]) and side(e[1])]
            out[v] = components(verts, sub)
            if out is lower:
                chi_lower[v] = len(verts) - len(sub)
    return lower, upper, chi_lower


def elder_rule_pairs(verts: list, simplices, vertex_id) -> set:
    """0-dim persistence pairs ``(vertex_id(birth), vertex_id(death))`` of vertices added in the
    order ``verts``, joined along the edges of ``simplices`` (union-find, elder rule)."""
    pos = {v: k for k, v in enumerate(verts)}
    nbrs = {v: set() for v in verts}
    for simplex in simplices:
        for a in simplex:
            nbrs[a] |= set(simplex) - {a}
    parent, birth, pairs = {}, {}, set()

    def find(v):
        while parent[v] != v:
            v = parent[v]
        return v

    for v in verts:
        parent[v], birth[v] = v, v
        roots = {find(w) for w in nbrs[v] if w in parent and w != v}
        if not roots:
            continue
        elder = min(roots, key=lambda r: pos[birth[r]])
        for r in roots:
            if r != elder:
                pairs.add((vertex_id(birth[r]), vertex_id(v)))
                parent[r] = elder
        parent[v] = elder
    return pairs


def union_find_pairs(f: np.ndarray, superlevel: bool):
    """0-dim persistence pairs (birth vertex id, death vertex id), vertex by vertex."""
    nx, ny = f.shape
    key = order_key(f)
    verts = sorted(((i, j) for i in range(nx) for j in range(ny)), key=lambda v: key(*v), reverse=superlevel)
    return elder_rule_pairs(verts, triangulation(nx, ny), lambda v: v[0] + nx * v[1])


def random_fields():
    rng = np.random.default_rng(42)
    out = []
    for shape in [(2, 2), (2, 7), (6, 2), (7, 5), (9, 12), (16, 11)]:
        out.append(rng.normal(size=shape))  # generic
        out.append(rng.integers(0, 3, size=shape).astype(float))  # ties and plateaus
        g = rng.normal(size=shape)
        g[rng.random(shape) < 0.25] = np.nan
        g.flat[rng.integers(g.size)] = np.inf
        g.flat[0] = 0.0  # at least one finite value
        out.append(g)
    return out


@pytest.mark.parametrize("f", random_fields())
def test_link_components_match_explicit_triangulation(f):
    topo = analyze(f)
    lower, upper, chi = link_components(f)
    np.testing.assert_array_equal(topo.lower_components, lower)
    np.testing.assert_array_equal(topo.upper_components, upper)
    assert (1 - chi).sum() == 1  # sum of sublevel indices = Euler characteristic of the disk


@pytest.mark.parametrize("f", random_fields())
def test_pairs_match_vertex_by_vertex_union_find(f):
    topo = analyze(f)
    p = topo.pairs
    got_sub = set(zip(p.birth[p.kind == 0].tolist(), p.death[p.kind == 0].tolist()))
    got_sup = set(zip(p.death[p.kind == 1].tolist(), p.birth[p.kind == 1].tolist()))  # (max, saddle)
    assert got_sub == union_find_pairs(f, superlevel=False)
    assert got_sup == union_find_pairs(f, superlevel=True)
    # persistence: the value gap, non-finite values counting as the largest finite one
    cv = np.where(np.isfinite(f), f, np.nanmax(np.where(np.isfinite(f), f, np.nan))).T.ravel()
    np.testing.assert_allclose(p.persistence[p.kind < 2], np.abs(cv[p.death] - cv[p.birth])[p.kind < 2])


def flood_component(f, i, j, level):
    """Vertices of {f <= level} connected to (i, j) in the 6-neighbour graph (finite only)."""
    nx, ny = f.shape
    steps = ((1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1))
    seen, queue = {(i, j)}, deque([(i, j)])
    while queue:
        a, b = queue.popleft()
        for da, db in steps:
            c, d = a + da, b + db
            if 0 <= c < nx and 0 <= d < ny and (c, d) not in seen and np.isfinite(f[c, d]) and f[c, d] <= level:
                seen.add((c, d))
                queue.append((c, d))
    return seen


@pytest.mark.parametrize("seed,delta", [(0, 0.05), (1, 0.3), (2, 1.0), (3, 10.0)])
def test_widths_match_flood_fill(seed, delta):
    rng = np.random.default_rng(seed)
    nx, ny = 37, 29
    X, Y = np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 1, ny), indexing="ij")
    f = np.sin(7 * X + rng.uniform(0, 6)) * np.cos(5 * Y + rng.uniform(0, 6)) + 0.3 * rng.normal(size=(nx, ny))
    f[rng.random((nx, ny)) < 0.05] = np.nan
    xs, ys = np.linspace(-1, 1, nx), np.linspace(0, 3, ny)
    topo = analyze(f, xs=xs, ys=ys, delta=delta)
    wx = np.diff(np.concatenate([xs[:1], (xs[1:] + xs[:-1]) / 2, xs[-1:]]))
    wy = np.diff(np.concatenate([ys[:1], (ys[1:] + ys[:-1]) / 2, ys[-1:]]))
    assert len(topo.minima) > 10
    for m in topo.minima:
        comp = flood_component(f, *m.index, m.value + delta)
        ii, jj = np.array(sorted(comp)).T
        assert m.width.area == pytest.approx((wx[ii] * wy[jj]).sum())
        assert m.width.extent == pytest.approx((xs[ii.max()] - xs[ii.min()], ys[jj.max()] - ys[jj.min()]))


def lower_star_diagram(f: np.ndarray, superlevel: bool):
    """gudhi's 0-dim diagram of the lower-star filtration of our triangulation, by rank."""
    gudhi = pytest.importorskip("gudhi")
    nx, ny = f.shape
    key = order_key(f)
    ids = sorted(((i, j) for i in range(nx) for j in range(ny)), key=lambda v: key(*v), reverse=superlevel)
    rank = {v: k for k, v in enumerate(ids)}  # filtration by rank: ties broken exactly like ours
    st = gudhi.SimplexTree()
    for v in ids:
        st.insert([v[0] + nx * v[1]], filtration=rank[v])
    for tri in triangulation(nx, ny):  # edges first: a face keeps the filtration it was inserted with
        for e in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[0], tri[2])):
            st.insert([a + nx * b for a, b in e], filtration=max(rank[v] for v in e))
    for tri in triangulation(nx, ny):
        st.insert([a + nx * b for a, b in tri], filtration=max(rank[v] for v in tri))
    st.compute_persistence()
    by_rank = {k: v[0] + nx * v[1] for v, k in rank.items()}
    return {(by_rank[int(b)], by_rank[int(d)]) for b, d in st.persistence_intervals_in_dimension(0)
            if np.isfinite(d) and d > b}


@pytest.mark.parametrize("f", random_fields()[3::2])
def test_pairs_match_gudhi_simplex_tree(f):
    """Second reference: gudhi on the same triangulation (pairs with a rank gap only)."""
    topo = analyze(f)
    p = topo.pairs
    ours_sub = {(b, d) for b, d in zip(p.birth[p.kind == 0].tolist(), p.death[p.kind == 0].tolist())}
    ours_sup = {(d, b) for b, d in zip(p.birth[p.kind == 1].tolist(), p.death[p.kind == 1].tolist())}
    assert ours_sub == lower_star_diagram(f, superlevel=False)
    assert ours_sup == lower_star_diagram(f, superlevel=True)
