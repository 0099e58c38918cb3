"""Random Gaussian directions with filter, layer or weight normalization (Li et al. 2018)."""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping

import torch
from torch import nn

from ..checkpoints import state_digest
from .base import DIR_TYPES, IGNORES, NORMS, Directions, StateSource, check_choice, epoch_of, tensor_roles

log = logging.getLogger(__name__)

__all__ = ["random_directions", "normalize_direction", "perturbed", "cosine"]


def perturbed(role: str, t: torch.Tensor, ignore: str, dir_type: str) -> bool:
    """Whether a random or PCA direction moves a tensor of this role.

    Parameters always (except 1-D and 0-D ones under ``ignore='biasbn'``); BatchNorm running
    means only with ``dir_type='states'`` (and ``ignore='none'``, since they are 1-D);
    running variances, other buffers and integer tensors never.
    """
    if role not in ("param", "running_mean"):
        return False
    if ignore == "biasbn" and t.dim() <= 1:
        return False
    return role == "param" or dir_type == "states"


def normalize_direction(d: torch.Tensor, w: torch.Tensor, norm: str) -> torch.Tensor:
    """Scale the raw direction ``d`` to the weights ``w`` (same shape), computed in float64.

    ``filter``: every slice ``d[i]`` along dim 0 gets the norm of ``w[i]`` (``d[i] * |w[i]| / |d[i]|``);
    for a 1-D tensor that is elementwise, ``|d_i| = |w_i|``; a 0-D tensor is one slice.
    ``layer``: the whole tensor gets the norm of ``w``. ``weight``: elementwise ``d * w``, so
    ``E[d_i^2] = w_i^2`` for a standard Gaussian ``d``. ``none``: ``d`` unchanged.
    A zero slice of ``w`` (or of ``d``) gives a zero slice: never a division by zero, never NaN.
    """
    d64, w64 = d.to(torch.float64), w.detach().to("cpu", torch.float64)
    if norm == "none":
        return d64
    if norm == "weight":
        return d64 * w64
    if norm == "layer" or d64.dim() == 0:
        dn, wn = d64.norm(), w64.norm()
        return d64 * (wn / dn) if dn > 0 else torch.zeros_like(d64)
    rows = d64.reshape(d64.shape[0], -1)  # (filters, elements per filter)
    dn = rows.norm(dim=1)
    wn = w64.reshape(w64.shape[0], -1).norm(dim=1)
    scale = torch.where(dn > 0, wn / torch.where(dn > 0, dn, 1.0), 0.0)  # (filters,)
    return (rows * scale[:, None]).reshape(d64.shape)


_SLICE = 1 << 20  # elements per float64 slice: keeps temporaries at a few MB for large tensors


def _dot64(a: torch.Tensor, b: torch.Tensor) -> float:
    """``sum(a * b)`` accumulated in float64, one slice at a time (no full-size float64 copies)."""
    a, b = a.reshape(-1), b.reshape(-1)
    return sum(float(torch.dot(a[i:i + _SLICE].to(torch.float64), b[i:i + _SLICE].to(torch.float64)))
               for i in range(0, a.numel(), _SLICE))


def cosine(x: Mapping[str, torch.Tensor], y: Mapping[str, torch.Tensor]) -> float:
    """Cosine between two directions over all floating tensors (float64 accumulation); NaN if one is zero."""
    xy = xx = yy = 0.0
    for k, a in x.items():
        if not a.is_floating_point():
            continue
        xy += _dot64(a, y[k])
        xx += _dot64(a, a)
        yy += _dot64(y[k], y[k])
    if xx == 0 or yy == 0:
        return math.nan
    return xy / math.sqrt(xx * yy)


def _norm(d: Mapping[str, torch.Tensor]) -> float:
    return math.sqrt(sum(_dot64(v, v) for v in d.values() if v.is_floating_point()))


