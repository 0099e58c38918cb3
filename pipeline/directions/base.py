"""The ``Directions`` container, the option names, and what each state_dict tensor is.

Shared by the builders (:mod:`.gaussian`, :mod:`.pca`, :mod:`.interp`) and by
:mod:`pipeline.trajectory`.

Roles of state_dict entries
---------------------------
Every entry of a ``state_dict`` gets one role (:func:`tensor_roles`):

``param``         a learnable parameter (``model.parameters()``);
``running_mean``  a BatchNorm running mean (key ends in ``running_mean``);
``running_var``   a BatchNorm running variance (key ends in ``running_var``);
``buffer``        any other floating-point buffer (never moved by a direction);
``int``           a non-floating tensor, e.g. ``num_batches_tracked`` (never moved).

With a model, parameters are told from buffers exactly. With a bare state_dict only the
key suffixes are known, so every floating entry that is not a BatchNorm running statistic
counts as a parameter; pass the model when it has other buffers.
"""
from __future__ import annotations

import logging
import math
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from ..checkpoints import load_checkpoint, mismatch, read_state, save_checkpoint, state_digest, state_in
from ..errors import CheckpointError
from ..rundir import epoch_of

log = logging.getLogger(__name__)

__all__ = ["Directions", "NORMS", "IGNORES", "DIR_TYPES", "tensor_roles", "StateSource", "check_choice",
           "epoch_of", "StateLike"]

DIRECTIONS_FORMAT = 1
NORMS = ("filter", "layer", "weight", "none")
IGNORES = ("biasbn", "none")
DIR_TYPES = ("weights", "states")

