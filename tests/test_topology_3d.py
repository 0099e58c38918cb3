"""pipeline.topology on 3D fields: fields whose critical points are known in closed form, and
slow independent references on an explicit tetrahedralization (links from the tetrahedra, a
vertex-by-vertex union-find, gudhi's lower-star persistence of the same tetrahedra)."""
from __future__ import annotations

from collections import deque
from itertools import permutations

import numpy as np
import pytest

from pipeline.topology import analyze, cell_areas

from .test_topology_reference import components, elder_rule_pairs

STEPS = ((-1, 0, 0), (0, 1, 0), (0, 0, 1))  # Freudenthal's steps, the first axis reversed


def tetrahedra(shape) -> list[tuple]:
    """Every tetrahedron of the grid: each cell's monotone paths from (i+1, j, k) to (i, j+1, k+1)."""
    nx, ny, nz = shape
    tets = []
    for i in range(nx - 1):
        for j in range(ny - 1):
            for k in range(nz - 1):
                for perm in permutations(STEPS):
                    v = (i + 1, j, k)
                    tet = [v]
                    for s in perm:
                        v = tuple(a + b for a, b in zip(v, s))
                        tet.append(v)
                    tets.append(tuple(tet))
    return tets


def vid(v, shape) -> int:
    return v[0] + shape[0] * (v[1] + shape[1] * v[2])


def key_of(f):
    shape = f.shape
    return lambda v: (f[v] if np.isfinite(f[v]) else np.inf, vid(v, shape))


def link_data(f):
    """Per vertex: lower and upper link components and the Euler characteristic of the lower link."""
    key = key_of(f)
    link: dict[tuple, list] = {}
    for tet in tetrahedra(f.shape):
        for a in tet:
            link.setdefault(a, []).append(tuple(w for w in tet if w != a))
    lower, upper = np.zeros(f.shape, int), np.zeros(f.shape, int)
    chi = np.zeros(f.shape, int)
    for v, tris in link.items():
        for side, out in ((lambda w: key(w) < key(v), lower), (lambda w: key(w) > key(v), upper)):
            verts = {w for t in tris for w in t if side(w)}
            edges = {frozenset(e) for t in tris for e in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2]))
                     if side(e[0]) and side(e[1])}
            faces = {t for t in tris if all(side(w) for w in t)}
            out[v] = components(verts, [tuple(e) for e in edges])
            if out is lower:
                chi[v] = len(verts) - len(edges) + len(faces)
    return lower, upper, chi


def union_find_pairs(f, superlevel: bool) -> set:
    """0-dim persistence pairs (birth vertex id, death vertex id), vertex by vertex over the tetrahedra's edges."""
    shape, key = f.shape, key_of(f)
    verts = sorted(np.ndindex(*shape), key=key, reverse=superlevel)
    return elder_rule_pairs(verts, tetrahedra(shape), lambda v: vid(v, shape))


def random_fields():
    rng = np.random.default_rng(7)
    out = []
    for shape in [(2, 2, 2), (3, 2, 4), (4, 4, 3), (5, 4, 6)]:
        out.append(rng.normal(size=shape))
        out.append(rng.integers(0, 3, size=shape).astype(float))  # ties and plateaus
        g = rng.normal(size=shape)
        g[rng.random(shape) < 0.2] = np.nan
        g.flat[0] = 0.0
        out.append(g)
    return out


def ours(topo, kind: int) -> set:
    p = topo.pairs
    if kind == 0:
        return set(zip(p.birth[p.kind == 0].tolist(), p.death[p.kind == 0].tolist()))
    return set(zip(p.death[p.kind == 1].tolist(), p.birth[p.kind == 1].tolist()))  # (max, 2-saddle)


@pytest.mark.parametrize("f", random_fields())
def test_link_components_and_euler_characteristic(f):
    topo = analyze(f)
    lower, upper, chi = link_data(f)
    np.testing.assert_array_equal(topo.lower_components, lower)
    np.testing.assert_array_equal(topo.upper_components, upper)
    assert (1 - chi).sum() == 1  # the ball: sum of the lower links' indices


@pytest.mark.parametrize("f", random_fields())
def test_pairs_match_vertex_by_vertex_union_find(f):
    topo = analyze(f)
    assert ours(topo, 0) == union_find_pairs(f, superlevel=False)
    assert ours(topo, 1) == union_find_pairs(f, superlevel=True)


