"""What a view makes of a surface's values: cap, threshold, contour levels, interpolation, relief.

One implementation for every picture: the quick looks (:mod:`pipeline.render`), the mesh
export (:mod:`pipeline.vtkio`) and the ParaView plugin (``paraview_plugins/losscape_filters.py``).

numpy only (no torch, vtk, matplotlib or scipy; numpy 1.24 is enough), so ParaView's own
Python can import it.

Layout: a grid array ``values[i, j]`` is the value at ``(xs[i], ys[j])``, shape ``(nx, ny)``;
the vertex id of ``(i, j)`` is ``i + nx * j`` (DESIGN.md; also VTK's point order). Masks have
the shape of the values they describe.

Conventions (details in each function's docstring): the cap of divergent losses is
``5 x max(centre value, ln(num_classes))`` (:func:`default_cap`); a threshold blanks or clamps
above the cap or takes log10 (:func:`threshold`); contour levels are evenly spaced in the value
or its log (:func:`contour_levels`); the grid's triangles are DESIGN.md's, split along the
(i+1, j)-(i, j+1) diagonal (:func:`grid_triangles`); the relief of a warped surface is a
fraction of the plane's size (:func:`relief_scale`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "THRESHOLD_MODES", "INTERPOLATION_METHODS", "PLANE_SIZES",
    "find_meta", "num_classes", "chance_loss",
    "centre_index", "cap_reference", "default_cap",
    "log10_or_nan", "threshold",
    "contour_levels",
    "grid_triangles", "interpolate", "fill_heights",
    "plane_size", "relief_scale",
]

THRESHOLD_MODES = ("blank", "clamp", "log10")
INTERPOLATION_METHODS = ("bilinear", "piecewise_linear")
PLANE_SIZES = ("geometric", "larger")


# ------------------------------------------------------------------------------------------
# metadata


def find_meta(meta: Mapping[str, Any], key: str) -> Any:
    """``meta[key]`` or, failing that, ``meta[<any>][key]`` one level down (e.g. ``meta["directions"]``).

    Returns None when neither holds ``key``.
    """
    if key in meta:
        return meta[key]
    for value in meta.values():
        if isinstance(value, Mapping) and key in value:
            return value[key]
    return None


def num_classes(meta: Mapping[str, Any]) -> int | None:
    """``num_classes`` (or ``n_classes``) from the metadata when it is an integer >= 2, else None."""
    for key in ("num_classes", "n_classes"):
        v = find_meta(meta, key)
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 2:
            return int(v)
    return None


def chance_loss(meta: Mapping[str, Any], default: float = 1.0) -> float:
    """``ln(num_classes)``, the cross-entropy of a uniform guess, from the metadata; ``default`` when unknown."""
    c = num_classes(meta)
    return math.log(c) if c else float(default)


# ------------------------------------------------------------------------------------------
# the cap for divergent values


def centre_index(xs: np.ndarray, ys: np.ndarray, atol: float = 1e-12) -> tuple[int, int] | None:
    """``(i, j)`` of the grid point (0, 0) (the trained weights), or None when the grid has none.

    Parameters
    ----------
    xs : (nx,) float, ys : (ny,) float
        Grid coordinates (alpha, beta).
    atol : float, default 1e-12
        A coordinate within ``atol`` of 0 counts as 0.
    """
    i = np.flatnonzero(np.isclose(np.asarray(xs, dtype=np.float64), 0.0, rtol=0.0, atol=atol))
    j = np.flatnonzero(np.isclose(np.asarray(ys, dtype=np.float64), 0.0, rtol=0.0, atol=atol))
    return (int(i[0]), int(j[0])) if len(i) and len(j) else None


def cap_reference(values: np.ndarray, usable: np.ndarray | None = None, centre: Any = None,
                  floor: float = 0.0) -> float:
    """``max(reference, floor)``: what a cap is a multiple of.

    Parameters
    ----------
    values : array of float
        Any shape (a ``(nx, ny)`` grid or flat vertex values).
    usable : bool array like ``values``, optional
        Points whose value may be used (e.g. ``valid``); non-finite values never are.
    centre : index into ``values``, optional
        Where the centre (0, 0) is (``(i, j)`` or a flat index); None when the grid has none.
    floor : float, default 0.0

    The reference is ``values[centre]`` when the centre is given and usable, else the smallest
    usable value; with no usable value at all, the floor alone.
    """
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values) if usable is None else np.isfinite(values) & np.asarray(usable, dtype=bool)
    if centre is not None and ok[centre]:
        ref = float(values[centre])
    elif ok.any():
        ref = float(values[ok].min())
    else:
        ref = -math.inf
    return max(ref, float(floor))


def default_cap(values: np.ndarray, usable: np.ndarray | None = None, *, centre: Any = None,
                cap_factor: float = 5.0, floor: float = 1.0) -> float:
    """The cap of divergent values: ``cap_factor * max(reference, floor)`` (see :func:`cap_reference`).

    Parameters
    ----------
    values, usable, centre : see :func:`cap_reference`
    cap_factor : float, default 5.0
        Finite, >= 1.
    floor : float, default 1.0
        Finite, >= 0; usually :func:`chance_loss` of the surface's metadata.
    """
    if not (math.isfinite(cap_factor) and cap_factor >= 1):
        raise ValueError(f"cap_factor must be a finite number >= 1; got {cap_factor!r}")
    if not (math.isfinite(floor) and floor >= 0):
        raise ValueError(f"floor must be a finite number >= 0; got {floor!r}")
    return cap_factor * cap_reference(values, usable, centre, floor)


# ------------------------------------------------------------------------------------------
# thresholds


def log10_or_nan(values: np.ndarray) -> np.ndarray:
    """float64 ``log10(values)``, NaN where a value is not positive (or NaN); no warnings."""
    v = np.asarray(values, dtype=np.float64)
    pos = v > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(pos, np.log10(np.where(pos, v, 1.0)), np.nan)


def threshold(values: np.ndarray, mode: str, cap: float | None = None, *, invalid: np.ndarray | None = None,
              hidden: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What a view shows of ``values``: ``(shown, hidden)``.

    Parameters
    ----------
    values : array of float, any shape
    mode : {'blank', 'clamp', 'log10'}
        ``blank``: points above ``cap`` are hidden. ``clamp``: values above ``cap`` become
        ``cap``; an invalid point known to lie above it (``+inf``, an early-exit bound >= cap)
        is shown at the cap. ``log10``: ``log10(value)``, non-positive values hidden; no cap.
    cap : float
        Needed by ``blank`` and ``clamp``.
    invalid : bool array like ``values``, optional
        Points whose value is unknown (e.g. ``valid == 0``); non-finite values always are.
    hidden : bool array like ``values``, optional
        Points hidden already; they stay hidden.

    Returns
    -------
    shown : float64 array like ``values``, NaN where hidden.
    hidden : bool array like ``values``.
    """
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, THRESHOLD_MODES))}; got {mode!r}")
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v)
    if invalid is not None:
        bad |= np.asarray(invalid, dtype=bool)
    before = np.zeros(v.shape, bool) if hidden is None else np.asarray(hidden, dtype=bool)
    if mode == "log10":
        out = before | bad | ~(v > 0)
        return np.where(out, np.nan, log10_or_nan(v)), out
    if cap is None or math.isnan(cap):
        raise ValueError(f"mode {mode!r} needs a cap; got {cap!r}")
    if mode == "blank":
        out = before | bad | ~(v <= cap)
        return np.where(out, np.nan, v), out
    out = before | (bad & ~(v >= cap))  # +inf and bounds above the cap are known to be above it
    return np.where(out, np.nan, np.minimum(v, cap)), out


