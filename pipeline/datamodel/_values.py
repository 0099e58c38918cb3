"""What was found there: :class:`Surface` (values on a :class:`~._grids.Grid`), :class:`Volume`
(values on a :class:`~._grids.Lattice`), :class:`Trajectory` (the descent path), and the
validity rule (:func:`usable_mask`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._grids import Grid, Lattice

FORMAT_VERSION = 1
STANDARD_ARRAYS = ("loss", "accuracy", "test_loss", "test_accuracy")
BOUNDED_ARRAYS = ("loss", "accuracy")  # arrays that an early exit above a cap leaves inexact


def usable_mask(name: str, values: np.ndarray, bounded: np.ndarray | None = None) -> np.ndarray:
    """The validity rule on raw arrays (module docstring): finite, and for ``loss`` and
    ``accuracy`` not ``bounded``. Any shape; ``bounded`` (bool) has the shape of ``values``."""
    ok = np.isfinite(np.asarray(values, dtype=np.float64))
    if name in BOUNDED_ARRAYS and bounded is not None:
        ok &= ~np.asarray(bounded, dtype=bool)
    return ok


@dataclass
class Surface:
    """Values of a model on a grid of the plane ``theta + a*x + b*y``.

    Attributes
    ----------
    grid : Grid
    loss : (nx, ny) float64
        Mean loss over the evaluated split. Non-finite where the loss was NaN/inf; where
        ``bounded`` is set it is a lower bound (the evaluation stopped above a cap).
    accuracy : (nx, ny) float64 in [0, 1], or None
        For class outputs (:mod:`pipeline.objective`); None for a regression's loss.
    test_loss, test_accuracy : (nx, ny) float64 or None
        Present when both splits were evaluated.
    bounded : (nx, ny) bool
        True where the loss is only known to be ``>= cap`` (early exit).
    meta : dict
        JSON-serialisable metadata written to the file's ``losscape_meta`` field data; the
        loss's name is ``meta["loss_name"]`` (``loss_label`` gives it, "loss" when unknown).
    extra : dict of name -> (nx, ny) arrays
        Further point arrays (the user's metrics, ``basin`` after analysis).
    """

    grid: Grid
    loss: np.ndarray
    accuracy: np.ndarray | None = None
    test_loss: np.ndarray | None = None
    test_accuracy: np.ndarray | None = None
    bounded: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_grid()
        shape = self.grid.shape
        for name in STANDARD_ARRAYS:
            arr = getattr(self, name)
            if arr is None:
                continue
            arr = np.asarray(arr, dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape} {self._layout}; got {arr.shape}")
            setattr(self, name, arr)
        if self.bounded is None:
            self.bounded = np.zeros(shape, dtype=bool)
        self.bounded = np.asarray(self.bounded, dtype=bool)
        if self.bounded.shape != shape:
            raise ValueError(f"bounded must have shape {shape}; got {self.bounded.shape}")

    def _check_grid(self) -> None:
        if not isinstance(self.grid, Grid):
            raise ValueError(f"grid must be a pipeline.datamodel.Grid (a Lattice makes a Volume); "
                             f"got {type(self.grid).__name__}")

    # -- the rules every consumer uses ----------------------------------------------------
    def names(self) -> list[str]:
        """Names of the numeric ``(nx, ny)`` arrays: the standard ones present, then ``extra``."""
        names = [n for n in STANDARD_ARRAYS if getattr(self, n) is not None]
        return names + [n for n, v in self.extra.items()
                        if np.shape(v) == self.grid.shape and np.asarray(v).dtype.kind in "iufb"]

    def values(self, name: str = "loss", *, masked: bool = False) -> np.ndarray:
        """(nx, ny) float64 values of the array ``name``; with ``masked``, NaN where not :meth:`usable`.

        Raises ``ValueError`` naming the arrays the surface has.
        """
        if name not in self.names():
            raise ValueError(f"array must be one of {', '.join(map(repr, self.names()))}; got {name!r}")
        raw = getattr(self, name) if name in STANDARD_ARRAYS else self.extra[name]
        values = np.asarray(raw, dtype=np.float64)
        return np.where(self.usable(name), values, np.nan) if masked else values

    def usable(self, name: str = "loss") -> np.ndarray:
        """(nx, ny) bool: where the value of ``name`` is finite and exact (module docstring)."""
        if name not in self.names():
            raise ValueError(f"array must be one of {', '.join(map(repr, self.names()))}; got {name!r}")
        raw = getattr(self, name) if name in STANDARD_ARRAYS else self.extra[name]
        return usable_mask(name, raw, self.bounded)

    @property
    def loss_label(self) -> str:
        """The loss's real name for labels (``cross_entropy``, ``mse``, ``mymod:loss``); "loss" when unknown."""
        name = self.meta.get("loss_name")
        return str(name) if name else "loss"

    @property
    def valid(self) -> np.ndarray:
        """(nx, ny) uint8: ``usable("loss")``, the file's ``valid`` array."""
        return self.usable("loss").astype(np.uint8)

    def centre_index(self) -> tuple[int, int] | None:
        """``(i, j)`` of the grid point (0, 0), or None when the grid does not contain it."""
        return self.grid.centre_index()

    def centre_value(self, name: str = "loss") -> float | None:
        """The usable value of ``name`` at (0, 0), or None (no such grid point, or not usable there)."""
        idx = self.centre_index()
        if idx is None or not self.usable(name)[idx]:
            return None
        return float(self.values(name)[idx])

    @property
    def xs(self) -> np.ndarray:
        return self.grid.xs

    @property
    def ys(self) -> np.ndarray:
        return self.grid.ys

    _layout = "(nx, ny)"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        """Jupyter: the surface's interactive page inline, a PNG where no JavaScript runs
        (:func:`pipeline.render.page.notebook_bundle`)."""
        from ..render.page import PlaneData, notebook_bundle

        kind = self.meta.get("direction_kind") or "surface"
        return notebook_bundle([PlaneData(str(kind), self)])


@dataclass
class Volume(Surface):
    """Values of a model on a :class:`~._grids.Lattice` of the volume ``theta + a*x + b*y + c*z``.

    The attributes and rules of :class:`Surface`, with arrays of shape ``(nx, ny, nz)``:
    ``loss[i, j, l]`` is at ``(xs[i], ys[j], zs[l])``. ``slice(l)`` is the surface of constant
    gamma ``zs[l]``; at the gamma of 0 it is the plane of the first two directions.
    """

    grid: Lattice
    _layout = "(nx, ny, nz)"

    def _check_grid(self) -> None:
        if not isinstance(self.grid, Lattice):
            raise ValueError(f"grid must be a pipeline.datamodel.Lattice; got {type(self.grid).__name__}")

    @property
    def zs(self) -> np.ndarray:
        return self.grid.zs

    def slice(self, l: int) -> Surface:
        """The :class:`Surface` of constant gamma ``zs[l]`` (arrays copied; metadata shared)."""
        if not -self.grid.nz <= l < self.grid.nz:
            raise IndexError(f"slice must be in 0..{self.grid.nz - 1}; got {l}")
        pick = lambda a: None if a is None else np.array(a[:, :, l])  # noqa: E731
        return Surface(self.grid.plane(), pick(self.loss), pick(self.accuracy), pick(self.test_loss),
                       pick(self.test_accuracy), pick(self.bounded), dict(self.meta),
                       {k: np.array(v[:, :, l]) for k, v in self.extra.items() if np.shape(v)[:3] == self.grid.shape})

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        g = self.grid
        return {"text/plain": f"Volume {g.nx}x{g.ny}x{g.nz} of {self.loss_label} "
                              f"({self.meta.get('direction_kind') or 'volume'}), arrays {', '.join(self.names())}"}


@dataclass
class Trajectory:
    """The descent path projected onto a plane: one point per checkpoint, in epoch order.

    Attributes
    ----------
    coords : (E, 2) or (E, 3) float64
        ``(alpha, beta)`` of each checkpoint's least-squares projection onto the plane
        (``(alpha, beta, gamma)`` onto the volume of three directions), relative to the
        centre (final) weights.
    epoch : (E,) int64
        The checkpoints' numbers: epochs, or steps where ``meta["unit"]`` says so (:attr:`unit`).
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
        c = np.asarray(self.coords, dtype=np.float64)
        self.coords = c if c.ndim == 2 and c.shape[1] == 3 else c.reshape(-1, 2)
        n = len(self.coords)
        self.epoch = np.asarray(self.epoch, dtype=np.int64)
        for name in ("loss", "surface_loss", "residual"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        for name in ("epoch", "loss", "surface_loss", "residual"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},); got {getattr(self, name).shape}")

    @property
    def unit(self) -> str:
        """What the checkpoints' numbers count, for labels: ``epoch`` (default) or ``step``."""
        return str(self.meta.get("unit") or "epoch")
