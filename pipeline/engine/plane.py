"""The plane ``theta + a*x + b*y`` (or the volume ``... + c*z``) on a device: validated tensors
and the weights of a group of points.

``Plane.build(coef)`` returns, for ``g`` points (``coef``: (g, ndim) coefficients), the stacked
tensors ``(g, *shape)`` of every state entry that moves, computed from the stored centre each
time (never by repeated in-place additions) with the same elementwise IEEE operations for every
point: ``w = ((a*x + theta) + b*y) + c*z`` in the centre's dtype, the terms of the directions
present in that order. Elementwise operations are exactly rounded, so a point's weights are
bitwise the same whatever other points share the group, ``(0, 0)`` gives exactly ``theta``, and
a point ``(a, b, 0)`` of a volume gets the weights of the point ``(a, b)`` of the plane of its
first two directions (adding ``0 * z`` changes no finite value). Entries whose directions are
zero are not stacked: the centre tensor is passed as is (identical values, no copies).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError

__all__ = ["Plane"]


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


class Plane:
    """Centre weights and one, two or three directions of ``model``, checked and moved to ``device``.

    Parameters
    ----------
    model : nn.Module
        Its current parameters and buffers are the centre ``theta``.
    directions : Directions (``.x``, ``.y``, ``.z`` dicts keyed like ``model.state_dict()``; ``.y``
        None in 1D, ``.z`` None (or absent) unless the directions span a volume)
        Every parameter needs an entry of the same shape in each direction; floating buffers
        (BatchNorm running statistics) may be absent (then they do not move); integer buffers
        (``num_batches_tracked``) never move, and their entries must be zero; keys the model
        does not have are refused.
    device : torch.device

    Raises
    ------
    CheckpointError
        One line naming the first tensor that is missing, unexpected or of another shape.
    ValueError
        A direction tensor holds NaN/inf, or a non-zero entry for an integer buffer.
    """

    def __init__(self, model: nn.Module, directions: Any, device: torch.device):
        x = getattr(directions, "x", None)
        y = getattr(directions, "y", None)
        z = getattr(directions, "z", None)
        if not isinstance(x, Mapping) or any(d is not None and not isinstance(d, Mapping) for d in (y, z)) \
                or (z is not None and y is None):
            raise ValueError(f"directions must have .x (and .y, .z or None) dicts of tensors keyed like "
                             f"model.state_dict(); got {type(directions).__name__}")
        self.ndim = 1 if y is None else (2 if z is None else 3)
        # functional_call takes de-duplicated names: tied parameters appear once
        params = dict(model.named_parameters())
        buffers = dict(model.named_buffers())
        state_keys = set(model.state_dict().keys())
        model_name = type(model).__name__
        for which, d in (("x", x), ("y", y), ("z", z)):
            if d is None:
                continue
            for k in d:
                if k not in state_keys:
                    raise CheckpointError(f"directions.{which} has a tensor {k!r} that the model {model_name} does not "
                                          f"have; the directions were made for another model")
            for k, p in params.items():
                if k not in d:
                    raise CheckpointError(f"directions.{which} lacks the parameter {k!r} (shape {_shape(p)}) of the "
                                          f"model {model_name}; the directions were made for another model")
            for k, t in d.items():
                ref = params.get(k, buffers.get(k))
                if ref is None:  # a non-persistent or tied alias: not passed to the model
                    continue
                if not isinstance(t, torch.Tensor):
                    raise CheckpointError(f"directions.{which}[{k!r}] is a {type(t).__name__}, not a tensor")
                if _shape(t) != _shape(ref):
                    raise CheckpointError(f"directions.{which}[{k!r}] has shape {_shape(t)} but the model {model_name} "
                                          f"has {_shape(ref)}; the directions were made for another model")
                if not ref.is_floating_point():
                    if t.count_nonzero().item():
                        raise ValueError(f"directions.{which}[{k!r}] moves the integer buffer {k!r}; it must be zero")
                    continue
                if not torch.isfinite(t).all().item():
                    raise ValueError(f"directions.{which}[{k!r}] holds NaN or inf values")

        self.device = device
        self.centre: dict[str, torch.Tensor] = {}  # every tensor passed to the model, on device
        self.x: dict[str, torch.Tensor] = {}  # moving entries only, centre's dtype, on device
        self.y: dict[str, torch.Tensor] = {}
        self.z: dict[str, torch.Tensor] = {}
        self.param_keys = list(params)
        given = (x, y, z)[:self.ndim]
        for k, ref in {**params, **buffers}.items():
            theta = ref.detach().to(device)
            self.centre[k] = theta
            if not theta.is_floating_point():
                continue
            ds = [d.get(k) for d in given]
            if any(d is not None and bool(d.count_nonzero().item()) for d in ds):
                for axis, d in zip(self.axes, ds):
                    axis[k] = (d if d is not None else torch.zeros_like(ref)).detach().to(device, theta.dtype)
        self.moving = list(self.x)  # keys of the entries stacked per point
        self.fixed = {k: v for k, v in self.centre.items() if k not in self.x}
        self.numel_moving = sum(v.numel() for v in self.x.values())
        self.bytes_moving = sum(v.numel() * v.element_size() for v in self.x.values())

    def to_channels_last(self) -> None:
        """Store 4-D tensors (convolution weights) in channels_last, so built weights are too.

        oneDNN and cuDNN then run the convolutions in NHWC (with a 1-channel input, whose two
        layouts coincide, the weights alone decide). Values are unchanged.
        """
        def cl(t: torch.Tensor) -> torch.Tensor:
            return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t

        for d in (self.centre, *self.axes):
            for k in d:
                d[k] = cl(d[k])
        self.fixed = {k: v for k, v in self.centre.items() if k not in self.x}

    @property
    def axes(self) -> tuple[dict[str, torch.Tensor], ...]:
        """The moving entries of the ``ndim`` directions: ``(x,)``, ``(x, y)`` or ``(x, y, z)``."""
        return (self.x, self.y, self.z)[:self.ndim]

    def build(self, coef: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weights of ``g`` points: ``{key: (g, *shape)}`` for every moving entry.

        ``coef``: (g, ndim) coefficients (alpha[, beta[, gamma]]), cast to each tensor's dtype
        on the device.
        """
        out = {}
        for k in self.moving:
            x = self.x[k]
            view = (-1,) + (1,) * x.dim()
            c = coef.to(x.dtype)
            w = x.unsqueeze(0) * c[:, 0].view(view)  # (g, *shape)
            w.add_(self.centre[k])
            for m in range(1, self.ndim):
                w.add_(self.axes[m][k].unsqueeze(0) * c[:, m].view(view))
            out[k] = w
        return out
