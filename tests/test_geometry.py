"""pipeline.geometry: triangles, interpolation, heights and relief, checked against independent computations."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pipeline import geometry

ROOT = Path(__file__).resolve().parents[1]


def uneven_axes(rng, nx=7, ny=5):
    """Strictly increasing, unevenly spaced axes (so no formula can lean on equal steps)."""
    xs = np.cumsum(rng.uniform(0.2, 1.0, nx)) - 2.0
    ys = np.cumsum(rng.uniform(0.1, 0.7, ny)) - 1.0
    return xs, ys


# ----------------------------------------------------------------------------- triangles


def test_triangles_are_designs_triangulation():
    from pipeline.topology._mesh import SLOTS  # the topology's 6-neighbourhood, written independently

    nx, ny = 5, 4
    tri = geometry.grid_triangles(nx, ny)
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
    tri = geometry.grid_triangles(nx, ny, keep)
    assert len(tri) == 2 * 3 * 2 - 6 - 1
    assert not np.isin(tri, [1 + nx * 1, 3 + nx * 2]).any()
    with pytest.raises(ValueError, match=r"keep must have shape \(nx, ny\) = \(4, 3\); got \(3, 4\)"):
        geometry.grid_triangles(nx, ny, keep.T)


def test_vtkio_triangulate_grid_uses_the_same_triangles():
    from pipeline.vtkio import triangulate_grid

    nx, ny = 5, 4
    keep = np.ones((nx, ny), bool)
    keep[2, 1] = False
    point_ids, tri = triangulate_grid((nx, ny), keep)
    c = point_ids[tri]  # numpy C-order ids i * ny + j
    as_vertex_ids = {tuple(t) for t in ((c // ny) + nx * (c % ny)).tolist()}
    assert as_vertex_ids == {tuple(t) for t in geometry.grid_triangles(nx, ny, keep).tolist()}


# ----------------------------------------------------------------------------- interpolation


def test_bilinear_is_exact_on_bilinear_functions():
    rng = np.random.default_rng(1)
    xs, ys = uneven_axes(rng)
    f = lambda x, y: 1.5 - 2.0 * x + 0.7 * y + 3.0 * x * y  # noqa: E731
    values = f(*np.meshgrid(xs, ys, indexing="ij"))
    pts = np.column_stack([rng.uniform(xs[0], xs[-1], 200), rng.uniform(ys[0], ys[-1], 200)])
    np.testing.assert_allclose(geometry.interpolate(xs, ys, values, pts), f(pts[:, 0], pts[:, 1]), rtol=1e-12)


def barycentric_on_triangles(xs, ys, values, p):
    """The piecewise-linear interpolant by searching grid_triangles' triangles (slow, independent)."""
    X, Y, V = (np.asarray(a).T.ravel() for a in (*np.meshgrid(xs, ys, indexing="ij"), values))
    for t in geometry.grid_triangles(len(xs), len(ys)):
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
    got = geometry.interpolate(xs, ys, values, pts, method="piecewise_linear")
    expected = [barycentric_on_triangles(xs, ys, values, p) for p in pts]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # exact on linear functions
    lin = 0.3 + 2.0 * xs[:, None] - 1.5 * ys[None, :]
    np.testing.assert_allclose(geometry.interpolate(xs, ys, lin, pts, method="piecewise_linear"),
                               0.3 + 2.0 * pts[:, 0] - 1.5 * pts[:, 1], rtol=1e-12)


@pytest.mark.parametrize("method", geometry.INTERPOLATION_METHODS)
def test_interpolation_at_grid_points_outside_and_at_holes(method):
    rng = np.random.default_rng(3)
    xs, ys = uneven_axes(rng, 5, 4)
    values = rng.normal(size=(5, 4))
    A, B = np.meshgrid(xs, ys, indexing="ij")
    nodes = np.column_stack([A.ravel(), B.ravel()])
    np.testing.assert_allclose(geometry.interpolate(xs, ys, values, nodes, method=method), values.ravel(), rtol=1e-12)
    outside = np.array([[xs[0] - 1e-9, ys[1]], [xs[2], ys[-1] + 1.0]])
    assert np.isnan(geometry.interpolate(xs, ys, values, outside, method=method)).all()
    values[2, 2] = np.nan  # a corner of the cell's upper triangle
    near = np.array([[0.25 * xs[1] + 0.75 * xs[2], 0.25 * ys[1] + 0.75 * ys[2]], [xs[0], ys[0]]])
    got = geometry.interpolate(xs, ys, values, near, method=method)
    assert np.isnan(got[0]) and got[1] == values[0, 0]
    assert geometry.interpolate(xs, ys, values, np.zeros((0, 2)), method=method).shape == (0,)
    with pytest.raises(ValueError, match="method must be one of"):
        geometry.interpolate(xs, ys, values, near, method="cubic")


def test_fill_heights():
    xs, ys = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0])
    surf = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, np.nan]])  # (nx, ny)
    heights = np.array([9.0, np.nan, np.nan, np.nan])
    pts = np.array([[0.5, 0.5], [0.5, 0.0], [5.0, 5.0], [1.5, 0.8]])  # known; on the surface; outside; by the hole
    out = geometry.fill_heights(heights, pts, (xs, ys, surf), method="bilinear")
    np.testing.assert_array_equal(out, [9.0, 2.0, 5.0, 5.0])  # gaps at the top: largest surface height
    out = geometry.fill_heights(heights, pts, (xs, ys, surf), top=-1.0)
    np.testing.assert_array_equal(out, [9.0, 2.0, -1.0, -1.0])
    np.testing.assert_array_equal(geometry.fill_heights(heights), [9.0] * 4)  # no surface: own top
    np.testing.assert_array_equal(geometry.fill_heights([np.nan]), [0.0])


# ----------------------------------------------------------------------------- relief


@pytest.mark.parametrize("size, fraction", [("geometric", 0.5), ("larger", 1.0), ("larger", 0.6)])
def test_relief_is_the_fraction_of_the_plane(size, fraction):
    rng = np.random.default_rng(4)
    heights = rng.uniform(-3.0, 40.0, 50)
    heights[::7] = np.nan
    sides = (20.0, 11.0)
    scale = geometry.relief_scale(heights, sides, fraction, size=size)
    length = math.sqrt(20.0 * 11.0) if size == "geometric" else 20.0
    assert np.nanmax(scale * heights) - np.nanmin(scale * heights) == pytest.approx(fraction * length, rel=1e-12)


def test_relief_scale_edge_cases():
    assert geometry.relief_scale([2.0, 2.0, np.nan], (1.0, 1.0)) == 1.0  # constant: scale 1
    assert geometry.relief_scale([0.0, 1.0], (4.0, 1.0), 0.0) == 0.0
    assert geometry.plane_size((4.0, 1.0)) == 2.0 and geometry.plane_size((4.0, 1.0), "larger") == 4.0
    with pytest.raises(ValueError, match="no finite height"):
        geometry.relief_scale([np.nan], (1.0, 1.0))
    with pytest.raises(ValueError, match="relief fraction must be a finite number >= 0; got -1"):
        geometry.relief_scale([0.0, 1.0], (1.0, 1.0), -1)
    with pytest.raises(ValueError, match="size must be one of 'geometric', 'larger'; got 'mean'"):
        geometry.plane_size((1.0, 1.0), "mean")
