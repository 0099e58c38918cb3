"""Training with a checkpoint per epoch (epoch 0 = the initial weights), resumable.

``train(config, out)`` writes ``out/checkpoints/epoch_000.pt ... epoch_N.pt`` (model
state_dicts), ``out/checkpoints/resume.pt`` (optimizer state of the newest epoch) and
``out/run.json`` (resolved config, per-epoch train/test loss and accuracy).

Determinism: the model is initialised from ``seed``; epoch ``e`` shuffles with a generator
seeded from ``(seed, e)`` and runs under a forked global RNG seeded the same way. So an
interrupted training that is rerun resumes from the last complete checkpoint and ends with
the same weights as an uninterrupted one (same device and threads).
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import software_versions
from .atomic import write_json
from .checkpoints import load_checkpoint, load_state_into, save_checkpoint
from .config import TrainConfig
from .data import Dataset, Split, load_dataset
from .engine.device import resolve_device
from .errors import LossvistaError, param
from .models import build_model, count_parameters
from .progress import progress_bar
from .rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["train", "eval_loss_accuracy", "make_model"]

EpochCallback = Callable[[int, dict[str, float]], None]


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63 - 1)


@torch.no_grad()
def eval_loss_accuracy(model: nn.Module, split: Split, batch_size: int = 512) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (eval mode) over ``split``, in batches."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct = 0.0, 0
    for start in range(0, len(split), batch_size):
        x = split.inputs[start:start + batch_size].to(device)
        y = split.targets[start:start + batch_size].to(device)
        logits = model(x)
        total_loss += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    model.train(was_training)
    return total_loss / len(split), correct / len(split)


def make_model(config: TrainConfig, data: Dataset) -> nn.Module:
    """The model of ``config`` with its seeded initial weights (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config.model, num_classes=data.num_classes, in_channels=data.input_shape[0])
    with torch.no_grad():  # fail early, with a clear message, when model and data do not fit
        try:
            model.eval()(data.train.inputs[:2])
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise LossvistaError(f"model {config.model!r} does not accept {config.dataset!r} inputs of shape "
                                 f"{data.input_shape} ({first})") from None
    return model.train()


