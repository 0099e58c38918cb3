"""Trajectories (one polyline) and point sets (one vertex per point) as ``.vtp`` (vtkPolyData)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

from ..datamodel import Trajectory
from ._core import (
    _TRAJECTORY_ARRAYS,
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
)

__all__ = ["write_trajectory", "read_trajectory", "write_points", "read_points"]


# --------------------------------------------------------------------------------------------
# trajectories and point sets (vtkPolyData)


def _polydata(coords: np.ndarray, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], cells: str) -> vtkPolyData:
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise ValueError(f"coords must have shape (K, 2) (alpha, beta) or (K, 3) (alpha, beta, gamma); "
                         f"got {coords.shape}")
    k = len(coords)
    pd = vtkPolyData()
    pd.SetPoints(_points(coords))
    ca = vtkCellArray()
    if cells == "line" and k > 0:
        ca.InsertNextCell(k)
        for idx in range(k):
            ca.InsertCellPoint(idx)
        pd.SetLines(ca)
    elif cells == "verts":
        for idx in range(k):
            ca.InsertNextCell(1)
            ca.InsertCellPoint(idx)
        pd.SetVerts(ca)
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.shape[:1] != (k,):
            raise ValueError(f"array {name!r} must have {k} rows (one per point); got shape {value.shape}")
        pd.GetPointData().AddArray(_vtk_array(name, value))
    _set_field_meta(pd, meta)
    return pd


def write_trajectory(path: str | os.PathLike, trajectory: Trajectory) -> Path:
    """Write ``trajectory`` as a ``.vtp`` with one polyline through the checkpoints in epoch order.

    Points ``(alpha, beta, 0)`` (``(alpha, beta, gamma)`` for a path in a volume); point arrays
    ``epoch`` (int64), ``loss``, ``surface_loss``, ``residual`` (float64); metadata in field
    data. Written atomically.
    """
    path = Path(path)
    _check_suffix(path, (".vtp",), "trajectory")
    if not isinstance(trajectory, Trajectory):
        raise ValueError(f"trajectory must be a pipeline.datamodel.Trajectory; got {type(trajectory).__name__}")
    arrays = {name: getattr(trajectory, name) for name in _TRAJECTORY_ARRAYS}
    pd = _polydata(trajectory.coords, arrays, _complete_meta(trajectory.meta, "trajectory"), cells="line")
    return _write_xml(vtkXMLPolyDataWriter, pd, path)


def read_trajectory(path: str | os.PathLike) -> Trajectory:
    """Read a trajectory ``.vtp``; points are returned in the order of its polyline.

    ``epoch`` is required; missing ``loss``/``surface_loss``/``residual`` read as NaN. A path in a
    volume (metadata ``ndim`` 3) has ``(E, 3)`` coordinates, any other ``(E, 2)``.
    """
    path = Path(path)
    data = _read_xml(path, ("PolyData",), "trajectory")
    meta = _read_meta_of(data, path)
    n = data.GetNumberOfPoints()
    xyz = _numpy(data.GetPoints().GetData()).astype(np.float64) if n else np.zeros((0, 3))
    arrays = _point_arrays(data)
    if "epoch" not in arrays:
        raise VTKFileError(f"{str(path)!r} is not a lossvista trajectory: no 'epoch' point array "
                           f"(arrays: {sorted(arrays) or 'none'})")
    order = np.arange(n)
    lines = data.GetLines()
    if lines is not None and lines.GetNumberOfCells() == 1:
        ids = _numpy(lines.GetConnectivityArray()).astype(np.int64)
        if len(ids) == n and len(np.unique(ids)) == n:
            order = ids
    elif lines is not None and lines.GetNumberOfCells() > 1:
        raise VTKFileError(f"{str(path)!r} is not a lossvista trajectory: expected one polyline, "
                           f"got {lines.GetNumberOfCells()} line cells")
    nan = np.full(n, np.nan)
    return Trajectory(
        coords=xyz[order, :_columns(meta)],
        epoch=arrays["epoch"][order],
        loss=arrays.get("loss", nan)[order],
        surface_loss=arrays.get("surface_loss", nan)[order],
        residual=arrays.get("residual", nan)[order],
        meta=meta,
    )


def write_points(
    path: str | os.PathLike,
    coords: np.ndarray,
    arrays: Mapping[str, np.ndarray] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a point set (e.g. ``critical_points_<kind>.vtp``): one vertex cell per point.

    Parameters
    ----------
    coords : (K, 2) or (K, 3) float
        ``(alpha, beta)``, written as points ``(alpha, beta, 0)``; or ``(alpha, beta, gamma)``
        (then give ``meta["ndim"] = 3`` so that :func:`read_points` returns three). ``K = 0`` is allowed.
    arrays : dict of name -> (K,) or (K, c) numeric array
        Point arrays, dtype kept (bool becomes uint8), e.g. ``CriticalType`` int,
        ``persistence``, ``loss`` float64, ``vertex_id`` int64.
    meta : dict, optional
        JSON metadata for the field data.
    """
    path = Path(path)
    _check_suffix(path, (".vtp",), "points")
    pd = _polydata(coords, dict(arrays or {}), _complete_meta(meta, meta.get("content", "points") if meta else "points"),
                   cells="verts")
    return _write_xml(vtkXMLPolyDataWriter, pd, path)


def read_points(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """Read a ``.vtp`` point set: ``(coords (K, 2) float64, arrays {name: (K,) or (K, c)}, meta)``;
    coords are ``(K, 3)`` when the metadata's ``ndim`` is 3 (points in a volume)."""
    path = Path(path)
    data = _read_xml(path, ("PolyData",), "points")
    n = data.GetNumberOfPoints()
    xyz = _numpy(data.GetPoints().GetData()).astype(np.float64) if n else np.zeros((0, 3))
    meta = _read_meta_of(data, path)
    return xyz[:, :_columns(meta)].copy(), _point_arrays(data), meta


def _columns(meta: Mapping[str, Any]) -> int:
    """Coordinates a point of the file has: 3 in a volume (metadata ``ndim`` 3), else 2."""
    return 3 if meta.get("ndim") == 3 else 2
