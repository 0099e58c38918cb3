"""What the page shows of one plane, as JSON-ready numbers: the page's data model.

numpy (and contourpy for the contour lines) only. Every rule comes from the modules that the
other pictures use: the cap, the colour range and the contour levels from
:func:`pipeline.render.field.display_field` (so from :mod:`pipeline.display`), heights of the
path and the critical points from :func:`pipeline.geometry.fill_heights`, axis titles and
labels from :mod:`pipeline.display`. The browser only maps these numbers onto Plotly traces
(``assets/page.js``).

Layout of every grid array in the scene: nested lists ``a[i][j]``, the value at
``(xs[i], ys[j])``, as in :mod:`pipeline.datamodel` (``null`` where there is none). Plotly's
``z[r][c]`` lies at ``(x[c], y[r])``, so ``page.js`` transposes; nothing else is reordered.

The scene of a plane (:func:`plane_scene`)::

    kind, title, axes (2 titles), xs (nx), ys (ny)
    values    {array: (nx, ny) the file's values exactly; null where not finite}
    inexact   {array: [[i, j], ...] finite but not usable (only a bound after an early exit)}
    colour    {array: {label, log, values (nx, ny), cmin, cmax, cap, grey_from, band, ticks, levels,
               line_scale}}: the colour axis (log10 of the value for a logarithmic map)
    heights   (nx, ny) the loss clamped at its cap, null where unknown; the 3D surface's z
    zrange, aspect (Plotly's aspectratio), camera (Plotly's eye)
    contours  {x, y, z}: the loss's contour lines in 3D, null between lines
    path      {x, y, z, epoch, loss, surface_loss, residual} or null
    critical  {x, y, z, code, type, value, persistence} or null
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import display, geometry
from ...datamodel import Surface, Trajectory
from ..field import DisplayField, display_field, parse_critical

__all__ = ["PlaneData", "plane_scene", "style", "N_LEVELS", "BAND"]

N_LEVELS = 20  # contour levels, as in the ParaView views
BAND = 0.06  # height of the grey band above the colour range, as a fraction of that range
_SYMBOLS = {"v": "triangle-down", "X": "x", "^": "triangle-up", "D": "diamond"}  # matplotlib -> Plotly markers
DIGITS = 6  # significant digits of drawn numbers (heights, colours, lines); the values themselves are exact


@dataclass(frozen=True)
class PlaneData:
    """One plane of a run, read: what the page draws of it.

    Attributes
    ----------
    kind : str
        The plane (``random``, ``pca``, ...).
    surface : Surface
    trajectory : Trajectory, optional
    critical : optional
        ``(coords (K, 2), types (K,))`` or :func:`pipeline.vtkio.read_points`'s
        ``(coords, arrays, meta)`` of ``critical_points_<kind>.vtp`` (then with persistence).
    topology : dict, optional
        The plane's ``topology_<kind>.json``.
    """

    kind: str
    surface: Surface
    trajectory: Trajectory | None = None
    critical: Any = None
    topology: dict | None = None


def _nested(a: np.ndarray, digits: int | None = None, span: float = 1.0) -> list:
    """``a`` as nested lists, ``None`` where not finite; rounded to ``digits`` significant digits of ``span``."""
    a = np.asarray(a, dtype=np.float64)
    if digits is not None:
        decimals = max(0, digits - 1 - math.floor(math.log10(span))) if span > 0 else digits
        a = np.round(a, decimals)
    return np.where(np.isfinite(a), a, None).tolist()


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Round values (1, 2, 5 x 10^k; only decades when those are many) inside ``[lo, hi]``."""
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1.0,) if k1 - k0 > 4 else (1.0, 2.0, 5.0)
    return [m * 10.0 ** k for k in range(k0, k1 + 1) for m in steps if lo <= m * 10.0 ** k <= hi]


