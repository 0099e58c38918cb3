"""pipeline.fields: each shared rule checked against an independent computation written here."""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import fields
from pipeline.config import Grid
from pipeline.surface import Surface

ROOT = Path(__file__).resolve().parents[1]


def uneven_axes(rng, nx=7, ny=5):
    """Strictly increasing, unevenly spaced axes (so no formula can lean on equal steps)."""
    xs = np.cumsum(rng.uniform(0.2, 1.0, nx)) - 2.0
    ys = np.cumsum(rng.uniform(0.1, 0.7, ny)) - 1.0
    return xs, ys


# ----------------------------------------------------------------------------- import


def test_imports_numpy_only():
    code = ("import sys, pipeline.fields; "
            "bad = [m for m in ('torch', 'vtkmodules', 'matplotlib', 'pyvista', 'scipy') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.paraview
@pytest.mark.skipif(shutil.which("pvpython") is None, reason="needs ParaView's pvpython")
def test_imports_under_paraview_python():
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import pipeline.fields as f; print(f.__file__)"
    proc = subprocess.run(["pvpython", "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "pipeline/fields.py" in proc.stdout


# ----------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("meta, expected", [
    ({"num_classes": 10}, 10),
    ({"dataset_info": {"n_classes": 3}}, 3),
    ({"num_classes": np.int64(7)}, 7),
    ({"num_classes": 1}, None),
    ({"num_classes": True}, None),
    ({"num_classes": "10"}, None),
    ({}, None),
])
def test_num_classes_and_chance_loss(meta, expected):
    assert fields.num_classes(meta) == expected
    assert fields.chance_loss(meta) == (math.log(expected) if expected else 1.0)
    assert fields.chance_loss(meta, default=0.0) == (math.log(expected) if expected else 0.0)


def test_find_meta_looks_one_level_down_only():
    meta = {"a": 1, "directions": {"explained_variance": [0.5]}, "deep": {"x": {"kind": "pca"}}}
    assert fields.find_meta(meta, "a") == 1
    assert fields.find_meta(meta, "explained_variance") == [0.5]
    assert fields.find_meta(meta, "kind") is None


# ----------------------------------------------------------------------------- cap


@pytest.mark.parametrize("xs, ys, expected", [
    (np.linspace(-1, 1, 5), np.linspace(-2, 2, 3), (2, 1)),
    (np.linspace(-1, 1, 4), np.linspace(-1, 1, 3), None),  # even nx: 0 is not a grid value
    (np.array([0.0, 1.0]), np.array([-1.0, 1e-13]), (0, 1)),
])
def test_centre_index(xs, ys, expected):
    assert fields.centre_index(xs, ys) == expected


def cap_by_hand(values, usable, centre, factor, floor):
    """The rule written out: factor x max(centre value if usable else smallest usable value, floor)."""
    flat = [(k, v) for k, v in np.ndenumerate(values) if usable[k] and math.isfinite(v)]
    ref = values[centre] if centre is not None and usable[centre] and math.isfinite(values[centre]) else \
        min(v for _, v in flat)
    return factor * max(ref, floor)


@pytest.mark.parametrize("centre_value, centre_ok, floor", [
    (3.0, True, math.log(10)),  # centre worse than chance: the centre decides
    (1e-4, True, math.log(10)),  # a well-trained centre: the floor decides
    (1e-4, True, 0.0),
    (1e-4, False, 0.0),  # invalid centre: the smallest usable value
])
def test_default_cap_cases(centre_value, centre_ok, floor):
    rng = np.random.default_rng(0)
    values = rng.uniform(0.5, 4.0, (5, 3))
    values[0, 0] = 0.2  # the smallest usable value
    values[4, 2] = 0.01  # smaller, but unusable
    values[1, 1] = np.nan
    usable = np.ones_like(values, bool)
    usable[4, 2] = False
    values[2, 1] = centre_value
    usable[2, 1] = centre_ok
    got = fields.default_cap(values, usable, centre=(2, 1), cap_factor=5.0, floor=floor)
    assert got == pytest.approx(cap_by_hand(values, usable, (2, 1), 5.0, floor), rel=1e-15)
    # the same rule on the flat vertex-order layout the plugin uses
    flat_centre = 2 + 5 * 1
    assert fields.default_cap(values.T.ravel(), usable.T.ravel(), centre=flat_centre, floor=floor) == got


def test_default_cap_errors():
    v = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="cap_factor must be a finite number >= 1; got 0.5"):
        fields.default_cap(v, cap_factor=0.5)
    with pytest.raises(ValueError, match="floor must be a finite number >= 0; got -1"):
        fields.default_cap(v, floor=-1)
    assert fields.default_cap(np.array([np.nan, 1.0]), np.array([True, False]), floor=0.5) == 2.5  # floor alone


