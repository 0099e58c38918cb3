"""The triangulated grid: total order, links, link components and steepest neighbours.

Internally every per-vertex array is laid out ``(ny, nx)`` so that the C-order flat index
of ``[j, i]`` is the vertex id ``i + nx * j`` (docs/architecture.md). Only ``analyze`` transposes,
once on the way in and once on the way out.
"""
from __future__ import annotations

import numpy as np

# Link slots of vertex (i, j), counter-clockwise; consecutive slots (cyclically) span a
# triangle with the vertex. This is the 6-neighbourhood of the (i+1, j)-(i, j+1) diagonal.
SLOTS = ((1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1))  # (di, dj)

# TTK's vtkScalarFieldCriticalPoints codes.
MINIMUM, SADDLE, MAXIMUM, DEGENERATE, REGULAR = 0, 1, 3, 4, 5


def vertex_order(vt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total order by (value, vertex id); non-finite values above every finite one.

    Parameters
    ----------
    vt : (ny, nx) float64

    Returns
    -------
    order : (N,) int64, vertex ids from lowest to highest.
    rank : (N,) int32 or int64, position of each vertex in ``order``.
    """
    flat = vt.ravel()
    key = np.where(np.isfinite(flat), flat, np.inf)
    order = np.argsort(key, kind="stable")  # stable: ties keep the vertex-id order
    n = flat.size
    rank = np.empty(n, dtype=np.int32 if n < 2**31 - 1 else np.int64)
    rank[order] = np.arange(n, dtype=rank.dtype)
    return order, rank


def slot_offsets(nx: int) -> np.ndarray:
    """(6,) int64 flat-index offset of each link slot."""
    return np.array([di + nx * dj for di, dj in SLOTS], dtype=np.int64)


def neighbour_ranks(rank2d: np.ndarray) -> np.ndarray:
    """(6, ny, nx) rank of each link slot's vertex, -1 where the slot is off the grid."""
    ny, nx = rank2d.shape
    padded = np.full((ny + 2, nx + 2), -1, dtype=rank2d.dtype)
    padded[1:-1, 1:-1] = rank2d
    return np.stack([padded[1 + dj:1 + dj + ny, 1 + di:1 + di + nx] for di, dj in SLOTS])


def run_starts(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of a part of the link, given as a (6, ny, nx) slot mask.

    A component is a maximal run of consecutive masked slots. Off-grid slots are never
    masked, so a boundary vertex's link behaves as a path, an interior one's as a cycle.

    Returns
    -------
    starts : (6, ny, nx) bool, True at the first slot of each run (for a full cycle, none).
    count : (ny, nx) int8, number of runs (a full cycle counts as one).
    """
    starts = mask & ~np.roll(mask, 1, axis=0)
    count = starts.sum(axis=0, dtype=np.int8) + mask.all(axis=0)
    return starts, count.astype(np.int8)


def classify(lower_count: np.ndarray, upper_count: np.ndarray) -> np.ndarray:
    """TTK critical type from the numbers of lower and upper link components.

    minimum: no lower link; maximum: no upper link; regular: one of each; otherwise a
    saddle of multiplicity ``max(lower, upper) - 1``, coded DEGENERATE when that is 2 or
    more (monkey saddles), as TTK does.
    """
    kind = np.full(lower_count.shape, REGULAR, dtype=np.int8)
    multiplicity = np.maximum(lower_count, upper_count) - 1
    kind[multiplicity == 1] = SADDLE
    kind[multiplicity >= 2] = DEGENERATE
    kind[lower_count == 0] = MINIMUM
    kind[upper_count == 0] = MAXIMUM
    return kind


def steepest(nb: np.ndarray, mask: np.ndarray, rank2d: np.ndarray, lowest: bool) -> np.ndarray:
    """(N,) int64: each vertex's lowest lower (``lowest``) or highest upper neighbour.

    Vertices without such a neighbour (the extrema) point to themselves.
    """
    ny, nx = rank2d.shape
    if lowest:
        slot = np.where(mask, nb, np.iinfo(nb.dtype).max).argmin(axis=0)
    else:
        slot = np.where(mask, nb, -1).argmax(axis=0)
    ptr = np.arange(nx * ny, dtype=np.int64) + slot_offsets(nx)[slot.ravel()]
    extremum = ~mask.any(axis=0).ravel()
    ptr[extremum] = np.flatnonzero(extremum)
    return ptr


def follow(ptr: np.ndarray) -> np.ndarray:
    """Roots of a forest given by parent pointers (roots point to themselves), by pointer jumping."""
    while True:
        nxt = ptr[ptr]
        if np.array_equal(nxt, ptr):
            return ptr
        ptr = nxt
