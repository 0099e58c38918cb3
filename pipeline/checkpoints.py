"""Checkpoints: atomic saving, safe loading, and fitting a state_dict to a model.

Every checkpoint is read with ``torch.load(..., weights_only=True)``: a file that would run
code on load is refused, never executed. Every file is written to a temporary name in the
same directory and renamed into place, so a crash never leaves a half-written file.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .atomic import atomic_path
from .errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "load_state_into", "mismatch", "tensor_digest", "state_digest",
           "read_state", "state_in", "STATE_KEYS"]


def tensor_digest(*tensors: Any) -> str:
    """BLAKE2b of tensors' dtypes, shapes and bytes (CPU copies), as hex; ``None`` entries allowed.

    What a tensor is, not how it was stored: the same values give the same digest whatever file
    they came from.
    """
    h = hashlib.blake2b(digest_size=20)
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        t = torch.as_tensor(t).detach().to("cpu").contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())  # the bytes, without a copy
    return h.hexdigest()


def state_digest(state: Mapping[str, torch.Tensor] | None) -> str:
    """:func:`tensor_digest` of a state_dict (or a direction): its keys in order, then its tensors."""
    if state is None:
        return tensor_digest(None)
    h = hashlib.blake2b(digest_size=20)
    h.update("\n".join(state).encode())
    h.update(tensor_digest(*state.values()).encode())
    return h.hexdigest()


def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file, then rename (atomic)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
                    what: str = "checkpoint") -> Any:
    """Load a checkpoint with ``weights_only=True``.

    Raises ``CheckpointError`` (one line, naming the file as ``what``: ``"directions file"``...)
    for a missing, truncated or corrupted file, or a pickle that would run code on load.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "global" in text.lower():  # the safe unpickler met a class or function it would have to call
            raise CheckpointError(f"{what} {path} holds objects other than tensors and would run code on "
                                  f"load; refused (only weights_only checkpoints are loaded)") from None
        raise CheckpointError(f"{what} {path} is {_what_it_is(path)}") from None
    except (KeyError, IndexError, TypeError, AttributeError):  # the unpickler reading a text file, or garbage
        raise CheckpointError(f"{what} {path} is {_what_it_is(path)}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{what} {path} is truncated or corrupted ({first})") from None


def _what_it_is(path: Path) -> str:
    """Why a file that failed to load is not a checkpoint, from its first bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        return "a damaged PyTorch checkpoint (a zip archive that does not load)"
    if head[:1] == b"\x80":
        return "a damaged or foreign pickle, not a PyTorch checkpoint"
    return "not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)"


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


# the user's checkpoint files ---------------------------------------------------------------------

STATE_KEYS = ("state_dict", "model_state_dict", "model", "net")  # where training loops keep the weights


def _is_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_state(path: str | os.PathLike, *, key: str | None = None, strip_prefix: str | None = None
               ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights in a checkpoint as a training loop saved it, and what it says of itself.

    Parameters
    ----------
    path : a ``.pt``/``.pth``/``.ckpt``/``.bin`` file (read with ``weights_only=True``) or a
        ``.safetensors`` file.
    key : str, optional
        The entry holding the state_dict; default: the file itself when it is one, else the first
        of ``state_dict``, ``model_state_dict``, ``model``, ``net`` that holds one.
    strip_prefix : str, optional
        Keep the tensors whose names start with it, without it (Lightning's ``model.``). The
        ``module.`` prefix that DataParallel and DistributedDataParallel add to every name is
        always removed.

    Returns
    -------
    ``(state, info)``: tensors on the CPU, and ``info`` with the file's ``epoch`` and ``step``
    entries when it has them (integers).
    """
    path = Path(path)
    obj = _read_safetensors(path) if path.suffix == ".safetensors" else load_checkpoint(path)
    return state_in(obj, f"checkpoint {path}", key=key, strip_prefix=strip_prefix)


def state_in(obj: Any, label: str, *, key: str | None = None, strip_prefix: str | None = None
             ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights in a loaded checkpoint ``obj`` and its ``epoch``/``step`` entries
    (:func:`read_state`'s rules); ``label`` names it in errors (``"checkpoint ckpt/e3.pt"``)."""
    info = {k: int(obj[k]) for k in ("epoch", "step", "global_step")
            if isinstance(obj, Mapping) and isinstance(obj.get(k), int) and not isinstance(obj.get(k), bool)}
    if "global_step" in info:
        info.setdefault("step", info.pop("global_step"))
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            keys = sorted(map(str, obj)) if isinstance(obj, Mapping) else []
            raise CheckpointError(f"{label} has no entry {key!r}; its entries: {', '.join(keys) or 'none'}")
        state = obj[key]
        if not _is_state(state):
            raise CheckpointError(f"{label}: the entry {key!r} is not a state_dict of tensors")
    elif _is_state(obj):
        state = obj
    else:
        found = [k for k in STATE_KEYS if isinstance(obj, Mapping) and _is_state(obj.get(k))]
        if not found:
            keys = sorted(map(str, obj)) if isinstance(obj, Mapping) else [type(obj).__name__]
            raise CheckpointError(f"{label} holds no state_dict under {', '.join(map(repr, STATE_KEYS))}; "
                                  f"its entries: {', '.join(keys[:12])}{', ...' if len(keys) > 12 else ''} (name "
                                  f"the one with the weights with key)")
        state = obj[found[0]]
    state = dict(state)
    if strip_prefix:
        kept = {k[len(strip_prefix):]: v for k, v in state.items() if k.startswith(strip_prefix)}
        if not kept:
            raise CheckpointError(f"{label}: no tensor name starts with {strip_prefix!r} (e.g. "
                                  f"{next(iter(state))!r})")
        state = kept
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return {k: (v.detach() if v.device.type == "cpu" else v.detach().cpu()) for k, v in state.items()}, info


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is not a readable .safetensors file ({first})") from None
