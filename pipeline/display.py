"""Display rules: what every picture makes of a surface's values, and how it looks.

One module for the quick looks (:mod:`pipeline.render`), the pvbatch driver, the ParaView
state builder (``states/build_states.py``) and the plugin (``paraview_plugins/``):

- the cap of divergent losses (:func:`default_cap`, the only definition): ``cap_factor x
  max(centre value, floor)``, the floor being the loss of a guess that knows nothing
  (:func:`chance_loss`: ``ln(num_classes)`` for classes, the best constant's loss for a
  regression) so that a trained model's tiny centre loss does not grey out the plane;
- thresholds (blank, clamp, log10) and contour levels (linear or log-spaced);
- colours (the path, the divergent grey, one colour per critical-point type) and the lists of
  views and planes.

numpy only (no torch, vtk, matplotlib or scipy; numpy 1.24 is enough), so ParaView's own
Python can import it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "PLANES", "DEFAULT_PLANES", "VIEWS", "HESSIAN_VIEWS", "QUICKLOOK_VIEWS", "THRESHOLD_MODES", "CAPPED_ARRAYS",
    "COLORMAP", "RELIEF_FRACTION",
    "CAMERA_3D", "array_label", "PATH_COLOR", "START_COLOR", "END_COLOR", "DIVERGENT_COLOR", "CRITICAL_STYLE", "rgb",
    "find_meta", "num_classes", "chance_loss", "cap_reference", "default_cap", "surface_cap", "DEFAULT_CAP_FACTOR",
    "log10_or_nan", "threshold", "contour_levels", "axis_labels",
]

PLANES = ("random", "pca", "hessian")  # the planes a run can compute, in the order pictures and pages show them
DEFAULT_PLANES = ("random", "pca")  # the planes lossvista run computes unless told (--planes)
VIEWS = ("2d_contours", "3d_contours", "3d_mesh", "3d_surface")  # ParaView states: states/landscape_<view>.pvsm
# views of a surface that holds curvature maps (lossvista surface --hessian), drawn only where it does:
# a ParaView state states/landscape_<view>.pvsm and a quick look <plane>_<view>.png each
HESSIAN_VIEWS = ("eig_ratio",)
QUICKLOOK_VIEWS = ("2d_contours", "3d_surface", "3d_mesh")  # matplotlib / pyvista pictures
THRESHOLD_MODES = ("blank", "clamp", "log10")
DEFAULT_CAP_FACTOR = 5.0
CAPPED_ARRAYS = ("loss", "test_loss")  # arrays that diverge: drawn up to a cap; the others are not capped
COLORMAP = "viridis"  # the value colour map of every picture (matplotlib's name; ParaView's "Viridis (matplotlib)")
RELIEF_FRACTION = 0.5  # a warped surface's relief (lowest to highest point) per plane size sqrt(width * height)
CAMERA_3D = (-55.0, 32.0)  # (azimuth from -y towards +x, elevation) in degrees of the 3D quick looks and the page

PATH_COLOR = "#e41a1c"  # the descent path: red, absent from the viridis loss map
START_COLOR = "#141414"  # the path's first checkpoint
END_COLOR = "#ffd400"  # the path's last checkpoint (the centre of the plane)
DIVERGENT_COLOR = "#b8b8b8"  # above the cap, or not usable
# TTK critical-type code -> (label, colour, matplotlib marker)
CRITICAL_STYLE: dict[int, tuple[str, str, str]] = {
    0: ("minimum", "#00b4ff", "v"),
    1: ("saddle", "#ff9f1c", "X"),
    2: ("saddle", "#ff9f1c", "X"),
    3: ("maximum", "#ff3df2", "^"),
    4: ("degenerate saddle", "#8c8c8c", "D"),
}


def rgb(color: str) -> list[float]:
    """``"#e41a1c"`` -> ``[0.894, 0.102, 0.110]`` (ParaView takes colours as floats in [0, 1])."""
    h = color.lstrip("#")
    return [round(int(h[k:k + 2], 16) / 255, 3) for k in (0, 2, 4)]


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
    """The loss of a guess that knows nothing, from the metadata: ``baseline_loss`` (the loss of
    the best constant prediction, recorded for regression losses), else ``ln(num_classes)`` (the
    cross-entropy of a uniform guess), else ``default``."""
    base = find_meta(meta, "baseline_loss")
    if isinstance(base, (int, float)) and not isinstance(base, bool) and math.isfinite(base) and base > 0:
        return float(base)
    c = num_classes(meta)
    return math.log(c) if c else float(default)


# ------------------------------------------------------------------------------------------
# the cap for divergent values


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
                cap_factor: float = DEFAULT_CAP_FACTOR, floor: float = 1.0) -> float:
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


def surface_cap(surface: Any, array: str = "loss", *, cap_factor: float = DEFAULT_CAP_FACTOR,
                floor: float | None = None) -> float:
    """:func:`default_cap` of one array of a :class:`~pipeline.datamodel.Surface`.

    The reference is the usable value at (0, 0) when the grid has that point, else the smallest
    usable value; ``floor`` defaults to :func:`chance_loss` of the surface's metadata.
    """
    if floor is None:
        floor = chance_loss(surface.meta)
    return default_cap(surface.values(array), surface.usable(array), centre=surface.centre_index(),
                       cap_factor=cap_factor, floor=floor)


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


def array_label(meta: Mapping[str, Any], array: str = "loss") -> str:
    """How a picture names ``array``: the loss by the metadata's ``loss_name`` when it has one
    (``"cross_entropy"``; ``"test cross_entropy"`` for ``test_loss``), every other array by its name."""
    name = meta.get("loss_name")
    if not (isinstance(name, str) and name.strip()):
        return array
    return {"loss": name.strip(), "test_loss": f"test {name.strip()}"}.get(array, array)


def axis_labels(meta: Mapping[str, Any], *, unicode: bool = True) -> tuple[str, str]:
    """``("PC1 (81.2%)", "PC2 (9.5%)")`` for a PCA plane (``explained_variance`` in meta),
    ``("eigenvector 1 (λ = 0.209)", "eigenvector 2 (λ = 0.169)")`` for a Hessian plane
    (``eigenvalues`` in meta), else alpha/beta.

    ``unicode=False`` spells alpha and beta in ASCII (ParaView's and VTK's bundled fonts have no
    Greek letters).
    """
    ev = find_meta(meta, "explained_variance")
    if isinstance(ev, Sequence) and not isinstance(ev, str) and len(ev) >= 1:
        try:
            pcs = [f"PC{k + 1} ({100 * float(v):.1f}%)" for k, v in enumerate(ev[:2])]
        except (TypeError, ValueError):
            pcs = []
        if len(pcs) == 2:
            return pcs[0], pcs[1]
        if len(pcs) == 1:
            return pcs[0], "PC2"
    ev = find_meta(meta, "eigenvalues")
    if isinstance(ev, Sequence) and not isinstance(ev, str) and len(ev) == 2:
        try:
            lam = "λ" if unicode else "lambda"
            return f"eigenvector 1 ({lam} = {float(ev[0]):.3g})", f"eigenvector 2 ({lam} = {float(ev[1]):.3g})"
        except (TypeError, ValueError):
            pass
    if unicode:
        return "α (direction 1)", "β (direction 2)"
    return "alpha (direction 1)", "beta (direction 2)"
