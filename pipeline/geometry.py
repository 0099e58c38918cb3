"""The grid as a surface: its triangles, interpolation on them, heights of points placed on a
warped surface, and the relief scale of a warped picture.

numpy only (no torch, vtk, matplotlib or scipy; numpy 1.24 is enough), so ParaView's own
Python can import it. Used by the quick looks (:mod:`pipeline.render`), the mesh export
(:mod:`pipeline.vtkio`) and the ParaView plugin.

Layout: a grid array ``values[i, j]`` is the value at ``(xs[i], ys[j])``, shape ``(nx, ny)``;
the vertex id of ``(i, j)`` is ``i + nx * j`` (also VTK's point order). The triangles are the
topology's (docs/architecture.md, "Topology conventions"): each cell split along its
(i+1, j)-(i, j+1) diagonal.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["INTERPOLATION_METHODS", "PLANE_SIZES", "grid_triangles", "interpolate", "fill_heights", "plane_size",
           "relief_scale"]

INTERPOLATION_METHODS = ("bilinear", "piecewise_linear")
PLANE_SIZES = ("geometric", "larger")


# ------------------------------------------------------------------------------------------
# the grid as a surface: triangles and interpolation


def grid_triangles(nx: int, ny: int, keep: np.ndarray | None = None) -> np.ndarray:
    """(T, 3) int64 vertex ids ``i + nx * j`` of the triangles of an ``(nx, ny)`` grid.

    Each cell is split along its (i+1, j)-(i, j+1) diagonal into ``(i, j), (i+1, j), (i, j+1)``
    and ``(i+1, j), (i+1, j+1), (i, j+1)``: the topology's triangulation, counter-clockwise in
    the (alpha, beta) plane (normals to +z). Triangles are listed cell by cell, ``i`` fastest,
    lower triangles first.

    Parameters
    ----------
    nx, ny : int, >= 2
    keep : (nx, ny) bool, optional
        Points to keep; a triangle touching a dropped point is removed.
    """
    if nx < 2 or ny < 2:
        raise ValueError(f"a grid to triangulate needs nx >= 2 and ny >= 2; got ({nx}, {ny})")
    ids = np.arange(nx * ny, dtype=np.int64).reshape(ny, nx)  # ids[j, i] = i + nx * j
    p00, p10, p01, p11 = ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1], ids[1:, 1:]
    tri = np.concatenate([np.stack([p00, p10, p01], axis=-1).reshape(-1, 3),
                          np.stack([p10, p11, p01], axis=-1).reshape(-1, 3)])
    if keep is not None:
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (nx, ny):
            raise ValueError(f"keep must have shape (nx, ny) = {(nx, ny)}; got {keep.shape}")
        tri = tri[keep.T.ravel()[tri].all(axis=1)]  # keep.T.ravel(): vertex-id order
    return tri


def interpolate(xs: np.ndarray, ys: np.ndarray, values: np.ndarray, pts: np.ndarray, *,
                method: str = "bilinear") -> np.ndarray:
    """Value of the grid field ``values`` at arbitrary points of the plane.

    Parameters
    ----------
    xs : (nx,) increasing, ys : (ny,) increasing
    values : (nx, ny) float
        ``values[i, j]`` at ``(xs[i], ys[j])``; NaN allowed.
    pts : (K, 2) float
        ``(alpha, beta)`` of each point (further columns are ignored).
    method : {'bilinear', 'piecewise_linear'}, default 'bilinear'
        ``bilinear``: the bilinear interpolant of the cell. ``piecewise_linear``: the linear
        interpolant of the cell's triangle (:func:`grid_triangles`), i.e. the surface that
        the contour lines and the critical points of :mod:`pipeline.topology` refer to.

    Returns
    -------
    (K,) float64; NaN outside the grid and where a corner used is NaN. Both methods agree
    on the grid's edges and at its points.
    """
    if method not in INTERPOLATION_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, INTERPOLATION_METHODS))}; got {method!r}")
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    pts = np.asarray(pts, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"pts must have shape (K, 2); got {pts.shape}")
    if values.shape != (len(xs), len(ys)):
        raise ValueError(f"values must have shape (nx, ny) = {(len(xs), len(ys))}; got {values.shape}")
    out = np.full(len(pts), np.nan)
    if len(xs) < 2 or len(ys) < 2:
        return out
    x, y = pts[:, 0], pts[:, 1]
    inside = (x >= xs[0]) & (x <= xs[-1]) & (y >= ys[0]) & (y <= ys[-1])
    x, y = x[inside], y[inside]
    i = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2)
    j = np.clip(np.searchsorted(ys, y, side="right") - 1, 0, len(ys) - 2)
    s = (x - xs[i]) / (xs[i + 1] - xs[i])  # local coordinates in [0, 1]
    t = (y - ys[j]) / (ys[j + 1] - ys[j])
    v00, v10, v01, v11 = values[i, j], values[i + 1, j], values[i, j + 1], values[i + 1, j + 1]
    if method == "bilinear":
        out[inside] = (1 - s) * (1 - t) * v00 + s * (1 - t) * v10 + (1 - s) * t * v01 + s * t * v11
    else:
        lower = s + t <= 1  # triangle (i, j), (i+1, j), (i, j+1); else (i+1, j+1), (i, j+1), (i+1, j)
        out[inside] = np.where(lower, v00 + s * (v10 - v00) + t * (v01 - v00),
                               v11 + (1 - s) * (v01 - v11) + (1 - t) * (v10 - v11))
    return out


def fill_heights(heights: np.ndarray, pts: np.ndarray | None = None, surface: tuple | None = None, *,
                 top: float | None = None, method: str = "piecewise_linear") -> np.ndarray:
    """Heights of points that are to lie on a warped surface, with every gap filled.

    A non-finite height is taken from ``surface`` at the point (:func:`interpolate`); one that
    is still missing (outside the grid, next to a hole) is put at ``top``.

    Parameters
    ----------
    heights : (K,) float
        Known heights (e.g. a path's ``surface_loss``); NaN where unknown.
    pts : (K, 2) float, optional
        ``(alpha, beta)`` of the points; needed with ``surface``.
    surface : (xs (nx,), ys (ny,), values (nx, ny)), optional
        The surface's heights on its grid, NaN where missing.
    top : float, optional
        Default: the largest finite height of ``surface``, else of ``heights``, else 0.
    method : {'bilinear', 'piecewise_linear'}, default 'piecewise_linear'

    Returns
    -------
    (K,) float64, finite where ``top`` is.
    """
    out = np.array(heights, dtype=np.float64)
    miss = ~np.isfinite(out)
    if surface is not None and miss.any():
        xs, ys, values = surface
        out[miss] = interpolate(xs, ys, values, np.asarray(pts, dtype=np.float64)[miss], method=method)
        miss = ~np.isfinite(out)
    if miss.any():
        if top is None:
            ref = np.asarray(surface[2], dtype=np.float64) if surface is not None else out
            ok = np.isfinite(ref)
            if not ok.any() and surface is not None:
                ref, ok = out, ~miss
            top = float(ref[ok].max()) if ok.any() else 0.0
        out[miss] = top
    return out


# ------------------------------------------------------------------------------------------
# the relief of a warped surface


def plane_size(sides: tuple[float, float], size: str = "geometric") -> float:
    """One length for a ``(width, height)`` rectangle of the (alpha, beta) plane.

    ``geometric``: ``sqrt(width * height)``, the side of a square of the same area (a long,
    thin PCA plane does not become a deep trench); ``larger``: ``max(width, height)``.
    """
    if size not in PLANE_SIZES:
        raise ValueError(f"size must be one of {', '.join(map(repr, PLANE_SIZES))}; got {size!r}")
    width, height = (float(abs(s)) for s in sides)
    return math.sqrt(width * height) if size == "geometric" else max(width, height)


def relief_scale(heights: np.ndarray, sides: tuple[float, float], fraction: float = 0.5, *,
                 size: str = "geometric") -> float:
    """Height factor ``scale`` such that ``scale * ptp(heights) = fraction * plane_size(sides, size)``.

    Parameters
    ----------
    heights : array of float
        Heights (values or log10 values) of the reference surface; non-finite ones are ignored.
    sides : (width, height)
        Extent of the plane in (alpha, beta) units.
    fraction : float, default 0.5
        Finite, >= 0 (0 gives a flat surface).
    size : {'geometric', 'larger'}, default 'geometric'
        See :func:`plane_size`.

    Returns 1.0 when the heights are constant. Raises ValueError when none is finite.
    """
    if not (math.isfinite(fraction) and fraction >= 0):
        raise ValueError(f"the relief fraction must be a finite number >= 0; got {fraction!r}")
    h = np.asarray(heights, dtype=np.float64)
    h = h[np.isfinite(h)]
    if h.size == 0:
        raise ValueError("no finite height to scale")
    span = float(h.max() - h.min())
    return fraction * plane_size(sides, size) / span if span > 0 else 1.0
