"""A run directory from the user's own training: checkpoints as they were saved, the user's model,
data and loss (``lossvista import``, :func:`import_run`).

The checkpoints are read as the training loop wrote them (:func:`pipeline.checkpoints.read_state`:
a bare state_dict or one inside a dict, DataParallel's ``module.`` prefix, ``.safetensors``),
ordered and labelled by their ``epoch``/``step`` entry or the number in their file name, checked
against the model, and written into ``RUN/checkpoints/epoch_NNN.pt`` as bare state_dicts (``NNN``
the epoch or step), so that every stage reads them as it reads a run it trained. ``run.json``
records the model, data and loss as ``module:function`` specs and the folder they are imported
from (:class:`pipeline.run.Run`). Everything is checked before anything is written, and the run
directory appears whole or not at all.
"""
from __future__ import annotations

import glob as _glob
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LossvistaError, ParameterError, param

__all__ = ["ImportConfig", "import_config_from_dict", "import_run", "import_changed", "checkpoint_files", "run_info",
           "file_digest"]


@dataclass(frozen=True)
class ImportConfig:
    """What ``lossvista import`` records (a preset's ``[import]`` table says the same)."""

    checkpoints: tuple[str, ...]  # glob patterns or files, in any order
    model: str  # "module:factory" (a class or a function returning the model; called without arguments)
    data: str  # "module:function" returning (train, test), {"train": ..., "test": ...} or the train split
    loss: Any = None  # LossSpec; None: cross-entropy
    forward: str | None = None  # "module:function(model, batch) -> (outputs, targets)"
    key: str | None = None  # the checkpoint entry holding the state_dict
    strip_prefix: str | None = None  # e.g. "model." for Lightning
    search: tuple[str, ...] = field(default_factory=tuple)  # folders of the user's modules; default: cwd


IMPORT_KEYS = ("checkpoints", "model", "data", "loss", "metrics", "forward", "key", "strip_prefix")


def import_config_from_dict(table: dict[str, Any], base: str | os.PathLike | None = None) -> ImportConfig:
    """A preset's ``[import]`` table as an :class:`ImportConfig`::

        [import]
        checkpoints = "ckpt/epoch*.pt"          # or a list of globs and files
        model = "mymodels:MLP"
        data = "mydata:splits"
        loss = "mse"                            # or { name = "cross_entropy", options = { label_smoothing = 0.1 } }
        metrics = ["mymetrics:mae"]             # optional; also forward, key, strip_prefix

    Relative checkpoint paths and the user's modules are found in ``base`` (the preset's folder).
    """
    from .objective import LossSpec

    if not isinstance(table, dict):
        raise ParameterError(f"[import] must be a table; got {table!r}")
    unknown = sorted(set(table) - set(IMPORT_KEYS))
    if unknown:
        raise ParameterError(f"unknown [import] keys {unknown}; allowed: {list(IMPORT_KEYS)}")
    missing = [k for k in ("checkpoints", "model", "data") if k not in table]
    if missing:
        raise ParameterError(f"[import] needs {', '.join(missing)}")
    patterns = table["checkpoints"]
    patterns = [patterns] if isinstance(patterns, str) else patterns
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
        raise ParameterError(f"[import] checkpoints must be a glob or a list of globs; got {table['checkpoints']!r}")
    for name in ("model", "data", "forward", "key", "strip_prefix"):
        if name in table and not isinstance(table[name], str):
            raise ParameterError(f"[import] {name} must be a string; got {table[name]!r}")
    loss = table.get("loss", "cross_entropy")
    metrics = table.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ParameterError(f"[import] metrics must be a list of 'module:function'; got {metrics!r}")
    if isinstance(loss, str):
        spec = LossSpec(loss, metrics=tuple(metrics))
    elif isinstance(loss, dict):
        spec = LossSpec.from_dict({"metrics": metrics, **loss})
    else:
        raise ParameterError(f"[import] loss must be a name, 'module:function' or a table; got {loss!r}")
    folder = Path(base) if base is not None else None
    if folder is not None:
        patterns = [p if Path(p).is_absolute() else str(folder / p) for p in patterns]
    return ImportConfig(checkpoints=tuple(patterns), model=table["model"], data=table["data"], loss=spec,
                        forward=table.get("forward"), key=table.get("key"), strip_prefix=table.get("strip_prefix"),
                        search=(str(folder),) if folder is not None else ())


