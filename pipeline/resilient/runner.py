"""Resumable, distributable surface evaluation: chunks of points -> work directory -> ``.vts``.

:func:`evaluate_surface` evaluates the chunks of a grid that are not finished yet, persists each
one as soon as it is done (:class:`~pipeline.resilient.store.ChunkStore`) and, when every chunk is
there, assembles the :class:`~pipeline.surface.Surface` and writes it with
:func:`pipeline.vtkio.write_surface`. The same call serves four situations:

- a plain run, and its rerun after a crash or kill (finished chunks are reused);
- one rank of a torchrun job (``comm`` a :class:`~pipeline.resilient.comm.TorchComm`): rank 0
  checks the work directory and broadcasts the chunks still to do; ranks take every
  ``world_size``-th of them; after a barrier rank 0 assembles;
- one shard of an array job (``options.shard``): only that shard's chunks, then stop;
  :func:`merge_surface` assembles later from the shared filesystem.

Evaluation itself is a callable ``evaluate_chunk(coords) -> {name: (n,) array}`` with ``coords``
of shape ``(n, 2)`` (``alpha, beta``); :func:`make_chunk_evaluator` builds it on
:func:`pipeline.landscape.evaluate_points`. A point's value does not depend on the other points
of its call, and chunks are fixed by the configuration, so a resumed or distributed grid is
bitwise identical to an uninterrupted one on the same device in deterministic mode.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..config import Grid
from ..errors import LosscapeError
from ..progress import progress_bar
from ..surface import Surface
from .comm import Comm, LocalComm, RankFailedError
from .plan import ChunkPlan, Shard, auto_chunk_size, missing_chunks
from .store import ARRAYS, TEST_ARRAYS, ChunkStore, CorruptChunkError, fingerprint_of, parts_dir, write_atomic

log = logging.getLogger(__name__)

__all__ = ["ResumeOptions", "SurfaceOutcome", "ChunkEvaluator", "evaluate_surface", "merge_surface",
           "assemble_surface", "make_chunk_evaluator", "plan_for"]

ChunkEvaluator = Callable[[np.ndarray], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class ResumeOptions:
    """How a surface is computed (never what: that is the identity)."""

    chunk_size: int | None = None  # points per chunk; None: auto_chunk_size(grid.size)
    shard: Shard | None = None  # evaluate only this shard's chunks and stop (array jobs)
    restart: bool = False  # discard the work directory's partial results first
    keep_parts: bool = False  # keep the work directory after the .vts is written
    vti: bool = False  # also write the .vti twin


@dataclass
class SurfaceOutcome:
    """What one process did. ``written`` is the ``.vts`` path when this process wrote it."""

    out: Path
    parts: Path
    n_chunks: int
    resumed: int = 0  # chunks of this run (of its shard) found finished and valid when it started
    computed: int = 0  # chunks evaluated by this process
    recomputed: list[int] = field(default_factory=list)  # chunks found corrupted, moved aside, redone
    missing: list[int] = field(default_factory=list)  # chunks still missing (shard mode)
    points: int = 0  # points evaluated in this run by all processes together
    seconds: float = 0.0  # wall time of that evaluation (rank 0: until every rank had finished)
    written: Path | None = None
    surface: Surface | None = None


def plan_for(grid: Grid, chunk_size: int | None) -> ChunkPlan:
    return ChunkPlan(grid.size, int(chunk_size) if chunk_size else auto_chunk_size(grid.size))


def _probe_writable(directory: Path) -> None:
    """Create ``directory`` (and parents) and prove a file can be created there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".losscape-probe-", dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise LosscapeError(f"output directory {directory} is not writable ({exc.strerror or exc})") from None


def _ranges(ids: list[int], limit: int = 8) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"`` (at most ``limit`` pieces)."""
    pieces: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        pieces.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ", ".join(pieces[:limit]) + (", ..." if len(pieces) > limit else "")


def _prepare(store: ChunkStore, out: Path, identity: Mapping[str, Any], plan: ChunkPlan,
             meta: Mapping[str, Any], options: ResumeOptions) -> tuple[list[int], list[int], list[int]]:
    """Open/check the work directory and find the chunks to do: ``(todo, done, quarantined)``."""
    _probe_writable(out.parent)
    store.open(identity, plan, meta, restart=options.restart)
    done, bad = store.scan(plan, fingerprint_of(identity))
    for c, why in sorted(bad.items()):
        moved = store.quarantine(c)
        log.warning("%s; moved aside to %s and recomputing it", why, moved.name)
    if done:
        log.info("resuming: %d of %d chunks already done in %s", len(done), plan.n_chunks, store.root)
    return missing_chunks(plan, done, options.shard), done, sorted(bad)


