"""Projection of a training trajectory onto a pair (or triple) of directions, and the PCA plane's grid.

``project_trajectory`` finds, for every checkpoint ``theta_e``, the coefficients ``(a_e, b_e)``
minimising ``|theta_e - theta_c - a x - b y|`` (least squares in the direction basis; the
directions need not be orthogonal or of unit norm), from the 2x2 normal equations (3x3, with
``c_e`` and ``z``, for the three directions of a volume)::

    [x.x  x.y] [a]   [x.d]
    [x.y  y.y] [b] = [y.d],      d = theta_e - theta_c

accumulated piece by piece over memory-mapped checkpoint files (never stacked, see
:mod:`pipeline.directions.stream`). The norms are taken over the weight space of the
directions' ``dir_type``: all parameters for ``weights`` (also those a direction ignores, such
as biases under ``ignore='biasbn'``, so their drift shows in the residual), parameters and
BatchNorm running statistics for ``states``. Integer buffers never count.

``pca_grid`` turns a trajectory's extent into a :class:`~pipeline.datamodel.Grid` on which
``(0, 0)`` is exactly a grid point (a :class:`~pipeline.datamodel.Lattice` for a path in a volume).
"""
from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoints import load_state_into
from .datamodel import Grid, Lattice
from .directions.base import Directions, StateLike, StateSource, in_space, tensor_roles
from .directions.stream import DEFAULT_MEMORY_BUDGET, plan_chunks, stream_differences, unique_sources
from .errors import CheckpointError
from .progress import progress_bar
from .datamodel import Trajectory

log = logging.getLogger(__name__)

__all__ = ["project_trajectory", "pca_grid"]

# Direction metadata copied into the trajectory's metadata (and so into the .vtp file).
_META_KEYS = ("kind", "norm", "ignore", "dir_type", "seed", "explained_variance", "centre", "centre_epoch", "model")


