"""Typed configuration: the settings of a training and of a whole run, and the presets.

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

from .datamodel import Grid
from .errors import ParameterError, param

__all__ = ["TrainConfig", "RunConfig", "load_preset", "preset_names"]


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
    """A whole ``lossvista run``: training plus the surfaces to evaluate."""

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

    def with_grid_points(self, n: int) -> "RunConfig":
        """This config with ``n`` points per axis on the random plane (odd, so 0 is a grid point)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 3 or n % 2 == 0:
            raise ParameterError(f"{param('grid')} must be an odd integer >= 3 (so 0 is a grid point); got {n!r}")
        g = self.random_grid
        return dataclasses.replace(self, random_grid=Grid(g.xmin, g.xmax, n, g.ymin, g.ymax, n))


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