def evaluate_surface(evaluate_chunk: ChunkEvaluator, grid: Grid, out: str | os.PathLike, *,
                     identity: Mapping[str, Any], meta: Mapping[str, Any] | None = None,
                     options: ResumeOptions = ResumeOptions(), comm: Comm | None = None) -> SurfaceOutcome:
    """Evaluate (the rest of) a surface in chunks, then write ``out`` (see the module docstring).

    Parameters
    ----------
    evaluate_chunk : callable ``(n, 2) coords -> {"loss", "accuracy", "bounded", "samples"[, "test_loss",
        "test_accuracy"]: (n,) arrays}``, optionally with ``"info"``: a JSON dict kept in the chunk's
        header (the engine's resolved plan: chunk 0's is merged into ``meta["engine"]``)
    grid : Grid
        Flat point ``k = i * ny + j`` is ``grid.coords()[k]``.
    out : path of the ``.vts``; the work directory is ``out + ".parts"``.
    identity : dict
        Everything that changes values (:func:`~pipeline.resilient.fingerprint.surface_identity`); a
        work directory made for another identity is refused unless ``options.restart``.
    meta : dict
        The surface's ``losscape_meta`` (stored in the manifest, so a later merge writes the same).
    comm : Comm, default LocalComm()
        Rank 0 prepares and assembles; every rank evaluates its interleaved share.

    Returns
    -------
    SurfaceOutcome; ``written`` is set on the process that wrote ``out`` (rank 0, not in shard mode).

    Raises
    ------
    LosscapeError (one line) on a refused configuration, an unwritable directory, a failed chunk write
    (e.g. disk full) or a rank that died; finished chunks stay in the work directory in every case.
    """
    out = Path(out)
    comm = comm or LocalComm()
    if options.shard is not None and options.restart:
        raise ValueError("--restart cannot be combined with --shard (concurrent shards would delete each "
                         f"other's chunks); delete {parts_dir(out)} instead")
    plan = plan_for(grid, options.chunk_size)
    store = ChunkStore(parts_dir(out))
    fp = fingerprint_of(identity)
    outcome = SurfaceOutcome(out, store.root, plan.n_chunks)

    # Rank 0 alone touches the directory before the others start, then tells them what to do.
    todo: list[int] = []
    failure: str | None = None
    if comm.rank == 0:
        try:
            todo, done, bad = _prepare(store, out, identity, plan, dict(meta or {}), options)
            shard = options.shard
            outcome.resumed = sum(1 for c in done if shard is None or shard.owns(c))  # of this run's chunks
            outcome.recomputed = bad
        except (LosscapeError, OSError, ValueError) as exc:
            failure = str(exc)
            if comm.world_size == 1:
                raise
    failure, todo = comm.broadcast((failure, todo))
    if failure is not None:
        raise LosscapeError(failure)

    mine = todo[comm.rank::comm.world_size]
    coords = grid.coords()  # (P, 2)
    t0 = time.perf_counter()
    _compute(evaluate_chunk, store, plan, coords, mine, fp, comm, outcome)
    try:
        comm.barrier("all chunks were finished")
    except RankFailedError as exc:
        raise RankFailedError(f"{exc}; the chunks finished by every rank are kept in {store.root}; rerun the same "
                              f"command to resume") from None
    outcome.seconds = time.perf_counter() - t0
    outcome.points = sum(plan.bounds(c)[1] - plan.bounds(c)[0] for c in todo)

    if comm.rank != 0:
        return outcome
    if options.shard is not None:
        done, _ = store.scan(plan, fp)
        outcome.missing = missing_chunks(plan, done)
        if not missing_chunks(plan, done, options.shard):
            _write_shard_record(store, options.shard, plan)
        return outcome
    return _finish(store, plan, grid, fp, out, options, outcome)


