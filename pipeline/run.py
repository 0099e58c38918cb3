"""A run directory opened: what it was trained with (its model, data and loss, as ``run.json``
records them) and what it holds (its planes, paths, critical points, topology and page).

Two kinds of runs share one layout (:class:`~pipeline.rundir.RunDir`): those ``lossvista
train`` made (a model of the zoo or ``module:factory``, a bundled dataset, cross-entropy or the
preset's loss) and those recorded from the user's own training (``lossvista import``,
:class:`~pipeline.recorder.Recorder`): the user's model factory, data function, loss, forward
hook and metrics, named ``module:function`` and imported from the folders in ``run.json``'s
``search`` (where the user's modules were), so that no ``PYTHONPATH`` is needed.

``open_run("runs/demo")`` is what a notebook shows: the run's interactive page inline
(:mod:`pipeline.render.page`), or a static picture where no JavaScript runs. Files are read
through :mod:`pipeline.vtkio` when asked for, so opening a run is cheap; a folder of surfaces
without ``run.json`` can be shown, but not evaluated again.

``run.json`` of an imported run::

    {"format": 1, "kind": "imported", "name": ...,
     "config": {"model": "mymodels:Net", "dataset": "mydata:splits", "seed": 0},
     "search": ["/home/me/project"], "loss": {"name": "mse", "options": {}, "metrics": []},
     "forward": null, "unit": "epoch" | "step", "checkpoints": [{"epoch": 3, "source": ...}, ...],
     "num_classes": null, "input_shape": null, "num_parameters": ..., "versions": ..., "complete": true}
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .display import PLANES
from .errors import LossvistaError
from .rundir import RunDir, read_json

__all__ = ["Run", "open_run", "SPLIT_NAMES", "splits_of", "user_splits"]

SPLIT_NAMES = ("train", "test")


class Run:
    """A run directory, read on demand (``run.json`` once, checked; the other files when asked for).

    Parameters
    ----------
    root : path of the run directory (``lossvista run --out``), or its :class:`RunDir`

    Raises :class:`~pipeline.errors.LossvistaError` when ``root`` is not a directory; asking
    what the run was trained with raises one when it has no (or a malformed) ``run.json``,
    asking for its planes when it holds no ``surface_<plane>.vts``.
    """

    def __init__(self, root: str | os.PathLike | RunDir):
        self.dir = root if isinstance(root, RunDir) else RunDir(root)
        self.dir.require()
        self._info: dict[str, Any] | None = None
        self._splits: dict[str, Any] | None = None

    @property
    def root(self) -> Path:
        return self.dir.root

    @property
    def info(self) -> dict[str, Any]:
        """``run.json``, checked (``{}`` when the folder holds surfaces only)."""
        if self._info is None:
            self._info = self.dir.read_run() if self.dir.run_json.is_file() else {}
        return self._info

    # -- what the run was trained with -----------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        if not self.info:
            self.dir.read_run()  # its one-line error: no run.json
        return self.info["config"]

    @property
    def model_name(self) -> str:
        return self.config["model"]

    @property
    def dataset_name(self) -> str:
        return self.config["dataset"]

    @property
    def imported(self) -> bool:
        return self.info.get("kind") in ("imported", "recorded")

    @property
    def search(self) -> tuple[str, ...]:
        """Folders the user's modules are imported from."""
        return tuple(self.info.get("search") or ())

    @property
    def unit(self) -> str:
        """What the checkpoints count: ``epoch`` or ``step``."""
        return str(self.info.get("unit") or "epoch")

    @property
    def num_classes(self) -> int | None:
        n = self.info.get("num_classes")
        return int(n) if isinstance(n, int) and not isinstance(n, bool) else None

    def loss(self) -> Any:
        """The run's :class:`~pipeline.objective.LossSpec` (cross-entropy for runs that name none)."""
        from .objective import LossSpec

        spec = LossSpec.from_dict(self.info.get("loss"))
        return LossSpec(spec.name, spec.options, spec.metrics, spec.search or self.search)

    def forward(self) -> Any:
        """The forward hook ``function(model, batch) -> (outputs, targets)``, or None."""
        from .usercode import load_callable

        spec = self.info.get("forward")
        return load_callable(spec, search=self.search, name="forward") if spec else None

    # -- the model -----------------------------------------------------------------------------
    def skeleton(self) -> Any:
        """The run's model with its initial weights (to tell parameters from buffers)."""
        from .models import build_model

        shape = self.info.get("input_shape")
        return build_model(self.model_name, num_classes=self.num_classes,
                           in_channels=shape[0] if shape else None, search=self.search)

    def build_model(self, epoch: int | None = None, device: Any = "cpu") -> tuple[Any, int]:
        """The run's model with the weights of ``epoch`` (default: the last), in eval mode."""
        from .checkpoints import load_checkpoint, load_state_into

        epochs = self.dir.epochs()
        if not epochs:
            raise LossvistaError(f"{self.dir.checkpoints_dir} holds no epoch_*.pt checkpoints")
        epoch = epochs[-1] if epoch is None else epoch
        if epoch not in epochs:
            raise LossvistaError(f"epoch must be one of the epochs {self.dir.epochs_text()} present in "
                                 f"{self.dir.checkpoints_dir}; got {epoch}")
        model = self.skeleton()
        path = self.dir.checkpoint(epoch)
        load_state_into(model, load_checkpoint(path, map_location=device), source=str(path))
        return model.to(device).eval(), epoch

    # -- the data ------------------------------------------------------------------------------
    def splits(self) -> dict[str, Any]:
        """``{"train": data[, "test": data]}`` as the run's source gives them (tensors for the
        bundled datasets; what the user's data function returns)."""
        if self._splits is None:
            cfg = self.config
            self._splits = splits_of(self.dataset_name, self.search, data_root=cfg.get("data_root"),
                                     seed=cfg.get("seed", 0))
        return self._splits

    def data(self, split: str = "train") -> Any:
        """The split to evaluate, in the engine's form (:func:`pipeline.engine.batches.as_eval_data`)."""
        from .engine.batches import as_eval_data
        from .errors import ParameterError, param

        splits = self.splits()
        if split not in splits:
            have = ", ".join(map(repr, splits))
            raise ParameterError(f"{param('split')} {split!r} is not in the data of {self.dir.root} (it has {have})")
        return as_eval_data(splits[split], split, forward=self.forward())


    # -- what the run holds --------------------------------------------------------------------
    @property
    def planes(self) -> list[str]:
        """Kinds of the surfaces present: the default planes first (random, pca), then the others."""
        kinds = self._kinds()
        if not kinds:
            raise LossvistaError(f"{str(self.root)!r} has no surface_<plane>.vts; compute one first "
                                 f"(lossvista run, or lossvista surface)")
        return kinds

    def _kinds(self) -> list[str]:
        kinds = list(self.dir.surfaces())
        return [k for k in PLANES if k in kinds] + [k for k in kinds if k not in PLANES]

    def surface(self, kind: str):
        """The :class:`~pipeline.datamodel.Surface` of the plane ``kind``."""
        from .vtkio import read_surface

        if kind not in self.planes:
            raise LossvistaError(f"plane must be one of {', '.join(map(repr, self.planes))} in "
                                 f"{str(self.root)!r}; got {kind!r}")
        return read_surface(self.dir.surface(kind))

    def trajectory(self, kind: str):
        """The descent path projected onto the plane ``kind``, or None when it has none."""
        from .vtkio import read_trajectory

        path = self.dir.trajectory(kind)
        return read_trajectory(path) if path.is_file() else None

    def critical_points(self, kind: str):
        """:func:`pipeline.vtkio.read_points` of ``critical_points_<kind>.vtp``, or None."""
        from .vtkio import read_points

        path = self.dir.critical_points(kind)
        return read_points(path) if path.is_file() else None

    def topology(self, kind: str) -> dict[str, Any] | None:
        """``topology_<kind>.json`` (critical points, counts, minima, ...), or None."""
        path = self.dir.topology(kind)
        return read_json(path) if path.is_file() else None

    def plane(self, kind: str):
        """Everything the page draws of one plane (:class:`pipeline.render.page.PlaneData`)."""
        from .render.page import PlaneData

        return PlaneData(kind, self.surface(kind), self.trajectory(kind), self.critical_points(kind),
                         self.topology(kind))

    def page_html(self, **kwargs: Any) -> str:
        """The run's self-contained page (:func:`pipeline.render.page.page_html`'s options)."""
        from .render.page import page_html

        return page_html([self.plane(k) for k in self.planes], info=self.info, **kwargs)

    def write_page(self, out: str | os.PathLike | None = None, **kwargs: Any) -> Path:
        """Write the page to ``out`` (default ``RUN/index.html``) atomically and return its path."""
        from .render.page import write_page

        return write_page([self.plane(k) for k in self.planes], out or self.dir.index_html, info=self.info,
                          **kwargs)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        """Jupyter: the page inline, and a PNG of the first plane where no JavaScript runs."""
        from .render.page import notebook_bundle

        return notebook_bundle([self.plane(k) for k in self.planes], info=self.info)

    def __repr__(self) -> str:
        return f"Run({str(self.root)!r}, planes={self._kinds()})"


