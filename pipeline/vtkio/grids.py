"""Surfaces as ``.vts`` (vtkStructuredGrid) and the ``.vti`` (vtkImageData) twin; volumes as ``.vti``."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkImageData, vtkStructuredGrid
from vtkmodules.vtkIOXML import vtkXMLImageDataWriter, vtkXMLStructuredGridWriter

from ..datamodel import Grid, Lattice, Surface, Volume
from ._core import (
    META_NAME,
    _SURFACE_RESERVED,
    VTKFileError,
    _check_suffix,
    _complete_meta,
    _numpy,
    _point_arrays,
    _points,
    _read_meta_of,
    _read_xml,
    _set_field_meta,
    _vtk_array,
    _write_xml,
    from_vtk_order,
    to_vtk_order,
)

__all__ = ["write_surface", "read_surface", "write_volume", "read_volume", "read_grid"]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# surfaces


def _surface_point_arrays(surface: Surface) -> dict[str, np.ndarray]:
    """Named (nx, ny[, c]) arrays of a surface ((nx, ny, nz[, c]) of a volume), in file order."""
    arrays: dict[str, np.ndarray] = {"loss": surface.loss}
    for name in ("accuracy", "test_loss", "test_accuracy"):
        if getattr(surface, name) is not None:
            arrays[name] = getattr(surface, name)
    arrays["valid"] = surface.valid
    arrays["bounded"] = surface.bounded.astype(np.uint8)
    for name, value in surface.extra.items():
        if name in _SURFACE_RESERVED or name == META_NAME:
            raise ValueError(f"surface.extra must not use the reserved names {sorted(_SURFACE_RESERVED)}; got {name!r}")
        value = np.asarray(value)
        shape = surface.grid.shape
        if value.shape[:len(shape)] != shape or value.ndim > len(shape) + 1:
            layout = "(nx, ny) or (nx, ny, c)" if len(shape) == 2 else "(nx, ny, nz) or (nx, ny, nz, c)"
            raise ValueError(f"surface.extra[{name!r}] must have shape {shape} {layout}; got {value.shape}")
        arrays[name] = value
    return arrays


def _fill_point_data(data: vtkDataObject, arrays: Mapping[str, np.ndarray], ndim: int = 2) -> None:
    pd = data.GetPointData()
    for name, value in arrays.items():
        pd.AddArray(_vtk_array(name, to_vtk_order(value, ndim)))
    if "loss" in arrays:
        pd.SetActiveScalars("loss")


def _surface_meta(surface: Surface) -> dict[str, Any]:
    meta = _complete_meta(surface.meta, "surface")
    meta["grid"] = surface.grid.to_dict()
    return meta


def _structured_grid(surface: Surface) -> vtkStructuredGrid:
    nx, ny = surface.grid.shape
    a, b = np.meshgrid(surface.grid.xs, surface.grid.ys, indexing="ij")  # (nx, ny) each
    sg = vtkStructuredGrid()
    sg.SetDimensions(nx, ny, 1)
    sg.SetPoints(_points(to_vtk_order(np.stack([a, b], axis=-1))))
    _fill_point_data(sg, _surface_point_arrays(surface))
    _set_field_meta(sg, _surface_meta(surface))
    return sg


def _image_data(surface: Surface) -> vtkImageData:
    g = surface.grid
    img = vtkImageData()
    img.SetDimensions(g.nx, g.ny, 1)
    dx = (g.xmax - g.xmin) / (g.nx - 1) if g.nx > 1 else 1.0
    dy = (g.ymax - g.ymin) / (g.ny - 1) if g.ny > 1 else 1.0
    img.SetOrigin(g.xmin, g.ymin if g.ny > 1 else float(g.ys[0]), 0.0)
    img.SetSpacing(dx, dy, 1.0)
    _fill_point_data(img, _surface_point_arrays(surface))
    _set_field_meta(img, _surface_meta(surface))
    return img


def write_surface(path: str | os.PathLike, surface: Surface, *, vti: bool = False) -> Path:
    """Write ``surface`` to a ``.vts`` file (and its ``.vti`` twin when ``vti=True``).

    Parameters
    ----------
    path : path ending in ``.vts``
        Parent directories are created. Written atomically.
    surface : Surface
        ``(nx, ny)`` arrays; ``surface.extra`` arrays must be numeric ``(nx, ny)`` or
        ``(nx, ny, c)`` and not use a reserved name (``loss``, ``valid``, ...).
    vti : bool, default False
        Also write ``path.with_suffix(".vti")`` (vtkImageData), for TTK.

    Returns
    -------
    Path of the ``.vts`` file.
    """
    path = Path(path)
    _check_suffix(path, (".vts",), "surface")
    if not isinstance(surface, Surface):
        raise ValueError(f"surface must be a pipeline.datamodel.Surface; got {type(surface).__name__}")
    sg = _structured_grid(surface)
    _write_xml(vtkXMLStructuredGridWriter, sg, path)
    if vti:
        _write_xml(vtkXMLImageDataWriter, _image_data(surface), path.with_suffix(".vti"))
    return path


def _axis_values(values: np.ndarray, name: str, path: Path) -> tuple[float, float]:
    """Check that ``values`` is ``linspace(lo, hi, n)`` and return ``(lo, hi)``."""
    lo, hi = float(values[0]), float(values[-1])
    n = len(values)
    expected = np.linspace(lo, hi, n) if n > 1 else np.array([lo])
    scale = max(abs(lo), abs(hi), 1e-300)
    if not np.allclose(values, expected, rtol=0, atol=1e-9 * scale):
        raise VTKFileError(f"{str(path)!r}: points along {name} are not evenly spaced; not a lossvista surface grid")
    return lo, hi


def _grid_from_points(xyz: np.ndarray, shape: tuple[int, int], meta: Mapping[str, Any], path: Path) -> Grid:
    nx, ny = shape
    ab = from_vtk_order(xyz[:, :2], shape)  # (nx, ny, 2)
    xs, ys = ab[:, 0, 0], ab[0, :, 1]
    if not (np.allclose(ab[..., 0], xs[:, None]) and np.allclose(ab[..., 1], ys[None, :])):
        raise VTKFileError(f"{str(path)!r}: points are not a rectilinear (alpha, beta) grid; not a lossvista surface")
    xmin, xmax = _axis_values(xs, "x (alpha)", path)
    ymin, ymax = _axis_values(ys, "y (beta)", path)
    if isinstance(meta.get("grid"), Mapping):
        try:
            g = Grid.from_dict(meta["grid"])
        except (KeyError, TypeError, ValueError):
            g = None
        # prefer the stored grid (exact user values) when it describes these points
        if g is not None and g.shape == shape and np.allclose(g.xs, xs) and np.allclose(g.ys, ys):
            return g
    try:
        return Grid(xmin, xmax, nx, ymin, ymax, ny)
    except ValueError as exc:
        raise VTKFileError(f"{str(path)!r}: points do not form a valid grid ({exc})") from None


def read_surface(path: str | os.PathLike) -> Surface:
    """Read a surface written by :func:`write_surface` (``.vts`` or the ``.vti`` twin).

    Returns a :class:`Surface` with ``(nx, ny)`` arrays, ``meta`` from the file's
    ``losscape_meta`` field data (``{}`` when absent), ``bounded`` from the ``bounded`` array
    (or derived, see the module docstring) and every other point array in ``extra`` with its
    file dtype.

    Raises
    ------
    VTKFileNotFoundError
        The file does not exist.
    VTKFileError
        Not a VTK XML structured grid / image, not a 2D ``(nx, ny, 1)`` grid, damaged, or no
        ``loss`` array.
    """
    path = Path(path)
    data = _read_xml(path, ("StructuredGrid", "ImageData"), "surface")
    dims = [0, 0, 0]
    data.GetDimensions(dims)  # the one-argument form exists in VTK 9.2 and 9.7
    if dims[2] != 1 or data.GetNumberOfPoints() == 0:
        hint = " (a volume: read it with read_volume)" if dims[2] > 1 and isinstance(data, vtkImageData) else ""
        raise VTKFileError(f"{str(path)!r} is not a lossvista surface: dimensions must be (nx, ny, 1); got "
                           f"{tuple(dims)}{hint}")
    shape = (int(dims[0]), int(dims[1]))
    meta = _read_meta_of(data, path)
    if isinstance(data, vtkImageData):  # points from origin + spacing, in VTK order
        origin, spacing = data.GetOrigin(), data.GetSpacing()
        a = origin[0] + spacing[0] * np.arange(shape[0])
        b = origin[1] + spacing[1] * np.arange(shape[1])
        A, B = np.meshgrid(a, b, indexing="ij")  # (nx, ny)
        xyz = to_vtk_order(np.stack([A, B, np.zeros_like(A)], axis=-1))
    else:
        xyz = _numpy(data.GetPoints().GetData()).astype(np.float64)
    grid = _grid_from_points(xyz, shape, meta, path)
    arrays = _arrays_with_loss(data, shape, path, "surface")
    return Surface(grid, **_standard_arrays(arrays, shape), meta=meta, extra=arrays)


def _standard_arrays(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> dict[str, Any]:
    """Take the standard arrays out of ``arrays`` (what is left is ``extra``): loss, accuracy (None:
    a loss without classes), test_loss, test_accuracy, and ``bounded`` (derived from ``valid`` in a
    file that has none)."""
    loss = arrays.pop("loss").astype(np.float64)
    valid = arrays.pop("valid", None)
    bounded = arrays.pop("bounded", None)
    if bounded is None:
        bounded = (valid == 0) & np.isfinite(loss) if valid is not None else np.zeros(shape, bool)
    return {"loss": loss, "accuracy": arrays.pop("accuracy", None), "test_loss": arrays.pop("test_loss", None),
            "test_accuracy": arrays.pop("test_accuracy", None), "bounded": np.asarray(bounded).astype(bool)}


# --------------------------------------------------------------------------------------------
# volumes


def _volume_image(volume: Volume) -> vtkImageData:
    g = volume.grid
    img = vtkImageData()
    img.SetDimensions(g.nx, g.ny, g.nz)
    img.SetOrigin(g.xmin, g.ymin, g.zmin)
    img.SetSpacing(*((hi - lo) / (n - 1) if n > 1 else 1.0
                     for lo, hi, n in ((g.xmin, g.xmax, g.nx), (g.ymin, g.ymax, g.ny), (g.zmin, g.zmax, g.nz))))
    _fill_point_data(img, _surface_point_arrays(volume), ndim=3)
    meta = _complete_meta(volume.meta, "volume")
    meta["grid"] = g.to_dict()
    _set_field_meta(img, meta)
    return img


def write_volume(path: str | os.PathLike, volume: Volume) -> Path:
    """Write ``volume`` to a ``.vti`` file (vtkImageData, XML, appended raw binary, zlib).

    Dimensions ``(nx, ny, nz)``, origin ``(xmin, ymin, zmin)``, spacing of the lattice; the point
    arrays and metadata of a surface file (``loss``, ``accuracy``, ``test_*``, ``valid``,
    ``bounded``, ``extra``; ``losscape_meta`` with ``content`` "volume" and the lattice as
    ``grid``). Written atomically; returns ``path``.
    """
    path = Path(path)
    _check_suffix(path, (".vti",), "volume")
    if not isinstance(volume, Volume):
        raise ValueError(f"volume must be a pipeline.datamodel.Volume; got {type(volume).__name__}")
    return _write_xml(vtkXMLImageDataWriter, _volume_image(volume), path)


def _lattice(data: vtkImageData, dims: tuple[int, int, int], meta: Mapping[str, Any], path: Path) -> Lattice:
    origin, spacing = data.GetOrigin(), data.GetSpacing()
    axes = [origin[k] + spacing[k] * np.arange(dims[k]) for k in range(3)]
    stored = meta.get("grid")
    if isinstance(stored, Mapping) and "nz" in stored:
        try:
            g = Lattice.from_dict(stored)
        except (KeyError, TypeError, ValueError):
            g = None
        # prefer the stored lattice (exact user values) when it describes these points
        if g is not None and g.shape == dims and all(np.allclose(a, b) for a, b in zip(g.axes, axes)):
            return g
    try:
        return Lattice(*(v for a in axes for v in (float(a[0]), float(a[-1]), len(a))))
    except ValueError as exc:
        raise VTKFileError(f"{str(path)!r}: the image does not form a valid lattice ({exc})") from None


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a volume written by :func:`write_volume`: a :class:`Volume` with ``(nx, ny, nz)`` arrays.

    Any ``.vti`` with a ``loss`` point array reads (its lattice from origin and spacing when the
    metadata has none). Raises :class:`VTKFileNotFoundError`, or :class:`VTKFileError` for a
    file that is not VTK image data, is damaged, or has no ``loss`` array.
    """
    path = Path(path)
    data = _read_xml(path, ("ImageData",), "volume")
    dims = [0, 0, 0]
    data.GetDimensions(dims)
    if data.GetNumberOfPoints() == 0:
        raise VTKFileError(f"{str(path)!r} is not a lossvista volume: it holds no points")
    shape = (int(dims[0]), int(dims[1]), int(dims[2]))
    meta = _read_meta_of(data, path)
    lattice = _lattice(data, shape, meta, path)
    arrays = _arrays_with_loss(data, shape, path, "volume")
    return Volume(lattice, **_standard_arrays(arrays, shape), meta=meta, extra=arrays)