def checkpoint_files(patterns: Sequence[str | os.PathLike]) -> list[Path]:
    """The files ``patterns`` name (globs expanded), each once; a pattern that matches nothing is an error."""
    files: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        matched = sorted(_glob.glob(text)) if _glob.has_magic(text) else ([text] if Path(text).exists() else [])
        if not matched:
            raise ParameterError(f"{param('checkpoints')} {text!r} matches no file")
        files += [Path(m) for m in matched if Path(m) not in files]
    dirs = [f for f in files if f.is_dir()]
    if dirs:
        raise ParameterError(f"{param('checkpoints')} must name files; {dirs[0]} is a folder (use a glob like "
                             f"'{dirs[0]}/*.pt')")
    return files


def _number(path: Path, info: dict[str, int]) -> tuple[int, str]:
    """``(number, unit)`` of a checkpoint: its ``epoch`` or ``step`` entry, else the last number in its name."""
    for unit in ("epoch", "step"):
        if unit in info:
            if info[unit] < 0:
                raise ParameterError(f"checkpoint {path} says it is {unit} {info[unit]}; {unit}s must be 0 or more")
            return info[unit], unit
    numbers = re.findall(r"\d+", path.stem)
    if not numbers:
        raise ParameterError(f"cannot tell where {path} belongs in the training: it has no 'epoch' or 'step' entry "
                             f"and no number in its name")
    unit = "step" if re.search(r"step|iter|batch", path.stem, re.IGNORECASE) else "epoch"
    return int(numbers[-1]), unit


def import_run(out: str | os.PathLike, config: ImportConfig, *, name: str | None = None,
               restart: bool = False) -> dict[str, Any]:
    """Record the user's training in the run directory ``out``; returns its run.json content.

    Raises a one-line error, and writes nothing, for: a glob that matches nothing, a checkpoint
    without the weights (listing its entries), checkpoints that do not fit the model (naming the
    tensor), two checkpoints of one epoch, a model, data or loss function that does not import
    or misbehaves, a loss of the wrong shape or not finite at the final weights.
    """
    from .atomic import write_json
    from .checkpoints import load_checkpoint, load_state_into, read_state, save_checkpoint
    from .models import build_model, count_parameters
    from .objective import LossSpec
    from .rundir import RunDir

    run = RunDir(out)
    if run.run_json.exists() and not restart:
        raise LossvistaError(f"{run.root} already holds a run; choose another {param('out')} or pass "
                             f"{param('restart')} to replace it")
    if run.root.exists() and any(run.root.iterdir()) and not run.run_json.exists():
        raise LossvistaError(f"{run.root} exists and is not a lossvista run directory; choose another {param('out')}")
    if run.root.parent.is_dir():  # the staging folders of imports killed outright (SIGKILL) go
        prefix = f".{run.root.name}.import-"
        for leftover in [p for p in run.root.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]:
            shutil.rmtree(leftover, ignore_errors=True)
    search = tuple(str(Path(s).resolve()) for s in (config.search or (os.getcwd(),)))
    loss = config.loss if isinstance(config.loss, LossSpec) else LossSpec.from_dict(config.loss)
    loss = LossSpec(loss.name, loss.options, loss.metrics, loss.search or search)
    files = checkpoint_files(config.checkpoints)
    model = build_model(config.model, num_classes=None, search=search)

    entries: dict[int, dict[str, Any]] = {}
    units = set()
    # each file is read once, checked and stored in a staging folder that becomes the run only
    # when every file and the loss have passed (any error removes it: nothing is written)
    staging = run.root.with_name(f".{run.root.name}.import-{uuid.uuid4().hex[:8]}")
    staged = RunDir(staging)
    try:
        for path in files:
            state, info = read_state(path, key=config.key, strip_prefix=config.strip_prefix)
            number, unit = _number(path, info)
            units.add(unit)
            if number in entries:
                raise ParameterError(f"{path} and {entries[number]['source']} are both {unit} {number}")
            # stored as the model holds it: its key order and dtypes (a .safetensors file's keys come
            # sorted, a half-precision file's tensors as float16), what every later stage compares with
            load_state_into(model, state, source=str(path))
            save_checkpoint(dict(model.state_dict()), _mkdirs(staged.checkpoint(number)))
            entries[number] = {"epoch": number, "source": str(path.resolve()), "digest": file_digest(path)}
        unit = "step" if units == {"step"} else "epoch"
        last = max(entries)
        model.load_state_dict(load_checkpoint(staged.checkpoint(last)))
        classes = _check_loss_at(model, config, loss, search)

        info = run_info(kind="imported", name=name or run.root.name, model=config.model, dataset=config.data,
                        search=search, loss=loss, forward=config.forward, unit=unit,
                        parameters=count_parameters(model),
                        extra={"checkpoints": [entries[n] for n in sorted(entries)],
                               "import": {"key": config.key, "strip_prefix": config.strip_prefix}})
        info["num_classes"] = classes
        write_json(staged.run_json, info)
        if run.root.exists():
            shutil.rmtree(run.root)
        run.root.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, run.root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b of a file's bytes, as hex: whether a checkpoint is still the one imported."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=20)).hexdigest()


