"""The triangulated grid: total order, link components by table, classification, steepest neighbours.

Internally every per-vertex array is laid out ``(ny, nx)`` (``(nz, ny, nx)`` in 3D) so that the
C-order flat index is the vertex id ``i + nx * j`` (``+ nx * ny * k``; docs/architecture.md).
Only ``analyze`` transposes, once on the way in and once on the way out.

The triangulation is Freudenthal's (Kuhn's) with the first axis reversed: a cell's simplices are
the monotone lattice paths from its corner ``(i+1, j, k)`` to ``(i, j+1, k+1)``, so every face
of constant ``k`` is split along its ``(i+1, j)-(i, j+1)`` diagonal, the 2D convention. Two
vertices are joined when their offset is a non-zero sum of distinct steps ``(-1, 0, 0)``,
``(0, 1, 0)``, ``(0, 0, 1)`` (or minus one): 6 neighbours in 2D, 14 in 3D. The triangulation
is a flag complex, so two neighbours of a vertex are joined in its link exactly when they are
joined to each other; the link is a cycle (2D) or a triangulated sphere (3D), a path or a disk
on the boundary, where off-grid slots are missing.

Link components are looked up: a vertex's lower (upper) link is a bit mask over its slots, and
a table made once per dimension gives, for each of the ``2**slots`` masks, the number of
connected components and one slot of each.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np

# Link slots of vertex (i, j) in 2D, counter-clockwise (consecutive slots span a triangle).
SLOTS = ((1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1))  # (di, dj)
STEPS_3D = ((-1, 0, 0), (0, 1, 0), (0, 0, 1))  # the steps of a cell's monotone paths

# TTK's vtkScalarFieldCriticalPoints codes.
MINIMUM, SADDLE, SADDLE2, MAXIMUM, DEGENERATE, REGULAR = 0, 1, 2, 3, 4, 5


def _slots_3d() -> tuple[tuple[int, int, int], ...]:
    sums = [tuple(int(v) for v in np.sum(c, axis=0)) for r in (1, 2, 3) for c in combinations(STEPS_3D, r)]
    return tuple(sums + [tuple(-v for v in s) for s in sums])


@dataclass(frozen=True)
class LinkTable:
    """Link components of every slot mask: ``count[mask]`` (int8) and ``reps[mask]`` (int8, one
    slot per component, -1 padded; ``(2**S, R)``)."""

    slots: tuple[tuple[int, ...], ...]
    count: np.ndarray
    reps: np.ndarray


@lru_cache(maxsize=None)
def link_table(ndim: int) -> LinkTable:
    """The table of the 2D (6 slots) or 3D (14 slots) neighbourhood, computed once."""
    slots = SLOTS if ndim == 2 else _slots_3d()
    offsets = set(slots)
    s = len(slots)
    edges = [(a, b) for a, b in combinations(range(s), 2)
             if tuple(x - y for x, y in zip(slots[a], slots[b])) in offsets]
    masks = np.arange(2 ** s, dtype=np.int64)
    present = ((masks[:, None] >> np.arange(s)) & 1).astype(bool)  # (2^S, S)
    label = np.where(present, np.arange(s), s)  # each present slot starts as its own component
    while True:  # propagate the smallest slot along the link's edges
        before = label.copy()
        for a, b in edges:
            both = present[:, a] & present[:, b]
            low = np.minimum(label[:, a], label[:, b])
            label[both, a] = low[both]
            label[both, b] = low[both]
        if np.array_equal(before, label):
            break
    root = present & (label == np.arange(s))  # one slot per component: its smallest
    count = root.sum(axis=1).astype(np.int8)
    width = int(count.max())
    reps = np.full((2 ** s, width), -1, dtype=np.int8)
    rows, cols = np.nonzero(root)
    rank = np.cumsum(root, axis=1)[rows, cols] - 1
    reps[rows, rank] = cols
    return LinkTable(slots, count, reps)


def vertex_order(vt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total order by (value, vertex id); non-finite values above every finite one.

    Parameters
    ----------
    vt : (ny, nx) or (nz, ny, nx) float64

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


def slot_offsets(shape: tuple[int, ...]) -> np.ndarray:
    """(S,) int64 flat-index offset of each link slot of a grid laid out ``shape`` ((ny, nx) or (nz, ny, nx))."""
    nx = shape[-1]
    ny = shape[-2]
    slots = link_table(len(shape)).slots
    return np.array([s[0] + nx * s[1] + (nx * ny * s[2] if len(s) > 2 else 0) for s in slots], dtype=np.int64)


@dataclass
class Links:
    """What the sweeps need of every vertex's link (flat arrays of length N).

    lower, upper : uint16 slot masks; lower_count, upper_count : int8 components;
    down, up : int64 the lowest lower / highest upper neighbour (the vertex itself at a minimum /
    maximum).
    """

    lower: np.ndarray
    upper: np.ndarray
    lower_count: np.ndarray
    upper_count: np.ndarray
    down: np.ndarray
    up: np.ndarray


def links(rank_grid: np.ndarray) -> Links:
    """Link masks, component counts and steepest neighbours of every vertex, slot by slot.

    ``rank_grid``: (ny, nx) or (nz, ny, nx) rank of each vertex in the total order.
    """
    shape = rank_grid.shape
    table = link_table(len(shape))
    padded = np.full(tuple(n + 2 for n in shape), -1, dtype=rank_grid.dtype)
    padded[tuple(slice(1, -1) for _ in shape)] = rank_grid
    r = rank_grid.ravel()
    n = r.size
    lower = np.zeros(n, np.uint16)
    upper = np.zeros(n, np.uint16)
    low_rank = np.full(n, np.iinfo(r.dtype).max, r.dtype)
    high_rank = np.full(n, -1, r.dtype)
    down_slot = np.full(n, -1, np.int8)
    up_slot = np.full(n, -1, np.int8)
    for k, slot in enumerate(table.slots):
        d = slot[::-1]  # (dk,) dj, di: the layout's axis order
        nb = padded[tuple(slice(1 + o, 1 + o + m) for o, m in zip(d, shape))].ravel()
        is_low = (nb >= 0) & (nb < r)
        is_up = nb > r
        lower |= is_low.astype(np.uint16) << np.uint16(k)
        upper |= is_up.astype(np.uint16) << np.uint16(k)
        better = is_low & (nb < low_rank)
        low_rank[better], down_slot[better] = nb[better], k
        better = is_up & (nb > high_rank)
        high_rank[better], up_slot[better] = nb[better], k
    offsets = slot_offsets(shape)
    ids = np.arange(n, dtype=np.int64)
    down = np.where(down_slot >= 0, ids + offsets[down_slot], ids)
    up = np.where(up_slot >= 0, ids + offsets[up_slot], ids)
    return Links(lower, upper, table.count[lower], table.count[upper], down, up)


def representatives(mask: np.ndarray, vertices: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(V, R) vertex ids: one neighbour of each link component of ``mask`` (the vertices' lower or
    upper masks), -1 padded."""
    table = link_table(len(shape))
    reps = table.reps[mask].astype(np.int64)  # (V, R) slots
    nbr = vertices[:, None] + slot_offsets(shape)[np.maximum(reps, 0)]
    return np.where(reps >= 0, nbr, -1)