def _compute(evaluate_chunk: ChunkEvaluator, store: ChunkStore, plan: ChunkPlan, coords: np.ndarray,
             mine: list[int], fp: str, comm: Comm, outcome: SurfaceOutcome) -> None:
    n_points = sum(plan.bounds(c)[1] - plan.bounds(c)[0] for c in mine)
    desc = "surface" if comm.world_size == 1 else f"surface [rank 0 of {comm.world_size}]"
    bar_cm = progress_bar(total=n_points, desc=desc, unit="pt") if comm.rank == 0 else contextlib.nullcontext(None)
    with bar_cm as bar:
        for c in mine:
            start, stop = plan.bounds(c)
            try:
                arrays = dict(evaluate_chunk(coords[start:stop]))
                info = arrays.pop("info", None)
                try:
                    store.write_chunk(c, start, stop, coords[start:stop], arrays, fp, info)
                except OSError as exc:
                    raise LosscapeError(f"cannot write chunk {c} to {store.root} ({exc.strerror or exc})") from None
            except Exception as exc:
                kept = (f"{outcome.computed} chunk(s) finished by this process are kept in {store.root}; "
                        f"rerun the same command to resume")
                if isinstance(exc, (LosscapeError, OSError, ValueError, MemoryError)) or "OutOfMemory" in type(exc).__name__:
                    raise LosscapeError(f"{exc}; {kept}") from None
                log.error("evaluation failed at chunk %d; %s", c, kept)
                raise
            except BaseException:  # KeyboardInterrupt and friends: say what is kept, then stop
                log.warning("stopped at chunk %d; %d chunk(s) finished by this process are kept in %s",
                            c, outcome.computed, store.root)
                raise
            outcome.computed += 1
            if bar is not None:
                bar.update(stop - start)


