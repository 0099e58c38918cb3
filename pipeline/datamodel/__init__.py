"""The data model: :class:`Grid` and :class:`Lattice` (where values are), :class:`Surface`,
:class:`Volume` and :class:`Trajectory` (what was found there), and the rules every consumer
of them uses (which array values are usable, where the centre is).

numpy only (no torch, vtk or matplotlib), so ParaView's own Python can import it.

Layout, stated once: a surface array ``a`` has shape ``(nx, ny)`` and ``a[i, j]`` is the value
at ``(grid.xs[i], grid.ys[j])``; a volume array has shape ``(nx, ny, nz)`` and ``a[i, j, l]``
is the value at ``(xs[i], ys[j], zs[l])``. Conversion to VTK's x-fastest point order happens
only in :mod:`pipeline.vtkio`.

Validity, stated once (:meth:`Surface.usable`): a value is usable when it is finite and exact.
``loss`` and ``accuracy`` are inexact where ``bounded`` is set (the evaluation stopped early
above a cap, so they describe only the samples seen); the test split is always evaluated
without a cap, so ``test_loss`` and ``test_accuracy`` are exact wherever finite; any other
array is usable wherever finite. Analysis, pictures, export and the ParaView plugin all read
surfaces and volumes through this rule; the file's ``valid`` array is ``usable("loss")``.
"""
from __future__ import annotations

from ._grids import MAX_POINTS, Grid, Lattice, centre_index, grid_from_dict, parse_axis
from ._values import BOUNDED_ARRAYS, FORMAT_VERSION, STANDARD_ARRAYS, Surface, Trajectory, Volume, usable_mask

__all__ = ["Grid", "Lattice", "Surface", "Volume", "Trajectory", "parse_axis", "centre_index", "usable_mask",
           "grid_from_dict", "FORMAT_VERSION", "BOUNDED_ARRAYS", "STANDARD_ARRAYS", "MAX_POINTS"]
