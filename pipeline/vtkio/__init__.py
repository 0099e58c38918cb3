"""VTK files of a run: surfaces (.vts/.vti), volumes (.vti), trajectories and point sets (.vtp),
collections (.pvd).

The one I/O module of the pipeline (docs/architecture.md, "File schemas"). It imports VTK only through
``vtkmodules.*`` and never torch or pyvista at module level, so the same code runs in the
project's virtual environment and inside ParaView's ``pvpython``/``pvbatch`` (Debian ParaView
5.11: VTK 9.2, numpy 1.24). ``export_mesh`` imports meshio lazily (not in ParaView's Python).

Layout, stated once
-------------------
numpy arrays of a surface have shape ``(nx, ny)`` with ``a[i, j]`` at ``(xs[i], ys[j])``
(:mod:`pipeline.surface`). VTK stores point data x fastest: flat index ``k = i + nx * j``.
:func:`to_vtk_order` and :func:`from_vtk_order` are the only conversions between the two and
every reader and writer here goes through them.

Files
-----
Surface ``.vts`` (vtkStructuredGrid, XML, appended raw binary, zlib): points
``(xs[i], ys[j], 0)``, dimensions ``(nx, ny, 1)``; float64 point arrays ``loss`` and, when
present, ``accuracy`` (class outputs), ``test_loss``, ``test_accuracy``; uint8 ``valid``
(``Surface.valid``: 0 where the loss is non-finite or only bounded) and uint8 ``bounded``
(``Surface.bounded``: 1 where the loss is only a lower bound, i.e. the evaluation stopped
early). Every array of ``Surface.extra`` is written under its own name and dtype (e.g.
``basin`` int32). When a file has no ``bounded`` array (written by another tool) it is
derived on reading as ``valid == 0`` at a finite loss. A missing ``accuracy`` array reads as
None. The optional ``.vti`` twin (vtkImageData; TTK rejects structured grids) holds the same
arrays with origin ``(xmin, ymin, 0)`` and spacing ``(dx, dy, 1)``; :func:`read_surface`
reads either.

Volume ``.vti`` (vtkImageData): dimensions ``(nx, ny, nz)``, origin ``(xmin, ymin, zmin)``,
spacing of the :class:`~pipeline.datamodel.Lattice`, the arrays of a surface file in VTK order
``k = i + nx * j + nx * ny * l`` (``to_vtk_order(a, 3)``), ``content`` "volume";
:func:`read_volume` reads it, :func:`read_grid` reads a surface or a volume.

Field data of every file: ``losscape_meta``, a vtkStringArray with one JSON string. The
writers add ``format_version``, ``content`` (``"surface"``, ``"volume"``,
``"trajectory"`` or ``"points"``), ``software`` (lossvista, VTK, numpy, Python versions) and ``created`` (UTC,
ISO 8601) when absent; surfaces always record ``grid``. Non-finite floats in the metadata
are written as JSON's ``NaN``/``Infinity`` (Python's json reads them back).

Every file is written atomically: to a hidden temporary file in the target directory, fsync,
then ``os.replace``; a failed write removes the temporary file and leaves any previous file
intact.

Modules: :mod:`._core` (layout, metadata, atomic writes, reading), :mod:`.grids` (surfaces),
:mod:`.polydata` (trajectories, point sets), :mod:`.collection` (``.pvd``, ``read_meta``),
:mod:`.mesh` (PLY/OBJ/STL export). Import the public names from ``pipeline.vtkio``.
"""
from __future__ import annotations

from ._core import META_NAME, VTKFileError, VTKFileNotFoundError, from_vtk_order, to_vtk_order
from .collection import read_meta, write_pvd
from .grids import read_grid, read_surface, read_volume, write_surface, write_volume
from .mesh import EXPORT_FORMATS, export_file, export_mesh, triangulate_grid
from .polydata import read_points, read_trajectory, write_points, write_trajectory

__all__ = [
    "META_NAME",
    "VTKFileError",
    "VTKFileNotFoundError",
    "to_vtk_order",
    "from_vtk_order",
    "write_surface",
    "read_surface",
    "write_volume",
    "read_volume",
    "read_grid",
    "write_trajectory",
    "read_trajectory",
    "write_points",
    "read_points",
    "write_pvd",
    "read_meta",
    "export_mesh",
    "export_file",
    "triangulate_grid",
    "EXPORT_FORMATS",
]
