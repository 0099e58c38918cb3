"""The ``Surface`` container: loss/accuracy arrays on a :class:`~pipeline.config.Grid`.

numpy only (no torch), so the ParaView side and ``pipeline.vtkio`` can use it.
Layout, stated once: ``loss[i, j]`` is the value at ``(grid.xs[i], grid.ys[j])``;
arrays have shape ``(nx, ny)``. Conversion to VTK's x-fastest order happens only in
``pipeline.vtkio``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import Grid

__all__ = ["Surface", "Trajectory"]

FORMAT_VERSION = 1


@dataclass
class Surface:
    """Values of a model on a grid of the plane ``theta + a*x + b*y``.

    Attributes
    ----------
    grid : Grid
    loss : (nx, ny) float64
        Mean loss over the evaluated split. Non-finite where the loss was NaN/inf; where
        ``bounded`` is set it is a lower bound (the evaluation stopped above a cap).
    accuracy : (nx, ny) float64 in [0, 1]
    test_loss, test_accuracy : (nx, ny) float64 or None
        Present when both splits were evaluated.
    bounded : (nx, ny) bool
        True where the loss is only known to be ``>= cap`` (early exit).
    meta : dict
        JSON-serialisable metadata written to the file's ``losscape_meta`` field data.
    extra : dict of name -> (nx, ny) arrays
        Further point arrays (e.g. ``basin`` after analysis).
    """

    grid: Grid
    loss: np.ndarray
    accuracy: np.ndarray
    test_loss: np.ndarray | None = None
    test_accuracy: np.ndarray | None = None
    bounded: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = self.grid.shape
        self.loss = np.asarray(self.loss, dtype=np.float64)
        self.accuracy = np.asarray(self.accuracy, dtype=np.float64)
        for name in ("loss", "accuracy", "test_loss", "test_accuracy"):
            arr = getattr(self, name)
            if arr is None:
                continue
            arr = np.asarray(arr, dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape} (nx, ny); got {arr.shape}")
            setattr(self, name, arr)
        if self.bounded is None:
            self.bounded = np.zeros(shape, dtype=bool)
        self.bounded = np.asarray(self.bounded, dtype=bool)
        if self.bounded.shape != shape:
            raise ValueError(f"bounded must have shape {shape}; got {self.bounded.shape}")

    @property
    def valid(self) -> np.ndarray:
        """(nx, ny) uint8: 1 where the loss is finite and exact, 0 otherwise."""
        return (np.isfinite(self.loss) & ~self.bounded).astype(np.uint8)

    @property
    def xs(self) -> np.ndarray:
        return self.grid.xs

    @property
    def ys(self) -> np.ndarray:
        return self.grid.ys

    def centre_index(self) -> tuple[int, int] | None:
        """``(i, j)`` of the grid point (0, 0), or None when the grid does not contain it."""
        i = np.flatnonzero(np.isclose(self.grid.xs, 0.0, atol=1e-12))
        j = np.flatnonzero(np.isclose(self.grid.ys, 0.0, atol=1e-12))
        return (int(i[0]), int(j[0])) if len(i) and len(j) else None


@dataclass
class Trajectory:
    """The descent path projected onto a plane: one point per checkpoint, in epoch order.

    Attributes
    ----------
    coords : (E, 2) float64
        ``(alpha, beta)`` of each checkpoint's least-squares projection onto the plane,
        relative to the centre (final) weights.
    epoch : (E,) int64
    loss : (E,) float64
        Each checkpoint's own loss (NaN when unknown).
    surface_loss : (E,) float64
        Loss on the plane at the projected point (so a warped path lies on the warped
        surface); NaN when it was not evaluated.
    residual : (E,) float64
        ``|theta_e - theta_c - (a x + b y)| / |theta_e - theta_c|`` (0 for the centre).
    meta : dict
    """

    coords: np.ndarray
    epoch: np.ndarray
    loss: np.ndarray
    surface_loss: np.ndarray
    residual: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coords = np.asarray(self.coords, dtype=np.float64).reshape(-1, 2)
        n = len(self.coords)
        self.epoch = np.asarray(self.epoch, dtype=np.int64)
        for name in ("loss", "surface_loss", "residual"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        for name in ("epoch", "loss", "surface_loss", "residual"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},); got {getattr(self, name).shape}")
