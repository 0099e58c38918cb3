"""Where values are: :class:`Grid` (a plane of (alpha, beta) coefficients), :class:`Lattice`
(a volume of (alpha, beta, gamma) coefficients), axis specs and the centre."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError, param

MAX_POINTS = 100_000_000  # a grid's points; beyond, its coordinates alone outgrow a workstation's memory


def parse_axis(spec: str, name: str = "axis") -> tuple[float, float, int]:
    """Parse ``"xmin:xmax:n"`` (e.g. ``"-1:1:51"``) into ``(xmin, xmax, n)``.

    Raises :class:`~pipeline.errors.ParameterError` (a ``ValueError``) naming the parameter
    ``name`` and what was received when the text does not parse, ``n < 1``, the bounds are not
    finite, ``xmin > xmax``, or one point between two different bounds (``"0:0:1"`` is one point).
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
    if n == 1 and lo != hi:  # one point cannot span the range: it would be min alone
        raise ParameterError(f"{param(name)} {spec!r} has one point, which cannot span [{lo:g}, {hi:g}]; use n >= 2, "
                             f"or '{lo:g}:{lo:g}:1' for the single value {lo:g}")
    return lo, hi, n


def centre_index(*axes: np.ndarray, atol: float = 1e-12) -> tuple[int, ...] | None:
    """``(i, j)`` (or ``(i, j, l)`` for three axes) of the grid point at the origin (the trained
    weights), or None when the grid has none.

    Parameters
    ----------
    *axes : (nx,) float, (ny,) float[, (nz,) float]
        Grid coordinates (alpha, beta[, gamma]).
    atol : float, default 1e-12
        A coordinate within ``atol`` of 0 counts as 0.
    """
    found = [np.flatnonzero(np.isclose(np.asarray(a, dtype=np.float64), 0.0, rtol=0.0, atol=atol)) for a in axes]
    return tuple(int(f[0]) for f in found) if all(len(f) for f in found) else None


def _axis(lo: float, hi: float, n: int) -> np.ndarray:
    """(n,) float64 ``linspace(lo, hi, n)``; ``[lo]`` for one point."""
    return np.linspace(lo, hi, n) if n > 1 else np.array([lo], float)


def _check_axes(obj: Any, names: str) -> None:
    """The checks of a grid's fields: positive integer sizes, finite bounds, min < max, total size."""
    size = 1
    for a in names:
        n = getattr(obj, f"n{a}")
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise ValueError(f"n{a} must be a positive integer; got {n!r}")
        size *= int(n)
    for a in names:
        for name in (f"{a}min", f"{a}max"):
            v = getattr(obj, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number; got {v!r}")
    if size > MAX_POINTS:
        dims = " x ".join(f"{getattr(obj, 'n' + a):,}" for a in names)
        raise ParameterError(f"a grid of {dims} = {size:,} points is too large: at most {MAX_POINTS:,} points")
    for a in names:
        if getattr(obj, f"n{a}") > 1 and not getattr(obj, f"{a}min") < getattr(obj, f"{a}max"):
            raise ValueError(f"{a}min must be < {a}max; got {getattr(obj, a + 'min')} and {getattr(obj, a + 'max')}")


class _PlaneAxes:
    """The coefficients along the first two directions, shared by :class:`Grid` and :class:`Lattice`."""

    xmin: float
    xmax: float
    nx: int
    ymin: float
    ymax: float
    ny: int

    @property
    def xs(self) -> np.ndarray:
        """(nx,) float64 coefficients along the first direction."""
        return _axis(self.xmin, self.xmax, self.nx)

    @property
    def ys(self) -> np.ndarray:
        """(ny,) float64 coefficients along the second direction."""
        return _axis(self.ymin, self.ymax, self.ny)


@dataclass(frozen=True)
class Grid(_PlaneAxes):
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
        _check_axes(self, "xy")

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
    def axes(self) -> tuple[np.ndarray, ...]:
        """``(xs, ys)``."""
        return self.xs, self.ys

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


@dataclass(frozen=True)
class Lattice(_PlaneAxes):
    """A box of (alpha, beta, gamma) coefficients: the grid of a volume ``theta + a x + b y + c z``.

    ``xs``, ``ys``, ``zs`` as for :class:`Grid`; a volume value ``loss[i, j, l]`` is at
    ``(xs[i], ys[j], zs[l])``, and the flat point ``k = (i * ny + j) * nz + l`` is
    ``coords()[k]`` (C order, as chunks cut it). Its slice ``l`` is the :class:`Grid`
    :meth:`plane` at ``gamma = zs[l]``.
    """

    xmin: float = -1.0
    xmax: float = 1.0
    nx: int = 21  # odd, so 0 is a grid point
    ymin: float = -1.0
    ymax: float = 1.0
    ny: int = 21
    zmin: float = -1.0
    zmax: float = 1.0
    nz: int = 21

    def __post_init__(self) -> None:
        _check_axes(self, "xyz")

    @classmethod
    def from_specs(cls, x: str = "-1:1:21", y: str = "-1:1:21", z: str = "-1:1:21") -> "Lattice":
        """Build from three ``"min:max:n"`` strings."""
        return cls(*parse_axis(x, "x"), *parse_axis(y, "y"), *parse_axis(z, "z"))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.nx, self.ny, self.nz)

    @property
    def size(self) -> int:
        return self.nx * self.ny * self.nz

    @property
    def ndim(self) -> int:
        return 3

    @property
    def zs(self) -> np.ndarray:
        """(nz,) float64 coefficients along the third direction."""
        return _axis(self.zmin, self.zmax, self.nz)

    @property
    def axes(self) -> tuple[np.ndarray, ...]:
        """``(xs, ys, zs)``."""
        return self.xs, self.ys, self.zs

    def plane(self) -> Grid:
        """The (alpha, beta) grid of every slice of constant gamma."""
        return Grid(self.xmin, self.xmax, self.nx, self.ymin, self.ymax, self.ny)

    def coords(self) -> np.ndarray:
        """(nx * ny * nz, 3) float64 ``(alpha, beta, gamma)`` in C order of ``(i, j, l)``."""
        a, b, c = np.meshgrid(self.xs, self.ys, self.zs, indexing="ij")  # (nx, ny, nz) each
        return np.stack([a.ravel(), b.ravel(), c.ravel()], axis=1)

    def centre_index(self) -> tuple[int, int, int] | None:
        """``(i, j, l)`` of the point (0, 0, 0), or None when the lattice does not contain it."""
        return centre_index(self.xs, self.ys, self.zs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Lattice":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


def grid_from_dict(d: dict[str, Any]) -> Grid | Lattice:
    """A :class:`Lattice` when ``d`` has ``nz``, else a :class:`Grid` (the ``grid`` of a file's metadata)."""
    return (Lattice if "nz" in d else Grid).from_dict(d)
