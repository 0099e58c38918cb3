"""What the pictures show of a surface: the capped field, levels, labels, marker styles.

numpy only. Conventions (cap, divergent points, levels, labels): see :mod:`pipeline.render.quicklook`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import fields
from ..surface import Surface

__all__ = ["PATH_COLOR", "DIVERGENT_COLOR", "CRITICAL_STYLE", "DisplayField", "centre_value", "default_cap",
           "display_field", "axis_labels", "parse_critical"]

PATH_COLOR = "#e41a1c"  # red: not in viridis, distinct from the critical-point colours
DIVERGENT_COLOR = "#b8b8b8"
# TTK code -> (label, colour, matplotlib marker)
CRITICAL_STYLE: dict[int, tuple[str, str, str]] = {
    0: ("minimum", "#00b4ff", "v"),
    1: ("saddle", "#ff9f1c", "X"),
    2: ("saddle", "#ff9f1c", "X"),
    3: ("maximum", "#ff3df2", "^"),
    4: ("degenerate", "#ffffff", "D"),
}

@dataclass(frozen=True)
class DisplayField:
    """What a picture shows of one array of a surface.

    Attributes
    ----------
    values : (nx, ny) float64
        The array with NaN wherever the point is divergent (above ``cap`` or invalid).
    divergent : (nx, ny) bool
        Invalid, non-finite, or above ``cap``.
    vmin, vmax : float
        Colour range: smallest valid value and ``min(cap, largest valid value)``.
    cap : float
        Values above it are divergent.
    levels : (L,) float64
        Contour levels in ``(vmin, vmax]``, log-spaced when ``log``.
    log : bool
        Whether colours and levels are logarithmic (all valid values > 0).
    name : str
    """

    values: np.ndarray
    divergent: np.ndarray
    vmin: float
    vmax: float
    cap: float
    levels: np.ndarray
    log: bool
    name: str

    def capped(self) -> np.ndarray:
        """(nx, ny) values with divergent points set to ``vmax`` (finite everywhere; for heights)."""
        return np.where(self.divergent, self.vmax, self.values)


def centre_value(surface: Surface, array: str = "loss") -> float | None:
    """The array's value at the grid point (0, 0) when it exists and is valid, else None."""
    idx = surface.centre_index()
    if idx is None:
        return None
    v = float(_array(surface, array)[idx])
    return v if math.isfinite(v) and (array != "loss" or surface.valid[idx]) else None


def _array(surface: Surface, array: str) -> np.ndarray:
    if array in ("loss", "accuracy", "test_loss", "test_accuracy"):
        values = getattr(surface, array)
    else:
        values = surface.extra.get(array)
    if values is None or np.shape(values) != surface.grid.shape:
        names = ["loss", "accuracy"] + [n for n in ("test_loss", "test_accuracy") if getattr(surface, n) is not None]
        names += [n for n, v in surface.extra.items() if np.shape(v) == surface.grid.shape]
        raise ValueError(f"array must be one of {', '.join(map(repr, names))}; got {array!r}")
    return np.asarray(values, dtype=np.float64)


def default_cap(surface: Surface, array: str = "loss", *, cap_factor: float = 5.0,
                floor: float | None = None) -> float:
    """``cap_factor * max(centre value, floor)``; ``floor`` defaults to ``ln(num_classes)`` from meta, else 1.0.

    The centre value is the array at (0, 0) when the grid has that point and it is valid,
    else the smallest valid value. The rule is :func:`pipeline.fields.default_cap`, which the
    ParaView plugin's Loss Threshold uses too.
    """
    if not (math.isfinite(cap_factor) and cap_factor > 1):
        raise ValueError(f"cap_factor must be a finite number > 1; got {cap_factor!r}")
    if floor is None:
        floor = fields.chance_loss(surface.meta)
    if not (math.isfinite(floor) and floor >= 0):
        raise ValueError(f"floor must be a finite number >= 0; got {floor!r}")
    usable = surface.valid.astype(bool) if array == "loss" else None
    raw = _array(surface, array)
    return fields.default_cap(raw, usable, centre=surface.centre_index(), cap_factor=cap_factor, floor=floor)


