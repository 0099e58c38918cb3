"""pipeline.topology against fields whose critical points are known in closed form.

Tolerances are the grid's interpolation error: a smooth field sampled with spacing
(hx, hy) has its extremum within half a cell diagonal of a vertex, so the sampled value
is off by at most ``|f''| (hx^2 + hy^2) / 8``.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pipeline.topology import DEGENERATE, MAXIMUM, MINIMUM, SADDLE, analyze


def grid(xlim, ylim, nx, ny):
    xs, ys = np.linspace(*xlim, nx), np.linspace(*ylim, ny)
    return xs, ys, *np.meshgrid(xs, ys, indexing="ij")


# ---------------------------------------------------------------- Gaussian wells
SIGMA = 0.4
WELLS = [((1.13, 0.37), 1.0), ((-1.71, -0.52), 0.6), ((0.21, -1.87), 0.35), ((-0.93, 1.64), 0.8)]


def wells(X, Y, wells=WELLS, sigma=SIGMA):
    return -sum(d * np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * sigma**2)) for (cx, cy), d in wells)


def wells_hessian(x, y, wells=WELLS, sigma=SIGMA):
    """Exact Hessian of ``wells`` at (x, y)."""
    h = np.zeros((2, 2))
    for (cx, cy), d in wells:
        r = np.array([x - cx, y - cy])
        e = d * np.exp(-(r @ r) / (2 * sigma**2))
        h += e * (np.eye(2) / sigma**2 - np.outer(r, r) / sigma**4)
    return h


def tail_bound(wells=WELLS, sigma=SIGMA):
    """Upper bound of every other well's contribution at any point half-way between two wells."""
    gaps = [math.dist(a, b) for (a, _), (b, _) in zip(wells, wells[1:] + wells[:1])]
    return sum(d for _, d in wells) * math.exp(-(min(gaps) / 2) ** 2 / (2 * sigma**2))


def cell_error(xs, ys, curvature):
    hx, hy = xs[1] - xs[0], ys[1] - ys[0]
    return curvature * (hx**2 + hy**2) / 8


@pytest.mark.parametrize("nx,ny", [(121, 121), (141, 97), (90, 131)])
def test_gaussian_wells_minima_persistence_and_location(nx, ny):
    xs, ys, X, Y = grid((-3.2, 3.0), (-3.1, 2.9), nx, ny)
    f = wells(X, Y)
    topo = analyze(f, xs=xs, ys=ys, persistence=0.05, relative=True)
    depths = sorted((d for _, d in WELLS), reverse=True)
    assert len(topo.minima) == len(WELLS)
    # types exact: every well is a minimum, listed in the critical points
    assert (topo.critical_type[topo.minima.index[:, 0], topo.minima.index[:, 1]] == MINIMUM).all()
    assert topo.counts()["minimum"] == len(WELLS)
    tol = max(cell_error(xs, ys, d / SIGMA**2) for d in depths) + tail_bound()
    for k, d in enumerate(depths):
        (cx, cy), _ = next(w for w in WELLS if w[1] == d)
        m = topo.minima[k]
        assert abs(m.coords[0] - cx) <= xs[1] - xs[0] and abs(m.coords[1] - cy) <= ys[1] - ys[0]
        assert m.value == pytest.approx(-d, abs=tol)
        if k == 0:  # the global minimum: the value range
            assert m.persistence == pytest.approx(f.max() - f.min(), abs=1e-12)
            assert m.persistence == pytest.approx(d, abs=tol)
        else:  # the saddle that joins it to a deeper well lies on the ~0 background
            assert m.persistence == pytest.approx(d, abs=tol)
    # basins partition the plane; each minimum sits in its own basin
    assert topo.minima.basin_fraction.sum() == pytest.approx(1.0)
    assert topo.minima.basin_area.sum() == pytest.approx((xs[-1] - xs[0]) * (ys[-1] - ys[0]))
    i, j = topo.minima.index.T
    np.testing.assert_array_equal(topo.basins[i, j], np.arange(len(WELLS)))
    # join tree: 4 leaves, 3 joining saddles, 1 root
    assert topo.merge_tree.type.count("minimum") == 4 and topo.merge_tree.type.count("saddle") == 3
    assert len(topo.merge_tree.arcs) == len(topo.merge_tree.vertex) - 1


