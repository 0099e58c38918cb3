"""PCA directions of a training trajectory, streamed: memory does not grow with E x P.

Let ``d_e = theta_e - theta_c`` (E checkpoints, P elements each, centre ``theta_c`` = the
final weights by default) and ``D`` the E x P matrix of the rows ``d_e``. Like
scikit-learn's ``PCA``, and like Li et al.'s code that fed ``D`` to it, the rows are centred
on their mean: ``Dc = H D`` with ``H = I - 11^T / E``. Instead of the SVD of ``Dc`` we
accumulate the E x E Gram matrix ``G = D D^T`` piece by piece over the checkpoint files
(:mod:`.stream`), eigendecompose ``K = H G H = U diag(lam) U^T`` (descending), and build the
components piece by piece again:

    v_k = Dc^T u_k / sqrt(lam_k) = sum_e c_ke d_e,   c_k = H u_k / sqrt(lam_k)

which are the right singular vectors of ``Dc`` (unit norm, orthogonal): scikit-learn's
``components_``. The explained variance ratio is ``lam_k / trace(K)`` (scikit-learn's
``explained_variance_ratio_``). Resident memory: the two output directions (2 P floats in
the weights' dtype), the E x E Gram matrix, and about ``memory_budget`` bytes per chunk
(pass 1, before the outputs exist, uses chunks larger by half the outputs' size).

Sign convention: component k is flipped so that the earliest checkpoint (first in the
given order) with a non-negligible coordinate ``<d_e, v_k>`` has a negative coordinate. For a
run (epoch 0 first) the path therefore starts at negative alpha and beta and travels
towards the origin.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..checkpoints import state_digest
from .base import DIR_TYPES, IGNORES, Directions, StateLike, StateSource, check_choice, tensor_roles
from .gaussian import cosine, perturbed
from .stream import DEFAULT_MEMORY_BUDGET, plan_chunks, stream_differences, unique_sources

__all__ = ["pca_directions"]


def pca_directions(checkpoints: Sequence[StateLike], *, centre: StateLike | None = None, ignore: str = "biasbn",
                   dir_type: str = "weights", model: nn.Module | None = None, model_name: str | None = None,
                   memory_budget: int = DEFAULT_MEMORY_BUDGET, ndim: int = 2) -> Directions:
    """The top two (or three) principal components of ``checkpoint_e - centre`` over a trajectory.

    Parameters
    ----------
    checkpoints : sequence of paths or state_dicts, length E >= ndim + 1
        The trajectory in epoch order (epoch 0 first). Paths are memory-mapped
        (``torch.load(mmap=True, weights_only=True)``) one chunk at a time; a checkpoint equal
        to the centre contributes a zero row, as in Li et al.'s code.
    centre : path or state_dict, default the last checkpoint
        The weights at (0, 0) of the plane.
    ignore : {'biasbn', 'none'}, default 'biasbn'
        ``biasbn``: tensors with dim <= 1 are left out of the PCA (their direction is zero).
    dir_type : {'weights', 'states'}, default 'weights'
        ``states`` also includes BatchNorm running means (running variances are never
        moved, see :func:`~pipeline.directions.random_directions`).
    model : nn.Module, optional
        Tells parameters from buffers exactly (else key names are used).
    memory_budget : int, bytes, default 64 MiB
        Working memory of one streamed chunk (see :mod:`pipeline.directions.stream`).
    ndim : {2, 3}, default 2
        Number of components: 3 adds ``z`` (PC3), for a volume. PC1 and PC2 are the same as
        with 2 (the same eigenvectors of the same Gram matrix).

    Returns
    -------
    Directions
        Unit-norm ``x`` (PC1), ``y`` (PC2) (and ``z``, PC3) in the weights' dtypes. ``meta``: kind
        'pca', norm 'none', ignore, dir_type, ndim, ``explained_variance`` [r1, r2(, r3)] (ratios
        of the centred total variance), ``singular_values`` [s1, s2(, s3)] of the centred matrix,
        ``cosine`` (x, y; about 0; and ``cosine_xz``, ``cosine_yz``), ``mean_centred`` True,
        ``sign_convention``, centre, centre_epoch, epochs, num_checkpoints, model,
        num_parameters, num_perturbed.
    """
    check_choice("ignore", ignore, IGNORES)
    check_choice("dir_type", dir_type, DIR_TYPES)
    if isinstance(checkpoints, (str, os.PathLike)) or not isinstance(checkpoints, Sequence):
        raise ValueError(f"checkpoints must be a sequence of paths or state_dicts; got {type(checkpoints).__name__}")
    if ndim not in (2, 3) or isinstance(ndim, bool):
        raise ValueError(f"ndim must be 2 or 3; got {ndim!r}")
    if len(checkpoints) < ndim + 1:
        raise ValueError(f"PCA of a trajectory needs at least {ndim + 1} checkpoints ({ndim} components of the "
                         f"centred differences); got {len(checkpoints)}")
    sources = [StateSource(c) for c in checkpoints]
    centre_src = StateSource(centre) if centre is not None else sources[-1]
    centre_state = centre_src.open()
    reference = {k: v.shape for k, v in centre_state.items()}
    roles = tensor_roles(centre_state, model)
    keys = [k for k, t in centre_state.items()
            if t.is_floating_point() and perturbed(roles[k], t, ignore, dir_type)]
    if not keys:
        raise ValueError(f"no tensor enters the PCA with ignore={ignore!r} and dir_type={dir_type!r}")
    numels = {k: centre_state[k].numel() for k in keys}
    dtypes = {k: centre_state[k].dtype for k in centre_state}
    del centre_state  # drop the mapping; each chunk maps the files afresh

    n_files = len(unique_sources([centre_src, *sources])[0])
    # Pass 2 holds the output directions; pass 1 may use part of that memory for larger
    # chunks (fewer re-mappings of the files) without raising the peak. Half of it: the float64
    # buffers and BLAS workspaces of the larger pieces also grow.
    out_bytes = ndim * sum(s.numel() * dtypes[k].itemsize for k, s in reference.items())
    chunks1 = plan_chunks(numels, n_files, memory_budget + out_bytes // 2)
    chunks2 = plan_chunks(numels, n_files, memory_budget)
    E = len(sources)

    # Pass 1: the uncentred Gram matrix G = D D^T, accumulated in float64.
    gram = torch.zeros(E, E, dtype=torch.float64)
    for _key, _start, _stop, d in stream_differences(centre_src, sources, chunks1, reference):
        gram += d @ d.T  # d: (E, n) differences to the centre

    G = gram.numpy()
    if not np.isfinite(G).all():
        bad = [sources[e].label for e in range(E) if not np.isfinite(G[e, e])]
        which = f"the centre {centre_src.label}" if len(bad) == E else ", ".join(bad[:3])
        raise ValueError(f"checkpoint weights are not finite (diverged training?): {which}")
    H = np.eye(E) - 1.0 / E
    K = H @ G @ H
    K = (K + K.T) / 2
    lam, U = np.linalg.eigh(K)  # ascending
    lam, U = lam[::-1], U[:, ::-1]
    total = float(np.trace(K))
    if not total > 0:
        raise ValueError("the checkpoints do not differ from each other (zero variance); PCA needs a trajectory")
    if not lam[ndim - 1] > 1e-12 * lam[0]:
        raise ValueError(f"the centred trajectory spans fewer than {ndim} dimensions (eigenvalues "
                         f"{', '.join(f'{v:.3g}' for v in lam[:ndim])}); PCA needs at least {ndim + 1} distinct "
                         f"checkpoints")
    coef = (H @ U[:, :ndim]) / np.sqrt(lam[:ndim])  # (E, ndim): v_k = sum_e coef[e, k] d_e
    proj = G @ coef  # (E, ndim): <d_e, v_k>, the uncentred coordinates of each checkpoint
    for k in range(ndim):
        scale = np.abs(proj[:, k]).max()
        first = next(e for e in range(E) if abs(proj[e, k]) > 1e-6 * scale)
        if proj[first, k] > 0:
            coef[:, k] *= -1
            proj[:, k] *= -1
    coef_t = torch.from_numpy(np.ascontiguousarray(coef.T))  # (ndim, E)

    # Pass 2: the components, piece by piece.
    out = [{k: torch.zeros(shape, dtype=dtypes[k]) for k, shape in reference.items()} for _ in range(ndim)]
    for key, start, stop, d in stream_differences(centre_src, sources, chunks2, reference):
        for k in range(ndim):  # one product per component: PC1 and PC2 do not depend on ndim, bit for bit
            out[k][key].view(-1)[start:stop] = (coef_t[k] @ d).to(dtypes[key])
    x, y, z = (out + [None])[:3]

    epochs = [s.epoch for s in sources]
    meta = {
        "kind": "pca", "norm": "none", "ignore": ignore, "dir_type": dir_type, "seed": None, "ndim": ndim,
        "explained_variance": [float(v / total) for v in lam[:ndim]],
        "singular_values": [math.sqrt(float(v)) for v in lam[:ndim]],
        "cosine": cosine(x, y),
        **({"cosine_xz": cosine(x, z), "cosine_yz": cosine(y, z)} if z is not None else {}),
        "mean_centred": True,
        "sign_convention": "the earliest checkpoint with a non-zero coordinate has a negative coordinate",
        "centre": centre_src.label if centre_src.path is not None else None,
        "centre_epoch": centre_src.epoch,
        "centre_digest": state_digest(centre_src.open()),
        "epochs": epochs if all(e is not None for e in epochs) else None,
        "num_checkpoints": E,
        "model": model_name or (type(model).__name__ if model is not None else None),
        "num_parameters": sum(int(np.prod(s)) for k, s in reference.items() if roles[k] == "param"),
        "num_perturbed": sum(numels.values()),
    }
    return Directions(x, y, meta, z)
