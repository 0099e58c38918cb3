"""Assembling a surface (or a volume) from its finished chunks (on disk or in memory).

:func:`assemble_surface` reads every chunk of a plan (verifying checksums for chunks on disk)
into a :class:`~pipeline.datamodel.Surface` (a :class:`~pipeline.datamodel.Volume` for a
lattice) and adds to its metadata what the evaluation found
(grid, centre values, the engine's plan, forward samples, bounded and non-finite points).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

from ..datamodel import Grid, Lattice, Surface, Volume
from ..errors import LossvistaError, param
from ..rundir import ranges
from .plan import ChunkPlan
from .store import CorruptChunkError, array_dtype

__all__ = ["assemble_surface"]


def assemble_surface(store: Any, plan: ChunkPlan, grid: Grid | Lattice, fp: str, meta: Mapping[str, Any]) -> Surface:
    """Read every chunk of ``store`` (a :class:`~.store.ChunkStore` or :class:`~.store.MemoryStore`)
    into a :class:`Surface` of shape ``(nx, ny)`` (a :class:`Volume` of shape ``(nx, ny, nz)``
    for a lattice) with ``meta`` completed.

    Raises ``LossvistaError`` naming the missing and corrupted chunks (and, when shard records
    exist, the shards to rerun) when the work directory is incomplete.
    """
    coords = grid.coords()
    flat: dict[str, np.ndarray] = {}
    first_info: dict[str, Any] = {}
    missing: list[int] = []
    bad: dict[int, str] = {}
    compiled: dict[bool, list[int]] = {}  # chunks by whether the engine ran them compiled
    for c in range(plan.n_chunks):
        start, stop = plan.bounds(c)
        try:
            chunk = store.read_chunk(c, plan, fp)
        except FileNotFoundError:
            missing.append(c)
            continue
        except CorruptChunkError as exc:
            bad[c] = exc.reason
            continue
        if not np.array_equal(chunk.coords, coords[start:stop]):
            bad[c] = "other grid coordinates"
            continue
        if c == 0:
            first_info = chunk.info
        compiled.setdefault(bool((chunk.info.get("plan") or {}).get("compiled", False)), []).append(c)
        for name, values in chunk.arrays.items():
            if name not in flat:
                dtype = array_dtype(name)
                flat[name] = np.full(plan.n_points, np.nan if dtype is np.float64 else 0, dtype=dtype)
            flat[name][start:stop] = values
    if missing or bad:
        raise LossvistaError(_incomplete_message(store, plan, missing, sorted(bad), bad))
    if len(compiled) > 1:  # compiling failed in some process of the job (its warning says why)
        what = store.root.name[:-len(".parts")] if store.root is not None else "the surface"
        raise LossvistaError(f"cannot assemble {what}: chunks {ranges(compiled[True])} were evaluated compiled and "
                             f"chunks {ranges(compiled[False])} eagerly (compiling failed in a process of this job); "
                             f"rerun with {param('restart')} to evaluate them all alike")
    shape = grid.shape
    standard = {name: flat.pop(name).reshape(shape) if name in flat else None
                for name in ("loss", "accuracy", "test_loss", "test_accuracy", "bounded")}
    samples = flat.pop("samples")
    kind = Volume if isinstance(grid, Lattice) else Surface
    surface = kind(grid, standard["loss"], standard["accuracy"], test_loss=standard["test_loss"],
                   test_accuracy=standard["test_accuracy"], bounded=standard["bounded"], meta=dict(meta),
                   extra={name: values.reshape(shape) for name, values in flat.items()})  # the user's metrics
    surface.meta.update({
        "grid": grid.to_dict(),
        "forward_samples": int(samples.sum()),
        "bounded_points": int(surface.bounded.sum()),
        "nonfinite_points": int((~np.isfinite(surface.loss)).sum()),
        "chunks": {"n_chunks": plan.n_chunks, "chunk_size": plan.chunk_size},
    })
    centre = surface.centre_index()
    if "centre_loss" not in surface.meta and centre is not None and not surface.bounded[centre]:
        surface.meta["centre_loss"] = float(surface.loss[centre])
        if surface.accuracy is not None:
            surface.meta["centre_accuracy"] = float(surface.accuracy[centre])
    if "hessian_error" in surface.extra and isinstance(surface.meta.get("hessian"), Mapping):
        # the curvature maps (pipeline.curvature.maps): points whose Lanczos run stopped above tol
        error = surface.extra["hessian_error"]
        finite = error[np.isfinite(error)]
        tol = float(surface.meta["hessian"].get("tol", 0.0))
        surface.meta["hessian"] = {**surface.meta["hessian"], "unconverged_points": int((finite > tol).sum()),
                                   "worst_error": float(finite.max()) if finite.size else None}
    if first_info:  # what the evaluator reported for chunk 0 (the engine's resolved plan)
        surface.meta["engine"] = {**dict(surface.meta.get("engine") or {}), **first_info}
    return surface


def _incomplete_message(store: Any, plan: ChunkPlan, missing: list[int], bad_ids: list[int],
                        bad: Mapping[int, str]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} of {plan.n_chunks} chunks missing ({ranges(missing)})")
    if bad_ids:
        parts.append(f"{len(bad_ids)} corrupted ({ranges(bad_ids)}: {bad[bad_ids[0]]})")
    counts = {r.get("count") for r in _shard_records(store)}
    if len(counts) == 1 and isinstance(k := counts.pop(), int):
        owners = sorted({c % k for c in missing + bad_ids})
        hint = ("rerun " + ", ".join(f"{param('shard')} {s}/{k}" for s in owners) + " (a rerun recomputes "
                "corrupted chunks) and merge again")
    else:
        hint = (f"run the missing shards ({param('shard')} i/k) or the command without {param('shard')}/"
                f"{param('merge')}, then merge again")
    what = store.root.name[:-len(".parts")] if store.root is not None else "the surface"
    return f"cannot assemble {what}: " + "; ".join(parts) + f"; {hint}"


def _shard_records(store: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    if store.root is None:  # chunks in memory
        return records
    for p in sorted(store.root.glob("shard_*-of-*.json")):
        try:
            records.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return records