def open_run(root: str | os.PathLike) -> Run:
    """The run directory ``root``, ready to show (in a notebook: its interactive page)."""
    run = Run(root)
    run.planes  # noqa: B018  (its one-line error now: a folder without surfaces)
    return run

def splits_of(dataset: str, search: tuple[str, ...] = (), *, data_root: str | None = None, seed: int = 0
              ) -> dict[str, Any]:
    """``{"train": ..., "test": ...}`` of a bundled dataset's name, or of the user's data function."""
    from .data import DATASETS, load_dataset

    if dataset.split(":", 1)[0] in DATASETS:
        bundled = load_dataset(dataset, root=data_root, seed=seed)
        return {"train": bundled.train, "test": bundled.test}
    return user_splits(dataset, search)


def user_splits(spec: str, search: tuple[str, ...] = ()) -> dict[str, Any]:
    """What the user's data function returns, as ``{"train": ..., "test": ...}`` (test optional).

    The function returns ``(train, test)``, ``{"train": ..., "test": ...}`` or the train split
    alone; each split is tensors, a Dataset, a DataLoader or a re-iterable of batches.
    """
    from .errors import ParameterError, param
    from .usercode import load_callable

    fn = load_callable(spec, search=search, name="data")
    try:
        value = fn()
    except Exception as exc:  # the user's code: its failure in one line, in its own words
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ParameterError(f"{param('data')} {spec!r} raised {type(exc).__name__}" + (f": {first}" if first else "")
                             ) from None
    _refuse_arrays(value, spec)
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(SPLIT_NAMES))
        if unknown or "train" not in value:
            raise ParameterError(f"{param('data')} {spec!r} must return {{'train': ..., 'test': ...}} (test optional); "
                                 f"got the keys {sorted(value)}")
        return {k: value[k] for k in SPLIT_NAMES if value.get(k) is not None}
    if isinstance(value, tuple) and len(value) == 2 and not _is_tensor_pair(value):
        return {"train": value[0]} if value[1] is None else {"train": value[0], "test": value[1]}
    if value is None or isinstance(value, (str, bytes, int, float)) or not (
            hasattr(value, "__iter__") or hasattr(value, "__getitem__")):
        raise ParameterError(f"{param('data')} {spec!r} returned {type(value).__name__}; it must return "
                             f"(train, test), {{'train': ..., 'test': ...}} or the train split")
    return {"train": value}


def _refuse_arrays(value: Any, spec: str) -> None:
    """NumPy arrays where tensors belong (a split, or an (inputs, targets) pair): a one-line error."""
    import numpy as np

    from .errors import ParameterError, param

    parts = list(value.values()) if isinstance(value, dict) else [value]
    parts = [q for p in parts for q in (p if isinstance(p, (tuple, list)) else [p])]
    if any(isinstance(p, np.ndarray) for p in parts):
        raise ParameterError(f"{param('data')} {spec!r} returned NumPy arrays; return tensors "
                             f"(torch.from_numpy(x), torch.from_numpy(y)) or a Dataset/DataLoader")


def _is_tensor_pair(value: tuple) -> bool:
    import torch

    return all(isinstance(v, torch.Tensor) for v in value)