@pytest.mark.parametrize("nx,ny", [(121, 121), (141, 97)])
def test_gaussian_wells_curvature_and_width(nx, ny):
    xs, ys, X, Y = grid((-3.2, 3.0), (-3.1, 2.9), nx, ny)
    f = wells(X, Y)
    delta = 0.1
    topo = analyze(f, xs=xs, ys=ys, persistence=0.05, relative=True, delta=delta)
    h2 = max(xs[1] - xs[0], ys[1] - ys[0]) ** 2
    for m in topo.minima:
        exact = np.linalg.eigvalsh(wells_hessian(*m.coords))
        # 3 x 3 quadratic fit of a Gaussian: relative error ~ (1/3 + 1/4) h^2 / sigma^2
        np.testing.assert_allclose(m.curvature, exact, rtol=0.7 * h2 / SIGMA**2, atol=1e-9)
        # sublevel disk of an isolated well: -d exp(-r^2 / 2 s^2) <= value + delta
        d = -m.value
        radius = SIGMA * math.sqrt(-2 * math.log((d - delta) / d))
        for axis, h in ((0, xs[1] - xs[0]), (1, ys[1] - ys[0])):
            assert 2 * radius - 2 * h - 1e-9 <= m.width.extent[axis] <= 2 * radius + 1e-9
        perimeter_band = 2 * math.pi * radius * max(xs[1] - xs[0], ys[1] - ys[0])
        assert m.width.area == pytest.approx(math.pi * radius**2, abs=perimeter_band)
        assert m.width.diameter == pytest.approx(2 * math.sqrt(m.width.area / math.pi))


def test_tilted_double_well_saddle_in_closed_form():
    """f = (x^2 - 1)^2 + t x + k y^2: minima and saddle from the roots of 4x^3 - 4x + t."""
    t, k = 0.3, 1.5
    xs, ys, X, Y = grid((-1.8, 1.7), (-1.0, 1.2), 141, 67)
    f = (X**2 - 1) ** 2 + t * X + k * Y**2
    g = lambda x: (x**2 - 1) ** 2 + t * x  # noqa: E731
    x1, x2, x3 = np.sort(np.roots([4, 0, -4, t]).real)  # min, saddle (max of g), min
    deep, shallow = (x1, x3) if g(x1) < g(x3) else (x3, x1)
    topo = analyze(f, xs=xs, ys=ys, persistence=0.1 * (g(x2) - g(shallow)))
    assert len(topo.minima) == 2
    curv = max(abs(12 * x**2 - 4) for x in (x1, x2, x3)) + 2 * k
    tol = 2 * cell_error(xs, ys, curv)
    m0, m1 = topo.minima
    assert abs(m0.coords[0] - deep) <= xs[1] - xs[0] and abs(m0.coords[1]) <= ys[1] - ys[0]
    assert abs(m1.coords[0] - shallow) <= xs[1] - xs[0] and abs(m1.coords[1]) <= ys[1] - ys[0]
    assert m1.persistence == pytest.approx(g(x2) - g(shallow), abs=tol)
    # the min-saddle pair of the shallow well dies at the interior saddle (x2, 0)
    pairs = topo.surviving_pairs()
    p = pairs.select(pairs.kind == 0)
    assert len(p) == 1
    i, j = topo.vertex_index(p.death[0])
    assert abs(xs[i] - x2) <= xs[1] - xs[0] and abs(ys[j]) <= ys[1] - ys[0]
    assert topo.critical_type[i, j] == SADDLE
    # raising the threshold past the shallow well merges its basin into the deep one
    merged = analyze(f, xs=xs, ys=ys, persistence=1.1 * (g(x2) - g(shallow)))
    assert len(merged.minima) == 1 and (merged.basins == 0).all()


