"""The warped surface as a triangle mesh (PLY/OBJ/STL through meshio, imported lazily)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .. import geometry
from ..errors import ParameterError, param
from ..datamodel import Surface
from ._core import _atomic_write

__all__ = ["EXPORT_FORMATS", "export_mesh", "export_file", "triangulate_grid"]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("ply", "obj", "stl")


# --------------------------------------------------------------------------------------------
# mesh export (PLY/OBJ/STL through meshio)


def triangulate_grid(shape: tuple[int, int], keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Triangles of an ``(nx, ny)`` grid, each quad split along its (i+1, j)-(i, j+1) diagonal.

    The split is the one of the topology's conventions (and TTK's), from
    :func:`pipeline.geometry.grid_triangles`. Triangles are counter-clockwise in the (alpha, beta)
    plane, so their normals point to +z.

    Parameters
    ----------
    shape : (nx, ny)
    keep : (nx, ny) bool, optional
        Points to keep; a triangle touching a dropped point is removed, and so is a point
        left in no triangle.

    Returns
    -------
    point_ids : (P,) int64
        Flat numpy (C order, ``i * ny + j``) index of each kept point, in output order.
    triangles : (T, 3) int64
        Indices into ``point_ids``.
    """
    nx, ny = shape
    tri = geometry.grid_triangles(nx, ny, keep)  # vertex ids i + nx * j
    tri = (tri % nx) * ny + tri // nx  # -> numpy C order i * ny + j
    point_ids = np.unique(tri)
    remap = np.full(nx * ny, -1, dtype=np.int64)
    remap[point_ids] = np.arange(len(point_ids))
    return point_ids, remap[tri]


def export_mesh(
    surface: Surface,
    path: str | os.PathLike,
    format: str | None = None,
    *,
    array: str = "loss",
    scale: float | None = None,
    log: bool = False,
) -> Path:
    """Write the warped surface ``z = scale * value`` as a triangle mesh (PLY, OBJ or STL).

    Parameters
    ----------
    surface : Surface
    path : output path
    format : {'ply', 'obj', 'stl'}, optional
        Default: from the path's suffix.
    array : str, default 'loss'
        ``loss``, ``accuracy``, ``test_loss``, ``test_accuracy`` or a numeric ``extra`` array.
    scale : float, optional
        Height factor. Default: the range of the finite heights maps to the larger side of the
        (alpha, beta) rectangle, so the mesh is about as tall as it is wide.
    log : bool, default False
        Use ``log10(value)`` (non-positive values are then dropped).

    Points whose value is not usable (:meth:`pipeline.datamodel.Surface.usable`: non-finite,
    or only bounded) are dropped with every triangle that uses them; they are never written as 0. The PLY file
    also carries the raw ``array`` value per vertex.

    Returns
    -------
    Path written (atomically).
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in EXPORT_FORMATS:
        got = repr(format) if format else f"{fmt!r} (from the file name)"
        raise ValueError(f"format must be one of {', '.join(map(repr, EXPORT_FORMATS))}; got {got}")
    if not isinstance(surface, Surface):
        raise ValueError(f"surface must be a pipeline.datamodel.Surface; got {type(surface).__name__}")
    if surface.grid.nx < 2 or surface.grid.ny < 2:
        raise ValueError(f"export needs a 2D surface (nx >= 2 and ny >= 2); got grid shape {surface.grid.shape}")
    if scale is not None and not (np.isfinite(scale) and scale != 0):
        raise ValueError(f"scale must be a finite non-zero number; got {scale!r}")
    values = surface.values(array)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log10(values) if log else values.copy()
    keep = np.isfinite(h) & surface.usable(array)
    point_ids, triangles = triangulate_grid(surface.grid.shape, keep)
    if len(triangles) == 0:
        raise ValueError(f"nothing to export: no triangle of {array!r} has three finite{' positive' if log else ''} "
                         f"valid points")
    a, b = np.meshgrid(surface.grid.xs, surface.grid.ys, indexing="ij")  # (nx, ny)
    hz = h.ravel()[point_ids]
    if scale is None:  # the height range as tall as the larger side of the plane
        scale = geometry.relief_scale(hz, (np.ptp(surface.grid.xs), np.ptp(surface.grid.ys)), 1.0, size="larger")
    with np.errstate(over="ignore", invalid="ignore"):
        xyz = np.stack([a.ravel()[point_ids], b.ravel()[point_ids], scale * hz], axis=1)
    if not np.isfinite(xyz).all():
        raise ParameterError(f"{param('scale')} {scale:g} makes the heights overflow (they must be finite); choose a "
                             f"smaller one")

    import meshio  # not in ParaView's Python; only export needs it

    point_data = {array: values.ravel()[point_ids]} if fmt == "ply" else {}
    # int32 ids: PLY has no 64-bit integers (meshio would warn and cast)
    mesh = meshio.Mesh(xyz, [("triangle", triangles.astype(np.int32))], point_data=point_data)

    def write(tmp: Path) -> None:
        meshio.write(tmp, mesh, file_format=fmt)

    _atomic_write(path, write)
    logger.info("wrote %s: %d vertices, %d triangles, z = %.4g * %s%s", path, len(xyz), len(triangles), scale,
             "log10 " if log else "", array)
    return path


def export_file(source: str | os.PathLike, format: str, *, out: str | os.PathLike | None = None, array: str = "loss",
                scale: float | None = None, log: bool = False) -> Path:
    """:func:`export_mesh` of the surface file ``source``; ``out`` defaults to ``source`` with the
    format's suffix. The format is checked before the file is read (the cheaper mistake first)."""
    from .grids import read_surface

    src = Path(source)
    fmt = str(format).lower()
    if fmt not in EXPORT_FORMATS:
        raise ParameterError(f"{param('format')} must be one of {', '.join(EXPORT_FORMATS)}; got {format!r}")
    out = Path(out) if out else src.with_suffix(f".{fmt}")
    if out.suffix.lower() != f".{fmt}":
        raise ParameterError(f"{param('out')} must end in .{fmt} for {param('format')} {fmt}; got {str(out)!r}")
    if out.resolve() == src.resolve():
        raise ParameterError(f"{param('out')} must differ from the input file; got {str(out)!r}")
    return export_mesh(read_surface(src), out, fmt, array=array, scale=scale, log=log)