# ------------------------------------------------------------------------------------------
# contour levels


def contour_levels(lo: float, hi: float, n: int, *, log: bool = False, lower: bool = True,
                   upper: bool = True) -> np.ndarray:
    """``n`` contour levels from ``lo`` to ``hi``, evenly spaced in the value or (``log``) in log10.

    Parameters
    ----------
    lo, hi : float
        The range, ``lo < hi``; ``log`` needs ``lo > 0``.
    n : int, >= 1
    log : bool, default False
        ``geomspace`` instead of ``linspace``.
    lower, upper : bool, default True
        Whether ``lo`` (``hi``) is a level. When not, the levels stay strictly inside on that
        side, spaced as if it were one (at a surface's minimum a contour is a point; at a cap
        it outlines the clamped plateau). With ``n = 1`` and both ends, the level is ``lo``.

    Returns
    -------
    (n,) float64, increasing.
    """
    if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1):
        raise ValueError(f"the number of levels must be an integer >= 1; got {n!r}")
    if log and not lo > 0:
        raise ValueError(f"log spacing needs a positive range; the range starts at {lo:g}")
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"the contour range must have finite min < max; got [{lo:g}, {hi:g}]")
    space = np.geomspace if log else np.linspace
    levels = space(lo, hi, int(n) + (not lower) + (not upper))
    return levels[(0 if lower else 1):(None if upper else -1)]


# ------------------------------------------------------------------------------------------
# the grid as a surface: triangles and interpolation


def grid_triangles(nx: int, ny: int, keep: np.ndarray | None = None) -> np.ndarray:
    """(T, 3) int64 vertex ids ``i + nx * j`` of the triangles of an ``(nx, ny)`` grid.

    Each cell is split along its (i+1, j)-(i, j+1) diagonal into ``(i, j), (i+1, j), (i, j+1)``
    and ``(i+1, j), (i+1, j+1), (i, j+1)``: DESIGN.md's triangulation, counter-clockwise in
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