def _colour(surface: Surface, name: str, field: DisplayField) -> dict[str, Any]:
    """How ``name`` is coloured: its values on the colour axis (log10 for a logarithmic map), the
    range from the smallest usable value to the cap (the largest value for arrays without one), and
    a grey band above it for points above the cap or not usable, as in the ParaView views."""
    raw = surface.values(name)
    capped = name in display.CAPPED_ARRAYS
    lo, hi = field.vmin, (field.cap if capped else field.vmax)
    shown, hidden = display.threshold(raw, "clamp", hi, invalid=~surface.usable(name))
    grey = ~hidden & (~surface.usable(name) | (raw > hi))
    axis = display.log10_or_nan if field.log else (lambda v: np.asarray(v, dtype=np.float64))
    cmin, cmax = float(axis(lo)), float(axis(hi))
    if cmax <= cmin:  # a constant array
        cmax = cmin + max(abs(cmin), 1.0) * 1e-6
    band = capped or bool(grey.any())
    top = cmax + BAND * (cmax - cmin) if band else cmax
    values = np.where(grey, top, axis(np.clip(shown, lo, hi)))
    values[hidden] = np.nan
    if field.log:
        ticks = [v for v in _log_ticks(lo, hi) if abs(math.log10(v) - cmin) > 0.06 * (cmax - cmin)
                 and abs(math.log10(v) - cmax) > 0.06 * (cmax - cmin)]
        tickvals = [cmin, *(math.log10(v) for v in ticks), cmax]
        ticktext = [f"{v:.3g}" for v in (lo, *ticks, hi)]
    else:
        tickvals = np.linspace(cmin, cmax, 5).tolist()
        ticktext = [f"{v:.3g}" for v in tickvals]
    if band:  # the band's label replaces the top one, which would overlap it
        tickvals[-1] = (cmax + top) / 2
        ticktext[-1] = f"above the cap {hi:.3g}" if capped else f"not usable (> {hi:.3g})"
    levels = axis(field.levels)
    return {"label": display.array_label(surface.meta, name), "log": bool(field.log),
            "line_scale": _stops(float(levels[0]), float(levels[-1]), cmin, cmax),
            "values": _nested(values, DIGITS, top - cmin), "cmin": cmin, "cmax": cmax,
            "grey_from": cmax if band else None, "band": [cmax, top] if band else None, "cap": hi if capped else None,
            "ticks": {"vals": tickvals, "text": ticktext},
            "levels": {"start": float(levels[0]), "end": float(levels[-1]),
                       "size": float((levels[-1] - levels[0]) / max(len(levels) - 1, 1))}}


def _stops(lo: float, hi: float, cmin: float, cmax: float, n: int = 17) -> list[list]:
    """Plotly colour stops over ``[lo, hi]`` that give each value its colour on the axis
    ``[cmin, cmax]``: Plotly spreads a contour trace's line colours over its levels, not its
    colour range."""
    from matplotlib import colormaps, colors

    cmap = colormaps[display.COLORMAP]
    values = np.linspace(lo, hi, n) if hi > lo else np.full(2, lo)
    pos = np.linspace(0.0, 1.0, len(values))
    return [[float(p), colors.to_hex(cmap(float(np.clip((v - cmin) / (cmax - cmin), 0, 1))))]
            for p, v in zip(pos, values)]


def _contour_lines(xs: np.ndarray, ys: np.ndarray, heights: np.ndarray, levels: np.ndarray,
                   lift: float) -> dict[str, list]:
    """Contour lines of ``heights`` (NaN: no line) at ``levels``, each at its level's height plus
    ``lift``, as x/y/z lists with ``None`` between lines (Plotly's gaps)."""
    import contourpy

    z = np.ma.masked_invalid(heights.T)  # contourpy: z[row = j][column = i]
    gen = contourpy.contour_generator(xs, ys, z, line_type=contourpy.LineType.Separate)
    x, y, h = [], [], []
    for level in levels:
        for line in gen.lines(float(level)):
            x += [*line[:, 0].tolist(), None]
            y += [*line[:, 1].tolist(), None]
            h += [float(level) + lift] * len(line) + [None]
    span = float(max(np.ptp(xs), np.ptp(ys)))
    r = max(0, DIGITS - 1 - math.floor(math.log10(span))) if span > 0 else DIGITS
    rz = max(0, DIGITS - 1 - math.floor(math.log10(max(abs(float(levels[-1])), 1e-300))))
    return {"x": [None if v is None else round(v, r) for v in x], "y": [None if v is None else round(v, r) for v in y],
            "z": [None if v is None else round(v, rz) for v in h]}