def _write_shard_record(store: ChunkStore, shard: Shard, plan: ChunkPlan) -> None:
    """``shard_i-of-k.json``: this shard's chunks are all there (lets a merge name missing shards)."""
    record = {"shard": str(shard), "index": shard.index, "count": shard.count, "n_chunks": plan.n_chunks,
              "host": os.uname().nodename, "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    write_atomic(store.root / f"shard_{shard.index}-of-{shard.count}.json", json.dumps(record).encode())


def _finish(store: ChunkStore, plan: ChunkPlan, grid: Grid, fp: str, out: Path, options: ResumeOptions,
            outcome: SurfaceOutcome) -> SurfaceOutcome:
    from ..vtkio import write_surface

    manifest = store.read_manifest() or {}
    surface = assemble_surface(store, plan, grid, fp, manifest.get("meta") or {})
    try:
        write_surface(out, surface, vti=options.vti)
    except (OSError, LosscapeError) as exc:  # e.g. disk full: the file is not half-written (atomic)
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise LosscapeError(f"cannot write {out} ({why}); all {plan.n_chunks} chunks are kept in {store.root}; "
                            f"rerun the same command to write it") from None
    outcome.written, outcome.surface = out, surface
    if not options.keep_parts:
        store.remove()
    return outcome


def assemble_surface(store: ChunkStore, plan: ChunkPlan, grid: Grid, fp: str,
                     meta: Mapping[str, Any]) -> Surface:
    """Read every chunk (verifying checksums) into a :class:`Surface` of shape ``(nx, ny)``.

    Raises ``LosscapeError`` naming the missing and corrupted chunks (and, when shard records
    exist, the shards to rerun) when the work directory is incomplete.
    """
    coords = grid.coords()
    flat: dict[str, np.ndarray] = {}
    first_info: dict[str, Any] = {}
    missing: list[int] = []
    bad: dict[int, str] = {}
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
        for name, values in chunk.arrays.items():
            if name not in flat:
                dtype = (ARRAYS | TEST_ARRAYS)[name]
                flat[name] = np.full(plan.n_points, np.nan if dtype is np.float64 else 0, dtype=dtype)
            flat[name][start:stop] = values
    if missing or bad:
        raise LosscapeError(_incomplete_message(store, plan, missing, sorted(bad), bad))
    shape = grid.shape
    has_test = "test_loss" in flat
    surface = Surface(grid, flat["loss"].reshape(shape), flat["accuracy"].reshape(shape),
                      test_loss=flat["test_loss"].reshape(shape) if has_test else None,
                      test_accuracy=flat["test_accuracy"].reshape(shape) if has_test else None,
                      bounded=flat["bounded"].reshape(shape), meta=dict(meta))
    surface.meta.update({
        "grid": grid.to_dict(),
        "forward_samples": int(flat["samples"].sum()),
        "bounded_points": int(surface.bounded.sum()),
        "nonfinite_points": int((~np.isfinite(surface.loss)).sum()),
        "chunks": {"n_chunks": plan.n_chunks, "chunk_size": plan.chunk_size},
    })
    centre = surface.centre_index()
    if "centre_loss" not in surface.meta and centre is not None and not surface.bounded[centre]:
        surface.meta["centre_loss"] = float(surface.loss[centre])
        surface.meta["centre_accuracy"] = float(surface.accuracy[centre])
    if first_info:  # what the evaluator reported for chunk 0 (the engine's resolved plan)
        surface.meta["engine"] = {**dict(surface.meta.get("engine") or {}), **first_info}
    return surface


def _incomplete_message(store: ChunkStore, plan: ChunkPlan, missing: list[int], bad_ids: list[int],
                        bad: Mapping[int, str]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} of {plan.n_chunks} chunks missing ({_ranges(missing)})")
    if bad_ids:
        parts.append(f"{len(bad_ids)} corrupted ({_ranges(bad_ids)}: {bad[bad_ids[0]]})")
    counts = {r.get("count") for r in _shard_records(store)}
    if len(counts) == 1 and isinstance(k := counts.pop(), int):
        owners = sorted({c % k for c in missing + bad_ids})
        hint = ("rerun " + ", ".join(f"--shard {s}/{k}" for s in owners) + " (a rerun recomputes corrupted "
                "chunks) and merge again")
    else:
        hint = "run the missing shards (--shard i/k) or the command without --shard/--merge, then merge again"
    return f"cannot assemble {store.root.name[:-len('.parts')]}: " + "; ".join(parts) + f"; {hint}"


def _shard_records(store: ChunkStore) -> list[dict[str, Any]]:
    records = []
    for p in sorted(store.root.glob("shard_*-of-*.json")):
        try:
            records.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return records


def merge_surface(grid: Grid, out: str | os.PathLike, *, identity: Mapping[str, Any],
                  options: ResumeOptions = ResumeOptions()) -> SurfaceOutcome:
    """Assemble ``out`` from the chunks that shard jobs left in the work directory.

    Refuses (one line, nothing written) when the directory is missing, was made for another
    identity, or lacks chunks: the message lists them and the shards to rerun.
    """
    out = Path(out)
    plan = plan_for(grid, options.chunk_size)
    store = ChunkStore(parts_dir(out))
    manifest = store.read_manifest()
    if manifest is None:
        hint = f" ({out} exists: merged already?)" if out.exists() else ""
        raise LosscapeError(f"nothing to merge: {store.root} holds no manifest{hint}; run the shards first "
                            f"with --shard i/k")
    # a merge never discards chunks: the remedy is to repeat the shards' options, not --restart
    store.check(manifest, identity, plan, remedy="give --merge the same options as the shards (grid, split, "
                "--device, --precision, ...)")
    _probe_writable(out.parent)
    outcome = SurfaceOutcome(out, store.root, plan.n_chunks)
    return _finish(store, plan, grid, fingerprint_of(identity), out, options, outcome)


def make_chunk_evaluator(model: Any, directions: Any, data: Any, config: Any, test_data: Any = None
                         ) -> ChunkEvaluator:
    """An ``evaluate_chunk`` on the engine: :func:`pipeline.landscape.evaluate_points`.

    ``data``/``test_data`` should already be on ``config.device`` (moved once, not per chunk).
    The test split is evaluated without the cap (its loss is reported, not bounded).
    """
    from ..landscape import evaluate_points

    test_config = dataclasses.replace(config, cap=None) if test_data is not None else None

    def evaluate_chunk(coords: np.ndarray) -> dict[str, np.ndarray]:
        r = evaluate_points(model, directions, coords, data, config, progress=False)  # our bar counts chunks
        arrays: dict[str, Any] = {"loss": _np(r.loss), "accuracy": _np(r.accuracy), "bounded": _np(r.bounded),
                                  "samples": _np(r.samples)}
        if getattr(r, "plan", None) is not None:
            arrays["info"] = {"plan": r.plan.to_dict(), "notes": list(getattr(r, "notes", []))}
        if test_data is not None:
            t = evaluate_points(model, directions, coords, test_data, test_config, progress=False)
            arrays.update(test_loss=_np(t.loss), test_accuracy=_np(t.accuracy),
                          samples=arrays["samples"] + _np(t.samples))
        return arrays

    return evaluate_chunk


def _np(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().to("cpu").numpy()
    return np.asarray(value)
