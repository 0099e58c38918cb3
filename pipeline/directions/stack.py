"""Directions of a volume from three direction files: the first direction of each."""
from __future__ import annotations

import os
from collections.abc import Sequence

from ..checkpoints import mismatch
from ..errors import CheckpointError
from .base import Directions
from .gaussian import cosine

__all__ = ["stack_directions"]


def stack_directions(files: Sequence[str | os.PathLike | Directions]) -> Directions:
    """The volume spanned by the first direction (``x``) of each of three directions.

    Parameters
    ----------
    files : three paths of direction files (or :class:`Directions`)
        Made around the same weights (their ``centre_digest``, when recorded, must agree) and for
        the same model (keys and shapes).

    Returns
    -------
    Directions
        ``x``, ``y``, ``z``: the ``x`` of each, as they are. ``meta``: kind 'stacked', ndim 3,
        ``sources`` (each file with its kind), the cosines between the three, and the centre of
        the first (``centre``, ``centre_epoch``, ``centre_digest``, ``model``).

    Raises
    ------
    ValueError
        Not three directions; CheckpointError: directions of other weights or another model.
    """
    if isinstance(files, (str, os.PathLike)) or len(files) != 3:
        raise ValueError(f"a volume needs three directions; got {files!r}")
    parts = [f if isinstance(f, Directions) else Directions.load(f) for f in files]
    names = [str(f) if not isinstance(f, Directions) else f"directions {k}" for k, f in enumerate(files)]
    first = parts[0]
    for name, d in zip(names[1:], parts[1:]):
        problem = mismatch(first.x, d.x, "direction")
        if problem:
            raise CheckpointError(f"{name} does not fit {names[0]}: {problem}")
        digests = {first.meta.get("centre_digest"), d.meta.get("centre_digest")} - {None}
        if len(digests) > 1:
            raise CheckpointError(f"{name} was made around other weights than {names[0]}; the three directions of "
                                  f"a volume must share their centre")
    for name, d in zip(names[1:], parts[1:]):
        if any(v is not None for v in d.meta.get("variance_valid_range") or []):
            raise ValueError(f"{name} moves BatchNorm running variances, which only the first direction of a volume "
                             f"may (its valid range is checked on the first axis); put it first, or make it with "
                             f"dir_type 'weights'")
    x, y, z = (d.x for d in parts)
    meta = {"kind": "stacked", "ndim": 3, "norm": None, "seed": None,
            "sources": [{"file": n, "kind": d.kind} for n, d in zip(names, parts)],
            "cosine": cosine(x, y), "cosine_xz": cosine(x, z), "cosine_yz": cosine(y, z),
            **{k: first.meta[k] for k in ("centre", "centre_epoch", "centre_digest", "model", "dir_type",
                                          "variance_valid_range") if k in first.meta}}
    return Directions(x, y, meta, z)