@pytest.mark.parametrize("meta", [{}, {"num_classes": 10}])
@pytest.mark.parametrize("odd", [True, False])
def test_render_default_cap_is_the_shared_rule(meta, odd):
    from pipeline.render.field import default_cap

    g = Grid(-1.0, 1.0, 9 if odd else 8, -0.5, 0.5, 5)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    loss = 0.05 + a ** 2 + b ** 2
    loss[0, 0] = 1e-3  # smallest value, but only an early-exit bound: not valid
    bounded = np.zeros(loss.shape, bool)
    bounded[0, 0] = True
    s = Surface(g, loss, np.zeros_like(loss), bounded=bounded, meta=meta)
    usable = s.valid.astype(bool)
    floor = math.log(10) if meta else 1.0
    expected = cap_by_hand(loss, usable, s.centre_index(), 5.0, floor)
    assert default_cap(s) == pytest.approx(expected, rel=1e-15)
    assert default_cap(s, floor=0.0) == pytest.approx(cap_by_hand(loss, usable, s.centre_index(), 5.0, 0.0))


# ----------------------------------------------------------------------------- threshold


VALUES = np.array([0.5, 2.0, 3.0, np.nan, np.inf, 7.0, 1.0, -1.0, 0.0])
INVALID = np.array([0, 0, 0, 0, 0, 1, 1, 0, 0], bool)  # 7.0: a bound above the cap; 1.0: unknown
HIDDEN = np.array([0, 1, 0, 0, 0, 0, 0, 0, 0], bool)


def test_threshold_blank_clamp_log10_point_by_point():
    cap = 2.5
    for mode in ("blank", "clamp", "log10"):
        shown, hidden = fields.threshold(VALUES, mode, None if mode == "log10" else cap,
                                         invalid=INVALID, hidden=HIDDEN)
        for k, v in enumerate(VALUES):
            known = math.isfinite(v) and not INVALID[k]
            if HIDDEN[k]:
                expect = None
            elif mode == "blank":
                expect = v if known and v <= cap else None
            elif mode == "clamp":
                expect = min(v, cap) if known else (cap if v >= cap else None)  # nan >= cap is False
            else:
                expect = math.log10(v) if known and v > 0 else None
            assert hidden[k] == (expect is None), (mode, k)
            if expect is None:
                assert math.isnan(shown[k]), (mode, k)
            else:
                assert shown[k] == pytest.approx(expect, rel=1e-15), (mode, k)


def test_threshold_errors_and_log10_or_nan():
    with pytest.raises(ValueError, match="mode must be one of 'blank', 'clamp', 'log10'; got 'cut'"):
        fields.threshold(VALUES, "cut", 1.0)
    with pytest.raises(ValueError, match="needs a cap"):
        fields.threshold(VALUES, "clamp")
    with np.errstate(all="raise"):  # no warnings either
        out = fields.log10_or_nan(np.array([100.0, 0.0, -3.0, np.nan, np.inf]))
    np.testing.assert_array_equal(out[:1], [2.0])
    assert np.isnan(out[1:4]).all() and out[4] == np.inf


# ----------------------------------------------------------------------------- contour levels


@pytest.mark.parametrize("lower, upper", [(True, True), (False, False), (False, True), (True, False)])
@pytest.mark.parametrize("n", [1, 2, 7, 20])
def test_log_levels_are_strictly_log_spaced(n, lower, upper):
    lo, hi = 3e-4, 12.0
    lv = fields.contour_levels(lo, hi, n, log=True, lower=lower, upper=upper)
    assert lv.shape == (n,)
    if n == 1 and lower and upper:  # one level cannot be both ends: it is the lower one
        assert lv[0] == lo
        return
    assert (lv[0] == pytest.approx(lo)) == lower and (lv[-1] == pytest.approx(hi)) == upper
    assert lo <= lv[0] and lv[-1] <= hi and np.all(np.diff(lv) > 0)
    # equal ratios, including the excluded ends: [lo, *levels, hi] without duplicates
    full = np.log([*([] if lower else [lo]), *lv, *([] if upper else [hi])])
    steps = np.diff(full)
    if len(steps):
        np.testing.assert_allclose(steps, (math.log(hi) - math.log(lo)) / len(steps), rtol=1e-10)


def test_linear_levels_and_the_usual_ranges():
    np.testing.assert_allclose(fields.contour_levels(0.5, 2.0, 7), [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0])
    np.testing.assert_allclose(fields.contour_levels(-1.0, 1.0, 3, lower=False, upper=False), [-0.5, 0.0, 0.5])
    np.testing.assert_allclose(fields.contour_levels(0.0, 1.0, 4, lower=False), [0.25, 0.5, 0.75, 1.0])


