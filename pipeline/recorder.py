"""A run directory written from the user's own training loop, a few lines long.

    from pipeline import Recorder

    rec = Recorder("runs/mine", model, data="mydata:splits", loss="mse")
    rec.save(0)                       # the initial weights
    for epoch in range(1, epochs + 1):
        ...                           # the user's training
        rec.save(epoch)

Then ``lossvista run --out runs/mine`` computes the directions, trajectories, surfaces, analysis
and pictures. The model is rebuilt later from its class (``module:Class``, called without
arguments) or from ``model_spec``; the data from the function ``data`` names; both are imported
from the folder of the model's module (and the working directory), so no ``PYTHONPATH`` is needed.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from .errors import LossvistaError, ParameterError, param

__all__ = ["Recorder", "unwrapped"]


def unwrapped(model: Any) -> Any:
    """The model inside (Distributed)DataParallel and ``torch.compile`` wrappers (the same
    parameters: the weights saved are the training's), else ``model``."""
    from torch import nn

    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


class Recorder:
    """Checkpoints and the run's description, written as training goes (see the module docstring).

    Parameters
    ----------
    out : path of the run directory (created).
    model : nn.Module
        The model being trained (inside ``DataParallel``, ``DistributedDataParallel`` or
        ``torch.compile`` too: the module they wrap is recorded).
    data : str
        ``"module:function"`` returning ``(train, test)``, ``{"train": ..., "test": ...}`` or the
        train split (tensors, a Dataset, a DataLoader, ...).
    loss : LossSpec, a loss name or ``"module:function"``, default ``"cross_entropy"``
    model_spec : str, optional
        ``"module:factory"`` that builds the model without arguments; default: the model's class.
    forward, metrics : optional
        A forward hook ``"module:function(model, batch) -> (outputs, targets)"``; metric specs.
    unit : {'epoch', 'step'}, default 'epoch'
        What the numbers given to :meth:`save` count.
    """

    def __init__(self, out: str | os.PathLike, model: Any, *, data: str, loss: Any = "cross_entropy",
                 model_spec: str | None = None, forward: str | None = None, metrics: tuple[str, ...] = (),
                 unit: str = "epoch"):
        from .checkpoints import mismatch
        from .importer import run_info
        from .models import build_model
        from .objective import LossSpec
        from .rundir import RunDir
        from .usercode import is_spec, load_callable

        if unit not in ("epoch", "step"):
            raise ParameterError(f"{param('unit')} must be one of 'epoch', 'step'; got {unit!r}")
        model = unwrapped(model)
        cls = type(model)
        if model_spec is None:
            if cls.__module__ == "__main__":
                raise ParameterError(f"the model class {cls.__name__} is defined in the script being run, so it cannot "
                                     f"be imported later; move it to a module (e.g. mymodels.py) or pass "
                                     f"{param('model_spec')}='module:factory'")
            model_spec = f"{cls.__module__}:{cls.__qualname__}"
        folders = [os.getcwd()]
        try:
            module_file = inspect.getfile(cls)
            top = cls.__module__.split(".")
            folders.insert(0, str(Path(module_file).resolve().parents[len(top) - 1]))
        except (TypeError, OSError):
            pass
        search = tuple(dict.fromkeys(folders))
        rebuilt = build_model(model_spec, num_classes=None, search=search)
        problem = mismatch(model.state_dict(), rebuilt.state_dict())
        if problem:
            raise ParameterError(f"{param('model_spec')} {model_spec!r} builds a model that does not fit the one "
                                 f"being trained: {problem}")
        if not is_spec(data):
            raise ParameterError(f"{param('data')} must be 'module:function' (a function returning the splits, "
                                 f"so that the run can read them again); got {type(data).__name__}")
        load_callable(data, search=search, name="data")
        spec = loss if isinstance(loss, LossSpec) else LossSpec(loss, metrics=tuple(metrics))
        self.model, self.run = model, RunDir(out)
        self._saved = False
        if self.run.run_json.exists() and self.run.read_run().get("config", {}).get("model") != model_spec:
            raise LossvistaError(f"{self.run.root} holds another run; choose another {param('out')}")
        self.info = run_info(kind="recorded", name=self.run.root.name, model=model_spec, dataset=data,
                             search=search, loss=LossSpec(spec.name, spec.options, spec.metrics, search),
                             forward=forward, unit=unit,
                             parameters=sum(p.numel() for p in model.parameters()))

    def save(self, number: int) -> Path:
        """Write the model's current weights as checkpoint ``number`` (an epoch or a step).

        The first save of a Recorder into a run that already holds checkpoints removes those
        numbered ``number`` or later: they belong to an earlier training (a training started
        again from 0 replaces them all; one resumed from epoch 5 keeps 0..5).
        """
        from .atomic import write_json
        from .checkpoints import save_checkpoint

        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ParameterError(f"the checkpoint's number must be an integer >= 0; got {number!r}")
        state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        if not self._saved:
            for old in self.run.epochs():
                if old >= number:
                    self.run.checkpoint(old).unlink()
            self._saved = True
        self.run.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        path = save_checkpoint(state, self.run.checkpoint(number))
        write_json(self.run.run_json, {**self.info, "checkpoints": [{"epoch": e} for e in self.run.epochs()]})
        return path
