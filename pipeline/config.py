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

__all__ = ["TrainConfig", "RunConfig", "load_preset", "preset_names", "check_int", "check_float", "check_str",
           "check_bool", "OPTIMIZERS"]

OPTIMIZERS = ("sgd", "adam")


def check_int(name: str, value: Any, minimum: int | None = None, *, optional: bool = False) -> None:
    """``value`` is an int (not a bool) >= ``minimum`` (None allowed when ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        what = "an integer" if minimum is None else f"an integer >= {minimum}"
        none = optional and not isinstance(value, int)  # an int out of range: the range is what matters
        raise ParameterError(f"{param(name)} must be {what}{' or None' if none else ''}; got {value!r}")


def check_float(name: str, value: Any, low: float, high: float = math.inf, *, low_open: bool = False,
                high_open: bool = False) -> None:
    """``value`` is a finite real number in the interval from ``low`` to ``high``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        if low == 0 and math.isinf(high):
            what = "a positive number (finite)" if low_open else "a number >= 0 (finite)"
        else:
            what = f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ParameterError(f"{param(name)} must be {what}; got {value!r}")


def check_str(name: str, value: Any, choices: tuple[str, ...] | None = None, *, optional: bool = False) -> None:
    """``value`` is a non-empty string (one of ``choices`` when given; None allowed when ``optional``)."""
    if optional and value is None:
        return
    if not isinstance(value, str) or not value or (choices is not None and value not in choices):
        allowed = f"one of {', '.join(map(repr, choices))}" if choices else "a non-empty string"
        raise ParameterError(f"{param(name)} must be {allowed}; got {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ParameterError(f"{param(name)} must be true or false; got {value!r}")


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
        """Types and ranges, checked before any work (a preset's ``epochs = true`` is refused here)."""
        check_str("model", self.model)
        check_str("dataset", self.dataset)
        check_str("data_root", self.data_root, optional=True)
        check_int("epochs", self.epochs, 0)
        check_int("batch_size", self.batch_size, 1)
        check_str("optimizer", self.optimizer, OPTIMIZERS)
        check_float("lr", self.lr, 0.0, low_open=True)
        check_float("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_float("weight_decay", self.weight_decay, 0.0)
        check_int("seed", self.seed, 0)
        check_str("device", self.device)
        check_bool("download", self.download)
        check_int("max_train_samples", self.max_train_samples, 1, optional=True)


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
    source: Any = None  # an ImportConfig: the user's own training to import instead of training ([import])

    def __post_init__(self) -> None:
        from .directions.base import IGNORES, NORMS

        check_str("name", self.name)
        if not isinstance(self.train, TrainConfig):
            raise ParameterError(f"{param('train')} must be a TrainConfig; got {type(self.train).__name__}")
        for name in ("random_grid", "pca_grid"):
            g = getattr(self, name)
            if not (isinstance(g, Grid) or (g is None and name == "pca_grid")):
                raise ParameterError(f"{param(name)} must be a Grid; got {g!r}")
        check_str("norm", self.norm, NORMS)
        check_str("ignore", self.ignore, IGNORES)
        check_int("direction_seed", self.direction_seed, 0)
        check_int("eval_batch_size", self.eval_batch_size, 1, optional=True)
        check_str("split", self.split, ("train", "test", "both"))
        if not isinstance(self.description, str):
            raise ParameterError(f"{param('description')} must be a string; got {self.description!r}")
        from .importer import ImportConfig

        if self.source is not None and not isinstance(self.source, ImportConfig):
            raise ParameterError(f"{param('source')} must be an ImportConfig; got {type(self.source).__name__}")

    def with_grid_points(self, n: int) -> "RunConfig":
        """This config with ``n`` points per axis on the random plane (odd, so 0 is a grid point)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 3 or n % 2 == 0:
            raise ParameterError(f"{param('grid')} must be an odd integer >= 3 (so 0 is a grid point); got {n!r}")
        g = self.random_grid
        return dataclasses.replace(self, random_grid=Grid(g.xmin, g.xmax, n, g.ymin, g.ymax, n))


def preset_names(folder: str = "presets") -> list[str]:
    """Names of the bundled presets (the TOML files in ``pipeline/<folder>``)."""
    files = resources.files("pipeline").joinpath(*folder.split("/"))
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def read_preset(name: str, folder: str = "presets") -> dict[str, Any]:
    """The tables of a bundled preset of ``pipeline/<folder>`` by name, or of a TOML file by path."""
    from pathlib import Path

    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise ParameterError(f"{param('preset')} {name!r}: "
                                 f"{'is a folder, not a file' if path.is_dir() else 'no such file'}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ParameterError(f"{param('preset')} {name!r} is not a TOML text file (not UTF-8 text)") from None
    else:
        names = preset_names(folder)
        if name not in names:
            raise ParameterError(f"{param('preset')} must be one of {', '.join(map(repr, names))} or a .toml file; "
                                 f"got {name!r}")
        text = resources.files("pipeline").joinpath(*folder.split("/"), f"{name}.toml").read_text()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{param('preset')} {name!r} is not valid TOML: {exc}") from None


def load_preset(name: str) -> RunConfig:
    """Load a bundled preset by name, or a TOML file by path."""
    from pathlib import Path

    data = read_preset(name)
    path = Path(name)
    try:
        return run_config_from_dict(data, default_name=path.stem,
                                    base=path.resolve().parent if name.endswith(".toml") else None)
    except ValueError as exc:  # named as in the file (batch_size), not as a command-line flag
        raise ValueError(f"preset {name!r}: {exc}") from None


def run_config_from_dict(data: dict[str, Any], default_name: str = "run", base: Any = None,
                         other_keys: tuple[str, ...] = ()) -> RunConfig:
    """A preset's tables as a :class:`RunConfig`; ``base`` is the preset file's folder (where an
    ``[import]`` table's relative paths and modules are); ``other_keys`` are keys the caller has
    taken out of ``data`` already (named among the allowed ones when a key is unknown)."""
    data = dict(data)
    train = data.pop("train", {})
    if not isinstance(train, dict):
        raise ValueError(f"[train] must be a table of training options; got {train!r}")
    source = data.pop("import", None)
    if source is not None:
        from .importer import import_config_from_dict

        data["source"] = import_config_from_dict(source, base)
        if train:
            raise ValueError("a preset has [train] or [import], not both (an imported run is not trained)")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(train) - known
    if unknown:
        raise ValueError(f"unknown [train] keys {sorted(unknown)}; allowed: {sorted(known)}")
    grids = {}
    for key in ("random_grid", "pca_grid"):
        g = data.pop(key, None)
        if isinstance(g, dict):
            grids[key] = grid = Grid.from_specs(g.get("x", "-1:1:51"), g.get("y", "-1:1:51"))
            if grid.centre_index() is None:
                raise ValueError(f"[{key}] must hold the point (0, 0), the trained weights (e.g. an odd number of "
                                 f"points on a range symmetric about 0, -1:1:51); got x = {g.get('x')!r}, "
                                 f"y = {g.get('y')!r}")
        elif g is not None:
            raise ValueError(f"{key} must be a table with x and y specs; got {g!r}")
    known_run = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = set(data) - known_run
    if unknown:
        raise ValueError(f"unknown preset keys {sorted(unknown)}; allowed: "
                         f"{sorted((known_run - {'source'}) | {'import'} | set(other_keys))}")
    data.setdefault("name", default_name)
    return RunConfig(train=TrainConfig(**train), **grids, **data)