@pytest.mark.parametrize("args, kwargs, message", [
    ((-1.0, 2.0, 5), {"log": True}, "log spacing needs a positive range; the range starts at -1"),
    ((2.0, 2.0, 5), {}, r"the contour range must have finite min < max; got \[2, 2\]"),
    ((0.0, np.inf, 5), {}, "finite min < max"),
    ((0.0, 1.0, 0), {}, "the number of levels must be an integer >= 1; got 0"),
    ((0.0, 1.0, 2.5), {}, "integer >= 1; got 2.5"),
])
def test_contour_level_errors(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fields.contour_levels(*args, **kwargs)


# ----------------------------------------------------------------------------- triangles


def test_triangles_are_designs_triangulation():
    from pipeline.topology._mesh import SLOTS  # the topology's 6-neighbourhood, written independently

    nx, ny = 5, 4
    tri = fields.grid_triangles(nx, ny)
    assert tri.shape == (2 * (nx - 1) * (ny - 1), 3)
    i, j = tri % nx, tri // nx
    # counter-clockwise in the (alpha, beta) plane, each of area 1/2 in index units
    cross = (i[:, 1] - i[:, 0]) * (j[:, 2] - j[:, 0]) - (j[:, 1] - j[:, 0]) * (i[:, 2] - i[:, 0])
    np.testing.assert_array_equal(cross, 1)
    edges = {tuple(sorted((int(a), int(b)))) for t in tri for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))}
    expected = {tuple(sorted((vi + nx * vj, (vi + di) + nx * (vj + dj))))
                for vi in range(nx) for vj in range(ny) for di, dj in SLOTS
                if 0 <= vi + di < nx and 0 <= vj + dj < ny}
    assert edges == expected


def test_triangles_drop_points_not_kept():
    nx, ny = 4, 3
    keep = np.ones((nx, ny), bool)
    keep[1, 1] = False  # interior point: 6 triangles
    keep[3, 2] = False  # corner (nx-1, ny-1): 1 triangle
    tri = fields.grid_triangles(nx, ny, keep)
    assert len(tri) == 2 * 3 * 2 - 6 - 1
    assert not np.isin(tri, [1 + nx * 1, 3 + nx * 2]).any()
    with pytest.raises(ValueError, match=r"keep must have shape \(nx, ny\) = \(4, 3\); got \(3, 4\)"):
        fields.grid_triangles(nx, ny, keep.T)


