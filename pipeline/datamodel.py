"""The data model: :class:`Grid`, :class:`Surface`, :class:`Trajectory`, and the rules every
consumer of a surface uses (which array values are usable, where the centre is).

numpy only (no torch, vtk or matplotlib), so ParaView's own Python can import it.

Layout, stated once: a surface array ``a`` has shape ``(nx, ny)`` and ``a[i, j]`` is the value
at ``(grid.xs[i], grid.ys[j])``. Conversion to VTK's x-fastest point order happens only in
:mod:`pipeline.vtkio`.

Validity, stated once (:meth:`Surface.usable`): a value is usable when it is finite and exact.
``loss`` and ``accuracy`` are inexact where ``bounded`` is set (the evaluation stopped early
above a cap, so they describe only the samples seen); the test split is always evaluated
without a cap, so ``test_loss`` and ``test_accuracy`` are exact wherever finite; any other
array is usable wherever finite. Analysis, pictures, export and the ParaView plugin all read
surfaces through this rule; the file's ``valid`` array is ``usable("loss")``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ParameterError, param

__all__ = ["Grid", "Surface", "Trajectory", "parse_axis", "centre_index", "usable_mask", "FORMAT_VERSION",
           "BOUNDED_ARRAYS"]

FORMAT_VERSION = 1
MAX_POINTS = 100_000_000  # a grid's points; beyond, its coordinates alone outgrow a workstation's memory
STANDARD_ARRAYS = ("loss", "accuracy", "test_loss", "test_accuracy")
BOUNDED_ARRAYS = ("loss", "accuracy")  # arrays that an early exit above a cap leaves inexact


def parse_axis(spec: str, name: str = "axis") -> tuple[float, float, int]:
    """Parse ``"xmin:xmax:n"`` (e.g. ``"-1:1:51"``) into ``(xmin, xmax, n)``.

    Raises :class:`~pipeline.errors.ParameterError` (a ``ValueError``) naming the parameter
    ``name`` and what was received when the text does not parse, ``n < 1``, the bounds are not
    finite, or ``xmin > xmax``.
    """
    parts = str(spec).split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ParameterError(f"{param(name)} must look like 'min:max:n' (e.g. '-1:1:51'); got {spec!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ParameterError(f"{param(name)} bounds must be finite; got {spec!r}")
    if n < 1:
        raise ParameterError(f"{param(name)} needs at least 1 point; got n={n} in {spec!r}")
    if n > MAX_POINTS:
        raise ParameterError(f"{param(name)} has too many points: at most {MAX_POINTS:,}; got n={n:,} in {spec!r}")
    if lo > hi or (n > 1 and lo == hi):
        raise ParameterError(f"{param(name)} needs min < max; got {spec!r}")
    return lo, hi, n


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


def usable_mask(name: str, values: np.ndarray, bounded: np.ndarray | None = None) -> np.ndarray:
    """The validity rule on raw arrays (module docstring): finite, and for ``loss`` and
    ``accuracy`` not ``bounded``. Any shape; ``bounded`` (bool) has the shape of ``values``."""
    ok = np.isfinite(np.asarray(values, dtype=np.float64))
    if name in BOUNDED_ARRAYS and bounded is not None:
        ok &= ~np.asarray(bounded, dtype=bool)
    return ok


@dataclass(frozen=True)
class Grid:
    """A rectangular grid of (alpha, beta) coefficients.

    ``xs[i] = linspace(xmin, xmax, nx)[i]``; the surface value ``loss[i, j]`` is at
    ``(xs[i], ys[j])``. A 1D slice has ``ny == 1`` and ``ys == [0.0]``.
    """

    xmin: float = -1.0
    xmax: float = 1.0
    nx: int = 51  # odd, so 0 is a grid point
    ymin: float = -1.0
    ymax: float = 1.0
    ny: int = 51  # 1 for a 1D slice along the first direction

    def __post_init__(self) -> None:
        for name in ("nx", "ny"):
            n = getattr(self, name)
            if isinstance(n, bool) or int(n) != n or n < 1:
                raise ValueError(f"{name} must be a positive integer; got {n!r}")
        for name in ("xmin", "xmax", "ymin", "ymax"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number; got {v!r}")
        if self.nx * self.ny > MAX_POINTS:
            raise ParameterError(f"a grid of {self.nx:,} x {self.ny:,} = {self.nx * self.ny:,} points is too large: at "
                                 f"most {MAX_POINTS:,} points")
        if self.nx > 1 and not self.xmin < self.xmax:
            raise ValueError(f"xmin must be < xmax; got {self.xmin} and {self.xmax}")
        if self.ny > 1 and not self.ymin < self.ymax:
            raise ValueError(f"ymin must be < ymax; got {self.ymin} and {self.ymax}")

    @classmethod
    def from_specs(cls, x: str = "-1:1:51", y: str | None = "-1:1:51") -> "Grid":
        """Build from ``"min:max:n"`` strings; ``y=None`` gives a 1D grid."""
        xmin, xmax, nx = parse_axis(x, "x")
        if y is None:
            return cls(xmin, xmax, nx, 0.0, 0.0, 1)
        ymin, ymax, ny = parse_axis(y, "y")
        return cls(xmin, xmax, nx, ymin, ymax, ny)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nx, self.ny)

    @property
    def size(self) -> int:
        return self.nx * self.ny

    @property
    def ndim(self) -> int:
        return 1 if self.ny == 1 else 2

    @property
    def xs(self) -> np.ndarray:
        """(nx,) float64 coefficients along the first direction."""
        return np.linspace(self.xmin, self.xmax, self.nx) if self.nx > 1 else np.array([self.xmin], float)

    @property
    def ys(self) -> np.ndarray:
        """(ny,) float64 coefficients along the second direction."""
        return np.linspace(self.ymin, self.ymax, self.ny) if self.ny > 1 else np.array([self.ymin], float)

    def coords(self) -> np.ndarray:
        """(nx * ny, 2) float64 ``(alpha, beta)`` in C order of ``(i, j)``: flat ``k = i * ny + j``."""
        a, b = np.meshgrid(self.xs, self.ys, indexing="ij")  # (nx, ny) each
        return np.stack([a.ravel(), b.ravel()], axis=1)

    def centre_index(self) -> tuple[int, int] | None:
        """``(i, j)`` of the point (0, 0), or None when the grid does not contain it."""
        return centre_index(self.xs, self.ys)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Grid":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


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
        shape = self.grid.shape
        for name in STANDARD_ARRAYS:
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

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        """Jupyter: the surface's interactive page inline, a PNG where no JavaScript runs
        (:func:`pipeline.render.page.notebook_bundle`)."""
        from .render.page import PlaneData, notebook_bundle

        kind = self.meta.get("direction_kind") or "surface"
        return notebook_bundle([PlaneData(str(kind), self)])


@dataclass
class Trajectory:
    """The descent path projected onto a plane: one point per checkpoint, in epoch order.

    Attributes
    ----------
    coords : (E, 2) float64
        ``(alpha, beta)`` of each checkpoint's least-squares projection onto the plane,
        relative to the centre (final) weights.
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
        self.coords = np.asarray(self.coords, dtype=np.float64).reshape(-1, 2)
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
