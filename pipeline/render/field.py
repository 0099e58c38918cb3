"""What a picture shows of a surface: the capped field, its levels, title and markers.

numpy only. The rules (cap, threshold, levels, colours, axis titles) are those of
:mod:`pipeline.display`, which the ParaView side uses too; conventions of the pictures:
:mod:`pipeline.render.quicklook`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import display
from ..datamodel import Surface
from ..display import CRITICAL_STYLE

__all__ = ["DisplayField", "display_field", "parse_critical"]


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
        The label: the loss's real name for ``loss`` (``cross_entropy``, ``mse``), else the array's.
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


def display_field(surface: Surface, array: str = "loss", *, cap_factor: float = display.DEFAULT_CAP_FACTOR,
                  cap: float | None = None, floor: float | None = None, n_levels: int = 20) -> DisplayField:
    """Cap, divergent mask, colour range and contour levels of ``array``.

    Parameters
    ----------
    array : str, default 'loss'
        Losses (``loss``, ``test_loss``) are capped; other arrays (accuracy, extra) are not.
        Points that are not usable (:meth:`pipeline.datamodel.Surface.usable`) are divergent.
    cap_factor, floor : float
        Default cap, see :func:`pipeline.display.surface_cap`.
    cap : float, optional
        An absolute cap; overrides ``cap_factor`` and ``floor``.
    n_levels : int, default 20
        Number of contour levels.
    """
    if not (isinstance(n_levels, (int, np.integer)) and n_levels >= 2):
        raise ValueError(f"n_levels must be an integer >= 2; got {n_levels!r}")
    if cap is not None and not math.isfinite(cap):
        raise ValueError(f"cap must be a finite number or None; got {cap!r}")
    raw = surface.values(array)
    valid = surface.usable(array)
    if not valid.any():
        raise ValueError(f"array {array!r} has no valid (finite) point to draw")
    vmin, vtop = float(raw[valid].min()), float(raw[valid].max())
    if array not in display.CAPPED_ARRAYS:
        cap = vtop  # accuracy and analysis arrays do not diverge
    elif cap is None:
        cap = display.surface_cap(surface, array, cap_factor=cap_factor, floor=floor)
    if cap <= vmin:
        raise ValueError(f"cap must be above the smallest valid {array} ({vmin:.6g}); got {cap:.6g}")
    values, divergent = display.threshold(raw, "blank", cap, invalid=~valid)
    vmax = min(cap, vtop)
    if vmax <= vmin:  # a constant surface: give the colour map a non-empty range
        vmax = vmin + max(abs(vmin), 1.0) * 1e-6
    log = vmin > 0
    levels = display.contour_levels(vmin, vmax, n_levels, log=log, lower=False)  # (vmin, vmax]
    label = {"loss": surface.loss_label, "test_loss": f"{surface.loss_label} (test)"}.get(array, array)
    return DisplayField(values, divergent, vmin, vmax, float(cap), levels, log, label)


def _title(surface: Surface, field: DisplayField, title: str | None) -> str:
    if title is not None:
        return title
    meta = surface.meta
    parts = [str(meta[k]) for k in ("model", "dataset") if meta.get(k)]
    kind = display.find_meta(meta, "kind")
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