def test_vtkio_triangulate_grid_uses_the_same_triangles():
    from pipeline.vtkio import triangulate_grid

    nx, ny = 5, 4
    keep = np.ones((nx, ny), bool)
    keep[2, 1] = False
    point_ids, tri = triangulate_grid((nx, ny), keep)
    c = point_ids[tri]  # numpy C-order ids i * ny + j
    as_vertex_ids = {tuple(t) for t in ((c // ny) + nx * (c % ny)).tolist()}
    assert as_vertex_ids == {tuple(t) for t in fields.grid_triangles(nx, ny, keep).tolist()}


# ----------------------------------------------------------------------------- interpolation


def test_bilinear_is_exact_on_bilinear_functions():
    rng = np.random.default_rng(1)
    xs, ys = uneven_axes(rng)
    f = lambda x, y: 1.5 - 2.0 * x + 0.7 * y + 3.0 * x * y  # noqa: E731
    values = f(*np.meshgrid(xs, ys, indexing="ij"))
    pts = np.column_stack([rng.uniform(xs[0], xs[-1], 200), rng.uniform(ys[0], ys[-1], 200)])
    np.testing.assert_allclose(fields.interpolate(xs, ys, values, pts), f(pts[:, 0], pts[:, 1]), rtol=1e-12)


def barycentric_on_triangles(xs, ys, values, p):
    """The piecewise-linear interpolant by searching grid_triangles' triangles (slow, independent)."""
    X, Y, V = (np.asarray(a).T.ravel() for a in (*np.meshgrid(xs, ys, indexing="ij"), values))
    for t in fields.grid_triangles(len(xs), len(ys)):
        (x0, x1, x2), (y0, y1, y2) = X[t], Y[t]
        det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        l1 = ((p[0] - x0) * (y2 - y0) - (x2 - x0) * (p[1] - y0)) / det
        l2 = ((x1 - x0) * (p[1] - y0) - (p[0] - x0) * (y1 - y0)) / det
        if min(l1, l2, 1 - l1 - l2) >= -1e-12:
            return (1 - l1 - l2) * V[t[0]] + l1 * V[t[1]] + l2 * V[t[2]]
    return np.nan


def test_piecewise_linear_follows_the_triangles():
    rng = np.random.default_rng(2)
    xs, ys = uneven_axes(rng, 6, 5)
    values = rng.normal(size=(6, 5))
    pts = np.column_stack([rng.uniform(xs[0], xs[-1], 60), rng.uniform(ys[0], ys[-1], 60)])
    got = fields.interpolate(xs, ys, values, pts, method="piecewise_linear")
    expected = [barycentric_on_triangles(xs, ys, values, p) for p in pts]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # exact on linear functions
    lin = 0.3 + 2.0 * xs[:, None] - 1.5 * ys[None, :]
    np.testing.assert_allclose(fields.interpolate(xs, ys, lin, pts, method="piecewise_linear"),
                               0.3 + 2.0 * pts[:, 0] - 1.5 * pts[:, 1], rtol=1e-12)


@pytest.mark.parametrize("method", fields.INTERPOLATION_METHODS)
def test_interpolation_at_grid_points_outside_and_at_holes(method):
    rng = np.random.default_rng(3)
    xs, ys = uneven_axes(rng, 5, 4)
    values = rng.normal(size=(5, 4))
    A, B = np.meshgrid(xs, ys, indexing="ij")
    nodes = np.column_stack([A.ravel(), B.ravel()])
    np.testing.assert_allclose(fields.interpolate(xs, ys, values, nodes, method=method), values.ravel(), rtol=1e-12)
    outside = np.array([[xs[0] - 1e-9, ys[1]], [xs[2], ys[-1] + 1.0]])
    assert np.isnan(fields.interpolate(xs, ys, values, outside, method=method)).all()
    values[2, 2] = np.nan  # a corner of the cell's upper triangle
    near = np.array([[0.25 * xs[1] + 0.75 * xs[2], 0.25 * ys[1] + 0.75 * ys[2]], [xs[0], ys[0]]])
    got = fields.interpolate(xs, ys, values, near, method=method)
    assert np.isnan(got[0]) and got[1] == values[0, 0]
    assert fields.interpolate(xs, ys, values, np.zeros((0, 2)), method=method).shape == (0,)
    with pytest.raises(ValueError, match="method must be one of"):
        fields.interpolate(xs, ys, values, near, method="cubic")


def test_fill_heights():
    xs, ys = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0])
    surf = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, np.nan]])  # (nx, ny)
    heights = np.array([9.0, np.nan, np.nan, np.nan])
    pts = np.array([[0.5, 0.5], [0.5, 0.0], [5.0, 5.0], [1.5, 0.8]])  # known; on the surface; outside; by the hole
    out = fields.fill_heights(heights, pts, (xs, ys, surf), method="bilinear")
    np.testing.assert_array_equal(out, [9.0, 2.0, 5.0, 5.0])  # gaps at the top: largest surface height
    out = fields.fill_heights(heights, pts, (xs, ys, surf), top=-1.0)
    np.testing.assert_array_equal(out, [9.0, 2.0, -1.0, -1.0])
    np.testing.assert_array_equal(fields.fill_heights(heights), [9.0] * 4)  # no surface: own top
    np.testing.assert_array_equal(fields.fill_heights([np.nan]), [0.0])


# ----------------------------------------------------------------------------- relief


@pytest.mark.parametrize("size, fraction", [("geometric", 0.5), ("larger", 1.0), ("larger", 0.6)])
def test_relief_is_the_fraction_of_the_plane(size, fraction):
    rng = np.random.default_rng(4)
    heights = rng.uniform(-3.0, 40.0, 50)
    heights[::7] = np.nan
    sides = (20.0, 11.0)
    scale = fields.relief_scale(heights, sides, fraction, size=size)
    length = math.sqrt(20.0 * 11.0) if size == "geometric" else 20.0
    assert np.nanmax(scale * heights) - np.nanmin(scale * heights) == pytest.approx(fraction * length, rel=1e-12)


def test_relief_scale_edge_cases():
    assert fields.relief_scale([2.0, 2.0, np.nan], (1.0, 1.0)) == 1.0  # constant: scale 1
    assert fields.relief_scale([0.0, 1.0], (4.0, 1.0), 0.0) == 0.0
    assert fields.plane_size((4.0, 1.0)) == 2.0 and fields.plane_size((4.0, 1.0), "larger") == 4.0
    with pytest.raises(ValueError, match="no finite height"):
        fields.relief_scale([np.nan], (1.0, 1.0))
    with pytest.raises(ValueError, match="relief fraction must be a finite number >= 0; got -1"):
        fields.relief_scale([0.0, 1.0], (1.0, 1.0), -1)
    with pytest.raises(ValueError, match="size must be one of 'geometric', 'larger'; got 'mean'"):
        fields.plane_size((1.0, 1.0), "mean")
