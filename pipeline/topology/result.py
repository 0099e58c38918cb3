"""The result of ``analyze``: critical points, pairs, basins, merge tree, per-minimum measures."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._mesh import DEGENERATE, MAXIMUM, MINIMUM, REGULAR, SADDLE, SADDLE2

TYPE_NAMES = {MINIMUM: "minimum", SADDLE: "saddle", MAXIMUM: "maximum", DEGENERATE: "degenerate",
              REGULAR: "regular"}
# in a volume (TTK's codes in 3D): the saddles that join sublevel (1) and superlevel (2) components
TYPE_NAMES_3D = {MINIMUM: "minimum", SADDLE: "1-saddle", SADDLE2: "2-saddle", MAXIMUM: "maximum",
                 DEGENERATE: "degenerate", REGULAR: "regular"}
PAIR_KINDS = ("min-saddle", "saddle-max", "min-max")  # codes 0, 1, 2 of Pairs.kind
FORMAT_VERSION = 1


def _num(x: float) -> float | None:
    """A JSON number; None only for a value that is not finite (never for persistence)."""
    x = float(x)
    return x if math.isfinite(x) else None


def type_names(ndim: int) -> dict[int, str]:
    """Names of the critical-type codes of a 2D (``saddle``) or 3D (``1-saddle``, ``2-saddle``) field."""
    return TYPE_NAMES_3D if ndim == 3 else TYPE_NAMES


def vertex_index(vertex_id: np.ndarray, axes: tuple[np.ndarray, ...]) -> np.ndarray:
    """(K, ndim) int64 ``(i, j[, k])`` of vertex ids ``i + nx * j (+ nx * ny * k)``."""
    v = np.asarray(vertex_id, dtype=np.int64).reshape(-1)
    shape = tuple(len(a) for a in axes)
    return np.stack(np.unravel_index(v, shape[::-1])[::-1], axis=1).astype(np.int64).reshape(len(v), len(shape))


@dataclass(frozen=True)
class CriticalPoint:
    """One PL critical point at a finite vertex.

    type : "minimum" | "saddle" | "maximum" | "degenerate" (a saddle of multiplicity >= 2); in 3D
        "1-saddle" and "2-saddle" instead of "saddle"
    code : TTK CriticalType (0, 1, 3, 4; 2 for a 2-saddle in 3D)
    index : (i, j[, k]); coords : (alpha, beta[, gamma]) = (xs[i], ys[j][, zs[k]]);
    vertex_id : i + nx * j (+ nx * ny * k)
    persistence : of its pair (a saddle in two pairs: the larger); global extrema: the range
    multiplicity : saddles: max(lower, upper link components) - 1; extrema: 0
    """

    type: str
    code: int
    index: tuple[int, ...]
    coords: tuple[float, ...]
    value: float
    persistence: float
    multiplicity: int
    vertex_id: int


@dataclass(frozen=True)
class Width:
    """The sublevel component ``{f <= value + delta}`` that holds a minimum.

    extent : (alpha, beta[, gamma]) size of its bounding box; area : in (alpha, beta) units
    (dual cells of its vertices; a volume in 3D); diameter : of the disk (ball) of the same
    area (volume).
    """

    delta: float
    level: float
    extent: tuple[float, ...]
    area: float
    diameter: float


@dataclass(frozen=True)
class Minimum:
    """A minimum that survived simplification, with its basin (label ``label``).

    basin_area : in (alpha, beta) units (a volume in 3D); basin_fraction : of the whole plane's area.
    curvature : (ndim,) ascending eigenvalues of the Hessian of a local quadratic fit (NaN
    when the neighbourhood has too few finite values).
    """

    label: int
    index: tuple[int, ...]
    coords: tuple[float, ...]
    value: float
    persistence: float
    basin_area: float
    basin_fraction: float
    width: Width
    curvature: tuple[float, ...]


class _Table:
    """Arrays of equal length (K,) over grid vertices; ``xs``, ``ys`` (and ``zs`` in 3D) locate them."""

    vertex_id: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray | None

    @property
    def axes(self) -> tuple[np.ndarray, ...]:
        return (self.xs, self.ys) if self.zs is None else (self.xs, self.ys, self.zs)

    def __len__(self) -> int:
        return len(self.vertex_id)

    def __iter__(self):
        return (self._item(k) for k in range(len(self)))

    def __getitem__(self, k):
        """Row ``k`` as a record (negative ``k`` counts from the end); a slice gives a list."""
        rows = range(len(self))
        if isinstance(k, slice):
            return [self._item(i) for i in rows[k]]
        return self._item(rows[k])  # IndexError past the end, like a list

    @property
    def index(self) -> np.ndarray:
        """(K, ndim) int64 ``(i, j[, k])``."""
        return vertex_index(self.vertex_id, self.axes)

    @property
    def coords(self) -> np.ndarray:
        """(K, ndim) float64 ``(alpha, beta[, gamma])``."""
        index = self.index
        return np.stack([a[index[:, d]] for d, a in enumerate(self.axes)], axis=1).reshape(len(index), -1)

    def _where(self, k: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
        index = vertex_index(np.asarray([self.vertex_id[k]]), self.axes)[0]
        return tuple(int(i) for i in index), tuple(float(a[i]) for a, i in zip(self.axes, index))


@dataclass(frozen=True)
class CriticalPoints(_Table):
    """Surviving critical points at finite vertices, by type code then value; arrays (K,).

    code : int8 TTK CriticalType; value, persistence : float64; multiplicity : int8.
    Indexing gives a ``CriticalPoint``.
    """

    vertex_id: np.ndarray
    code: np.ndarray
    value: np.ndarray
    persistence: np.ndarray
    multiplicity: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray | None = None

    def _item(self, k: int) -> CriticalPoint:
        index, coords = self._where(k)
        code = int(self.code[k])
        return CriticalPoint(type_names(len(self.axes))[code], code, index, coords, float(self.value[k]),
                             float(self.persistence[k]), int(self.multiplicity[k]), int(self.vertex_id[k]))


@dataclass(frozen=True)
class Minima(_Table):
    """Surviving minima by value (position = basin label; 0 is the global minimum); arrays (K,).

    value, persistence, basin_area, basin_fraction : float64;
    width_level : value + delta; width_extent : (K, ndim); width_area, width_diameter : (K,);
    curvature : (K, ndim). Indexing gives a ``Minimum``.
    """

    vertex_id: np.ndarray
    value: np.ndarray
    persistence: np.ndarray
    basin_area: np.ndarray
    basin_fraction: np.ndarray
    width_delta: float
    width_level: np.ndarray
    width_extent: np.ndarray
    width_area: np.ndarray
    width_diameter: np.ndarray
    curvature: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray | None = None

    def _item(self, k: int) -> Minimum:
        index, coords = self._where(k)
        width = Width(self.width_delta, float(self.width_level[k]), tuple(map(float, self.width_extent[k])),
                      float(self.width_area[k]), float(self.width_diameter[k]))
        return Minimum(k, index, coords, float(self.value[k]), float(self.persistence[k]),
                       float(self.basin_area[k]), float(self.basin_fraction[k]), width,
                       tuple(map(float, self.curvature[k])))


@dataclass(frozen=True)
class Pairs:
    """Persistence pairs as arrays of shape (P,).

    birth, death : vertex ids (``i + nx * j``, ``+ nx * ny * k`` in 3D); the birth is the lower end: a minimum
    (min-saddle), a saddle (saddle-max) or the global minimum (the one min-max pair, whose
    death is the global maximum and whose persistence is the value range).
    kind : int8 index into ``PAIR_KINDS``; persistence : float64, finite, >= 0.
    """

    birth: np.ndarray
    death: np.ndarray
    kind: np.ndarray
    persistence: np.ndarray

    def __len__(self) -> int:
        return len(self.persistence)

    def select(self, keep: np.ndarray) -> "Pairs":
        return Pairs(self.birth[keep], self.death[keep], self.kind[keep], self.persistence[keep])


@dataclass(frozen=True)
class MergeTree:
    """Join tree of the sublevel sets after simplification.

    Nodes: the surviving minima (leaves, node id = basin label), the saddles where two
    surviving components join, and the root (the last vertex of the order). Arrays of
    shape (T,): ``vertex`` ids, ``type`` names, ``value`` (NaN at a non-finite root).
    ``arcs`` : (T - 1, 2) int64 ``[lower node, upper node]``.
    """

    vertex: np.ndarray
    type: tuple[str, ...]
    value: np.ndarray
    arcs: np.ndarray


@dataclass
class Topology:
    """Everything ``analyze`` found. Arrays of shape (nx, ny) use ``[i, j]`` at ``(xs[i], ys[j])``;
    of a 3D field, (nx, ny, nz) and ``[i, j, k]`` at ``(xs[i], ys[j], zs[k])``.

    Attributes
    ----------
    xs, ys : (nx,), (ny,) coordinates (alpha, beta); zs : (nz,) gamma of a 3D field, else None.
    persistence, relative : the requested threshold; threshold : it in value units.
    value_range : (min, max) of the finite values.
    critical_type : (nx, ny) int8 TTK code of every vertex before simplification
        (0 min, 1 saddle (3D: 1-saddle), 2 2-saddle (3D), 3 max, 4 degenerate, 5 regular).
    lower_components, upper_components : (nx, ny) int8 link components per vertex.
    critical_points : surviving critical points at finite vertices, by type then value.
    pairs : all persistence pairs (before simplification).
    basins : (nx, ny) int32 basin label (index into ``minima``), -1 at non-finite values.
    minima : surviving minima, by value (label 0 is the global minimum).
    merge_tree : simplified join tree.
    meta : free-form JSON-ready facts added by callers (e.g. the source file), written as
        ``meta`` in ``to_dict()``.
    """

    xs: np.ndarray
    ys: np.ndarray
    persistence: float
    relative: bool
    threshold: float
    value_range: tuple[float, float]
    critical_type: np.ndarray
    lower_components: np.ndarray
    upper_components: np.ndarray
    critical_points: CriticalPoints
    pairs: Pairs
    basins: np.ndarray
    minima: Minima
    merge_tree: MergeTree
    meta: dict[str, Any] = field(default_factory=dict)
    zs: np.ndarray | None = None

    @property
    def axes(self) -> tuple[np.ndarray, ...]:
        """``(xs, ys)``, or ``(xs, ys, zs)`` of a 3D field."""
        return (self.xs, self.ys) if self.zs is None else (self.xs, self.ys, self.zs)

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)

    @property
    def type_names(self) -> dict[int, str]:
        """Code -> name: ``saddle`` in 2D, ``1-saddle`` and ``2-saddle`` in 3D."""
        return type_names(self.ndim)

    def vertex_index(self, vertex_id) -> tuple:
        """``(i, j)`` (``(i, j, k)``) of flat vertex ids (scalars or arrays)."""
        v = np.asarray(vertex_id)
        return np.unravel_index(v, self.shape[::-1])[::-1]

    def surviving_pairs(self) -> Pairs:
        """Pairs whose persistence exceeds the threshold, plus the min-max pair."""
        return self.pairs.select((self.pairs.persistence > self.threshold) | (self.pairs.kind == 2))

    def counts(self, simplified: bool = True) -> dict[str, int]:
        """Number of critical points per type; ``simplified=False``: the raw classification
        at every vertex (non-finite ones included)."""
        if simplified:
            codes = self.critical_points.code
        else:
            codes = self.critical_type.ravel()
        kinds = (MINIMUM, SADDLE, MAXIMUM, DEGENERATE) if self.ndim == 2 else (
            MINIMUM, SADDLE, SADDLE2, MAXIMUM, DEGENERATE)
        return {self.type_names[c]: int(np.count_nonzero(codes == c)) for c in kinds}

    def critical_point_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``critical_points_<kind>.vtp`` (one vertex per surviving critical point).

        ``points`` (K, 3) float64 ``(alpha, beta, 0)`` (``(alpha, beta, gamma)`` in 3D); point
        arrays ``CriticalType`` int32 (TTK codes), ``persistence`` and ``loss`` float64,
        ``vertex_id`` int64, ``multiplicity`` int32.
        """
        cps = self.critical_points
        pts = np.zeros((len(cps), 3))
        pts[:, :self.ndim] = cps.coords
        return {"points": pts,
                "CriticalType": cps.code.astype(np.int32),
                "persistence": cps.persistence.astype(np.float64),
                "loss": cps.value.astype(np.float64),
                "vertex_id": cps.vertex_id.astype(np.int64),
                "multiplicity": cps.multiplicity.astype(np.int32)}

    def to_dict(self) -> dict[str, Any]:
        """The ``topology_<kind>.json`` document (schema: docs/architecture.md).

        ``critical_points`` and ``minima`` are the survivors, ``pairs`` the surviving pairs
        (plus the min-max pair); ``merge_tree.arcs`` are ``[lower, upper]`` node ids.
        """
        def ij(v: np.ndarray) -> list:
            return vertex_index(v, self.axes).tolist()

        names = self.type_names
        cps = self.critical_points
        points = [{"type": names[c], "index": i, "coords": x, "value": v, "persistence": p,
                   "multiplicity": m, "vertex_id": k}
                  for c, i, x, v, p, m, k in zip(cps.code.tolist(), cps.index.tolist(), cps.coords.tolist(),
                                                 cps.value.tolist(), cps.persistence.tolist(),
                                                 cps.multiplicity.tolist(), cps.vertex_id.tolist())]
        sp = self.surviving_pairs()
        pairs = [{"birth": b, "death": d, "kind": PAIR_KINDS[k], "persistence": p}
                 for b, d, k, p in zip(ij(sp.birth), ij(sp.death), sp.kind.tolist(), sp.persistence.tolist())]
        mn = self.minima
        minima = [{"label": k, "index": i, "coords": x, "value": v, "persistence": p, "basin_area": ba,
                   "basin_fraction": bf,
                   "width": {"delta": mn.width_delta, "level": wl, "extent": we, "area": wa, "diameter": wd},
                   "curvature": [_num(c) for c in cu]}
                  for k, (i, x, v, p, ba, bf, wl, we, wa, wd, cu) in enumerate(zip(
                      mn.index.tolist(), mn.coords.tolist(), mn.value.tolist(), mn.persistence.tolist(),
                      mn.basin_area.tolist(), mn.basin_fraction.tolist(), mn.width_level.tolist(),
                      mn.width_extent.tolist(), mn.width_area.tolist(), mn.width_diameter.tolist(),
                      mn.curvature.tolist()))]
        mt = self.merge_tree
        nodes = [{"id": n, "type": t, "index": i, "vertex_id": v, "value": _num(x)}
                 for n, (t, i, v, x) in enumerate(zip(mt.type, ij(mt.vertex), mt.vertex.tolist(), mt.value.tolist()))]
        return {
            "format_version": FORMAT_VERSION,
            "shape": list(self.shape),
            "extent": [float(v) for a in self.axes for v in (a[0], a[-1])],
            "value_range": [float(v) for v in self.value_range],
            "persistence": self.persistence,
            "relative": self.relative,
            "threshold": self.threshold,
            "counts": self.counts(simplified=True),
            "counts_unsimplified": self.counts(simplified=False),
            "critical_points": points,
            "pairs": pairs,
            "minima": minima,
            "merge_tree": {"nodes": nodes, "arcs": mt.arcs.tolist()},
            **({"meta": self.meta} if self.meta else {}),
        }

    def to_json(self, indent: int | None = None) -> str:
        """``to_dict()`` as JSON text (compact unless ``indent``; NaN never appears)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)
