"""The 1D direction from one checkpoint to another (linear interpolation between two solutions)."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..checkpoints import mismatch, state_digest
from .base import DIR_TYPES, Directions, StateLike, StateSource, check_choice, in_space, tensor_roles
from ..errors import CheckpointError

__all__ = ["interpolation_direction"]


def interpolation_direction(checkpoint_a: StateLike, checkpoint_b: StateLike, *, dir_type: str = "states",
                            model: nn.Module | None = None, model_name: str | None = None) -> Directions:
    """``x = b - a`` with the centre at ``a``: alpha = 0 is checkpoint a, alpha = 1 checkpoint b.

    Parameters
    ----------
    checkpoint_a, checkpoint_b : path or state_dict
        Two checkpoints of the same model (same keys and shapes).
    dir_type : {'states', 'weights'}, default 'states'
        ``states`` (default here, unlike the random and PCA directions): parameters and
        BatchNorm running statistics move, so alpha = 1 is exactly model b, statistics
        included. Running variances are then ``(1 - alpha) var_a + alpha var_b``: positive for
        alpha in [0, 1]; the widest alpha range that keeps every variance positive is stored
        in ``meta['variance_valid_range']`` (None for an unbounded end). ``weights``:
        parameters only, the statistics stay those of a. Nothing is ignored: a biasbn rule
        would keep alpha = 1 away from b. Integer buffers never move.
    model : nn.Module, optional
        Tells parameters from buffers exactly (else key names are used).

    Returns
    -------
    Directions
        1D (``y`` is None). ``meta``: kind 'interp', dir_type, norm 'none', ignore 'none',
        centre (a), centre_epoch, from_epoch, to_epoch, distance ``|b - a|``,
        variance_valid_range, model, num_parameters, num_perturbed.
    """
    check_choice("dir_type", dir_type, DIR_TYPES)
    src_a, src_b = StateSource(checkpoint_a), StateSource(checkpoint_b)
    a, b = src_a.open(), src_b.open()
    problem = mismatch(a, b)
    if problem:
        raise CheckpointError(f"{src_b.label} and {src_a.label} are not checkpoints of the same model: {problem}")
    roles = tensor_roles(a, model)
    x: dict[str, torch.Tensor] = {}
    lo, hi = -math.inf, math.inf
    num_perturbed = 0
    for k, ta in a.items():
        if not (ta.is_floating_point() and in_space(roles[k], dir_type)):
            x[k] = torch.zeros(ta.shape, dtype=ta.dtype)
            continue
        x[k] = (b[k].to(torch.float64) - ta.to(torch.float64)).to(ta.dtype)
        num_perturbed += ta.numel()
        if roles[k] == "running_var":
            va, dv = ta.to(torch.float64), x[k].to(torch.float64)
            # va + alpha * dv > 0: alpha < va / -dv where dv < 0, alpha > -va / dv where dv > 0
            if (dv < 0).any():
                hi = min(hi, float((va[dv < 0] / -dv[dv < 0]).min()))
            if (dv > 0).any():
                lo = max(lo, float((-va[dv > 0] / dv[dv > 0]).max()))
    distance = math.sqrt(sum(float(v.to(torch.float64).square().sum()) for v in x.values() if v.is_floating_point()))
    if distance == 0:
        raise ValueError(f"{src_a.label} and {src_b.label} hold the same weights; there is nothing to interpolate")
    meta = {
        "kind": "interp", "norm": "none", "ignore": "none", "dir_type": dir_type, "seed": None, "ndim": 1,
        "cosine": None,
        "centre": src_a.label if src_a.path is not None else None,
        "centre_epoch": src_a.epoch,
        "centre_digest": state_digest(a),
        "from_epoch": src_a.epoch, "to_epoch": src_b.epoch,
        "to": src_b.label if src_b.path is not None else None,
        "distance": distance,
        "variance_valid_range": [None if math.isinf(lo) else lo, None if math.isinf(hi) else hi],
        "model": model_name or (type(model).__name__ if model is not None else None),
        "num_parameters": sum(t.numel() for k, t in a.items() if roles[k] == "param"),
        "num_perturbed": num_perturbed,
    }
    return Directions(x, None, meta)
