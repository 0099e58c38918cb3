"""Scale and resilience of surface evaluation (issue 6).

- :mod:`.plan`: fixed chunks of grid points (independent of where a run stopped or of the number
  of processes) and interleaved shards.
- :mod:`.store`: each finished chunk persisted atomically with a checksum in a work directory
  beside the output, with a manifest holding the configuration's fingerprint.
- :mod:`.fingerprint`: what identifies one surface computation (file hashes, data digest, grid,
  engine settings).
- :mod:`.comm`: single process or ``torch.distributed`` (gloo on CPU, NCCL on CUDA) for torchrun.
- :mod:`.runner`: resumable/distributed/sharded evaluation and the merge of array-job shards.
- :mod:`.job`: one surface of a run (:class:`SurfaceRequest` -> :func:`compute_surface`), used by
  ``losscape surface`` and ``losscape run``.

Importing this package does not import torch (only :class:`~.comm.TorchComm`,
:func:`~.fingerprint.tensor_digest` and :func:`~.runner.make_chunk_evaluator` do, when called).
"""
from .comm import Comm, DistEnv, LocalComm, RankFailedError, StoppedBySignal, TorchComm
from .fingerprint import file_digest, surface_identity, tensor_digest
from .runner import (ResumeOptions, SurfaceOutcome, assemble_surface, evaluate_surface, make_chunk_evaluator,
                     merge_surface, plan_for)
from .job import SurfaceJob, SurfaceRequest, compute_surface, default_grid, merge_shards, resolve_device
from .plan import ChunkPlan, Shard, auto_chunk_size, missing_chunks
from .store import ChunkStore, ConfigMismatchError, CorruptChunkError, parts_dir

__all__ = ["Comm", "DistEnv", "LocalComm", "RankFailedError", "StoppedBySignal", "TorchComm",
           "file_digest", "surface_identity", "tensor_digest",
           "ResumeOptions", "SurfaceOutcome", "assemble_surface", "evaluate_surface", "make_chunk_evaluator",
           "merge_surface", "plan_for", "ChunkPlan", "ChunkStore", "ConfigMismatchError", "CorruptChunkError",
           "Shard", "auto_chunk_size", "missing_chunks", "parts_dir",
           "SurfaceJob", "SurfaceRequest", "compute_surface", "default_grid", "merge_shards", "resolve_device"]
