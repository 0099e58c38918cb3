"""Checkpoints: atomic saving, safe loading, and fitting a state_dict to a model.

Every checkpoint is read with ``torch.load(..., weights_only=True)``: a file that would run
code on load is refused, never executed. Every file is written to a temporary name in the
same directory and renamed into place, so a crash never leaves a half-written file.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .atomic import atomic_path
from .errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "load_state_into", "mismatch"]


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