def _on_surface(values: np.ndarray, pts: np.ndarray, xs, ys, heights: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Heights of points placed on the warped surface: their own value where known, else the
    surface's there; clamped into the drawn range."""
    h = geometry.fill_heights(values, pts, (xs, ys, heights), top=hi, method="bilinear")
    return np.clip(h, lo, hi)


def plane_scene(plane: PlaneData) -> dict[str, Any]:
    """The scene of one plane (module docstring). Raises ``ValueError`` for a 1D surface or one
    without a usable loss."""
    s = plane.surface
    if s.grid.ndim != 2:
        raise ValueError(f"the page draws 2D surfaces (nx >= 2 and ny >= 2); got grid shape {s.grid.shape} "
                         f"for the {plane.kind} plane")
    xs, ys = s.xs, s.ys
    loss = display_field(s, "loss", n_levels=N_LEVELS)
    colour, values, inexact = {}, {}, {}
    for name in s.names():
        raw = s.values(name)
        values[name] = _nested(raw)
        bad = np.isfinite(raw) & ~s.usable(name)
        if bad.any():
            inexact[name] = np.argwhere(bad).tolist()
        try:
            field = loss if name == "loss" else display_field(s, name, n_levels=N_LEVELS)
        except ValueError:  # no usable value: listed under the cursor, not coloured
            continue
        colour[name] = _colour(s, name, field)
    heights, hidden = display.threshold(s.values("loss"), "clamp", loss.cap, invalid=~s.usable("loss"))
    lo, hi = loss.vmin, min(loss.cap, float(np.nanmax(heights)))
    sides = (float(np.ptp(xs)), float(np.ptp(ys)))
    larger = geometry.plane_size(sides, "larger")
    lift = 0.01 * (hi - lo)  # lines and markers just above the surface they lie on
    aspect = {"x": sides[0] / larger, "y": sides[1] / larger,  # the relief as ParaView's Warp By Loss draws it
              "z": display.RELIEF_FRACTION * geometry.plane_size(sides, "geometric") / larger}
    scene: dict[str, Any] = {
        "kind": plane.kind, "title": _plane_title(plane.kind, s.meta), "axes": list(display.axis_labels(s.meta)),
        "xs": xs.tolist(), "ys": ys.tolist(), "values": values, "inexact": inexact, "colour": colour,
        "height_label": display.array_label(s.meta, "loss"),
        "heights": _nested(heights, DIGITS, hi - lo), "zrange": [lo, hi],
        "aspect": aspect, "camera": _eye(*display.CAMERA_3D, distance=1.25 * math.hypot(*aspect.values())),
        "contours": _contour_lines(xs, ys, np.where(hidden, np.nan, heights), loss.levels[:-1], lift),
        "path": None, "critical": None,
    }
    t = plane.trajectory
    if t is not None and len(t.coords):
        z = _on_surface(t.surface_loss, t.coords, xs, ys, heights, lo, hi) + 2 * lift
        scene["path"] = {"x": t.coords[:, 0].tolist(), "y": t.coords[:, 1].tolist(), "z": z.tolist(),
                         "epoch": t.epoch.tolist(), "loss": _nested(t.loss), "surface_loss": _nested(t.surface_loss),
                         "residual": _nested(t.residual), "unit": t.unit}
    scene["critical"] = _critical(plane.critical, xs, ys, heights, lo, hi, 3 * lift)
    return scene


def _critical(critical: Any, xs, ys, heights, lo: float, hi: float, lift: float) -> dict[str, list] | None:
    parsed = parse_critical(critical)
    if parsed is None or not len(parsed[0]):
        return None
    coords, codes = parsed
    arrays = critical[1] if isinstance(critical, tuple) and len(critical) == 3 else {}
    keep = np.asarray(arrays.get("CriticalType", codes)).astype(np.int64).ravel() != 5  # as parse_critical
    value = np.asarray(arrays["loss"], dtype=np.float64)[keep] if "loss" in arrays else np.full(len(coords), np.nan)
    pers = np.asarray(arrays["persistence"], dtype=np.float64)[keep] if "persistence" in arrays else value * np.nan
    z = _on_surface(value, coords, xs, ys, heights, lo, hi) + lift
    return {"x": coords[:, 0].tolist(), "y": coords[:, 1].tolist(), "z": z.tolist(), "code": codes.tolist(),
            "type": [display.CRITICAL_STYLE[int(c)][0] for c in codes], "value": _nested(value),
            "persistence": _nested(pers)}


def _plane_title(kind: str, meta: dict) -> str:
    if kind == "pca":
        return "PCA plane"
    if kind == "random":
        norm = display.find_meta(meta, "norm")
        return f"random plane ({norm}-normalized)" if norm else "random plane"
    return f"{kind} plane"


def _eye(azimuth: float, elevation: float, distance: float) -> dict[str, float]:
    """Plotly's camera eye looking at the scene's centre from ``azimuth`` (from -y towards +x) and
    ``elevation`` degrees, as the 3D quick looks, at ``distance`` (Plotly's scene units: the box's
    aspect ratio, so an elongated plane is seen from closer)."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return {"x": distance * math.sin(az) * math.cos(el), "y": -distance * math.cos(az) * math.cos(el),
            "z": distance * math.sin(el)}


def style() -> dict[str, Any]:
    """Colours of every plane's scene, from :mod:`pipeline.display` (the colour map as Plotly stops)."""
    from matplotlib import colormaps, colors

    cmap = colormaps[display.COLORMAP]
    stops = [[k / 16, colors.to_hex(cmap(k / 16))] for k in range(17)]
    return {"colormap": stops, "path": display.PATH_COLOR, "start": display.START_COLOR, "end": display.END_COLOR,
            "divergent": display.DIVERGENT_COLOR,
            "critical": {str(code): {"label": label, "color": color, "symbol": _SYMBOLS[marker]}
                         for code, (label, color, marker) in display.CRITICAL_STYLE.items()}}