def project_trajectory(checkpoints: Sequence[StateLike], directions: Directions, centre_state: StateLike, *,
                       model: nn.Module | None = None, data: Any = None, loss: Any = None, config: Any = None,
                       memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Trajectory:
    """Project checkpoints onto the plane ``centre + a x + b y``.

    Parameters
    ----------
    checkpoints : sequence of paths or state_dicts
        The trajectory. Epochs come from file names (``epoch_007.pt`` -> 7); checkpoints
        given in memory, or with other names, are numbered by position. The result is sorted
        by epoch.
    directions : Directions
        1D (then every ``b`` is 0), 2D, or 3D (the path in a volume); must fit the centre's keys
        and shapes.
    centre_state : path or state_dict
        The weights at (0, 0), normally the final checkpoint (``directions.meta['centre']``).
    model, data : nn.Module and data, optional
        Both or neither. When given, ``loss`` is each checkpoint's own loss on ``data`` and
        ``surface_loss`` the loss at ``centre + a x + b y``, both by the engine that evaluates
        surfaces (:func:`pipeline.engine.evaluate_points`, so a warped path lies on the warped
        surface), on a copy of ``model`` (eval mode; ``model`` itself is not modified).
        ``data``: any form the engine takes (tensors, a Dataset, a DataLoader, ...). Otherwise
        both are NaN.
    loss : LossSpec, a loss name or ``"module:function"``, default cross-entropy
    config : EvalConfig, optional
        The engine's settings (device, subset, ...); default: the engine's defaults.
    memory_budget : int, bytes, default 64 MiB
        Working memory of one streamed chunk.

    Returns
    -------
    Trajectory
        ``coords`` (E, 2) ``(a_e, b_e)`` ((E, 3) ``(a_e, b_e, c_e)`` for three directions);
        ``epoch``; ``loss``; ``surface_loss`` (at the projected point of the plane or volume);
        ``residual`` ``= |d_e - a_e x - b_e y| / |d_e|`` with ``d_e = theta_e - theta_c`` (0 where
        ``d_e = 0``, e.g. the centre itself). ``meta``: the directions' kind, norm, ignore,
        dir_type, seed, explained_variance, centre, centre_epoch, model, ``ndim``,
        ``direction_cosine``, ``num_checkpoints``, ``loss_evaluated``.
    """
    if (model is None) != (data is None):
        raise ValueError("model and data must be given together (to evaluate loss and surface_loss) or not at all")
    if data is not None:
        from .engine.batches import as_eval_data

        data = as_eval_data(data)  # a form the engine cannot read is refused before any work
    if not isinstance(directions, Directions):
        raise ValueError(f"directions must be a pipeline.directions.Directions; got {type(directions).__name__}")
    if isinstance(checkpoints, (str, bytes)) or not isinstance(checkpoints, Sequence) or not checkpoints:
        raise ValueError(f"checkpoints must be a non-empty sequence of paths or state_dicts; got {checkpoints!r:.80}")
    sources = [StateSource(c) for c in checkpoints]
    centre_src = StateSource(centre_state, label=None)
    centre = centre_src.open()
    reference = {k: v.shape for k, v in centre.items()}
    directions.check_fits(centre, f"the centre weights ({centre_src.label})")
    directions.check_usable()
    bad_centre = [k for k, t in centre.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad_centre:
        raise CheckpointError(f"the centre weights ({centre_src.label}) hold NaN or inf values (in {bad_centre[0]!r}); "
                              f"choose another centre epoch")
    dir_type = str(directions.meta.get("dir_type", "weights"))
    roles = tensor_roles(centre, model)
    axes = list(directions.axes)
    keys = [k for k, t in centre.items() if t.is_floating_point()
            and (in_space(roles[k], dir_type) or any(bool(ax[k].any()) for ax in axes))]
    numels = {k: centre[k].numel() for k in keys}

    # Normal-equation matrix A (m x m) from the directions, in float64.
    m = len(axes)
    A = np.zeros((m, m))
    for k in keys:
        vs = [ax[k].reshape(-1).to(torch.float64) for ax in axes]
        for i in range(m):
            for j in range(i, m):
                A[i, j] += float(vs[i] @ vs[j])
    A = np.triu(A) + np.triu(A, 1).T
    if any(A[k, k] == 0 for k in range(m)):
        raise ValueError("a direction is zero on every tensor of the weight space; cannot project onto it")
    cos = A[0, 1] / math.sqrt(A[0, 0] * A[1, 1]) if m >= 2 else None
    if m >= 2 and abs(cos) > 1 - 1e-9:
        raise ValueError(f"directions x and y are parallel (cosine {cos:.6f}): they span a line, not a plane")
    if m == 3 and np.linalg.cond(A / np.sqrt(np.outer(np.diag(A), np.diag(A)))) > 1e9:
        raise ValueError("directions x, y and z are linearly dependent: they span no volume")

    chunks = plan_chunks(numels, len(unique_sources([centre_src, *sources])[0]), memory_budget)
    E = len(sources)

    def basis(key: str, start: int, stop: int) -> torch.Tensor:  # (m, n) float64
        return torch.stack([ax[key].reshape(-1)[start:stop].to(torch.float64) for ax in axes])

    rhs = torch.zeros(E, m, dtype=torch.float64)
    dd = torch.zeros(E, dtype=torch.float64)
    for key, start, stop, d in stream_differences(centre_src, sources, chunks, reference):
        rhs += d @ basis(key, start, stop).T
        dd += torch.linalg.vector_norm(d, dim=1).square()
    coef = np.linalg.solve(A, rhs.numpy().T).T  # (E, m)
    coef_t = torch.from_numpy(np.ascontiguousarray(coef))
    res = torch.zeros(E, dtype=torch.float64)
    for key, start, stop, d in stream_differences(centre_src, sources, chunks, reference):
        d -= coef_t @ basis(key, start, stop)  # (E, n) residual vectors, in place
        res += torch.linalg.vector_norm(d, dim=1).square()
    dd_np, res_np = dd.numpy(), res.numpy()
    with np.errstate(invalid="ignore"):
        residual = np.where(dd_np > 0, np.sqrt(res_np) / np.sqrt(np.where(dd_np > 0, dd_np, 1.0)), 0.0)
    # a checkpoint with non-finite weights has no position: NaN coordinates and residual, never 0
    nonfinite = ~(np.isfinite(dd_np) & np.isfinite(res_np) & np.isfinite(coef).all(axis=1))
    residual[nonfinite] = np.nan
    coef[nonfinite] = np.nan
    coords = np.zeros((E, max(m, 2)))
    coords[:, :m] = coef

    epochs = [s.epoch for s in sources]
    if any(e is None for e in epochs):
        epochs = list(range(E))
    if nonfinite.any():
        log.warning("%d checkpoint(s) hold NaN or inf weights (%s): their positions on the plane are NaN",
                    int(nonfinite.sum()), ", ".join(sources[k].label for k in np.flatnonzero(nonfinite)[:3])
                    + (", ..." if nonfinite.sum() > 3 else ""))
    own_loss = np.full(E, np.nan)
    surface_loss = np.full(E, np.nan)
    if model is not None:
        own_loss, surface_loss = _evaluate(sources, centre, directions, coords, model, data, loss, config)

    order = np.argsort(np.asarray(epochs), kind="stable")
    meta = {k: directions.meta.get(k) for k in _META_KEYS if k in directions.meta}
    if "centre" in meta or centre_src.path is not None:  # the centre used here (the run may have moved)
        meta["centre"] = str(centre_src.path) if centre_src.path is not None else None
    meta.update({"ndim": directions.ndim, "direction_cosine": cos, "num_checkpoints": E,
                 "loss_evaluated": model is not None, "projection": "least squares in the direction basis"})
    return Trajectory(coords=coords[order], epoch=np.asarray(epochs)[order], loss=own_loss[order],
                      surface_loss=surface_loss[order], residual=residual[order], meta=meta)


def _evaluate(sources: Sequence[StateSource], centre: dict[str, torch.Tensor], directions: Directions,
              coords: np.ndarray, model: nn.Module, data: Any, loss: Any, config: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each checkpoint's own loss and the loss at its projected point, by the engine."""
    from .engine import EvalConfig, evaluate_points, resolve_compile
    from .engine.batches import as_eval_data
    from .engine.points import as_objective

    config = config or EvalConfig(device=str(next(model.parameters()).device))
    objective = as_objective(loss)
    data = as_eval_data(data)
    config, _ = resolve_compile(model, data, config, 2 * len(sources))  # every evaluation of the path together
    net = copy.deepcopy(model).eval()
    still = Directions({k: torch.zeros_like(v) for k, v in centre.items()}, None, {"kind": "none"})
    own = np.full(len(sources), np.nan)
    with progress_bar(total=len(sources) + 1, desc="trajectory", unit="eval") as bar:
        for e, src in enumerate(sources):
            load_state_into(net, src.open(), source=src.label)
            own[e] = evaluate_points(net, still, [[0.0, 0.0]], data, config, loss=objective, progress=False).loss[0]
            bar.update(1)
        load_state_into(net, centre, source="the centre weights")
        finite = np.isfinite(coords).all(axis=1)
        surface_loss = np.full(len(sources), np.nan)
        if finite.any():
            surface_loss[finite] = evaluate_points(net, directions, coords[finite], data, config, loss=objective,
                                                   progress=False).loss
        bar.update(1)
    return own, surface_loss


# --------------------------------------------------------------------------------------------
# grid of the PCA plane


def _step_up(v: float) -> float:
    """The smallest ``j * 2**k`` >= v with j in 8..16: at most 12.5 % above ``v``.

    Such a step has at most 4 significant bits, so ``i * step`` is exact in float64 for any
    grid index i, and ``np.linspace(-i0 * step, (n - 1 - i0) * step, n)[i0]`` is exactly 0.
    """
    k = math.floor(math.log2(v)) - 3
    j = math.ceil(v / math.ldexp(1.0, k))  # 8..16
    while math.ldexp(j, k) < v:
        j += 1
    return math.ldexp(j, k)


def _step_next(h: float) -> float:
    return _step_up(math.nextafter(h, math.inf))


def _axis(values: np.ndarray, n: int, margin: float, symmetric: bool,
          step: float | None = None) -> tuple[float, float, float] | None:
    """``(min, max, step)`` of one axis; None when the values have no extent and no ``step`` is given."""
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    span = hi - lo
    if span == 0:
        if step is None:
            return None
        half = (n - 1) // 2  # no extent on this axis: centre 0 with the other axis's step
        return -half * step, (n - 1 - half) * step, step
    lo, hi = lo - margin * span, hi + margin * span
    if symmetric:
        half = (n - 1) // 2
        h = _step_up(max(-lo, hi) / half)
        return -half * h, half * h, h
    h = _step_up((hi - lo) / (n - 1))
    while True:
        i_min = math.ceil(-lo / h)  # steps needed below 0
        i_max = (n - 1) - math.ceil(hi / h)  # at most this many, so the rest covers hi
        if i_min <= i_max:
            ideal = (n - 1) / 2 - (lo + hi) / (2 * h)  # index of 0 when the slack is shared evenly
            i0 = min(max(round(ideal), i_min), i_max)
            return -i0 * h, (n - 1 - i0) * h, h
        h = _step_next(h)


MIN_PLANE_RATIO = 1 / 3  # a default plane's short side, at least this fraction of its long side,
MAX_WIDENING = 3.0  # but at most this many times the path's own extent on that side


def _widened(columns: list[np.ndarray], min_ratio: float) -> list[np.ndarray]:
    """The coordinates of each axis, with two points added around the middle of an axis whose
    extent (0 included) is under ``min_ratio`` of the longest one, so that it spans that much, or
    ``MAX_WIDENING`` times its own extent when that is less."""
    spans = [(min(float(c.min()), 0.0), max(float(c.max()), 0.0)) for c in columns]
    longest = max(hi - lo for lo, hi in spans)
    out = []
    for c, (lo, hi) in zip(columns, spans):
        if 0 < hi - lo < min_ratio * longest:
            middle, half = (lo + hi) / 2, min(min_ratio * longest, MAX_WIDENING * (hi - lo)) / 2
            c = np.concatenate([c, [middle - half, middle + half]])
        out.append(c)
    return out


def pca_grid(trajectory: Trajectory, n: int | tuple[int, ...] = 51, margin: float = 0.25, *,
             symmetric: bool = False, min_ratio: float = MIN_PLANE_RATIO) -> Grid | Lattice:
    """Default grid of a plane: the trajectory's extent (and 0) plus ``margin`` on each side.

    A plane's short side is widened around the path's middle to ``min_ratio`` of its long side,
    at most :data:`MAX_WIDENING` times the path's own extent on that side: a path that runs
    nearly along PC1 (97% of the variance, say) gets a plane that shows the landscape on both
    sides of the valley, not a strip, in ParaView's views, which keep distances true; a path that
    is nearly a line (99.97%) keeps a narrow plane, whose grid still resolves it.

    Parameters
    ----------
    trajectory : Trajectory
        A projected path (coordinates in the directions' units).
    n : int or (nx, ny) (or (nx, ny, nz)), default 51
        Points per axis, at least 3 (odd when ``symmetric``). A 1D trajectory
        (``meta['ndim'] == 1``) gives a 1D grid with ``ny = 1``; a path in a volume (three
        coordinates) gives a :class:`~pipeline.datamodel.Lattice`.
    margin : float, default 0.25
        Added on both sides of each axis, as a fraction of that axis's extent.
    symmetric : bool, default False
        False: the range is snapped around the padded extent, with 0 at an interior (or end)
        index; the grid spacing wastes no more than 12.5 % of the points. True: ``[-R, R]``
        with 0 in the middle.
    min_ratio : float, default 1/3
        The ratio of a plane's short side to its long side, before snapping, that a short side is
        widened to (at most ``MAX_WIDENING`` times; 0: the path's extent alone). Volumes (three
        coordinates) and 1D grids keep each axis's own extent.

    Returns
    -------
    Grid or Lattice
        With ``xs[i0] == 0.0`` and ``ys[j0] == 0.0`` (and ``zs[l0] == 0.0``) exactly for some
        indices: the step is ``j * 2**k`` (j in 8..16) and the ends are integer multiples of it.
        An axis with no extent (all coordinates 0) gets another axis's step, centred on 0.
    """
    if not isinstance(trajectory, Trajectory):
        raise ValueError(f"trajectory must be a pipeline.datamodel.Trajectory; got {type(trajectory).__name__}")
    dims = trajectory.coords.shape[1]
    sizes = (n,) * dims if isinstance(n, (int, np.integer)) else tuple(n)
    if len(sizes) != dims:
        raise ValueError(f"n must be an integer or {dims} integers for a path of {dims} coordinates; got {n!r}")
    for name, v in zip(("nx", "ny", "nz"), sizes):
        if isinstance(v, bool) or int(v) != v or v < 3:
            raise ValueError(f"{name} must be an integer >= 3; got {v!r}")
        if symmetric and v % 2 == 0:
            raise ValueError(f"{name} must be odd for a symmetric grid (so 0 is the middle point); got {v}")
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0; got {margin!r}")
    coords = trajectory.coords[np.isfinite(trajectory.coords).all(axis=1)]  # checkpoints with a position
    if len(coords) == 0:
        raise ValueError("the trajectory has no checkpoint with finite coordinates")
    if trajectory.meta.get("ndim") == 1:
        ax = _axis(coords[:, 0], int(sizes[0]), float(margin), symmetric)
        if ax is None:
            raise ValueError("the trajectory has no extent (every checkpoint projects to 0); give the grid explicitly")
        return Grid(ax[0], ax[1], int(sizes[0]), 0.0, 0.0, 1)
    if not (isinstance(min_ratio, (int, float)) and 0 <= min_ratio <= 1):
        raise ValueError(f"min_ratio must be a number in [0, 1]; got {min_ratio!r}")
    columns = [coords[:, k] for k in range(dims)]
    if dims == 2:
        columns = _widened(columns, float(min_ratio))
    axes = [_axis(columns[k], int(sizes[k]), float(margin), symmetric) for k in range(dims)]
    known = [a for a in axes if a is not None]
    if not known:
        raise ValueError("the trajectory has no extent (every checkpoint projects to the centre); give the grid "
                         "explicitly")
    axes = [a if a is not None else _axis(coords[:, k], int(sizes[k]), float(margin), symmetric, step=known[0][2])
            for k, a in enumerate(axes)]
    bounds = [v for a, size in zip(axes, sizes) for v in (a[0], a[1], int(size))]
    return Lattice(*bounds) if dims == 3 else Grid(*bounds)