def read_grid(path: str | os.PathLike) -> Surface:
    """A surface (``.vts``, or a ``.vti`` twin of dimensions ``(nx, ny, 1)``) or a volume (a ``.vti``
    of three dimensions, or one whose metadata says ``content`` "volume"): :func:`read_surface`
    or :func:`read_volume`."""
    path = Path(path)
    if path.suffix.lower() != ".vti":
        return read_surface(path)
    data = _read_xml(path, ("ImageData",), "surface or volume")
    dims = [0, 0, 0]
    data.GetDimensions(dims)
    is_volume = dims[2] > 1 or _read_meta_of(data, path).get("content") == "volume"
    return read_volume(path) if is_volume else read_surface(path)


def _arrays_with_loss(data: Any, shape: tuple[int, ...], path: Any, what: str) -> dict[str, np.ndarray]:
    """The point arrays of a grid file in C order of ``shape``; a file without ``loss`` is not a
    lossvista ``what`` (surface, volume): :class:`VTKFileError`."""
    arrays = {name: from_vtk_order(v, shape) for name, v in _point_arrays(data).items()}
    if "loss" not in arrays:
        raise VTKFileError(f"{str(path)!r} is not a lossvista {what}: no 'loss' point array "
                           f"(arrays: {sorted(arrays) or 'none'})")
    return arrays