StateLike = Union[str, os.PathLike, Mapping[str, torch.Tensor]]


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` when it is one of ``allowed``, else raise a ``ValueError`` naming all three."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# roles


def _suffix_role(key: str, t: torch.Tensor) -> str:
    if not (t.is_floating_point() or t.is_complex()):
        return "int"
    last = key.rsplit(".", 1)[-1]
    if last == "running_mean":
        return "running_mean"
    if last == "running_var":
        return "running_var"
    return "param"


def tensor_roles(state: Mapping[str, torch.Tensor], model: nn.Module | None = None) -> dict[str, str]:
    """Role of every entry of ``state`` (see the module docstring): key -> role."""
    roles = {k: _suffix_role(k, t) for k, t in state.items()}
    if model is not None:
        live = model.state_dict(keep_vars=True)
        for k, role in roles.items():
            if role == "param" and k in live and not isinstance(live[k], nn.Parameter):
                roles[k] = "buffer"
    return roles


def in_space(role: str, dir_type: str) -> bool:
    """Whether a tensor of ``role`` belongs to the weight space of ``dir_type``.

    ``weights``: parameters only. ``states``: parameters and BatchNorm running statistics.
    """
    return role == "param" or (dir_type == "states" and role in ("running_mean", "running_var"))


# --------------------------------------------------------------------------------------------
# loading states (memory-mapped where possible)


def _load_mmap(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(path, mmap=True, weights_only=True)``; tensors stay on disk until touched.

    A file that cannot be memory-mapped (old format, saved on a GPU) is loaded normally
    through :func:`pipeline.checkpoints.load_checkpoint`, which also turns a missing,
    truncated or unsafe file into a one-line ``CheckpointError``.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return read_state(path)[0]
    try:
        # No map_location: it costs a copy-free but slow per-tensor hook; CPU files need none.
        obj = torch.load(path, mmap=True, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        log.debug("cannot memory-map %s (%s); loading it whole", path, exc)
        obj = load_checkpoint(path)
    return state_in(obj, f"checkpoint {path}")[0]  # a bare state_dict, or one inside the dict a loop saved


class StateSource:
    """A state_dict given as a checkpoint path (opened memory-mapped on demand) or in memory.

    ``open()`` returns the dict of tensors. For a path every call maps the file afresh, so
    pages touched in one chunk of a streamed computation are released when that chunk's
    dict is dropped: resident memory stays bounded by the chunk, not the file.
    """

    def __init__(self, obj: StateLike | nn.Module, label: str | None = None):
        self.path: Path | None = None
        self._state: dict[str, torch.Tensor] | None = None
        if isinstance(obj, nn.Module):
            self._state = {k: v.detach().cpu() for k, v in obj.state_dict().items()}
            self.label = label or f"model {type(obj).__name__}"
        elif isinstance(obj, (str, os.PathLike)):
            self.path = Path(obj)
            self.label = label or str(self.path)
        elif isinstance(obj, Mapping):
            self.label = label or "state_dict"
            self._state = state_in(obj, self.label)[0]
        else:
            raise ValueError(f"a checkpoint must be a path, a state_dict or an nn.Module; got {type(obj).__name__}")
        self._checked_against: int | None = None

    @property
    def epoch(self) -> int | None:
        return epoch_of(self.path) if self.path is not None else None

    def open(self, reference: Mapping[str, torch.Size] | None = None) -> dict[str, torch.Tensor]:
        """The state_dict; checked once against ``reference`` (key -> shape) when given."""
        state = self._state if self._state is not None else _load_mmap(self.path)
        if reference is not None and self._checked_against != id(reference):
            problem = mismatch(reference, state)
            if problem:
                raise CheckpointError(f"{self.label} does not fit the centre weights: {problem}")
            self._checked_against = id(reference)
        return state


# --------------------------------------------------------------------------------------------
# the container


@dataclass
class Directions:
    """One, two or three directions, each a dict of tensors keyed like ``model.state_dict()``.

    Every key of the state_dict is present; tensors a direction does not move (ignored
    biases, buffers, integer counters) are zeros of the state's dtype. Tensors live on the CPU.

    Attributes
    ----------
    x : dict[str, Tensor]
        First direction (the surface's first axis, alpha).
    y : dict[str, Tensor] or None
        Second direction (beta); None for a 1D direction.
    meta : dict
        JSON-serialisable: kind ('random' | 'pca' | 'interp' | 'stacked'), norm, ignore,
        dir_type, seed, explained_variance (PCA), cosine between x and y, centre checkpoint, ...
    z : dict[str, Tensor] or None
        Third direction (gamma) of a volume; None for a plane or a line. Files written before
        volumes existed have none.
    """

    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    z: dict[str, torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.z is not None and self.y is None:
            raise ValueError("directions with a third direction z need a second one y")

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind", "random"))

    @property
    def ndim(self) -> int:
        return 1 if self.y is None else (2 if self.z is None else 3)

    @property
    def axes(self) -> tuple[dict[str, torch.Tensor], ...]:
        """``(x,)``, ``(x, y)`` or ``(x, y, z)``."""
        return tuple(d for d in (self.x, self.y, self.z) if d is not None)

    def named_axes(self) -> list[tuple[str, dict[str, torch.Tensor]]]:
        """``[("x", x), ("y", y), ...]`` of the directions present."""
        return [(n, d) for n, d in (("x", self.x), ("y", self.y), ("z", self.z)) if d is not None]

    def plane(self) -> "Directions":
        """The first two directions alone (the same tensors): the plane through a volume's centre."""
        return Directions(self.x, self.y, dict(self.meta, ndim=min(self.ndim, 2)))

    def to(self, device: Any) -> "Directions":
        """The same directions with every tensor on ``device``."""
        move = lambda d: None if d is None else {k: v.to(device) for k, v in d.items()}  # noqa: E731
        return Directions(move(self.x), move(self.y), self.meta, move(self.z))

    def alpha_range(self) -> tuple[float, float]:
        """The range of the first coefficient in which every BatchNorm running variance these
        directions move stays non-negative (``meta['variance_valid_range']``; unbounded ends
        are infinite, and directions that move no variance are unbounded)."""
        lo, hi = self.meta.get("variance_valid_range") or [None, None]
        return (-math.inf if lo is None else float(lo)), (math.inf if hi is None else float(hi))

    @property
    def centre_epoch(self) -> int | None:
        """Epoch of the checkpoint at (0, 0), when the directions were made from a run."""
        e = self.meta.get("centre_epoch")
        return int(e) if e is not None else None

    def save(self, path: str | os.PathLike) -> Path:
        """Save atomically as a ``.pt`` file loadable with ``weights_only=True``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        obj = {"format": DIRECTIONS_FORMAT, "x": self.x, "y": self.y, "meta": self.meta}
        if self.z is not None:  # a plane's file stays as it always was
            obj["z"] = self.z
        return save_checkpoint(obj, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Directions":
        """Load a file written by :meth:`save` (``weights_only=True``); one-line errors otherwise."""
        if not Path(path).is_file():
            raise CheckpointError(f"directions file {path} does not exist (make one with 'lossvista directions')")
        obj = load_checkpoint(path, what="directions file")
        if not (isinstance(obj, dict) and isinstance(obj.get("x"), dict) and "meta" in obj):
            raise CheckpointError(f"{path} is not a lossvista directions file (make one with 'lossvista directions')")
        x, y, z = obj["x"], obj.get("y"), obj.get("z")
        for name, d in (("x", x), ("y", y), ("z", z)):
            if d is not None and not (isinstance(d, dict) and all(isinstance(v, torch.Tensor) for v in d.values())):
                raise CheckpointError(f"{path}: direction {name} is not a dict of tensors")
        if z is not None and y is None:
            raise CheckpointError(f"{path}: direction z is given without a direction y")
        for name, d in (("y", y), ("z", z)):
            problem = mismatch(x, d, name) if d is not None else None
            if problem:
                raise CheckpointError(f"{path}: directions x and {name} do not match: {problem}")
        if not isinstance(obj["meta"], dict):
            raise CheckpointError(f"{path}: the directions' metadata is not a dict")
        return cls(x, y, dict(obj["meta"]), z)

    def digest(self) -> str:
        """What the directions are: a digest of ``x`` and ``y`` (keys, dtypes, shapes, values).

        The same tensors saved twice give the same digest, unlike the bytes of their files.
        """
        return state_digest({f"{name}.{k}": v for name, d in self.named_axes() for k, v in d.items()})

    def check_centre(self, state: Mapping[str, torch.Tensor], source: str) -> None:
        """Refuse to use these directions around ``state`` when they were made around other weights
        of the same epoch (``meta['centre_digest']``): directions of another run of the same model.

        ``state`` is the checkpoint of ``meta['centre_epoch']`` in the run the directions are used on.
        """
        made = self.meta.get("centre_digest")
        if made is not None and made != state_digest(state):
            raise CheckpointError(f"the directions were made around other weights than {source} (epoch "
                                  f"{self.centre_epoch} of another run?); make directions for this run with "
                                  f"'lossvista directions'")

    def check_usable(self) -> None:
        """Refuse directions that span no plane: NaN or inf values, or a direction zero everywhere."""
        for which, d in self.named_axes():
            moves = False
            for k, t in d.items():
                if not t.is_floating_point():
                    continue
                if not bool(torch.isfinite(t).all()):
                    raise CheckpointError(f"direction {which} holds NaN or inf values in {k!r}; make the "
                                          f"directions again from finite weights")
                moves = moves or bool(t.count_nonzero())
            if not moves:
                raise CheckpointError(f"direction {which} is zero on every tensor: it spans no axis; make the "
                                      f"directions again (lossvista directions)")

    def check_fits(self, state: Mapping[str, Any], source: str = "the model") -> None:
        """Raise ``CheckpointError`` (one line) unless x (and y, z) have ``state``'s keys and shapes."""
        problem = mismatch(state, self.x, "direction")
        if problem:
            raise CheckpointError(f"directions ({self.kind}) do not fit {source}: {problem}; "
                                  f"make directions for this model with 'lossvista directions'")

    def point(self, centre: Mapping[str, torch.Tensor], a: float, b: float = 0.0, c: float = 0.0
              ) -> dict[str, torch.Tensor]:
        """The state ``centre + a * x + b * y + c * z`` (floating tensors; others are the centre's).

        Computed in the centre's dtype, from the stored centre each time (never by repeated
        additions), so ``point(centre, 0, 0)`` is exactly ``centre``.
        """
        if b != 0.0 and self.y is None:
            raise ValueError(f"b must be 0 for a 1D direction; got {b!r}")
        if c != 0.0 and self.z is None:
            raise ValueError(f"c must be 0 without a third direction; got {c!r}")
        out = {}
        for k, t in centre.items():
            if not t.is_floating_point():
                out[k] = t
                continue
            v = t + a * self.x[k].to(t.device, t.dtype) if a != 0.0 else t.clone()
            if b != 0.0:
                v = v + b * self.y[k].to(t.device, t.dtype)
            if c != 0.0:
                v = v + c * self.z[k].to(t.device, t.dtype)
            out[k] = v
        return out