@pytest.mark.parametrize("n,m", [(21, 21), (41, 41), (41, 21)])
def test_monkey_saddle_has_multiplicity_two(n, m):
    """Re(e^{-i pi/4} (x + i y)^3): three lower and three upper sectors meet at the origin."""
    h = 0.05
    xs, ys = h * (np.arange(n) - n // 2), h * (np.arange(m) - m // 2)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    f = ((X**3 - 3 * X * Y**2) + (3 * X**2 * Y - Y**3)) / math.sqrt(2)
    topo = analyze(f, xs=xs, ys=ys)
    o = (n // 2, m // 2)
    assert topo.critical_type[o] == DEGENERATE
    assert topo.lower_components[o] == 3 and topo.upper_components[o] == 3
    vid = o[0] + n * o[1]
    cp = [c for c in topo.critical_points if c.vertex_id == vid]
    assert len(cp) == 1 and cp[0].type == "degenerate" and cp[0].multiplicity == 2 and cp[0].code == 4
    # it joins three sublevel components (two deaths) and splits three superlevel ones
    assert np.count_nonzero((topo.pairs.kind == 0) & (topo.pairs.death == vid)) == 2
    assert np.count_nonzero((topo.pairs.kind == 1) & (topo.pairs.birth == vid)) == 2
    # no other interior critical point
    inner = topo.critical_type[1:-1, 1:-1].copy()
    inner[o[0] - 1, o[1] - 1] = 5
    assert (inner == 5).all()


@pytest.mark.parametrize("nx,ny", [(61, 61), (80, 47)])
def test_plateau_gives_one_minimum_and_no_spurious_saddle(nx, ny):
    xs, ys, X, Y = grid((-2, 2), (-1.5, 1.5), nx, ny)
    f = np.maximum(X**2 + 2 * Y**2 - 0.8, 0.0)  # flat bottom: a disk of exact zeros
    topo = analyze(f, xs=xs, ys=ys)
    assert len(topo.minima) == 1
    assert topo.minima.value[0] == 0.0
    assert (topo.basins == 0).all()
    # besides the plateau: the bowl's 4 corner maxima, split at 3 of its 4 edge midpoints
    # (the fourth closes the ring of the superlevel set and pairs with nothing)
    assert topo.counts() == {"minimum": 1, "saddle": 3, "maximum": 4, "degenerate": 0}
    saddles = [c for c in topo.critical_points if c.type == "saddle"]
    assert all(c.value > 0 and (c.index[0] in (0, nx - 1) or c.index[1] in (0, ny - 1)) for c in saddles)
    # ties may make extra minima in the raw classification, but each has zero persistence
    assert (topo.pairs.persistence[(topo.pairs.kind == 0)] == 0).all()


def test_terraced_wells_survive_with_quantized_depths():
    """Rounding to steps makes plateaus everywhere; only the two wells have persistence."""
    step = 0.05
    xs, ys, X, Y = grid((-3, 3), (-2, 2), 151, 101)
    two = [((-1.2, 0.1), 1.0), ((1.4, -0.3), 0.62)]
    f = np.round(wells(X, Y, two) / step) * step
    topo = analyze(f, xs=xs, ys=ys)
    assert len(topo.minima) == 2
    np.testing.assert_allclose(topo.minima.persistence, [f.max() - f.min(), -f[X > 0].min()], atol=1e-12)


def test_nan_holes_leave_wells_unchanged():
    xs, ys, X, Y = grid((-3.2, 3.0), (-3.1, 2.9), 125, 111)
    f = wells(X, Y)
    holes = ((X - 2.3) ** 2 + (Y + 2.2) ** 2 < 0.3) | ((X + 2.4) ** 2 + (Y - 0.2) ** 2 < 0.2) \
        | (np.abs(X) + np.abs(Y - 2.5) < 0.3)
    g = f.copy()
    g[holes] = np.nan
    g[0, 0] = -np.inf  # sorts above every finite value too
    holes[0, 0] = True
    plain = analyze(f, xs=xs, ys=ys, persistence=0.05, relative=True)
    topo = analyze(g, xs=xs, ys=ys, persistence=0.05, relative=True)
    np.testing.assert_array_equal(topo.minima.vertex_id, plain.minima.vertex_id)
    np.testing.assert_allclose(topo.minima.persistence[1:], plain.minima.persistence[1:], atol=tail_bound())
    assert (topo.basins[holes] == -1).all() and (topo.basins[~holes] >= 0).all()
    assert not holes.T.ravel()[topo.critical_points.vertex_id].any()
    assert topo.value_range == (np.nanmin(f[~holes]), np.nanmax(f[~holes]))
    json.loads(topo.to_json())  # strict JSON: no NaN anywhere


def test_nan_wall_separates_wells():
    """A well walled off by non-finite values can only join at the top of the range."""
    xs, ys, X, Y = grid((-3, 3), (-2, 2), 91, 61)
    two = [((-1.5, 0.0), 1.0), ((1.5, 0.2), 0.4)]
    f = wells(X, Y, two, sigma=0.5)
    f[45, :] = np.nan  # the column x = 0
    topo = analyze(f, xs=xs, ys=ys, persistence=0.2)
    assert len(topo.minima) == 2
    assert topo.minima.persistence[1] == pytest.approx(np.nanmax(f) - topo.minima.value[1], abs=1e-12)
    assert set(np.unique(topo.basins[:45])) == {0} and set(np.unique(topo.basins[46:])) == {1}


def test_tables_index_like_lists():
    xs, ys, X, Y = grid((-3.2, 3.0), (-3.1, 2.9), 41, 31)
    topo = analyze(wells(X, Y), xs=xs, ys=ys, persistence=0.05, relative=True)
    assert len(topo.minima) == len(WELLS)
    minima, points = topo.minima, topo.critical_points
    assert [m.value for m in minima[:2]] == [minima[0].value, minima[1].value]
    assert minima[-1] == minima[len(minima) - 1] and minima[-1].label == len(minima) - 1
    assert [p.vertex_id for p in points[::-1]] == points.vertex_id[::-1].tolist()
    assert minima[len(minima):] == [] and list(minima) == minima[:]
    with pytest.raises(IndexError):
        minima[len(minima)]


@pytest.mark.parametrize("shape", [(2, 2), (7, 3), (40, 25)])
def test_constant_field(shape):
    topo = analyze(np.full(shape, 2.5))
    nx, ny = shape
    assert topo.counts() == {"minimum": 1, "saddle": 0, "maximum": 1, "degenerate": 0}
    assert topo.counts(simplified=False) == {"minimum": 1, "saddle": 0, "maximum": 1, "degenerate": 0}
    assert topo.minima.index.tolist() == [[0, 0]]
    assert topo.critical_points[1].index == (nx - 1, ny - 1)
    assert topo.minima.persistence[0] == 0.0 and (topo.basins == 0).all()
    assert topo.minima.basin_fraction[0] == pytest.approx(1.0)
    assert topo.minima.width_area[0] == pytest.approx((nx - 1) * (ny - 1))


# ---------------------------------------------------------------- invariants
def smooth_random(nx, ny, seed, scale=6.0):
    """A smooth random field without ties (sum of random Fourier modes)."""
    rng = np.random.default_rng(seed)
    X, Y = np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 1, ny), indexing="ij")
    f = np.zeros((nx, ny))
    for _ in range(30):
        k = rng.normal(0, scale, 2)
        f += rng.normal() * np.cos(k[0] * 2 * np.pi * X + k[1] * 2 * np.pi * Y + rng.uniform(0, 2 * np.pi))
    return f