def _identity(config: TrainConfig) -> dict[str, Any]:
    """The config fields that must match to resume (everything but the number of epochs and device)."""
    d = dataclasses.asdict(config)
    for key in ("epochs", "device", "download"):
        d.pop(key)
    return d


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _train_epoch(model: nn.Module, opt: torch.optim.Optimizer, split: Split, config: TrainConfig,
                 epoch: int) -> tuple[float, float]:
    model.train()
    seed = _epoch_seed(config.seed, epoch)
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    total, correct = 0.0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout and friends
        for start in range(0, len(split), config.batch_size):
            idx = order[start:start + config.batch_size]
            x, y = split.inputs[idx], split.targets[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise LossvistaError(f"training diverged at epoch {epoch} (loss {loss.item()}); lower {param('lr')}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
    return total / len(split), correct / len(split)


def _resume_point(run: RunDir, info: dict[str, Any] | None) -> int | None:
    """The newest epoch from which training can continue exactly, or None to start afresh."""
    epochs = run.epochs()
    if info is None or 0 not in epochs:
        return None
    if not run.resume_state.is_file():
        return 0
    state = load_checkpoint(run.resume_state)
    epoch = int(state.get("epoch", -1)) if isinstance(state, dict) else -1
    return epoch if epoch in epochs else 0


def _started_here(run: RunDir) -> bool:
    """Whether a folder without run.json is empty or holds only what a training stopped before its
    first run.json leaves (``checkpoints/epoch_000.pt``, hidden temporary files): never a folder
    of the user's own files, a ``checkpoints/`` folder of their training among them."""
    def visible(folder: Path) -> set[str]:
        return {p.name for p in folder.iterdir() if not p.name.startswith(".")}

    names = visible(run.root)
    if not names:
        return True
    ckpt = run.checkpoints_dir
    return names == {ckpt.name} and ckpt.is_dir() and not ckpt.is_symlink() and visible(ckpt) <= {"epoch_000.pt"}


def _remove_checkpoints(run: RunDir) -> None:
    """Remove an earlier training's checkpoints (those in the folder a symlinked ``checkpoints/``
    points to, too); a one-line error when they cannot all be removed."""
    ckpt = run.checkpoints_dir
    try:
        if ckpt.is_symlink():
            for path in [*ckpt.glob("epoch_*.pt"), run.resume_state]:
                path.unlink(missing_ok=True)
        elif ckpt.exists():
            shutil.rmtree(ckpt)
    except OSError as exc:
        raise LossvistaError(f"cannot remove the earlier training's checkpoints in {ckpt} "
                             f"({exc.strerror or exc}); nothing was trained") from None


def train(config: TrainConfig, out: str | Path, *, restart: bool = False, name: str | None = None,
          on_epoch_end: EpochCallback | None = None, data: Dataset | None = None) -> dict[str, Any]:
    """Train ``config.model`` on ``config.dataset`` and write the run directory ``out``.

    Resumes when ``out`` holds an earlier, interrupted (or shorter) training of the same
    configuration; refuses a different configuration unless ``restart``. Returns the
    content of run.json. ``on_epoch_end(epoch, metrics)`` is called after each epoch's
    files are written.
    """
    run = RunDir(out)
    info: dict[str, Any] | None = None
    if run.run_json.exists():
        info = run.read_run()
        if restart:
            _remove_checkpoints(run)
            run.run_json.unlink()
            info = None
        elif info.get("identity") != _identity(config):
            old, new = info.get("identity") or {}, _identity(config)
            diff = [k for k in new if old.get(k) != new[k]]
            raise LossvistaError(f"{run.root} holds a training with another configuration "
                                 f"({', '.join(f'{k}: {old.get(k)!r} vs {new[k]!r}' for k in diff[:3])}); "
                                 f"pass {param('restart')} to start over or choose another {param('out')}")
    elif run.root.exists() and not _started_here(run):
        raise LossvistaError(f"{run.root} exists and is not a lossvista run directory; choose another {param('out')}")
    device = resolve_device(config.device)
    # Everything that can fail on bad input happens before the first file is written.
    data = data or load_dataset(config.dataset, root=config.data_root, download=config.download, seed=config.seed)
    train_split = data.train.subset(config.max_train_samples, seed=config.seed).to(device)
    test_split = data.test.to(device)
    model = make_model(config, data).to(device)
    opt = _make_optimizer(config, model)
    run.checkpoints_dir.mkdir(parents=True, exist_ok=True)

    start = _resume_point(run, info)
    if start is not None and start > config.epochs:
        raise LossvistaError(f"{run.root} already holds {start} trained epochs; ask for {param('epochs')} {start} or "
                             f"more, or pass {param('restart')}")
    history: list[dict[str, Any]] = []
    if start is not None:
        load_state_into(model, load_checkpoint(run.checkpoint(start), map_location=device),
                        source=str(run.checkpoint(start)))
        if start > 0:
            opt.load_state_dict(load_checkpoint(run.resume_state, map_location=device)["optimizer"])
        history = [h for h in (info or {}).get("history", []) if h["epoch"] <= start]
        if start:
            log.info("resuming %s from epoch %d", run.root, start)
    info = {
        "format": 1,
        "name": name or run.root.name,
        "config": dataclasses.asdict(config),
        "identity": _identity(config),
        "dataset": {"name": data.name, "train_samples": len(train_split), "test_samples": len(test_split),
                    **data.meta},
        "num_classes": data.num_classes,
        "input_shape": list(data.input_shape),
        "num_parameters": count_parameters(model),
        "versions": software_versions(),
        "history": history,
        "complete": False,
    }

    def record(epoch: int, train_loss: float, train_acc: float, seconds: float) -> dict[str, Any]:
        test_loss, test_acc = eval_loss_accuracy(model, test_split)
        row = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
               "test_loss": test_loss, "test_accuracy": test_acc, "seconds": round(seconds, 3)}
        info["history"] = [h for h in info["history"] if h["epoch"] < epoch] + [row]
        return row

    if start is None:  # epoch 0: the initial weights
        loss0, acc0 = eval_loss_accuracy(model, train_split)
        record(0, loss0, acc0, 0.0)
        save_checkpoint(_cpu_state(model), run.checkpoint(0))
        run.resume_state.unlink(missing_ok=True)
        write_json(run.run_json, info)
        start = 0

    first = start + 1
    with progress_bar(total=config.epochs, initial=min(start, config.epochs), desc="train", unit="epoch") as bar:
        for epoch in range(first, config.epochs + 1):
            t0 = time.perf_counter()
            tl, ta = _train_epoch(model, opt, train_split, config, epoch)
            row = record(epoch, tl, ta, time.perf_counter() - t0)
            # Order matters for resuming: weights first, then the optimizer state that refers to them.
            save_checkpoint(_cpu_state(model), run.checkpoint(epoch))
            save_checkpoint({"epoch": epoch, "optimizer": opt.state_dict()}, run.resume_state)
            write_json(run.run_json, info)
            bar.set_postfix(loss=f"{tl:.3f}", test_acc=f"{row['test_accuracy']:.3f}")
            bar.update(1)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    info["complete"] = True
    write_json(run.run_json, info)
    return info


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
