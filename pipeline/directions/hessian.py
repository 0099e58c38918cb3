"""Hessian directions: the plane of the two top eigenvectors of the loss's Hessian at the centre.

Random planes rarely show the directions in which the loss curves most (Boettcher & Wheeler
2022); the plane of the Hessian's top two eigenvectors shows the sharpest valley at the
centre. The eigenvectors come from :class:`pipeline.curvature.Hessian` (Lanczos, same loss and
data as the surface, parameters chosen by ``ignore``).

``norm='none'`` (default): the unit eigenvectors themselves (orthonormal over the chosen
parameters). Their default grid (``meta['grid_extent']``, :func:`pipeline.surface.request.default_grid`)
reaches, along each eigenvector, where the loss has risen by ``rise`` above the centre (the
loss of a guess that knows nothing: ``ln(num_classes)`` for classes, the best constant's loss
otherwise) on one side or the other: measured on a ladder of distances (steps of sqrt 2 from
1/64 to 4 times ``sqrt(2 rise / lambda_i)``, where the quadratic model ``L0 + lambda_i t^2 / 2``
would reach it; the loss of a network rises faster than its curvature at the centre says). An
eigenvalue that is not positive starts the ladder at the norm of the chosen weights.
``norm='filter'``: each filter of the eigenvectors scaled to the weights' filter norm, as
random directions are (then they are neither unit nor exactly eigenvectors; the grid is -1..1
like a random plane's).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from torch import nn

from ..checkpoints import state_digest
from ..config import check_float, check_int
from .base import Directions, check_choice, epoch_of, tensor_roles
from .gaussian import _norm, cosine, normalize_direction

__all__ = ["hessian_directions", "HessianOptions", "HESSIAN_NORMS"]

HESSIAN_NORMS = ("none", "filter")


@dataclass(frozen=True)
class HessianOptions:
    """How a run's Hessian directions are found (``pipeline.workflow.make_directions``): the
    eigenvectors' accuracy and cost."""

    tol: float = 1e-3  # Lanczos: the eigenvectors' residual relative to the spectral radius
    max_iter: int = 200  # Lanczos steps at most
    max_samples: int | None = None  # a seeded subset of the train split; None: all of it
    sample_seed: int = 0
    device: str | None = None  # None: cuda when available

    def __post_init__(self) -> None:
        check_float("tol", self.tol, 0.0, low_open=True)
        check_int("max_iter", self.max_iter, 2)
        check_int("max_samples", self.max_samples, 1, optional=True)
        check_int("sample_seed", self.sample_seed)


