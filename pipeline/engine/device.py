"""Which device evaluates: the one rule for the engine, the surface stage, trajectories and training."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import LossvistaError, ParameterError, param

__all__ = ["resolve_device"]

DEVICE_TYPES = ("cpu", "cuda")


def resolve_device(requested: Any = None, *, local_rank: int = 0, distributed: bool = False,
                   present: bool = True) -> torch.device:
    """The ``torch.device`` to evaluate on.

    Parameters
    ----------
    requested : str, torch.device or None
        ``None``: ``cuda`` when CUDA is available, else ``cpu``. Otherwise ``cpu``, ``cuda`` or
        ``cuda:N``.
    local_rank, distributed : int, bool
        One rank of a distributed job on CUDA uses ``cuda:local_rank``.
    present : bool, default True
        Whether the device must exist here. ``False`` (a merge of shards, which evaluates
        nothing) names it without asking for it, so shards computed on GPUs merge on a CPU node.

    Raises
    ------
    ParameterError
        A device that is neither ``cpu`` nor ``cuda``.
    LossvistaError
        CUDA asked for but not available, or a rank without a GPU of its own.
    """
    if requested is None:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(requested)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise ParameterError(f"{param('device')} must be one of 'cpu', 'cuda' (or 'cuda:N'); got {str(requested)!r}")
    if dev.type != "cuda" or not present:
        return dev
    if not torch.cuda.is_available():
        raise LossvistaError(f"{param('device')} {str(requested)!r} was asked for but CUDA is not available "
                             f"on this machine; use {param('device')} cpu")
    if distributed:
        if local_rank >= torch.cuda.device_count():
            raise LossvistaError(f"LOCAL_RANK {local_rank} has no GPU ({torch.cuda.device_count()} visible); start "
                                 f"at most as many processes per node as there are GPUs")
        return torch.device("cuda", local_rank)
    return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())
