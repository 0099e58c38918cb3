"""Run-directory layout, atomic writes and safe checkpoint loading.

A run directory ``runs/NAME/`` holds::

    run.json                       resolved config, model/dataset facts, per-epoch metrics
    checkpoints/epoch_000.pt ...   model state_dicts; epoch 0 is the initial weights
    checkpoints/resume.pt          optimizer state of the newest epoch (for resuming training)
    directions/{random,pca,interp}.pt
    surface_<kind>.vts, trajectory_<kind>.vtp, critical_points_<kind>.vtp, topology_<kind>.json
    renders/*.png

Every checkpoint is read with ``torch.load(..., weights_only=True)``: a file that would run
code on load is refused, never executed. Every file is written to a temporary name in the
same directory and renamed into place, so a crash never leaves a half-written file.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .atomic import atomic_path
from .errors import CheckpointError, LosscapeError

__all__ = ["RunDir", "atomic_path", "write_json", "read_json", "save_checkpoint", "load_checkpoint",
           "load_state_into", "mismatch"]

_EPOCH_RE = re.compile(r"^epoch_(\d+)\.pt$")


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically. Non-finite floats are refused (JSON has none)."""
    text = json.dumps(data, indent=2, allow_nan=False, default=_json_default)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LosscapeError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LosscapeError(f"{path} is not valid JSON ({exc})") from None


def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file, then rename (atomic)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``.

    Raises ``CheckpointError`` (one line) for a missing, truncated or corrupted file, or a
    pickle that would run code on load.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights only" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise CheckpointError(f"checkpoint {path} holds objects other than tensors and would run code on "
                                  f"load; refused (only weights_only checkpoints are loaded)") from None
        raise CheckpointError(f"checkpoint {path} is corrupted ({first})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted ({first})") from None


def mismatch(reference: Mapping[str, Any], other: Mapping[str, Any], what: str = "file") -> str | None:
    """A one-line description of how ``other``'s keys/shapes differ from ``reference``'s, or None.

    Both map key -> tensor (or shape).
    """
    shape = lambda v: tuple(v.shape) if hasattr(v, "shape") else tuple(v)  # noqa: E731
    missing = [k for k in reference if k not in other]
    unexpected = [k for k in other if k not in reference]
    wrong = [k for k in reference if k in other and shape(reference[k]) != shape(other[k])]
    if not (missing or unexpected or wrong):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} keys missing (e.g. {missing[0]!r})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]!r})")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} tensors with other shapes (e.g. {k!r}: expected {shape(reference[k])}, "
                     f"{what} {shape(other[k])})")
    return ", ".join(parts)


def load_state_into(model: nn.Module, state: Any, source: str = "checkpoint") -> nn.Module:
    """``model.load_state_dict(state)`` with a one-line ``CheckpointError`` when it does not fit."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{source} is not a state_dict of tensors")
    problem = mismatch(model.state_dict(), state)
    if problem:
        raise CheckpointError(f"{source} does not fit the model {type(model).__name__}: {problem}")
    model.load_state_dict(state)
    return model


@dataclass(frozen=True)
class RunDir:
    """Paths inside a run directory (nothing is created until asked)."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def resume_state(self) -> Path:
        return self.checkpoints_dir / "resume.pt"

    @property
    def renders(self) -> Path:
        return self.root / "renders"

    def checkpoint(self, epoch: int) -> Path:
        return self.checkpoints_dir / f"epoch_{epoch:03d}.pt"

    def directions(self, kind: str) -> Path:
        return self.root / "directions" / f"{kind}.pt"

    def surface(self, kind: str) -> Path:
        return self.root / f"surface_{kind}.vts"

    def trajectory(self, kind: str) -> Path:
        return self.root / f"trajectory_{kind}.vtp"

    def critical_points(self, kind: str) -> Path:
        return self.root / f"critical_points_{kind}.vtp"

    def topology(self, kind: str) -> Path:
        return self.root / f"topology_{kind}.json"

    def epochs(self) -> list[int]:
        """Epoch numbers of the checkpoints present, ascending."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = (_EPOCH_RE.match(p.name) for p in self.checkpoints_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def checkpoints(self) -> list[Path]:
        return [self.checkpoint(e) for e in self.epochs()]

    def read_run(self) -> dict[str, Any]:
        """run.json, with a one-line error when RUN is not a run directory."""
        if not self.root.is_dir():
            raise LosscapeError(f"run directory {self.root} does not exist")
        if not self.run_json.is_file():
            raise LosscapeError(f"{self.root} is not a losscape run directory (no run.json); "
                                f"create one with 'losscape train --out {self.root}'")
        return read_json(self.run_json)

    def build_model(self, epoch: int | None = None, device: str | torch.device = "cpu") -> tuple[nn.Module, int]:
        """The run's model with the weights of ``epoch`` (default: the last), in eval mode."""
        from .models import build_model

        info = self.read_run()
        epochs = self.epochs()
        if not epochs:
            raise LosscapeError(f"{self.checkpoints_dir} holds no epoch_*.pt checkpoints")
        epoch = epochs[-1] if epoch is None else epoch
        if epoch not in epochs:
            raise LosscapeError(f"epoch must be one of {epochs[0]}..{epochs[-1]} present in {self.checkpoints_dir}; "
                                f"got {epoch}")
        model = build_model(info["config"]["model"], num_classes=info["num_classes"],
                            in_channels=info["input_shape"][0])
        path = self.checkpoint(epoch)
        load_state_into(model, load_checkpoint(path, map_location=device), source=str(path))
        return model.to(device).eval(), epoch