def random_directions(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor] | str | os.PathLike, *,
                      norm: str = "filter", ignore: str = "biasbn", dir_type: str = "weights", seed: int = 0,
                      ndim: int = 2, centre: str | os.PathLike | None = None, model_name: str | None = None,
                      ) -> Directions:
    """Gaussian random directions around a model's weights, normalized to the weights.

    Parameters
    ----------
    model_or_state_dict : nn.Module, state_dict, or checkpoint path
        The centre weights theta (the plane is ``theta + a x + b y``). With a module,
        parameters are told from buffers exactly; a bare state_dict relies on key names
        (see :func:`pipeline.directions.base.tensor_roles`).
    norm : {'filter', 'layer', 'weight', 'none'}, default 'filter'
        See :func:`normalize_direction`.
    ignore : {'biasbn', 'none'}, default 'biasbn'
        ``biasbn``: every tensor with dim <= 1 (biases, BatchNorm weights and statistics)
        gets a zero direction, as in Li et al.'s code. ``none``: they are perturbed too
        (filter-normalized elementwise).
    dir_type : {'weights', 'states'}, default 'weights'
        ``weights``: parameters only; buffers get a zero direction. ``states``: BatchNorm
        running means are perturbed as well. Running variances are never perturbed: an
        additive ``var + a * d`` with ``|d| = var`` (filter normalization) is zero at
        ``|a| = 1`` and negative beyond, which turns a BatchNorm layer into NaN/inf; they keep
        their stored values. Because running statistics are 1-D, ``states`` only differs from
        ``weights`` with ``ignore='none'``. Integer buffers (``num_batches_tracked``) never move.
    seed : int, default 0
        Seed of a private ``torch.Generator`` (the global RNG is untouched). The Gaussian for a
        tensor depends only on the seed and the state_dict's keys and shapes, not on ``norm``,
        ``ignore`` or ``dir_type``; x is drawn for every key first, then y, then z. So the
        first directions of ``ndim=3`` are those of ``ndim=2`` with the same seed: the volume's
        slice through the centre is that plane.
    ndim : {1, 2, 3}, default 2
        Number of directions (``y`` is None for 1; ``z``, the third, for 3).
    centre, model_name : optional
        Recorded in ``meta`` (``centre``, ``centre_epoch``, ``model``). A checkpoint path
        given as ``model_or_state_dict`` is its own centre.

    Returns
    -------
    Directions
        ``x``, ``y`` keyed like the state_dict, in the weights' dtypes, on the CPU. ``meta``:
        kind 'random', norm, ignore, dir_type, seed, ndim, ``cosine`` (between x and y; the
        directions are not orthogonalized, two independent Gaussians in P dimensions have a
        cosine of order 1/sqrt(P)), x_norm, y_norm (and z_norm, cosine_xz, cosine_yz for three
        directions), centre, centre_epoch, model,
        num_parameters, num_perturbed (elements with a non-zero direction).
    """
    check_choice("norm", norm, NORMS)
    check_choice("ignore", ignore, IGNORES)
    check_choice("dir_type", dir_type, DIR_TYPES)
    if ndim not in (1, 2, 3) or isinstance(ndim, bool):
        raise ValueError(f"ndim must be 1, 2 or 3; got {ndim!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63); got {seed!r}")
    model = model_or_state_dict if isinstance(model_or_state_dict, nn.Module) else None
    if isinstance(model_or_state_dict, (str, os.PathLike)) and centre is None:
        centre = model_or_state_dict
    state = StateSource(model_or_state_dict).open()
    roles = tensor_roles(state, model)

    gen = torch.Generator().manual_seed(seed)
    dirs = []
    for _ in range(ndim):
        d: dict[str, torch.Tensor] = {}
        for k, w in state.items():
            if not w.is_floating_point():
                d[k] = torch.zeros(w.shape, dtype=w.dtype)
                continue
            raw = torch.randn(w.shape, generator=gen, dtype=torch.float32)  # drawn for every key: see `seed`
            if perturbed(roles[k], w, ignore, dir_type):
                d[k] = normalize_direction(raw, w, norm).to(w.dtype)
            else:
                d[k] = torch.zeros(w.shape, dtype=w.dtype)
        dirs.append(d)
    x, y, z = (dirs + [None, None])[:3]

    num_perturbed = sum(w.numel() for k, w in state.items()
                        if w.is_floating_point() and perturbed(roles[k], w, ignore, dir_type))
    x_norm = _norm(x)
    if x_norm == 0:
        raise ValueError(f"the random direction is zero everywhere: no tensor of the model is perturbed with "
                         f"ignore={ignore!r}, dir_type={dir_type!r}, norm={norm!r} (all perturbed weights zero, "
                         f"or only 1-D tensors with ignore='biasbn')")
    if ignore == "biasbn" and dir_type == "states":
        log.info("dir_type='states' with ignore='biasbn' leaves the (1-D) running statistics unperturbed")
    meta = {
        "kind": "random", "norm": norm, "ignore": ignore, "dir_type": dir_type, "seed": seed, "ndim": ndim,
        "cosine": cosine(x, y) if y is not None else None,
        "x_norm": x_norm, "y_norm": _norm(y) if y is not None else None,
        **({"z_norm": _norm(z), "cosine_xz": cosine(x, z), "cosine_yz": cosine(y, z)} if z is not None else {}),
        "running_var": "fixed (zero direction)",
        "centre": str(centre) if centre is not None else None,
        "centre_epoch": epoch_of(centre) if centre is not None else None,
        "centre_digest": state_digest(state),
        "model": model_name or (type(model).__name__ if model is not None else None),
        "num_parameters": sum(w.numel() for k, w in state.items() if roles[k] == "param"),
        "num_perturbed": num_perturbed,
    }
    return Directions(x, y, meta, z)