def euler_sums(topo):
    """The two one-sided Euler relations of the docstring; both equal 1 on a disk."""
    t, lo, up = topo.critical_type, topo.lower_components, topo.upper_components
    interior = np.zeros(t.shape, bool)
    interior[1:-1, 1:-1] = True
    sub = np.count_nonzero(t == MINIMUM) - (lo[lo >= 2] - 1).sum() + np.count_nonzero((t == MAXIMUM) & interior)
    sup = np.count_nonzero(t == MAXIMUM) - (up[up >= 2] - 1).sum() + np.count_nonzero((t == MINIMUM) & interior)
    return sub, sup


@pytest.mark.parametrize("shape,seed", [((2, 2), 0), ((2, 9), 1), ((33, 17), 2), ((64, 64), 3), ((101, 57), 4)])
@pytest.mark.parametrize("variant", ["smooth", "ties", "nan"])
def test_euler_relation(shape, seed, variant):
    rng = np.random.default_rng(seed)
    f = smooth_random(*shape, seed)
    if variant == "ties":
        f = np.round(f * 2)  # few levels: plateaus everywhere
    elif variant == "nan":
        f[rng.random(shape) < 0.1] = np.nan
        f.flat[0] = 1.0
    topo = analyze(f)
    assert euler_sums(topo) == (1, 1)
    # #min - #saddles + #max = 1 with boundary points counted half (the disk doubled to a
    # sphere), a boundary saddle's multiplicity being the mean of its lower and upper ones
    t, lo, up = topo.critical_type, topo.lower_components, topo.upper_components
    weight = np.full(shape, 0.5)
    weight[1:-1, 1:-1] = 1.0
    extrema = ((t == MINIMUM) | (t == MAXIMUM)).astype(float)
    multiplicity = np.where(weight == 1.0, np.maximum(lo - 1, 0),
                            np.maximum(lo - 1, 0) + np.maximum(up - 1, 0))
    assert (weight * (extrema - multiplicity)).sum() == pytest.approx(1.0)