def display_field(surface: Surface, array: str = "loss", *, cap_factor: float = 5.0, cap: float | None = None,
                  floor: float | None = None, n_levels: int = 20) -> DisplayField:
    """Cap, divergent mask, colour range and contour levels of ``array``.

    Parameters
    ----------
    array : str, default 'loss'
        Losses (``loss``, ``test_loss``) are capped; other arrays (accuracy, extra) are not.
    cap_factor, floor : float
        Default cap, see :func:`default_cap`.
    cap : float, optional
        An absolute cap; overrides ``cap_factor`` and ``floor``.
    n_levels : int, default 20
        Number of contour levels.
    """
    if not (isinstance(n_levels, (int, np.integer)) and n_levels >= 2):
        raise ValueError(f"n_levels must be an integer >= 2; got {n_levels!r}")
    if cap is not None and not math.isfinite(cap):
        raise ValueError(f"cap must be a finite number or None; got {cap!r}")
    raw = _array(surface, array)
    valid = np.isfinite(raw)
    if array in ("loss", "test_loss"):
        valid &= surface.valid.astype(bool)
    if not valid.any():
        raise ValueError(f"array {array!r} has no valid (finite) point to draw")
    vmin, vtop = float(raw[valid].min()), float(raw[valid].max())
    if array not in ("loss", "test_loss"):
        cap = vtop  # accuracy and analysis arrays do not diverge
    elif cap is None:
        cap = default_cap(surface, array, cap_factor=cap_factor, floor=floor)
    if cap <= vmin:
        raise ValueError(f"cap must be above the smallest valid {array} ({vmin:.6g}); got {cap:.6g}")
    values, divergent = fields.threshold(raw, "blank", cap, invalid=~valid)
    vmax = min(cap, vtop)
    if vmax <= vmin:  # a constant surface: give the colour map a non-empty range
        vmax = vmin + max(abs(vmin), 1.0) * 1e-6
    log = vmin > 0
    levels = fields.contour_levels(vmin, vmax, n_levels, log=log, lower=False)  # (vmin, vmax]
    return DisplayField(values, divergent, vmin, vmax, float(cap), levels, log, array)


def axis_labels(meta: Mapping[str, Any], *, unicode: bool = True) -> tuple[str, str]:
    """``("PC1 (81.2%)", "PC2 (9.5%)")`` for a PCA plane (``explained_variance`` in meta), else alpha/beta."""
    ev = fields.find_meta(meta, "explained_variance")
    if isinstance(ev, Sequence) and not isinstance(ev, str) and len(ev) >= 1:
        try:
            pcs = [f"PC{k + 1} ({100 * float(v):.1f}%)" for k, v in enumerate(ev[:2])]
        except (TypeError, ValueError):
            pcs = []
        if len(pcs) == 2:
            return pcs[0], pcs[1]
        if len(pcs) == 1:
            return pcs[0], "PC2"
    if unicode:
        return "α (direction 1)", "β (direction 2)"
    return "alpha (direction 1)", "beta (direction 2)"


def _title(surface: Surface, field: DisplayField, title: str | None) -> str:
    if title is not None:
        return title
    meta = surface.meta
    parts = [str(meta[k]) for k in ("model", "dataset") if meta.get(k)]
    kind = fields.find_meta(meta, "kind")
    head = " on ".join(parts) if parts else "loss landscape"
    if kind:
        head += f" — {kind} plane" if surface.grid.ndim == 2 else f" — {kind} direction"
    return head


def _cap_note(field: DisplayField) -> str:
    n = int(field.divergent.sum())
    return f"grey: above cap {field.cap:.3g} or invalid ({n} point{'s' if n != 1 else ''})" if n else ""


def parse_critical(critical: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(coords (K, 2), types (K,))``; also accepts ``read_points``'s ``(coords, arrays, meta)``."""
    if critical is None:
        return None
    if isinstance(critical, tuple) and len(critical) == 3 and isinstance(critical[1], Mapping):
        coords, arrays, _ = critical
        if "CriticalType" not in arrays:
            raise ValueError(f"critical points need a 'CriticalType' array; got arrays {sorted(arrays)}")
        types = arrays["CriticalType"]
    else:
        try:
            coords, types = critical
        except (TypeError, ValueError):
            raise ValueError("critical must be (coords (K, 2), types (K,)) or read_points(...)'s "
                             f"(coords, arrays, meta); got {type(critical).__name__}") from None
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    types = np.asarray(types).astype(np.int64).ravel()
    if len(types) != len(coords):
        raise ValueError(f"critical types must have one entry per point ({len(coords)}); got {len(types)}")
    bad = sorted(set(types.tolist()) - set(CRITICAL_STYLE) - {5})
    if bad:
        raise ValueError(f"critical types must be TTK codes {sorted(CRITICAL_STYLE)} (5 = regular, ignored); got {bad}")
    keep = types != 5
    return coords[keep], types[keep]


def _epoch_labels(n: int, max_labels: int = 8) -> np.ndarray:
    """Indices of checkpoints to label: first, last and evenly spaced ones in between."""
    return np.unique(np.linspace(0, n - 1, min(n, max_labels)).round().astype(int)) if n else np.zeros(0, int)
