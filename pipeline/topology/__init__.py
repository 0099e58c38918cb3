"""Topology of a 2D scalar field on a grid: PL critical points, persistence, basins, merge tree.

numpy only (no scipy, torch or vtk), so ParaView's own Python can import it.

Layout: ``values[i, j]`` is the value at ``(xs[i], ys[j])``, shape ``(nx, ny)``; the
vertex id of ``(i, j)`` is ``i + nx * j`` (as in ``critical_points_<kind>.vtp``).

Conventions (docs/architecture.md "Topology conventions", the same as TTK's):

* Triangulation: every grid cell is split along its (i+1, j)-(i, j+1) diagonal, so an
  interior vertex has the 6 neighbours (i±1, j), (i, j±1), (i+1, j-1), (i-1, j+1).
* Total order: (value, vertex id), i.e. simulation of simplicity; ties and plateaus are
  ordered by vertex id. Non-finite values (NaN, ±inf) sort above every finite value.
* Classification by the connected components of the lower and upper link (a cycle for an
  interior vertex, a path on the boundary): minimum (no lower link, TTK code 0), maximum
  (no upper link, 3), regular (one of each, 5), otherwise a saddle of multiplicity
  ``max(lower, upper) - 1``: code 1 when that is 1, code 4 "degenerate" (e.g. a monkey
  saddle, multiplicity 2) when it is larger, as TTK codes it.
* Persistence: 0-dimensional sublevel-set persistence (union-find, elder rule) pairs
  minima with saddles; superlevel-set persistence pairs saddles with maxima. The global
  minimum and the global maximum form one essential "min-max" pair whose persistence is
  the range of the finite values. Non-finite values count as the largest finite value in
  persistence arithmetic, so a minimum walled off by NaN has persistence
  ``max - value`` and zero-persistence pairs arise inside non-finite regions.
* Simplification: a feature survives when its persistence exceeds the threshold
  (``persistence``, in value units, or a fraction of the range with ``relative=True``);
  the global minimum and maximum always survive. Zero-persistence pairs made by ties
  therefore never survive, and the number of surviving minima never grows with the threshold.
* Basins: each vertex first belongs to the minimum that steepest descent reaches from it
  (repeatedly stepping to the lowest neighbour in the total order). A cancelled minimum's
  region then joins, by the elder rule, the older minimum that absorbed it at its saddle,
  and so on until a surviving minimum is reached. So the basins partition the finite part
  of the grid; label ``k`` is ``minima[k]`` (0 = global minimum), -1 at non-finite values.
  Basin areas use dual cells (half and quarter cells on the boundary), so all basins and
  the non-finite vertices add up to the plane's area.
* Width of a minimum: the connected component of ``{f <= value + delta}`` that contains it
  (the sublevel set, not the basin): bounding-box extent, area and equivalent diameter.
* Curvature: eigenvalues of the Hessian of a least-squares quadratic fit on the
  ``(2r+1) x (2r+1)`` window around the minimum, in (alpha, beta) units.
* Critical points at non-finite vertices take part in the pairing (so the Euler relations
  below hold) but are not listed in ``Topology.critical_points``.

Euler relations on the disk (before simplification), with ``l``/``u`` the numbers of lower
and upper link components: ``#minima - sum(l - 1 over l >= 2) + #interior maxima = 1`` and
``#maxima - sum(u - 1 over u >= 2) + #interior minima = 1`` (an interior maximum's lower
link is the whole cycle, whose Euler characteristic is 0, not 1; boundary links are paths).
Boundary extrema and boundary saddles count in one relation only, so the naive
``#min - #saddles + #max`` is 1 only when the boundary's critical points balance (a linear
field gives 2: one boundary minimum, one boundary maximum).

Public API: ``analyze(values, *, persistence=0.0, relative=False, xs=None, ys=None,
delta=None, curvature_radius=1) -> Topology`` and ``cell_areas(xs, ys)`` (dual-cell areas).
"""
from ._analyze import analyze
from ._measures import cell_areas
from ._mesh import DEGENERATE, MAXIMUM, MINIMUM, REGULAR, SADDLE
from .result import (PAIR_KINDS, TYPE_NAMES, CriticalPoint, CriticalPoints, MergeTree, Minima, Minimum, Pairs,
                     Topology, Width)

__all__ = ["analyze", "cell_areas", "Topology", "CriticalPoints", "CriticalPoint", "Minima", "Minimum", "Width",
           "Pairs", "MergeTree",
           "MINIMUM", "SADDLE", "MAXIMUM", "DEGENERATE", "REGULAR", "TYPE_NAMES", "PAIR_KINDS"]
