"""The surface stage: the only way from (model, directions, grid, data) to a ``Surface``.

==============================  ================================================================
``evaluate``                    the one-call public API: a grid -> a ``Surface``, in memory
                                (:mod:`.in_memory`)
``SurfaceRequest``              one surface of a run: run, directions, grid, split, centre epoch,
                                engine settings (:mod:`.request`), with its default grid
``compute_surface``             a request, resumable, distributed over ranks or shards, written as
                                ``.vts`` (:mod:`.job`); ``merge_shards`` assembles shards' chunks
==============================  ================================================================

Inside: :mod:`.compute` is the one code path (chunks evaluated, kept in a store on disk or in
memory, assembled by :mod:`.assemble`); :mod:`.evaluator` wraps the point engine
(:mod:`pipeline.engine`) and holds the test-split rule; :mod:`.meta` builds the metadata;
:mod:`.plan`, :mod:`.store` and :mod:`.fingerprint` are the chunks (which points, where they
are kept, which computation they belong to); :mod:`.distribute` the ranks and the local
launcher.

Importing this package does not import torch; its functions do, when called.
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule (imported on first access, so that the numpy-only parts stay light)
_API = {
    "evaluate": "in_memory",
    "SurfaceRequest": "request", "SPLITS": "request", "default_grid": "request", "complete_grid": "request",
    "check_grid": "request",
    "SurfaceJob": "job", "compute_surface": "job", "merge_shards": "job",
    "ResumeOptions": "compute", "SurfaceOutcome": "compute", "evaluate_surface": "compute",
    "evaluate_in_memory": "compute", "merge_surface": "compute", "plan_for": "compute",
    "assemble_surface": "assemble",
    "make_chunk_evaluator": "evaluator",
    "surface_meta": "meta",
    "ChunkPlan": "plan", "Shard": "plan", "auto_chunk_size": "plan", "missing_chunks": "plan",
    "ChunkStore": "store", "MemoryStore": "store", "ConfigMismatchError": "store", "CorruptChunkError": "store",
    "parts_dir": "store",
    "surface_identity": "fingerprint",
    "Comm": "distribute", "DistEnv": "distribute", "LocalComm": "distribute", "TorchComm": "distribute",
    "RankFailedError": "distribute", "StoppedBySignal": "distribute", "launch_local": "distribute",
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipeline.surface' has no attribute {name!r}")
