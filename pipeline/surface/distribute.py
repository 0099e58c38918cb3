"""Distribution of a surface: the little communication its ranks need, and a local launcher.

Only control messages travel between ranks (the list of chunks still to compute, and a barrier);
results travel through the chunk files, so a rank that dies loses nothing the others finished.
:class:`LocalComm` is the single-process case; :class:`TorchComm` wraps ``torch.distributed``
(gloo on CPU, NCCL on CUDA). The rank numbers are passed in by the caller (the CLI reads
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``); ``init_process_group`` itself reads
``MASTER_ADDR``/``MASTER_PORT``. Those variables are set by ``torchrun`` (several nodes, Slurm)
or by :func:`launch_local`, which starts the workers of one machine through torch's own
elastic launcher, so that one machine needs no torchrun line.
"""
from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from typing import Any

from ..errors import LossvistaError

log = logging.getLogger(__name__)

__all__ = ["Comm", "LocalComm", "TorchComm", "RankFailedError", "StoppedBySignal", "DistEnv", "launch_local"]


class RankFailedError(LossvistaError):
    """Another rank stopped (crashed, killed) before the ranks met again."""


class StoppedBySignal(LossvistaError):
    """Raised by the CLI's SIGTERM/SIGINT handler so that the run stops cleanly, saying what is kept."""


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a torchrun job (``world_size == 1``: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if not (self.world_size >= 1 and 0 <= self.rank < self.world_size and self.local_rank >= 0):
            raise ValueError(f"rank must be in 0..world_size-1 and local_rank >= 0; got rank={self.rank}, "
                             f"world_size={self.world_size}, local_rank={self.local_rank}")


class Comm:
    """Interface: ``rank``, ``world_size``, ``broadcast(obj)`` from rank 0, ``barrier()``, ``close()``."""

    rank: int = 0
    world_size: int = 1

    def broadcast(self, obj: Any) -> Any:
        raise NotImplementedError

    def barrier(self, what: str = "") -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Comm":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalComm(Comm):
    """One process: broadcast returns its argument, barrier returns at once."""

    def broadcast(self, obj: Any) -> Any:
        return obj

    def barrier(self, what: str = "") -> None:
        return None


class TorchComm(Comm):
    """``torch.distributed`` process group for a torchrun job.

    ``backend``: ``"gloo"`` for CPU evaluation, ``"nccl"`` for CUDA (then ``device`` must be
    this rank's ``cuda:LOCAL_RANK``, set as the current device before the group starts).
    A collective that fails because a peer died is turned into :class:`RankFailedError`.
    """

    def __init__(self, env: DistEnv, backend: str, device: Any = None, timeout_s: float = 1800.0):
        import torch
        import torch.distributed as dist

        if backend not in ("gloo", "nccl"):
            raise ValueError(f"backend must be one of 'gloo', 'nccl'; got {backend!r}")
        if not dist.is_available():
            raise LossvistaError("this PyTorch build has no torch.distributed; run without torchrun")
        self._dist = dist
        self.rank, self.world_size, self.backend = env.rank, env.world_size, backend
        self._device = torch.device(device) if device is not None else None
        kwargs: dict[str, Any] = {"backend": backend, "rank": env.rank, "world_size": env.world_size,
                                  "timeout": _dt.timedelta(seconds=timeout_s)}
        if backend == "nccl":
            torch.cuda.set_device(self._device)
            kwargs["device_id"] = self._device
        try:
            dist.init_process_group(**kwargs)
        except (RuntimeError, ValueError) as exc:
            raise LossvistaError(f"cannot start the {backend} process group as rank {env.rank} of "
                                 f"{env.world_size} ({_first_line(exc)})") from None
        self._open = True

    def broadcast(self, obj: Any) -> Any:
        box = [obj if self.rank == 0 else None]
        try:
            self._dist.broadcast_object_list(box, src=0)
        except RuntimeError as exc:  # DistBackendError / gloo connection errors are RuntimeErrors
            raise RankFailedError(f"rank {self.rank}: lost contact with rank 0 ({_first_line(exc)})") from None
        return box[0]

    def barrier(self, what: str = "") -> None:
        try:
            if self.backend == "nccl":
                self._dist.barrier(device_ids=[self._device.index])
            else:
                self._dist.barrier()
        except RuntimeError as exc:
            raise RankFailedError(f"rank {self.rank}: another rank stopped before {what or 'the barrier'} "
                                  f"({_first_line(exc)})") from None

    def close(self) -> None:
        if getattr(self, "_open", False) and self._dist.is_initialized():
            self._dist.destroy_process_group()
        self._open = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def launch_local(nproc: int, argv: list[str]) -> None:
    """Run ``python -m pipeline ARGV`` as ``nproc`` ranks of one job on this machine and wait.

    The workers are started by torch's elastic launcher (what ``torchrun --standalone`` uses):
    a c10d rendezvous on a free local port, ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and
    ``MASTER_ADDR``/``MASTER_PORT`` set for each, no restarts. Running programs is this
    function's whole job. Each worker prints its own messages; a failed worker becomes one
    :class:`RankFailedError` naming the rank and its exit code.
    """
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be a positive integer; got {nproc!r}")
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          start_method="spawn")
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "pipeline", *argv)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        code = failure.exitcode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise RankFailedError(f"rank {rank} of {nproc} {how}; the chunks finished by every rank are kept, rerun "
                              f"the same command to resume") from None