def import_changed(info: dict[str, Any], config: ImportConfig) -> str | None:
    """Why the run recorded by ``info`` (its run.json) is not the import ``config`` would make now,
    or None: new checkpoint files, a checkpoint whose content changed (trained again), another
    model, data, loss or forward hook.

    Checkpoint files that are gone are no reason (the run keeps its own copies; the originals may
    have been cleaned up), nor is a file of a run imported before the digests were recorded.
    """
    from .objective import LossSpec

    recorded = info.get("checkpoints") or []
    sources = {str(e.get("source")) for e in recorded}
    try:
        files = checkpoint_files(config.checkpoints)
    except ParameterError:  # the originals are gone: the run's copies stand
        files = []
    new = [f for f in files if str(f.resolve()) not in sources]
    if new:
        return f"new checkpoint files, e.g. {new[0]}"
    for entry in recorded:
        source = Path(str(entry.get("source")))
        if entry.get("digest") is not None and source.is_file() and entry["digest"] != file_digest(source):
            return f"{source} has changed"
    loss = config.loss if isinstance(config.loss, LossSpec) else LossSpec.from_dict(config.loss)
    then = LossSpec.from_dict(info.get("loss"))
    now = {"model": config.model, "data": config.data, "forward": config.forward,
           "loss": (loss.name, dict(loss.options), tuple(loss.metrics))}
    was = {"model": info.get("config", {}).get("model"), "data": info.get("config", {}).get("dataset"),
           "forward": info.get("forward"), "loss": (then.name, dict(then.options), tuple(then.metrics))}
    changed = [k for k in now if now[k] != was[k]]
    return f"the {' and '.join(changed)} changed" if changed else None


def _mkdirs(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _check_loss_at(model: Any, config: ImportConfig, loss: Any, search: tuple[str, ...]) -> int | None:
    """The loss on one batch of the train split at the final weights must have the right shape and
    be finite; returns the number of classes the outputs have (class losses), else None."""
    import math

    from .engine.batches import as_eval_data
    from .engine.checks import check_finite_data
    from .engine.points import probe
    from .run import splits_of
    from .usercode import load_callable

    forward = load_callable(config.forward, search=search, name="forward") if config.forward else None
    data = as_eval_data(splits_of(config.data, search)["train"], "train", forward=forward)
    value, objective = probe(model, data, loss)
    if not math.isfinite(value):
        raise ParameterError(f"{param('loss')} {loss.label!r} is {value} on the first batch at the final weights; "
                             f"it must be finite there")
    check_finite_data(model, data, objective, "the train split")
    return objective.classes


def run_info(*, kind: str, name: str, model: str, dataset: str, search: Sequence[str], loss: Any,
             forward: str | None, unit: str, parameters: int | None = None,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run.json content of a run recorded from the user's training (:mod:`pipeline.run`)."""
    from . import software_versions

    return {"format": 1, "kind": kind, "name": name, "complete": True,
            "config": {"model": model, "dataset": dataset, "seed": 0},
            "search": list(search), "loss": loss.to_dict(), "forward": forward, "unit": unit,
            "num_classes": None, "input_shape": None, "num_parameters": parameters,
            "versions": software_versions(), **(extra or {})}
