"""The one code path from a grid to a surface (or a lattice to a volume): chunks of points
evaluated, kept, assembled.

A grid's flat points are cut into fixed chunks (:mod:`.plan`); so are a lattice's, and every
function here takes either (a :class:`~pipeline.datamodel.Lattice` gives a
:class:`~pipeline.datamodel.Volume` written as ``.vti``). :func:`compute_chunks` evaluates
the chunks asked for and keeps each one as soon as it is done, in a store: on disk, in the work
directory beside the output (:class:`~.store.ChunkStore`), or in memory
(:class:`~.store.MemoryStore`). :func:`~.assemble.assemble_surface` then reads them back into a
:class:`~pipeline.datamodel.Surface`. Two entries share that path:

- :func:`evaluate_in_memory`: every chunk, in memory, nothing written (the public
  :func:`pipeline.surface.evaluate`);
- :func:`evaluate_surface`: the chunks not finished yet, on disk, then the ``.vts``. It serves a
  plain run and its rerun after a crash or kill (finished chunks are reused); one rank of a
  distributed job (``comm`` a :class:`~.distribute.TorchComm`: rank 0 checks the work
  directory and broadcasts the chunks still to do, ranks take every ``world_size``-th of them,
  after a barrier rank 0 assembles); and one shard of an array job (``options.shard``: only
  that shard's chunks, then stop; :func:`merge_surface` assembles later).

Evaluation itself is a callable ``evaluate_chunk(coords) -> {name: (n,) array}`` with ``coords``
of shape ``(n, 2)`` (``alpha, beta``; ``(n, 3)`` with gamma for a lattice), from
:func:`~.evaluator.make_chunk_evaluator`. A point's value does not depend on the other points of its call, and chunks are fixed by the
configuration, so a resumed, distributed or in-memory grid is bitwise identical to an
uninterrupted one on the same device in deterministic mode.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import check_writable, write_bytes
from ..datamodel import Grid, Lattice, Surface
from ..errors import LossvistaError, ParameterError, param
from ..progress import progress_bar
from .assemble import assemble_surface
from .distribute import Comm, LocalComm, RankFailedError
from .evaluator import ChunkEvaluator
from .plan import ChunkPlan, Shard, auto_chunk_size, missing_chunks
from .store import ChunkStore, MemoryStore, fingerprint_of, parts_dir

log = logging.getLogger(__name__)

__all__ = ["ResumeOptions", "SurfaceOutcome", "evaluate_surface", "evaluate_in_memory", "merge_surface",
           "compute_chunks", "plan_for"]


@dataclass(frozen=True)
class ResumeOptions:
    """How a surface is computed (never what: that is the identity)."""

    chunk_size: int | None = None  # points per chunk; None: auto_chunk_size(grid.size)
    shard: Shard | None = None  # evaluate only this shard's chunks and stop (array jobs)
    restart: bool = False  # discard the work directory's partial results first
    keep_parts: bool = False  # keep the work directory after the .vts is written
    vti: bool = False  # also write the .vti twin

    def __post_init__(self) -> None:
        if self.chunk_size is not None and (isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int)
                                            or self.chunk_size < 1):
            raise ParameterError(f"{param('chunk_size')} must be a positive integer; got {self.chunk_size!r}")
        if self.shard is not None and self.restart:
            raise ParameterError(f"{param('restart')} cannot be combined with {param('shard')} (concurrent shards "
                                 f"would delete each other's chunks); delete the OUT.parts directory instead")


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
    complete: bool = False  # ``out`` already held this surface (same fingerprint): nothing was evaluated


def plan_for(grid: Grid | Lattice, chunk_size: int | None) -> ChunkPlan:
    return ChunkPlan(grid.size, int(chunk_size) if chunk_size else auto_chunk_size(grid.size))


def _prepare(store: ChunkStore, out: Path, identity: Mapping[str, Any], plan: ChunkPlan,
             meta: Mapping[str, Any], options: ResumeOptions) -> tuple[list[int], list[int], list[int]]:
    """Open/check the work directory and find the chunks to do: ``(todo, done, quarantined)``."""
    check_writable(out, make_parents=True)
    store.open(identity, plan, meta, restart=options.restart)
    done, bad = store.scan(plan, fingerprint_of(identity))
    for c, why in sorted(bad.items()):
        moved = store.quarantine(c)
        if options.shard is None or options.shard.owns(c):
            log.warning("%s; moved aside to %s and recomputing it", why, moved.name)
        else:
            owner = Shard(c % options.shard.count, options.shard.count)
            log.warning("%s; moved aside to %s: it belongs to shard %s, which recomputes it when rerun", why,
                        moved.name, owner)
    if done:
        log.info("resuming: %d of %d chunks already done in %s", len(done), plan.n_chunks, store.root)
    return missing_chunks(plan, done, options.shard), done, sorted(bad)


def evaluate_surface(evaluate_chunk: ChunkEvaluator, grid: Grid | Lattice, out: str | os.PathLike, *,
                     identity: Mapping[str, Any], meta: Mapping[str, Any] | None = None,
                     options: ResumeOptions = ResumeOptions(), comm: Comm | None = None) -> SurfaceOutcome:
    """Evaluate (the rest of) a surface in chunks, then write ``out`` (see the module docstring).

    Parameters
    ----------
    evaluate_chunk : callable ``(n, 2) or (n, 3) coords -> {"loss", "accuracy", "bounded", "samples"[, "test_loss",
        "test_accuracy"]: (n,) arrays}``, optionally with ``"info"``: a JSON dict kept in the chunk's
        header (the engine's resolved plan: chunk 0's is merged into ``meta["engine"]``)
    grid : Grid or Lattice
        Flat point ``k`` is ``grid.coords()[k]`` (``k = i * ny + j``; ``(i * ny + j) * nz + l``).
    out : path of the ``.vts`` (``.vti`` for a lattice); the work directory is ``out + ".parts"``.
    identity : dict
        Everything that changes values (:func:`~pipeline.surface.fingerprint.surface_identity`); a
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
    LossvistaError (one line) on a refused configuration, an unwritable directory, a failed chunk write
    (e.g. disk full) or a rank that died; finished chunks stay in the work directory in every case.
    """
    out = Path(out)
    comm = comm or LocalComm()
    plan = plan_for(grid, options.chunk_size)
    store = ChunkStore(parts_dir(out))
    fp = fingerprint_of(identity)
    outcome = SurfaceOutcome(out, store.root, plan.n_chunks)

    # Rank 0 alone touches the directory before the others start, then tells them what to do.
    todo: list[int] = []
    failure: str | None = None
    kept = _already_computed(out, store, fp, options) if comm.rank == 0 else None
    if kept is not None and comm.world_size == 1:
        return _kept(out, kept, outcome)
    if comm.broadcast(kept is not None):
        return _kept(out, kept, outcome) if comm.rank == 0 else outcome
    if comm.rank == 0:
        try:
            todo, done, bad = _prepare(store, out, identity, plan, dict(meta or {}), options)
            shard = options.shard
            outcome.resumed = sum(1 for c in done if shard is None or shard.owns(c))  # of this run's chunks
            outcome.recomputed = bad
        except (LossvistaError, OSError, ValueError) as exc:
            failure = exc.template if isinstance(exc, LossvistaError) else str(exc)
            if comm.world_size == 1:
                raise
    failure, todo = comm.broadcast((failure, todo))
    if failure is not None:
        raise LossvistaError(failure)

    mine = todo[comm.rank::comm.world_size]
    coords = grid.coords()  # (P, 2) or (P, 3)
    t0 = time.perf_counter()
    compute_chunks(evaluate_chunk, store, plan, coords, mine, fp, comm, outcome)
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


def _already_computed(out: Path, store: ChunkStore, fp: str, options: ResumeOptions) -> Any:
    """The surface (or volume) in ``out`` when it is the one of fingerprint ``fp``, whole (no work
    directory beside it); None otherwise."""
    if options.restart or options.shard is not None or not out.is_file() or store.root.exists():
        return None
    from ..vtkio import read_grid

    try:
        surface = read_grid(out)
    except (LossvistaError, OSError, ValueError):
        return None  # unreadable: computed again
    return surface if surface.meta.get("fingerprint") == fp else None


def _kept(out: Path, surface: Any, outcome: SurfaceOutcome) -> SurfaceOutcome:
    log.debug("%s already holds this computation (same fingerprint); kept (restart to compute it again)", out)
    outcome.surface, outcome.written, outcome.complete = surface, out, True
    outcome.resumed = outcome.n_chunks
    return outcome


def compute_chunks(evaluate_chunk: ChunkEvaluator, store: Any, plan: ChunkPlan, coords: np.ndarray,
                   mine: list[int], fp: str, comm: Comm, outcome: SurfaceOutcome, progress: bool = True) -> None:
    """Evaluate the chunks ``mine`` and put each into ``store`` as soon as it is done.

    A failure names what was kept (chunks on disk survive it; a rerun resumes from them).
    """
    n_points = sum(plan.bounds(c)[1] - plan.bounds(c)[0] for c in mine)
    what = "volume" if coords.shape[1] == 3 else "surface"
    desc = what if comm.world_size == 1 else f"{what} [rank 0 of {comm.world_size}]"
    show = progress and comm.rank == 0
    bar_cm = progress_bar(total=n_points, desc=desc, unit="pt") if show else contextlib.nullcontext(None)
    with bar_cm as bar:
        for c in mine:
            start, stop = plan.bounds(c)
            try:
                arrays = dict(evaluate_chunk(coords[start:stop]))
                info = arrays.pop("info", None)
                try:
                    store.write_chunk(c, start, stop, coords[start:stop], arrays, fp, info)
                except OSError as exc:
                    if store.root is not None and not store.root.is_dir():
                        raise _work_directory_gone(store) from None
                    raise LossvistaError(f"cannot write chunk {c} to {store.root} ({exc.strerror or exc})") from None
                outcome.computed += 1
                _hold_if_asked(outcome.computed, store.root)
            except Exception as exc:
                if store.root is None or isinstance(exc, _WorkDirectoryGone):  # nothing was kept: as it is
                    raise
                kept = (f"{outcome.computed} chunk(s) finished by this process are kept in {store.root}; "
                        f"rerun the same command to resume")
                user_error = isinstance(exc, (LossvistaError, OSError, ValueError, MemoryError))
                if user_error or "OutOfMemory" in type(exc).__name__:
                    text = exc.template if isinstance(exc, LossvistaError) else str(exc)
                    raise LossvistaError(f"{text}; {kept}") from None
                log.error("evaluation failed at chunk %d; %s", c, kept)
                raise
            except BaseException:  # KeyboardInterrupt and friends: say what is kept, then stop
                if store.root is not None:
                    log.warning("stopped at chunk %d; %d chunk(s) finished by this process are kept in %s",
                                c, outcome.computed, store.root)
                raise
            if bar is not None:
                bar.update(stop - start)


HOLD_ENV = "LOSSVISTA_HOLD_AFTER_CHUNKS"


def _hold_if_asked(computed: int, work_dir: Path | None) -> None:
    """With ``LOSSVISTA_HOLD_AFTER_CHUNKS=n`` (or ``n:TEXT``: only in a work directory whose path
    holds TEXT) in the environment, a process that has written ``n`` chunks of a surface waits
    there until a signal stops it: the interruption tests stop a run at a known point, however
    fast the machine would finish the rest."""
    asked = os.environ.get(HOLD_ENV)
    if not asked:
        return
    count, _, where = asked.partition(":")
    if count.isdigit() and computed == int(count) and where in str(work_dir or ""):
        log.debug("%s=%s: holding after %d chunks until a signal", HOLD_ENV, asked, computed)
        while True:
            time.sleep(0.05)


class _WorkDirectoryGone(LossvistaError):
    """The work directory vanished under this process (another process on the same output finished)."""


def _work_directory_gone(store: ChunkStore) -> LossvistaError:
    out = store.root.with_name(store.root.name[:-len(".parts")])
    done = f"{out} exists: another process on the same output finished it" if out.exists() else (
        f"another process removed it; rerun the command to compute {out}")
    return _WorkDirectoryGone(f"{store.root} was removed while this process was evaluating ({done}); the chunks of "
                              f"this process went with it")


def _write_shard_record(store: ChunkStore, shard: Shard, plan: ChunkPlan) -> None:
    """``shard_i-of-k.json``: this shard's chunks are all there (lets a merge name missing shards)."""
    record = {"shard": str(shard), "index": shard.index, "count": shard.count, "n_chunks": plan.n_chunks,
              "host": os.uname().nodename, "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    write_bytes(store.root / f"shard_{shard.index}-of-{shard.count}.json", json.dumps(record).encode())


def _finish(store: ChunkStore, plan: ChunkPlan, grid: Grid | Lattice, fp: str, out: Path, options: ResumeOptions,
            outcome: SurfaceOutcome) -> SurfaceOutcome:
    from ..vtkio import write_surface, write_volume

    if not store.root.is_dir():
        raise _work_directory_gone(store)
    manifest = store.read_manifest() or {}
    surface = assemble_surface(store, plan, grid, fp, manifest.get("meta") or {})
    surface.meta["fingerprint"] = fp  # a rerun of the same computation keeps this file (_already_computed)
    try:
        if isinstance(grid, Lattice):
            write_volume(out, surface)
        else:
            write_surface(out, surface, vti=options.vti)
    except (OSError, LossvistaError) as exc:  # e.g. disk full: the file is not half-written (atomic)
        why = getattr(exc, "cause", None) or (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
        raise LossvistaError(f"cannot write {out} ({why}); all {plan.n_chunks} chunks are kept in {store.root}; "
                             f"rerun the same command to write it") from None
    outcome.written, outcome.surface = out, surface
    if not options.keep_parts:
        store.remove()
    return outcome


def merge_surface(grid: Grid | Lattice, out: str | os.PathLike, *, identity: Mapping[str, Any],
                  options: ResumeOptions = ResumeOptions(), meta: Mapping[str, Any] | None = None) -> SurfaceOutcome:
    """Assemble ``out`` from the chunks that shard jobs left in the work directory.

    Refuses (one line, nothing written) when the directory is missing, was made for another
    identity, or lacks chunks: the message lists them and the shards to rerun. A damaged
    manifest is rebuilt for ``identity`` (with ``meta``) from the checksummed chunks.
    """
    out = Path(out)
    plan = plan_for(grid, options.chunk_size)
    store = ChunkStore(parts_dir(out))
    manifest = store.repair_manifest(identity, plan, meta) if store.manifest_path.is_file() else None
    manifest = manifest or store.read_manifest()
    if manifest is None:
        hint = f" ({out} exists: merged already?)" if out.exists() else ""
        raise LossvistaError(f"nothing to merge: {store.root} holds no manifest{hint}; run the shards first "
                             f"with {param('shard')} i/k")
    # a merge never discards chunks: the remedy is to repeat the shards' options, not a restart
    store.check(manifest, identity, plan, remedy=f"give {param('merge')} the same options as the shards (grid, "
                f"split, {param('device')}, {param('precision')}, ...)")
    check_writable(out, make_parents=True)
    outcome = SurfaceOutcome(out, store.root, plan.n_chunks)
    return _finish(store, plan, grid, fingerprint_of(identity), out, options, outcome)


def evaluate_in_memory(evaluate_chunk: ChunkEvaluator, grid: Grid | Lattice, meta: Mapping[str, Any], *,
                       chunk_size: int | None = None, progress: bool = True) -> Surface:
    """Every chunk of ``grid`` evaluated and assembled in memory (nothing is written)."""
    plan = plan_for(grid, chunk_size)
    outcome = SurfaceOutcome(Path(), Path(), plan.n_chunks)
    store = MemoryStore()
    compute_chunks(evaluate_chunk, store, plan, grid.coords(), list(range(plan.n_chunks)), "", LocalComm(),
                   outcome, progress=progress)
    return assemble_surface(store, plan, grid, "", meta)