def classify(lower_count: np.ndarray, upper_count: np.ndarray, ndim: int = 2) -> np.ndarray:
    """TTK critical type from the numbers of lower and upper link components.

    minimum: no lower link; maximum: no upper link; regular: one of each. 2D: otherwise a
    saddle of multiplicity ``max(lower, upper) - 1``, coded DEGENERATE when that is 2 or more
    (monkey saddles), as TTK does. 3D: a 1-saddle has two lower components and one upper
    (it joins two components of the sublevel set), a 2-saddle one lower and two upper (it joins
    two of the superlevel set); any other is DEGENERATE.
    """
    kind = np.full(lower_count.shape, REGULAR, dtype=np.int8)
    if ndim == 2:
        multiplicity = np.maximum(lower_count, upper_count) - 1
        kind[multiplicity == 1] = SADDLE
        kind[multiplicity >= 2] = DEGENERATE
    else:
        kind[(lower_count > 1) | (upper_count > 1)] = DEGENERATE
        kind[(lower_count == 2) & (upper_count == 1)] = SADDLE
        kind[(lower_count == 1) & (upper_count == 2)] = SADDLE2
    kind[lower_count == 0] = MINIMUM
    kind[upper_count == 0] = MAXIMUM
    return kind


def follow(ptr: np.ndarray) -> np.ndarray:
    """Roots of a forest given by parent pointers (roots point to themselves), by pointer jumping."""
    while True:
        nxt = ptr[ptr]
        if np.array_equal(nxt, ptr):
            return ptr
        ptr = nxt
