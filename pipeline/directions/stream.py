"""Streaming over several checkpoints, piece by piece, with bounded resident memory.

PCA of a trajectory and the projection of its checkpoints need, for every parameter
element, the values in all E checkpoints at once; holding them all (the dense E x P matrix)
is what made the reference implementation run out of memory. Here the flattened tensors
are cut into *pieces* (slices of at most a few hundred thousand elements) grouped into
*chunks*. For each chunk every checkpoint file is memory-mapped afresh
(:class:`~pipeline.directions.base.StateSource`), the chunk's pieces are read, and the
mappings are dropped before the next chunk, so the pages the kernel brought in are released.

Resident memory of one chunk is about ``memory_budget`` bytes: four fifths for the mapped
checkpoint pages (4 bytes per float32 element per checkpoint) and one fifth for the float64
differences of the piece being reduced.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch

from .base import StateSource

__all__ = ["DEFAULT_MEMORY_BUDGET", "plan_chunks", "stream_differences", "unique_sources", "Piece"]

# Bytes of working memory per chunk (mapped pages + float64 piece). Smaller budgets map the
# files more often (one weights-only unpickling per file and chunk, ~20 ms for a ResNet-50).
DEFAULT_MEMORY_BUDGET = 64 * 2**20
Piece = tuple[str, int, int]  # (key, start, stop) in the flattened tensor


def plan_chunks(numels: Mapping[str, int], n_sources: int, memory_budget: int = DEFAULT_MEMORY_BUDGET
                ) -> list[list[Piece]]:
    """Cut the flattened tensors ``numels`` (key -> element count, in order) into chunks of pieces.

    A chunk holds at most ``memory_budget / (5 * n_sources)`` elements: 4 bytes of mapped
    float32 per element and source, plus a float64 piece of an eighth of the chunk (1 byte
    per element and source on average).
    """
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 1:
        raise ValueError(f"memory_budget must be a positive number of bytes; got {memory_budget!r}")
    chunk_elems = max(1024, memory_budget // (5 * max(1, n_sources)))
    piece_elems = max(128, chunk_elems // 8)
    chunks: list[list[Piece]] = [[]]
    used = 0
    for key, n in numels.items():
        start = 0
        while start < n:
            stop = min(n, start + piece_elems, start + chunk_elems - used)
            chunks[-1].append((key, start, stop))
            used += stop - start
            start = stop
            if used >= chunk_elems:
                chunks.append([])
                used = 0
    return [c for c in chunks if c]


def unique_sources(sources: Sequence[StateSource]) -> tuple[list[StateSource], list[int]]:
    """Drop repeated files (the centre is usually also the last checkpoint): ``(unique, index)``.

    ``sources[i]`` is ``unique[index[i]]``. A file mapped twice would count twice in resident memory.
    """
    unique: list[StateSource] = []
    seen: dict[object, int] = {}
    index = []
    for s in sources:
        ident = s.path.resolve() if s.path is not None else id(s)
        if ident not in seen:
            seen[ident] = len(unique)
            unique.append(s)
        index.append(seen[ident])
    return unique, index


def stream_differences(centre: StateSource, checkpoints: Sequence[StateSource], chunks: Sequence[Sequence[Piece]],
                       reference: Mapping[str, torch.Size]) -> Iterator[tuple[str, int, int, torch.Tensor]]:
    """Yield ``(key, start, stop, diff)`` for every piece; ``diff`` float64 of shape (E, stop - start).

    ``diff[e]`` is ``checkpoints[e] - centre`` on the flattened tensor ``key`` at
    ``start:stop``. Every distinct file is opened once per chunk (memory-mapped for paths,
    checked against ``reference``, key -> shape) and dropped at the end of the chunk. ``diff``
    is reused for the next piece of the same size: consume it before advancing.
    """
    unique, index = unique_sources([centre, *checkpoints])
    ci, rows = index[0], index[1:]
    buf = None
    for chunk in chunks:
        states = [s.open(reference) for s in unique]
        for key, start, stop in chunk:
            n = stop - start
            if buf is None or buf.shape[1] != n:
                buf = torch.empty(len(rows), n, dtype=torch.float64)
            c = states[ci][key].reshape(-1)[start:stop].to(torch.float64)  # (n,)
            for e, r in enumerate(rows):
                buf[e].copy_(states[r][key].reshape(-1)[start:stop])
            buf -= c
            yield key, start, stop, buf
        del states  # unmaps the files: the pages of this chunk leave resident memory