def lower_star(values: dict, shape):
    """gudhi SimplexTree of the tetrahedra, each simplex at the largest value of its vertices."""
    gudhi = pytest.importorskip("gudhi")
    st = gudhi.SimplexTree()
    low = min(values.values()) - 1
    for tet in tetrahedra(shape):
        st.insert([vid(v, shape) for v in tet], filtration=low)  # every face too, below every vertex
    for v, x in values.items():
        st.assign_filtration([v], x)
    st.make_filtration_non_decreasing()  # each simplex: the largest of its faces' values, its vertices'
    return st


def lower_star_pairs(f, superlevel: bool) -> set:
    """gudhi's 0-dim diagram of the lower-star filtration of the same tetrahedra, by rank."""
    shape, key = f.shape, key_of(f)
    ids = sorted(np.ndindex(*shape), key=key, reverse=superlevel)
    rank = {v: k for k, v in enumerate(ids)}  # the filtration by rank breaks ties exactly like ours
    st = lower_star({vid(v, shape): rank[v] for v in ids}, shape)
    st.compute_persistence()
    by_rank = {k: vid(v, shape) for v, k in rank.items()}
    return {(by_rank[int(b)], by_rank[int(d)]) for b, d in st.persistence_intervals_in_dimension(0)
            if np.isfinite(d) and d > b}


@pytest.mark.parametrize("f", random_fields()[::2] + [np.random.default_rng(3).normal(size=(7, 6, 5))])
def test_zero_dimensional_persistence_equals_gudhi(f):
    topo = analyze(f)
    assert ours(topo, 0) == lower_star_pairs(f, superlevel=False)
    assert ours(topo, 1) == lower_star_pairs(f, superlevel=True)


def test_lower_star_values_match_gudhi_persistence_values():
    """The same comparison with the field's values as filtration (gudhi's own lower star, no ranks)."""
    f = np.random.default_rng(11).normal(size=(6, 5, 7))
    topo = analyze(f)
    st = lower_star({vid(v, f.shape): float(f[v]) for v in np.ndindex(*f.shape)}, f.shape)
    st.compute_persistence()
    theirs = np.sort([d - b for b, d in st.persistence_intervals_in_dimension(0) if np.isfinite(d) and d > b])
    p = topo.pairs
    mine = np.sort(p.persistence[(p.kind == 0) & (p.persistence > 0)])
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)


def double_wells(n=31):
    x = np.linspace(-1.5, 1.5, n)
    w = (x ** 2 - 1) ** 2
    return x, w[:, None, None] + w[None, :, None] + w[None, None, :]


def test_double_wells_critical_points_by_counting():
    """f = w(x) + w(y) + w(z), w(t) = (t^2 - 1)^2: every coordinate at -1, 0 or 1; the number of
    zeros is the index: 8 minima, 12 1-saddles, 6 2-saddles, 1 maximum inside the box."""
    x, f = double_wells()
    topo = analyze(f, xs=x, ys=x, zs=x)
    t = topo.critical_type
    inside = np.zeros(f.shape, bool)
    inside[1:-1, 1:-1, 1:-1] = True
    at = lambda code: {tuple(np.round(x[list(ijk)], 9)) for ijk in np.argwhere((t == code) & inside)}  # noqa: E731
    grid_points = [(a, b, c) for a in (-1.0, 0.0, 1.0) for b in (-1.0, 0.0, 1.0) for c in (-1.0, 0.0, 1.0)]
    zeros = lambda p: sum(v == 0.0 for v in p)  # noqa: E731
    for code, index in ((0, 0), (1, 1), (2, 2), (3, 3)):
        assert at(code) == {p for p in grid_points if zeros(p) == index}, code
    assert (t[inside] == 4).sum() == 0
    # the sublevel sets change only inside (f grows outwards): no boundary minimum or 1-saddle
    assert ((t == 0) & ~inside).sum() == 0 and ((t == 1) & ~inside).sum() == 0
    # 7 of the 8 minima die at a 1-saddle of value w(0) = 1, exactly one barrier high
    p = topo.pairs
    np.testing.assert_allclose(np.sort(p.persistence[p.kind == 0]), np.ones(7), atol=1e-12)
    cp = topo.critical_points
    assert sorted(map(tuple, np.round(cp.coords[cp.code == 0], 9))) == sorted(
        q for q in grid_points if zeros(q) == 0)
    assert topo.counts()["minimum"] == 8 and topo.counts()["1-saddle"] == 7
    # eight basins of nearly equal volume (steepest descent breaks the ties on the planes of symmetry)
    assert len(topo.minima) == 8 and np.allclose(topo.minima.basin_fraction, 1 / 8, atol=0.005)
    assert topo.minima.basin_fraction.sum() == pytest.approx(1.0)


