"""0-dimensional persistence by union-find over extrema, and the merge tree it builds.

Only saddles can merge components of a sublevel set: a regular vertex's lower link is one
run whose vertices are already connected below it. So the sweep visits the saddles alone,
in filtration order, and unites the components of the extrema that steepest descent
reaches from one vertex of each lower-link run (every vertex is connected to its steepest
descent extremum in the sublevel set it enters). The same code serves superlevel sets
with the order reversed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Sweep:
    """Result of one sweep (sublevel: minima/joins; superlevel: maxima/splits).

    extrema : (M,) int64 vertex ids, oldest first (sublevel: by rising value).
    saddle, keep, die : (M - 1,) event arrays: at vertex ``saddle`` the component of
        extremum ``die`` (index into ``extrema``) merges into the older one of ``keep``.
    node_vertex, node_parent : (T,) int64 merge tree; nodes 0..M-1 are the extrema, then
        merge saddles in sweep order, then the root (the last vertex). The root's parent is -1.
    """

    extrema: np.ndarray
    saddle: np.ndarray
    keep: np.ndarray
    die: np.ndarray
    node_vertex: np.ndarray
    node_parent: np.ndarray


def sweep(extrema: np.ndarray, saddles: np.ndarray, labels: np.ndarray, last_vertex: int) -> Sweep:
    """Union-find over extrema, visiting saddles in filtration order (elder rule).

    Parameters
    ----------
    extrema : (M,) vertex ids of the extrema, in filtration order (oldest first).
    saddles : (S,) vertex ids of the vertices with two or more lower-link runs, in
        filtration order.
    labels : (S, R) int64 index into ``extrema`` of the extremum reached from each run of
        each saddle; -1 pads the end of rows with fewer runs.
    last_vertex : the last vertex of the filtration (the merge tree's root).
    """
    m = len(extrema)
    # A saddle whose runs all reach the same extremum cannot merge anything.
    valid = labels >= 0
    lo = np.where(valid, labels, m).min(axis=1)
    hi = np.where(valid, labels, -1).max(axis=1)
    useful = lo != hi
    saddles, labels = saddles[useful], labels[useful]

    parent = list(range(m))  # union-find over extrema; a root is its component's oldest extremum
    top = list(range(m))  # merge-tree node at the top of each root's component
    node_vertex = extrema.tolist()
    node_parent = [-1] * m
    ev_saddle: list[int] = []
    ev_keep: list[int] = []
    ev_die: list[int] = []
    for s, row in zip(saddles.tolist(), labels.tolist()):
        roots = []
        for x in row:
            if x < 0:
                break  # labels are padded at the end
            while parent[x] != x:  # path halving
                parent[x] = parent[parent[x]]
                x = parent[x]
            if x not in roots:
                roots.append(x)
        if len(roots) < 2:
            continue
        elder = min(roots)  # oldest extremum: ids follow the filtration order
        node = len(node_vertex)
        node_vertex.append(s)
        node_parent.append(-1)
        for r in roots:
            node_parent[top[r]] = node
            if r != elder:
                parent[r] = elder
                ev_saddle.append(s)
                ev_keep.append(elder)
                ev_die.append(r)
        top[elder] = node
    if len(ev_die) != m - 1:  # the grid is connected, so everything merges in the end
        raise RuntimeError(f"internal error: {len(ev_die)} merges for {m} extrema")
    node_parent[top[0]] = len(node_vertex)
    node_vertex.append(last_vertex)
    node_parent.append(-1)
    as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return Sweep(extrema, as_int(ev_saddle), as_int(ev_keep), as_int(ev_die),
                 as_int(node_vertex), as_int(node_parent))


def death_persistence(sw: Sweep, cv: np.ndarray, sublevel: bool) -> np.ndarray:
    """(M,) persistence of each extremum; the oldest (global) one gets the value range.

    ``cv`` is the value per vertex with non-finite values replaced by the largest finite
    value, so that persistence is finite and never exceeds the range.
    """
    pers = np.empty(len(sw.extrema))
    gap = cv[sw.saddle] - cv[sw.extrema[sw.die]]
    pers[sw.die] = gap if sublevel else -gap
    pers[0] = cv.max() - cv.min()
    return pers


def survivors(sw: Sweep, pers: np.ndarray, threshold: float) -> np.ndarray:
    """(M,) index of the surviving extremum that each extremum is merged into.

    An extremum survives when its persistence exceeds ``threshold`` (the global one always
    does); a cancelled one goes, by the elder rule, to the extremum that absorbed it at its
    saddle, and on from there until a survivor is reached.
    """
    target = np.arange(len(sw.extrema))
    dead = pers[sw.die] <= threshold
    target[sw.die[dead]] = sw.keep[dead]
    while True:  # targets are older, so the chains end at survivors
        nxt = target[target]
        if np.array_equal(nxt, target):
            return target
        target = nxt
