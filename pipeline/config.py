"""Typed configuration: the grid of a surface and the settings of a run.

Everything here is a frozen dataclass with commented defaults. ``cli.py`` turns
command-line arguments into these objects; library functions take them as plain
arguments and never see ``argparse`` namespaces.

Presets are TOML files in ``pipeline/presets/`` (``digits`` is the default).
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["Grid", "TrainConfig", "RunConfig", "load_preset", "preset_names", "parse_axis"]


def parse_axis(spec: str, name: str = "axis") -> tuple[float, float, int]:
    """Parse ``"xmin:xmax:n"`` (e.g. ``"-1:1:51"``) into ``(xmin, xmax, n)``.

    Raises ``ValueError`` naming the parameter and what was received when the text
    does not parse, ``n < 1``, the bounds are not finite, or ``xmin > xmax``.
    """
    parts = str(spec).split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(f"{name} must look like 'min:max:n' (e.g. '-1:1:51'); got {spec!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} bounds must be finite; got {spec!r}")
    if n < 1:
        raise ValueError(f"{name} needs at least 1 point; got n={n} in {spec!r}")
    if lo > hi or (n > 1 and lo == hi):
        raise ValueError(f"{name} needs min < max; got {spec!r}")
    return lo, hi, n


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
            if int(n) != n or n < 1:
                raise ValueError(f"{name} must be a positive integer; got {n!r}")
        if self.nx > 1 and not self.xmin < self.xmax:
            raise ValueError(f"xmin must be < xmax; got {self.xmin} and {self.xmax}")
        if self.ny > 1 and not self.ymin < self.ymax:
            raise ValueError(f"ymin must be < ymax; got {self.ymin} and {self.ymax}")

    @classmethod
    def from_specs(cls, x: str = "-1:1:51", y: str | None = "-1:1:51") -> "Grid":
        """Build from ``"min:max:n"`` strings; ``y=None`` gives a 1D grid."""
        xmin, xmax, nx = parse_axis(x, "--x")
        if y is None:
            return cls(xmin, xmax, nx, 0.0, 0.0, 1)
        ymin, ymax, ny = parse_axis(y, "--y")
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Grid":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (one preset = one of these plus the grids)."""

    model: str = "digits-cnn"  # registry name or "package.module:factory"
    dataset: str = "digits"  # digits | fashion-mnist | cifar10 | synthetic
    data_root: str | None = None  # None: the dataset's default location
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.05
    momentum: float = 0.9  # SGD only
    weight_decay: float = 5e-4
    seed: int = 0
    device: str = "cpu"  # training device; "cuda" when asked
    download: bool = False  # cifar10 only: allow torchvision to download
    max_train_samples: int | None = None  # None: the whole split

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be one of 'sgd', 'adam'; got {self.optimizer!r}")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < (0 if name == "epochs" else 1):
                raise ValueError(f"{name} must be a {'non-negative' if name == 'epochs' else 'positive'} integer; got {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number; got {self.lr!r}")


@dataclass(frozen=True)
class RunConfig:
    """A whole ``losscape run``: training plus the surfaces to evaluate."""

    name: str = "digits"
    train: TrainConfig = field(default_factory=TrainConfig)
    random_grid: Grid = field(default_factory=Grid)  # random plane, in filter-normalized units
    pca_grid: Grid | None = None  # None: the trajectory's extent plus a margin
    norm: str = "filter"
    ignore: str = "biasbn"
    direction_seed: int = 0
    eval_batch_size: int | None = None  # None: chosen by the engine
    split: str = "train"  # train | test | both
    description: str = ""


def preset_names() -> list[str]:
    """Names of the bundled presets (the TOML files in ``pipeline/presets``)."""
    files = resources.files("pipeline") / "presets"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> RunConfig:
    """Load a bundled preset by name, or a TOML file by path."""
    from pathlib import Path

    path = Path(name)
    if name.endswith(".toml") and path.is_file():
        text = path.read_text()
    else:
        names = preset_names()
        if name not in names:
            raise ValueError(f"preset must be one of {', '.join(map(repr, names))} or a .toml file; got {name!r}")
        text = (resources.files("pipeline") / "presets" / f"{name}.toml").read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"preset {name!r} is not valid TOML: {exc}") from None
    return run_config_from_dict(data, default_name=path.stem)


def run_config_from_dict(data: dict[str, Any], default_name: str = "run") -> RunConfig:
    data = dict(data)
    train = data.pop("train", {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(train) - known
    if unknown:
        raise ValueError(f"unknown [train] keys {sorted(unknown)}; allowed: {sorted(known)}")
    grids = {}
    for key in ("random_grid", "pca_grid"):
        g = data.pop(key, None)
        if isinstance(g, dict):
            grids[key] = Grid.from_specs(g.get("x", "-1:1:51"), g.get("y", "-1:1:51"))
        elif g is not None:
            raise ValueError(f"{key} must be a table with x and y specs; got {g!r}")
    known_run = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = set(data) - known_run
    if unknown:
        raise ValueError(f"unknown preset keys {sorted(unknown)}; allowed: {sorted(known_run)}")
    data.setdefault("name", default_name)
    return RunConfig(train=TrainConfig(**train), **grids, **data)