def test_double_wells_json_and_merge_tree():
    x, f = double_wells(21)
    topo = analyze(f, xs=x, ys=x, zs=x, persistence=0.5)
    d = topo.to_dict()
    assert d["shape"] == [21, 21, 21] and d["extent"] == [-1.5, 1.5] * 3
    assert set(d["counts"]) == {"minimum", "1-saddle", "2-saddle", "maximum", "degenerate"}
    cps = d["critical_points"]
    assert {c["type"] for c in cps} <= {"minimum", "1-saddle", "2-saddle", "maximum"}
    assert all(len(c["index"]) == 3 and len(c["coords"]) == 3 for c in cps)
    m = d["minima"][0]
    assert len(m["width"]["extent"]) == 3 and len(m["curvature"]) == 3
    tree = d["merge_tree"]
    assert sum(n["type"] == "minimum" for n in tree["nodes"]) == 8
    assert {n["type"] for n in tree["nodes"]} == {"minimum", "1-saddle", "maximum"}
    assert len(tree["arcs"]) == len(tree["nodes"]) - 1
    arrays = topo.critical_point_arrays()
    assert arrays["points"].shape[1] == 3 and np.abs(arrays["points"][:, 2]).max() > 0


def test_basin_volumes_partition_the_box_and_curvature_of_a_bowl():
    xs, ys, zs = np.linspace(-1, 1, 9), np.linspace(-2, 1, 13), np.linspace(0, 2, 7)
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    f = 3 * X ** 2 + 2 * (Y + 0.5) ** 2 + 0.5 * (Z - 1) ** 2 + X * (Y + 0.5)
    f[0, 0, 0] = np.nan
    topo = analyze(f, xs=xs, ys=ys, zs=zs)
    vol = cell_areas(xs, ys, zs)
    assert vol.sum() == pytest.approx(2 * 3 * 2)
    assert topo.minima.basin_area.sum() + vol[0, 0, 0] == pytest.approx(12)
    assert topo.basins[0, 0, 0] == -1 and len(topo.minima) == 1
    expected = np.linalg.eigvalsh(np.array([[6, 1, 0], [1, 4, 0], [0, 0, 1.0]]))
    np.testing.assert_allclose(topo.minima.curvature[0], expected, rtol=1e-9)
    assert topo.minima[0].coords == (0.0, -0.5, 1.0)


def flood(f, start, level):
    seen, queue = {start}, deque([start])
    nbrs = [s for s in ((-1, 0, 0), (0, 1, 0), (0, 0, 1), (-1, 1, 0), (-1, 0, 1), (0, 1, 1), (-1, 1, 1))]
    nbrs += [tuple(-v for v in s) for s in nbrs]
    while queue:
        v = queue.popleft()
        for s in nbrs:
            w = tuple(a + b for a, b in zip(v, s))
            if all(0 <= w[d] < f.shape[d] for d in range(3)) and w not in seen and np.isfinite(f[w]) and f[w] <= level:
                seen.add(w)
                queue.append(w)
    return seen


@pytest.mark.parametrize("delta", [0.1, 0.5, 2.0])
def test_widths_match_flood_fill(delta):
    rng = np.random.default_rng(5)
    shape = (9, 8, 7)
    X, Y, Z = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    f = np.sin(6 * X) * np.cos(5 * Y) * np.sin(4 * Z + 1) + 0.3 * rng.normal(size=shape)
    f[rng.random(shape) < 0.05] = np.nan
    axes = [np.linspace(-1, 1, shape[0]), np.linspace(0, 3, shape[1]), np.linspace(-2, 0, shape[2])]
    topo = analyze(f, xs=axes[0], ys=axes[1], zs=axes[2], delta=delta)
    vol = cell_areas(*axes)
    assert len(topo.minima) > 3
    for m in topo.minima:
        comp = np.array(sorted(flood(f, m.index, m.value + delta)))
        assert m.width.area == pytest.approx(vol[tuple(comp.T)].sum())
        assert m.width.extent == pytest.approx(tuple(axes[d][comp[:, d].max()] - axes[d][comp[:, d].min()]
                                                     for d in range(3)))
