"""Shared machinery of :mod:`pipeline.vtkio`: layout conversion, metadata, VTK arrays, atomic writes, reading."""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from vtkmodules.util import numpy_support
from vtkmodules.util.misc import calldata_type
from vtkmodules.util.vtkConstants import VTK_STRING
from vtkmodules.vtkCommonCore import vtkCommand, vtkPoints, vtkStringArray, vtkVersion
from vtkmodules.vtkCommonDataModel import vtkDataObject
from vtkmodules.vtkIOXML import (
    vtkXMLFileReadTester,
    vtkXMLImageDataReader,
    vtkXMLPolyDataReader,
    vtkXMLStructuredGridReader,
)

from .. import software_versions
from ..atomic import atomic_path, write_failure
from ..errors import LossvistaError
from ..datamodel import FORMAT_VERSION


META_NAME = "losscape_meta"  # field-data array holding the JSON metadata

# Point arrays with a fixed meaning in a surface file; anything else is Surface.extra.
_SURFACE_FLOAT = ("loss", "accuracy", "test_loss", "test_accuracy")
_SURFACE_RESERVED = frozenset(_SURFACE_FLOAT + ("valid", "bounded"))
_TRAJECTORY_ARRAYS = ("epoch", "loss", "surface_loss", "residual")

# VTK XML data types by file extension (what vtkXMLFileReadTester reports).
_TYPE_OF_SUFFIX = {".vts": "StructuredGrid", ".vtp": "PolyData", ".vti": "ImageData"}


class VTKFileError(LossvistaError, ValueError):
    """A file that cannot be read as the lossvista file asked for (wrong type, missing array, ...)."""


class VTKFileNotFoundError(LossvistaError, FileNotFoundError):
    """The file to read does not exist."""


# --------------------------------------------------------------------------------------------
# layout: the one place where (nx, ny) numpy order meets VTK's x-fastest order


def to_vtk_order(a: np.ndarray, ndim: int = 2) -> np.ndarray:
    """``(nx, ny[, c])`` array -> ``(nx * ny[, c])`` in VTK point order (x fastest: ``k = i + nx*j``).

    ``ndim=3``: a volume's ``(nx, ny, nz[, c])`` -> ``(nx * ny * nz[, c])``, ``k = i + nx*j + nx*ny*l``.
    """
    a = np.asarray(a)
    if ndim not in (2, 3) or a.ndim < ndim:
        want = "(nx, ny) or (nx, ny, c)" if ndim == 2 else "(nx, ny, nz) or (nx, ny, nz, c)"
        raise ValueError(f"array must have shape {want}; got {a.shape}")
    # (nx, ny[, nz], c) -> ([nz,] ny, nx, c): the last grid axis slowest, i fastest
    grid_axes = tuple(range(ndim))[::-1]
    flipped = np.transpose(a, grid_axes + tuple(range(ndim, a.ndim)))
    return np.ascontiguousarray(flipped.reshape((-1,) + a.shape[ndim:]))