def hessian_directions(model: nn.Module, data: Any, *, loss: Any = None, ignore: str = "biasbn", norm: str = "none",
                       seed: int = 0, tol: float = 1e-3, max_iter: int = 200, forward: Any = None,
                       max_samples: int | None = None, sample_seed: int = 0, device: Any = None,
                       rise: float | None = None, centre: str | os.PathLike | None = None,
                       model_name: str | None = None) -> Directions:
    """The top two Hessian eigenvectors of ``model``'s loss on ``data`` as a plane (module docstring).

    Parameters
    ----------
    model : nn.Module at the centre weights; data, loss, forward, max_samples, sample_seed,
        device: as :class:`pipeline.curvature.Hessian`
    ignore : {'biasbn', 'none'}
        The parameters the eigenvectors live on (zeros elsewhere).
    norm : {'none', 'filter'}
    seed, tol, max_iter : the Lanczos start vector, tolerance (relative to the spectral radius)
        and iteration cap.
    rise : float, optional
        The loss rise that sets the default grid of ``norm='none'`` (default 1.0).
    centre, model_name : recorded in ``meta``.

    Returns
    -------
    Directions with ``meta``: kind 'hessian', eigenvalues, residuals (relative), converged,
    lanczos_steps, hvps, samples, loss_name, norm, ignore, seed, cosine, x_norm, y_norm,
    grid_extent (``[t_x, t_y]``), centre, centre_epoch, centre_digest, model, num_parameters,
    num_perturbed.
    """
    from ..curvature import Hessian

    check_choice("norm", norm, HESSIAN_NORMS)
    hess = Hessian(model, data, loss=loss, ignore=ignore, forward=forward, max_samples=max_samples,
                   sample_seed=sample_seed, device=device, seed=seed)
    if hess.n < 2:
        raise ValueError(f"a Hessian plane needs at least two parameters; the chosen ones have {hess.n}")
    r = hess.lanczos(2, "largest", tol=tol, max_iter=max_iter, vectors=True)
    values = [float(v) for v in r.values]
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    dirs = []
    for y in r.vectors:
        if y[int(y.abs().argmax())] < 0:  # a fixed sign: the largest entry positive
            y = -y
        d = hess.unflatten(y)
        if norm == "filter":
            d = {k: (normalize_direction(v, state[k], "filter").to(v.dtype) if k in hess.names else v)
                 for k, v in d.items()}
        dirs.append(d)
    x, y = dirs
    weights = math.sqrt(sum(float(state[k].double().pow(2).sum()) for k in hess.names))
    rise = 1.0 if rise is None else float(rise)
    if norm == "none":
        guesses = [math.sqrt(2 * rise / v) if v > 0 else weights for v in values]
        extent = _reach(model, Directions(x, y, {"kind": "hessian"}), hess, guesses, hess.loss_value + rise)
    else:
        extent = [1.0, 1.0]
    roles = tensor_roles(state, model)
    meta = {
        "kind": "hessian", "norm": norm, "ignore": ignore, "dir_type": "weights", "seed": seed,
        "eigenvalues": values, "residuals": [float(v) for v in r.relative_residuals], "converged": r.converged,
        "tol": tol, "lanczos_steps": r.steps, "hvps": hess.hvps, "samples": hess.samples,
        "loss_name": hess.objective.name, "centre_loss": hess.loss_value, "rise": rise,
        "grid_extent": extent, "cosine": cosine(x, y), "x_norm": _norm(x), "y_norm": _norm(y),
        "centre": str(centre) if centre is not None else None,
        "centre_epoch": epoch_of(centre) if centre is not None else None,
        "centre_digest": state_digest(state),
        "model": model_name or type(model).__name__,
        "num_parameters": sum(v.numel() for k, v in state.items() if roles[k] == "param"),
        "num_perturbed": hess.n,
    }
    return Directions(x, y, meta)


LADDER = 2.0 ** (np.arange(-12, 5) / 2)  # distances tried, in units of the quadratic model's guess


def _reach(model: Any, d: Directions, hess: Any, guesses: list[float], target: float) -> list[float]:
    """Along each direction the smallest distance of the ladder where the loss (on the Hessian's
    data) reaches ``target`` on either side (a non-finite loss counts as reached); the ladder's
    last distance when none does."""
    from ..engine import EvalConfig, evaluate_points

    m = len(LADDER)
    coords = np.zeros((4 * m, 2))
    for axis, guess in enumerate(guesses):  # rows: axis 0 +, axis 0 -, axis 1 +, axis 1 -
        coords[2 * axis * m:(2 * axis + 1) * m, axis] = guess * LADDER
        coords[(2 * axis + 1) * m:(2 * axis + 2) * m, axis] = -guess * LADDER
    loss = evaluate_points(model, d, coords, hess.data, EvalConfig(device=str(hess.device)), loss=hess.objective,
                           progress=False).loss
    loss = np.where(np.isfinite(loss), loss, np.inf).reshape(2, 2, m).max(axis=1)  # (axis, distance)
    out = []
    for axis, guess in enumerate(guesses):
        reached = np.nonzero(loss[axis] >= target)[0]
        out.append(float(guess * LADDER[reached[0] if reached.size else -1]))
    return out