def test_invariant_under_transposition():
    f = smooth_random(53, 37, seed=7)
    xs, ys = np.linspace(-1, 1, 53), np.linspace(-0.5, 0.7, 37)
    a = analyze(f, xs=xs, ys=ys, persistence=0.02, relative=True)
    b = analyze(f.T, xs=ys, ys=xs, persistence=0.02, relative=True)
    np.testing.assert_array_equal(a.critical_type, b.critical_type.T)
    np.testing.assert_array_equal(a.basins, b.basins.T)
    np.testing.assert_allclose(a.minima.coords, b.minima.coords[:, ::-1])
    np.testing.assert_allclose(a.minima.persistence, b.minima.persistence)
    np.testing.assert_allclose(a.minima.width_extent, b.minima.width_extent[:, ::-1])
    np.testing.assert_allclose(a.minima.curvature, b.minima.curvature, rtol=1e-9)

    def points(t, flip):
        c = t.critical_points
        return sorted(zip(c.code.tolist(), map(tuple, (c.index[:, ::-1] if flip else c.index).tolist()),
                          np.round(c.persistence, 12).tolist()))

    assert points(a, False) == points(b, True)
    nx = len(xs)
    swap = lambda v: (v // nx) + len(ys) * (v % nx)  # noqa: E731  vertex id in the transposed grid
    pa = sorted(zip(a.pairs.kind.tolist(), swap(a.pairs.birth).tolist(), swap(a.pairs.death).tolist()))
    pb = sorted(zip(b.pairs.kind.tolist(), b.pairs.birth.tolist(), b.pairs.death.tolist()))
    assert pa == pb


def test_invariant_under_constant_shift():
    f = smooth_random(48, 61, seed=8)
    a = analyze(f, persistence=0.3)
    b = analyze(f + 3.0, persistence=0.3)
    np.testing.assert_array_equal(a.critical_points.vertex_id, b.critical_points.vertex_id)
    np.testing.assert_allclose(a.critical_points.persistence, b.critical_points.persistence, atol=1e-12)
    np.testing.assert_array_equal(a.pairs.birth, b.pairs.birth)
    np.testing.assert_array_equal(a.pairs.death, b.pairs.death)
    np.testing.assert_array_equal(a.basins, b.basins)
    np.testing.assert_allclose(a.minima.value + 3.0, b.minima.value)


def test_minima_fall_monotonically_with_threshold():
    f = smooth_random(120, 90, seed=9, scale=12.0) + 0.3 * np.random.default_rng(9).standard_normal((120, 90))
    span = f.max() - f.min()
    counts = [len(analyze(f, persistence=p, relative=True).minima) for p in np.linspace(0, 1, 25)]
    assert counts[0] > 20 and counts[-1] == 1
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    # relative is a fraction of the range
    assert len(analyze(f, persistence=0.1, relative=True).minima) == len(analyze(f, persistence=0.1 * span).minima)
    # the number of survivors is one plus the number of min-saddle pairs above the threshold
    topo = analyze(f, persistence=0.05 * span)
    assert len(topo.minima) == 1 + np.count_nonzero((topo.pairs.kind == 0) & (topo.pairs.persistence > 0.05 * span))


# ---------------------------------------------------------------- schema and outputs
def test_json_schema_and_vtp_arrays():
    xs, ys, X, Y = grid((-3.2, 3.0), (-3.1, 2.9), 64, 50)
    f = wells(X, Y)
    topo = analyze(f, xs=xs, ys=ys, persistence=0.05, relative=True)
    doc = json.loads(topo.to_json())
    assert doc["threshold"] == pytest.approx(0.05 * (topo.value_range[1] - topo.value_range[0]))
    assert doc["shape"] == [64, 50]
    for c in doc["critical_points"]:
        assert c["type"] in ("minimum", "saddle", "maximum", "degenerate")
        i, j = c["index"]
        assert c["vertex_id"] == i + 64 * j and c["coords"] == [xs[i], ys[j]]
        assert c["value"] == f[i, j]
        assert isinstance(c["persistence"], float) and c["persistence"] >= 0
    kinds = {p["kind"] for p in doc["pairs"]}
    assert kinds <= {"min-saddle", "saddle-max", "min-max"} and "min-max" in kinds
    glob = next(c for c in doc["critical_points"] if c["type"] == "minimum")
    assert glob["persistence"] == pytest.approx(doc["value_range"][1] - doc["value_range"][0])
    assert len(doc["minima"]) == 4 and doc["minima"][0]["label"] == 0
    assert len(doc["merge_tree"]["arcs"]) == len(doc["merge_tree"]["nodes"]) - 1
    arrays = topo.critical_point_arrays()
    n = len(doc["critical_points"])
    assert arrays["points"].shape == (n, 3) and (arrays["points"][:, 2] == 0).all()
    assert set(arrays["CriticalType"].tolist()) <= {0, 1, 3, 4}
    np.testing.assert_array_equal(arrays["vertex_id"], [c["vertex_id"] for c in doc["critical_points"]])
    np.testing.assert_array_equal(arrays["loss"], [c["value"] for c in doc["critical_points"]])
    assert topo.basins.dtype == np.int32 and topo.basins.shape == (64, 50)


@pytest.mark.parametrize("kwargs,message", [
    (dict(values=np.zeros(5)), "values must be a 2D array"),
    (dict(values=np.zeros((1, 5))), "every size >= 2; got shape (1, 5)"),
    (dict(values=np.zeros((3, 1, 4))), "every size >= 2; got shape (3, 1, 4)"),
    (dict(values=np.zeros((2, 2, 2, 2))), "values must be a 2D array (nx, ny) or a 3D array"),
    (dict(values=np.zeros((3, 4)), zs=[0, 1]), "zs is for a 3D field"),
    (dict(values=np.zeros((3, 4, 5)), zs=[0, 1]), "zs must have shape (5,)"),
    (dict(values=np.full((3, 3), np.nan)), "no finite value"),
    (dict(values=np.array([["a", "b"], ["c", "d"]])), "values must be real numbers"),
    (dict(values=np.ones((3, 3)) * 1j), "got dtype complex128"),
    (dict(values=np.zeros((3, 4)), xs=[0, 1]), "xs must have shape (3,)"),
    (dict(values=np.zeros((3, 4)), ys=[0, 1, 1, 2]), "ys must be finite and strictly increasing"),
    (dict(values=np.zeros((3, 4)), persistence=-1), "persistence must be a finite number >= 0; got -1"),
    (dict(values=np.zeros((3, 4)), persistence=1.5, relative=True), "persistence must be between 0 and 1"),
    (dict(values=np.zeros((3, 4)), persistence="x"), "persistence must be a number; got 'x'"),
    (dict(values=np.zeros((3, 4)), delta=float("nan")), "delta must be a finite number >= 0"),
    (dict(values=np.zeros((3, 4)), persistence=float("inf")), "persistence must be a finite number >= 0; got inf"),
    (dict(values=np.zeros((3, 4)), curvature_radius=0), "curvature_radius must be an integer >= 1; got 0"),
])
def test_bad_input_names_the_parameter(kwargs, message):
    values = kwargs.pop("values")
    with pytest.raises(ValueError) as err:
        analyze(values, **kwargs)
    assert message in str(err.value)