def from_vtk_order(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`to_vtk_order`: ``(N[, c])`` -> ``(nx, ny[, c])`` with ``a[i, j]`` at
    ``(xs[i], ys[j])``; a three-axis ``shape`` ``(nx, ny, nz)`` gives ``(nx, ny, nz[, c])``."""
    flat = np.asarray(flat)
    shape = tuple(int(n) for n in shape)
    size = int(np.prod(shape))
    if flat.shape[0] != size:
        names = "nx*ny" if len(shape) == 2 else "nx*ny*nz"
        raise ValueError(f"flat array must have {size} = {names} entries for shape {shape}; got {flat.shape[0]}")
    nd = len(shape)
    grid = flat.reshape(shape[::-1] + flat.shape[1:])
    return np.ascontiguousarray(np.transpose(grid, tuple(range(nd))[::-1] + tuple(range(nd, grid.ndim))))


# --------------------------------------------------------------------------------------------
# small helpers


def _software() -> dict[str, str | None]:
    return {**software_versions(), "vtk": vtkVersion.GetVTKVersion()}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"metadata value of type {type(obj).__name__} is not JSON serialisable: {obj!r}")


def _complete_meta(meta: Mapping[str, Any] | None, content: str) -> dict[str, Any]:
    """A copy of ``meta`` with format version, content, software and creation time filled in."""
    out = dict(meta or {})
    out.setdefault("format_version", FORMAT_VERSION)
    out["content"] = content
    out.setdefault("software", _software())
    out.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    return out


def _meta_array(meta: Mapping[str, Any]) -> vtkStringArray:
    try:
        text = json.dumps(meta, default=_json_default, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"meta must be JSON-serialisable: {exc}") from None
    arr = vtkStringArray()
    arr.SetName(META_NAME)
    arr.InsertNextValue(text)
    return arr


def _vtk_array(name: str, values: np.ndarray):
    """numpy (N,) or (N, c) -> a named VTK data array (deep copy)."""
    v = np.asarray(values)
    if v.dtype == bool:
        v = v.astype(np.uint8)  # XML files have no bit arrays worth reading back
    if v.dtype.kind not in "iuf":
        raise ValueError(f"array {name!r} must be numeric (int, uint, float or bool); got dtype {v.dtype}")
    if v.ndim not in (1, 2):
        raise ValueError(f"array {name!r} must be (N,) or (N, c); got shape {v.shape}")
    arr = numpy_support.numpy_to_vtk(np.ascontiguousarray(v), deep=True)
    arr.SetName(name)
    return arr


def _numpy(arr) -> np.ndarray:
    out = numpy_support.vtk_to_numpy(arr)
    return np.array(out, copy=True)  # own the memory: the VTK object dies with the reader


def _points(coords: np.ndarray) -> vtkPoints:
    """(N, 2) (alpha, beta) -> vtkPoints (alpha, beta, 0) in float64; (N, 3) as given."""
    c = np.asarray(coords, dtype=np.float64)
    xyz = np.zeros((len(c), 3), dtype=np.float64)
    xyz[:, :c.shape[1] if c.ndim == 2 else 2] = c
    pts = vtkPoints()
    pts.SetData(_vtk_array("Points", xyz))
    return pts


def _check_suffix(path: Path, allowed: tuple[str, ...], what: str) -> None:
    if path.suffix.lower() not in allowed:
        raise ValueError(f"{what} path must end in {' or '.join(allowed)}; got {str(path)!r}")


class _ErrorCatcher:
    """Observer collecting VTK error messages of one object (instead of printing them)."""

    def __init__(self, obj) -> None:
        self.messages: list[str] = []

        @calldata_type(VTK_STRING)
        def on_error(caller, event, message=None) -> None:
            # "ERROR: In file.cxx, line N\nvtkClass (0x...): text" -> "text"
            text = str(message).strip().splitlines()[-1] if message else str(event)
            self.messages.append(re.sub(r"^\w+ \(0x[0-9a-fA-F]+\):\s*", "", text).strip())

        self._callback = on_error  # keep it alive as long as the catcher
        obj.AddObserver(vtkCommand.ErrorEvent, on_error)


@contextlib.contextmanager
def _vtk_log_off(warnings: bool = True) -> Iterator[None]:
    """VTK's own error log kept off stderr: its logger's lines (e.g. a zlib block that does not
    inflate) and, unless ``warnings``, every object's error text. The caller collects the errors
    of the object it runs (:class:`_ErrorCatcher`) and reports them in one line; with the text
    off, VTK does not even make it, so a reader keeps ``warnings`` for the catcher."""
    from vtkmodules.vtkCommonCore import vtkLogger, vtkObject

    shown, verbosity = vtkObject.GetGlobalWarningDisplay(), vtkLogger.GetCurrentVerbosityCutoff()
    if not warnings:
        vtkObject.GlobalWarningDisplayOff()
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    try:
        yield
    finally:
        vtkObject.SetGlobalWarningDisplay(shown)
        vtkLogger.SetStderrVerbosity(verbosity)


def _run_writer(writer, target: Path | None = None) -> None:
    """Run a configured VTK XML writer; raise a one-line error naming ``target`` and the cause.

    VTK's own error log (the writer's and its pipeline executive's, several lines each) is kept
    off stderr while the writer runs: its messages are collected and the cause reported once.
    Tests replace this function to simulate crashes.
    """
    errors = _ErrorCatcher(writer)
    with _vtk_log_off(warnings=False):
        ok = writer.Write()
    if ok != 1 or errors.messages:
        detail = "; ".join(dict.fromkeys(errors.messages)) or "the VTK writer failed"
        raise write_failure(target or Path(writer.GetFileName()), RuntimeError(detail))


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then rename it onto ``path``
    (:func:`pipeline.atomic.atomic_path`; missing output directories are created)."""
    with atomic_path(path, make_parents=True) as tmp:
        write(tmp)
    return Path(path)


def _write_xml(writer_cls, data: vtkDataObject, path: Path) -> Path:
    def write(tmp: Path) -> None:
        writer = writer_cls()
        writer.SetInputData(data)
        writer.SetFileName(str(tmp))
        writer.SetDataModeToAppended()
        writer.EncodeAppendedDataOff()  # raw binary: smaller and faster than base64
        writer.SetCompressorTypeToZLib()
        _run_writer(writer, path)

    return _atomic_write(path, write)


def _file_type(path: Path) -> str:
    """The VTK XML data type of ``path`` (e.g. ``"StructuredGrid"``); errors for missing/non-VTK files."""
    path = Path(path)
    if not path.exists():
        raise VTKFileNotFoundError(f"file not found: {str(path)!r}")
    if not path.is_file():
        raise VTKFileError(f"not a file: {str(path)!r}")
    tester = vtkXMLFileReadTester()
    tester.SetFileName(str(path))
    if not tester.TestReadFile():
        raise VTKFileError(f"{str(path)!r} is not a VTK XML file")
    return tester.GetFileDataType() or ""


def _read_xml(path: Path, expected: tuple[str, ...], what: str) -> vtkDataObject:
    kind = _file_type(path)
    if kind not in expected:
        raise VTKFileError(
            f"{str(path)!r} is not a lossvista {what} file: it holds VTK {kind or 'unknown'} data, "
            f"expected {' or '.join(expected)}"
        )
    reader = {
        "StructuredGrid": vtkXMLStructuredGridReader,
        "PolyData": vtkXMLPolyDataReader,
        "ImageData": vtkXMLImageDataReader,
    }[kind]()
    reader.SetFileName(str(path))
    errors = _ErrorCatcher(reader)
    with _vtk_log_off():
        reader.Update()
    if errors.messages or reader.GetErrorCode():
        detail = "; ".join(errors.messages) or f"error code {reader.GetErrorCode()}"
        raise VTKFileError(f"cannot read {str(path)!r} (damaged or truncated?): {detail}")
    return reader.GetOutput()


def _read_meta_of(data: vtkDataObject, path: Path) -> dict[str, Any]:
    fd = data.GetFieldData()
    arr = fd.GetAbstractArray(META_NAME) if fd is not None else None
    if arr is None or arr.GetNumberOfValues() < 1:
        return {}
    text = arr.GetValue(0)
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VTKFileError(f"{str(path)!r}: field data {META_NAME!r} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise VTKFileError(f"{str(path)!r}: field data {META_NAME!r} must hold a JSON object; got {type(meta).__name__}")
    return meta


def _point_arrays(data: vtkDataObject) -> dict[str, np.ndarray]:
    pd = data.GetPointData()
    out = {}
    for k in range(pd.GetNumberOfArrays()):
        arr = pd.GetArray(k)
        if arr is None or not arr.GetName():  # skip string arrays and unnamed arrays
            continue
        out[arr.GetName()] = _numpy(arr)
    return out


def _set_field_meta(data: vtkDataObject, meta: Mapping[str, Any]) -> None:
    data.GetFieldData().AddArray(_meta_array(meta))
