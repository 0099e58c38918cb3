"""pipeline.vtkio: schemas checked with VTK's own XML readers, round trips, atomic writes, export."""
from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonCore import VTK_DOUBLE, VTK_INT, VTK_LONG_LONG, VTK_UNSIGNED_CHAR, vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkStructuredData, vtkStructuredGrid
from vtkmodules.vtkIOXML import (
    vtkXMLImageDataReader,
    vtkXMLPolyDataReader,
    vtkXMLPolyDataWriter,
    vtkXMLStructuredGridReader,
    vtkXMLStructuredGridWriter,
)

from pipeline import vtkio
from pipeline.datamodel import Grid
from pipeline.errors import LossvistaError
from pipeline.datamodel import Surface, Trajectory

SHAPES = [(7, 4), (3, 9), (6, 1)]  # non-square both ways, and a 1D slice


def make_surface(nx=7, ny=4, *, nan_at=None, bounded_at=None, test=False, meta=None) -> Surface:
    """An analytic surface whose value identifies its point: loss = 10 + 3*a - 2*b + a*b (distinct at every point)."""
    grid = Grid(-1.0, 2.0, nx, -0.5, 1.5, ny) if ny > 1 else Grid(-1.0, 2.0, nx, 0.0, 0.0, 1)
    a, b = np.meshgrid(grid.xs, grid.ys, indexing="ij")  # (nx, ny)
    loss = 10.0 + 3.0 * a - 2.0 * b + a * b
    bounded = np.zeros(grid.shape, bool)
    if nan_at is not None:
        loss[nan_at] = np.nan
    if bounded_at is not None:
        bounded[bounded_at] = True
    kw = {}
    if test:
        kw = dict(test_loss=loss + 0.25, test_accuracy=np.full(grid.shape, 0.5))
    basin = np.arange(nx * ny, dtype=np.int32).reshape(nx, ny) - 1  # -1 at (0, 0)
    return Surface(grid, loss, 1.0 / (1.0 + np.abs(loss)), bounded=bounded,
                   meta=meta if meta is not None else {"model": "tiny-cnn", "seed": 3, "note": "Ω µ"},
                   extra={"basin": basin}, **kw)


def read_vts_plain(path) -> vtkStructuredGrid:
    r = vtkXMLStructuredGridReader()
    r.SetFileName(str(path))
    r.Update()
    return r.GetOutput()


def np_array(data, name):
    arr = data.GetPointData().GetArray(name)
    assert arr is not None, f"missing point array {name!r}"
    return numpy_support.vtk_to_numpy(arr)


# ---------------------------------------------------------------------------------- layout


@pytest.mark.parametrize("shape", SHAPES)
def test_vtk_order_is_x_fastest(shape):
    nx, ny = shape
    a = np.arange(nx * ny).reshape(nx, ny) * 10 + 7
    flat = vtkio.to_vtk_order(a)
    for i in range(nx):
        for j in range(ny):
            assert flat[i + nx * j] == a[i, j]
    np.testing.assert_array_equal(vtkio.from_vtk_order(flat, shape), a)
    three = np.stack([a, -a], axis=-1)
    np.testing.assert_array_equal(vtkio.from_vtk_order(vtkio.to_vtk_order(three), shape), three)


# ---------------------------------------------------------------------------------- surfaces


@pytest.mark.parametrize("shape", SHAPES)
def test_surface_file_read_by_plain_vtk_reader(tmp_path, shape):
    s = make_surface(*shape, test=True)
    path = vtkio.write_surface(tmp_path / "surface_random.vts", s)
    assert path == tmp_path / "surface_random.vts"
    head = path.read_bytes()[:300]
    assert b'type="StructuredGrid"' in head and b"vtkZLibDataCompressor" in head
    data = read_vts_plain(path)
    nx, ny = shape
    dims = [0, 0, 0]
    data.GetDimensions(dims)
    assert dims == [nx, ny, 1]
    pd = data.GetPointData()
    names = {pd.GetArrayName(k) for k in range(pd.GetNumberOfArrays())}
    assert names == {"loss", "accuracy", "test_loss", "test_accuracy", "valid", "bounded", "basin"}
    assert pd.GetArray("loss").GetDataType() == VTK_DOUBLE
    assert pd.GetArray("accuracy").GetDataType() == VTK_DOUBLE
    assert pd.GetArray("valid").GetDataType() == VTK_UNSIGNED_CHAR
    assert pd.GetArray("basin").GetDataType() == VTK_INT
    assert data.GetPoints().GetData().GetDataType() == VTK_DOUBLE
    loss = np_array(data, "loss")
    xs, ys = s.grid.xs, s.grid.ys
    for i in range(nx):
        for j in range(ny):
            k = vtkStructuredData.ComputePointId([nx, ny, 1], [i, j, 0])
            assert k == i + nx * j
            assert data.GetPoint(k) == (xs[i], ys[j], 0.0)
            # the value written there is the analytic value at (xs[i], ys[j])
            assert loss[k] == pytest.approx(10 + 3 * xs[i] - 2 * ys[j] + xs[i] * ys[j], rel=1e-15)
            assert np_array(data, "basin")[k] == s.extra["basin"][i, j]
    meta = json.loads(data.GetFieldData().GetAbstractArray("losscape_meta").GetValue(0))
    assert meta["model"] == "tiny-cnn" and meta["note"] == "Ω µ"
    assert meta["format_version"] == 1 and meta["content"] == "surface"
    assert {"lossvista", "vtk", "numpy"} <= set(meta["software"]) and "created" in meta
    assert Grid.from_dict(meta["grid"]) == s.grid


@pytest.mark.parametrize("shape", SHAPES)
def test_surface_round_trip(tmp_path, shape):
    s = make_surface(*shape, test=True, nan_at=(1, 0), bounded_at=(shape[0] - 1, shape[1] - 1))
    s.extra["flag"] = np.zeros(shape, bool)
    s.extra["flag"][0, -1] = True
    s.extra["grad"] = np.random.default_rng(0).normal(size=shape + (2,))
    r = vtkio.read_surface(vtkio.write_surface(tmp_path / "s.vts", s))
    assert r.grid == s.grid
    for name in ("loss", "accuracy", "test_loss", "test_accuracy"):
        np.testing.assert_array_equal(getattr(r, name), getattr(s, name))
    np.testing.assert_array_equal(r.bounded, s.bounded)
    np.testing.assert_array_equal(r.valid, s.valid)
    assert set(r.extra) == {"basin", "flag", "grad"}
    assert r.extra["basin"].dtype == np.int32
    np.testing.assert_array_equal(r.extra["basin"], s.extra["basin"])
    assert r.extra["flag"].dtype == np.uint8
    np.testing.assert_array_equal(r.extra["flag"], s.extra["flag"])
    np.testing.assert_array_equal(r.extra["grad"], s.extra["grad"])
    for key, value in s.meta.items():
        assert r.meta[key] == value
    assert s.meta == {"model": "tiny-cnn", "seed": 3, "note": "Ω µ"}  # caller's dict untouched


def test_nan_preserved_and_invalid(tmp_path):
    s = make_surface(5, 4, nan_at=(2, 3), bounded_at=(4, 0))
    s.loss[0, 1] = np.inf
    path = vtkio.write_surface(tmp_path / "s.vts", s)
    data = read_vts_plain(path)
    loss, valid = np_array(data, "loss"), np_array(data, "valid")
    nx = 5
    assert np.isnan(loss[2 + nx * 3]) and valid[2 + nx * 3] == 0
    assert np.isposinf(loss[0 + nx * 1]) and valid[0 + nx * 1] == 0
    assert np.isfinite(loss[4]) and valid[4] == 0 and np_array(data, "bounded")[4] == 1
    assert valid.sum() == 5 * 4 - 3
    r = vtkio.read_surface(path)
    assert np.isnan(r.loss[2, 3]) and np.isposinf(r.loss[0, 1]) and r.bounded[4, 0]


def test_vti_twin(tmp_path):
    s = make_surface(6, 3, nan_at=(0, 0))
    vtkio.write_surface(tmp_path / "s.vts", s, vti=True)
    assert (tmp_path / "s.vti").is_file()
    rd = vtkXMLImageDataReader()
    rd.SetFileName(str(tmp_path / "s.vti"))
    rd.Update()
    img = rd.GetOutput()
    assert img.GetDimensions() == (6, 3, 1)
    for i, j in [(0, 0), (5, 2), (3, 1)]:
        k = i + 6 * j
        assert img.GetPoint(k) == pytest.approx((s.xs[i], s.ys[j], 0.0), abs=1e-12)
    r = vtkio.read_surface(tmp_path / "s.vti")
    assert r.grid == s.grid
    np.testing.assert_array_equal(r.loss, s.loss)


def test_bounded_derived_when_array_absent(tmp_path):
    # a file written by another tool: loss + valid only, no bounded array, no metadata
    nx, ny = 4, 3
    g = Grid(0.0, 3.0, nx, -1.0, 1.0, ny)
    loss = np.arange(12, dtype=float).reshape(nx, ny)
    loss[1, 1] = np.nan
    valid = np.ones((nx, ny), np.uint8)
    valid[1, 1] = valid[2, 0] = 0
    sg = vtkStructuredGrid()
    sg.SetDimensions(nx, ny, 1)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    pts = vtkPoints()
    pts.SetData(numpy_support.numpy_to_vtk(vtkio.to_vtk_order(np.stack([a, b, 0 * a], -1)), deep=True))
    sg.SetPoints(pts)
    for name, arr in (("loss", loss), ("valid", valid)):
        v = numpy_support.numpy_to_vtk(vtkio.to_vtk_order(arr), deep=True)
        v.SetName(name)
        sg.GetPointData().AddArray(v)
    w = vtkXMLStructuredGridWriter()
    w.SetInputData(sg)
    w.SetFileName(str(tmp_path / "foreign.vts"))
    w.Write()
    r = vtkio.read_surface(tmp_path / "foreign.vts")
    assert r.meta == {} and r.grid == g
    assert r.bounded[2, 0] and not r.bounded[1, 1] and r.bounded.sum() == 1
    assert r.accuracy is None  # a file without accuracy: a loss without classes


# ---------------------------------------------------------------------------------- errors


def test_read_errors(tmp_path):
    with pytest.raises(vtkio.VTKFileNotFoundError, match="not found"):
        vtkio.read_surface(tmp_path / "missing.vts")
    (tmp_path / "text.vts").write_text("not xml at all")
    with pytest.raises(vtkio.VTKFileError, match="not a VTK XML file"):
        vtkio.read_surface(tmp_path / "text.vts")
    t = Trajectory(np.zeros((2, 2)), [0, 1], [1.0, 2.0], [1.0, 2.0], [0.0, 0.0])
    vtkio.write_trajectory(tmp_path / "t.vtp", t)
    with pytest.raises(vtkio.VTKFileError, match="not a lossvista surface file.*PolyData"):
        vtkio.read_surface(tmp_path / "t.vtp")
    s = make_surface()
    vtkio.write_surface(tmp_path / "s.vts", s)
    with pytest.raises(vtkio.VTKFileError, match="not a lossvista trajectory"):
        vtkio.read_trajectory(tmp_path / "s.vts")
    with pytest.raises(vtkio.VTKFileError, match="not a file"):
        vtkio.read_surface(tmp_path)
    raw = (tmp_path / "s.vts").read_bytes()
    (tmp_path / "cut.vts").write_bytes(raw[: int(len(raw) * 0.9)])
    with pytest.raises(vtkio.VTKFileError, match="damaged or truncated"):
        vtkio.read_surface(tmp_path / "cut.vts")
    # errors are both LossvistaError and the standard type the CLI expects
    assert issubclass(vtkio.VTKFileError, LossvistaError) and issubclass(vtkio.VTKFileError, ValueError)
    assert issubclass(vtkio.VTKFileNotFoundError, FileNotFoundError)


def test_a_damaged_block_is_one_line_without_vtks_log(tmp_path):
    """A zlib block that does not inflate: VTK's logger prints its own coloured line from C++,
    which the reader keeps off stderr; the cause is in the one line of the error."""
    from .conftest import assert_one_line_error, run_cli

    vtkio.write_surface(tmp_path / "s.vts", make_surface(41, 41))
    raw = bytearray((tmp_path / "s.vts").read_bytes())
    start = raw.index(b'<AppendedData encoding="raw">')
    middle = (start + len(raw)) // 2
    raw[middle:middle + 64] = b"\xff" * 64
    (tmp_path / "bad.vts").write_bytes(bytes(raw))
    assert_one_line_error(run_cli("analyze", str(tmp_path / "bad.vts")), "damaged or truncated")


def test_read_surface_without_loss(tmp_path):
    sg = vtkStructuredGrid()
    sg.SetDimensions(2, 2, 1)
    pts = vtkPoints()
    for y in (0.0, 1.0):
        for x in (0.0, 1.0):
            pts.InsertNextPoint(x, y, 0.0)
    sg.SetPoints(pts)
    v = numpy_support.numpy_to_vtk(np.ones(4), deep=True)
    v.SetName("energy")
    sg.GetPointData().AddArray(v)
    w = vtkXMLStructuredGridWriter()
    w.SetInputData(sg)
    w.SetFileName(str(tmp_path / "e.vts"))
    w.Write()
    with pytest.raises(vtkio.VTKFileError, match=r"no 'loss' point array \(arrays: \['energy'\]\)"):
        vtkio.read_surface(tmp_path / "e.vts")


def test_write_errors(tmp_path):
    s = make_surface()
    with pytest.raises(ValueError, match=r"surface path must end in \.vts; got .*s\.vtk"):
        vtkio.write_surface(tmp_path / "s.vtk", s)
    s.extra["valid"] = np.zeros(s.grid.shape)
    with pytest.raises(ValueError, match="reserved names.*got 'valid'"):
        vtkio.write_surface(tmp_path / "s.vts", s)
    s.extra = {"basin": np.zeros((3, 3))}
    with pytest.raises(ValueError, match=r"extra\['basin'\] must have shape \(7, 4\).*got \(3, 3\)"):
        vtkio.write_surface(tmp_path / "s.vts", s)
    s.extra = {"label": np.full(s.grid.shape, "x")}
    with pytest.raises(ValueError, match="'label' must be numeric"):
        vtkio.write_surface(tmp_path / "s.vts", s)
    s.extra, s.meta = {}, {"obj": object()}
    with pytest.raises(ValueError, match="JSON-serialisable"):
        vtkio.write_surface(tmp_path / "s.vts", s)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- atomicity


def _crashing_writer(original):
    """Start the real write, then fail as if the process died half-way: a partial file stays on disk."""

    def run(writer, target=None):
        original(writer, target)
        name = writer.GetFileName()
        with open(name, "r+b") as f:
            f.truncate(os.path.getsize(name) // 2)
        raise OSError(28, "No space left on device")

    return run


@pytest.mark.parametrize("kind", ["surface", "vti", "trajectory", "points"])
def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch, kind):
    s, s2 = make_surface(5, 3), make_surface(9, 2)
    t = Trajectory(np.ones((3, 2)), [0, 1, 2], [3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [0.0, 0.0, 0.0])
    write = {
        "surface": lambda p, x: vtkio.write_surface(p, x),
        "vti": lambda p, x: vtkio.write_surface(p.with_suffix(".vts"), x, vti=True),
        "trajectory": lambda p, x: vtkio.write_trajectory(p, t),
        "points": lambda p, x: vtkio.write_points(p, np.zeros((x.grid.nx, 2)), {"n": np.arange(x.grid.nx)}),
    }[kind]
    target = tmp_path / {"surface": "s.vts", "vti": "s.vti", "trajectory": "t.vtp", "points": "c.vtp"}[kind]
    write(target, s)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    calls = []
    real = vtkio._core._run_writer

    def flaky(writer, target=None):  # the .vts of the vti case succeeds, only the .vti fails
        calls.append(writer.GetFileName())
        if kind == "vti" and len(calls) == 1:
            return real(writer, target)
        return _crashing_writer(real)(writer, target)

    monkeypatch.setattr(vtkio._core, "_run_writer", flaky)
    with pytest.raises(LossvistaError, match=r"cannot write .* \(No space left on device\); nothing was written"):
        write(target, s2)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert not [n for n in after if n.endswith(".tmp")], "temporary file left behind"
    assert after[target.name] == before[target.name], "previous file changed"
    if kind == "surface":
        assert vtkio.read_surface(target).grid == s.grid
    # the temporary file was in the same directory (so os.replace is atomic)
    assert all(os.path.dirname(c) == str(tmp_path) for c in calls)


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(vtkio._core, "_run_writer", _crashing_writer(vtkio._core._run_writer))
    with pytest.raises(LossvistaError, match="No space left on device"):
        vtkio.write_surface(tmp_path / "s.vts", make_surface())
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- trajectories


def make_trajectory(n=6) -> Trajectory:
    e = np.arange(n)
    coords = np.stack([np.linspace(1.5, 0, n) ** 2, np.sin(e)], axis=1)
    coords[-1] = 0
    return Trajectory(coords, e, 2.0 / (1 + e), 2.1 / (1 + e), np.linspace(0.3, 0, n), meta={"kind": "pca"})


def test_trajectory_file_read_by_plain_vtk_reader(tmp_path):
    t = make_trajectory(6)
    path = vtkio.write_trajectory(tmp_path / "trajectory_pca.vtp", t)
    r = vtkXMLPolyDataReader()
    r.SetFileName(str(path))
    r.Update()
    pd = r.GetOutput()
    assert pd.GetNumberOfPoints() == 6
    assert pd.GetNumberOfLines() == 1 and pd.GetNumberOfVerts() == 0
    assert pd.GetCell(0).GetNumberOfPoints() == 6
    assert [pd.GetCell(0).GetPointId(k) for k in range(6)] == list(range(6))
    for k in range(6):
        assert pd.GetPoint(k) == (t.coords[k, 0], t.coords[k, 1], 0.0)
    assert pd.GetPointData().GetArray("epoch").GetDataType() == VTK_LONG_LONG
    for name in ("loss", "surface_loss", "residual"):
        assert pd.GetPointData().GetArray(name).GetDataType() == VTK_DOUBLE
        np.testing.assert_array_equal(np_array(pd, name), getattr(t, name))
    meta = json.loads(pd.GetFieldData().GetAbstractArray("losscape_meta").GetValue(0))
    assert meta["kind"] == "pca" and meta["content"] == "trajectory"


@pytest.mark.parametrize("n", [0, 1, 5])
def test_trajectory_round_trip(tmp_path, n):
    t = make_trajectory(n) if n else Trajectory(np.zeros((0, 2)), [], [], [], [], meta={"kind": "pca"})
    if n > 2:
        t.loss[2] = np.nan
    r = vtkio.read_trajectory(vtkio.write_trajectory(tmp_path / "t.vtp", t))
    for name in ("coords", "epoch", "loss", "surface_loss", "residual"):
        np.testing.assert_array_equal(getattr(r, name), getattr(t, name))
    assert r.epoch.dtype == np.int64 and r.meta["kind"] == "pca"


def test_trajectory_follows_polyline_order(tmp_path):
    # another tool stored the points in reverse but the polyline in epoch order
    n = 4
    pd = vtkPolyData()
    pts = vtkPoints()
    for k in range(n):
        pts.InsertNextPoint(float(n - 1 - k), 0.0, 0.0)  # point k holds epoch n-1-k
    pd.SetPoints(pts)
    lines = vtkCellArray()
    lines.InsertNextCell(n)
    for k in range(n):
        lines.InsertCellPoint(n - 1 - k)
    pd.SetLines(lines)
    ep = numpy_support.numpy_to_vtk(np.arange(n)[::-1].copy(), deep=True)
    ep.SetName("epoch")
    pd.GetPointData().AddArray(ep)
    w = vtkXMLPolyDataWriter()
    w.SetInputData(pd)
    w.SetFileName(str(tmp_path / "rev.vtp"))
    w.Write()
    t = vtkio.read_trajectory(tmp_path / "rev.vtp")
    np.testing.assert_array_equal(t.epoch, np.arange(n))
    np.testing.assert_array_equal(t.coords[:, 0], np.arange(n))
    assert np.isnan(t.surface_loss).all()


# ---------------------------------------------------------------------------------- points, meta, pvd


@pytest.mark.parametrize("k", [0, 1, 5])
def test_points_round_trip(tmp_path, k):
    rng = np.random.default_rng(k)
    coords = rng.normal(size=(k, 2))
    arrays = {
        "CriticalType": rng.choice([0, 1, 3], size=k).astype(np.int32),
        "persistence": rng.random(k),
        "loss": rng.random(k),
        "vertex_id": rng.integers(0, 100, size=k).astype(np.int64),
    }
    path = vtkio.write_points(tmp_path / "critical_points_random.vtp", coords, arrays, {"threshold": 0.1})
    r = vtkXMLPolyDataReader()
    r.SetFileName(str(path))
    r.Update()
    assert r.GetOutput().GetNumberOfVerts() == k and r.GetOutput().GetNumberOfPoints() == k
    c2, a2, m2 = vtkio.read_points(path)
    np.testing.assert_array_equal(c2, coords)
    assert set(a2) == set(arrays)
    for name, v in arrays.items():
        assert a2[name].dtype == v.dtype
        np.testing.assert_array_equal(a2[name], v)
    assert m2["threshold"] == 0.1 and m2["content"] == "points"
    assert vtkio.read_meta(path) == m2


def test_points_errors(tmp_path):
    with pytest.raises(ValueError, match=r"coords must have shape \(K, 2\) .* or \(K, 3\)"):
        vtkio.write_points(tmp_path / "p.vtp", np.zeros((3, 4)), {})
    with pytest.raises(ValueError, match=r"'loss' must have 3 rows .* got shape \(2,\)"):
        vtkio.write_points(tmp_path / "p.vtp", np.zeros((3, 2)), {"loss": np.zeros(2)})


def test_read_meta_numpy_values(tmp_path):
    meta = {"explained_variance": np.array([0.7, 0.2]), "n": np.int64(5), "centre_loss": np.float32(0.5)}
    s = make_surface(meta=meta)
    m = vtkio.read_meta(vtkio.write_surface(tmp_path / "s.vts", s))
    assert m["explained_variance"] == [0.7, 0.2] and m["n"] == 5 and m["centre_loss"] == 0.5


def test_pvd_lists_files(tmp_path):
    pv = pytest.importorskip("pyvista")
    vtkio.write_surface(tmp_path / "surface_random.vts", make_surface(5, 4))
    vtkio.write_trajectory(tmp_path / "trajectory_random.vtp", make_trajectory())
    path = vtkio.write_pvd(tmp_path / "run.pvd", [tmp_path / "surface_random.vts",
                                                   {"file": tmp_path / "trajectory_random.vtp", "name": "path"}])
    text = path.read_text()
    assert 'file="surface_random.vts"' in text and 'name="path"' in text  # relative names
    blocks = pv.get_reader(str(path)).read()
    assert blocks.n_blocks == 2
    assert blocks[0].n_points == 20 and "loss" in blocks[0].point_data
    assert blocks[1].n_points == 6 and "epoch" in blocks[1].point_data


# ---------------------------------------------------------------------------------- mesh export


def _grid_index(s: Surface, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i = np.abs(xy[:, :1] - s.xs[None, :]).argmin(axis=1)
    j = np.abs(xy[:, 1:2] - s.ys[None, :]).argmin(axis=1)
    np.testing.assert_allclose(s.xs[i], xy[:, 0], atol=1e-6)
    np.testing.assert_allclose(s.ys[j], xy[:, 1], atol=1e-6)
    return i, j


def _expected_vertices(keep: np.ndarray) -> int:
    """Points in at least one triangle of all-kept points (independent plain loop)."""
    nx, ny = keep.shape
    used = np.zeros_like(keep)
    for i in range(nx - 1):
        for j in range(ny - 1):
            for tri in (((i, j), (i + 1, j), (i, j + 1)), ((i + 1, j), (i + 1, j + 1), (i, j + 1))):
                if all(keep[p] for p in tri):
                    for p in tri:
                        used[p] = True
    return int(used.sum())


@pytest.mark.parametrize("fmt", ["ply", "obj", "stl"])
def test_export_mesh(tmp_path, fmt):
    meshio = pytest.importorskip("meshio")
    s = make_surface(7, 5, nan_at=(3, 2), bounded_at=(0, 0))  # interior NaN, bounded corner
    s.loss[6, 4] = np.inf
    path = vtkio.export_mesh(s, tmp_path / f"surface.{fmt}", fmt, scale=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # meshio's STL size check overflows a numpy scalar
        m = meshio.read(path)
    keep = s.valid.astype(bool)
    assert len(m.points) == _expected_vertices(keep) == 7 * 5 - 3
    tris = m.cells_dict["triangle"]
    assert len(tris) == 2 * 6 * 4 - 6 - 1 - 1  # interior point: 6 triangles; each corner: 1
    i, j = _grid_index(s, m.points)
    assert keep[i, j].all(), "an invalid point was written"
    rtol = 1e-6 if fmt == "stl" else 1e-12  # STL stores float32
    np.testing.assert_allclose(m.points[:, 2], 0.5 * s.loss[i, j], rtol=rtol)
    # triangles face +z (counter-clockwise in the alpha-beta plane)
    p = m.points[tris]
    u, v = p[:, 1, :2] - p[:, 0, :2], p[:, 2, :2] - p[:, 0, :2]
    cross_z = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    assert (cross_z > 0).all()
    if fmt == "ply":
        np.testing.assert_array_equal(m.point_data["loss"], s.loss[i, j])


def test_export_mesh_log_and_auto_scale(tmp_path):
    meshio = pytest.importorskip("meshio")
    s = make_surface(6, 6)
    s.loss[0, :] = -1.0  # not positive: dropped under log, never written as 0 or -inf
    path = vtkio.export_mesh(s, tmp_path / "m.ply", log=True)
    m = meshio.read(path)
    i, j = _grid_index(s, m.points)
    assert (i > 0).all() and len(m.points) == 5 * 6
    z = np.log10(s.loss[i, j])
    scale = 3.0 / np.ptp(z)  # auto: height range = larger side of the rectangle (x: -1..2)
    np.testing.assert_allclose(m.points[:, 2], scale * z, rtol=1e-12)


def test_export_mesh_errors(tmp_path):
    s = make_surface(5, 4)
    with pytest.raises(ValueError, match=r"format must be one of 'ply', 'obj', 'stl'; got 'vtk' \(from the file name\)"):
        vtkio.export_mesh(s, tmp_path / "m.vtk")
    with pytest.raises(ValueError, match="array must be one of 'loss', 'accuracy', 'basin'; got 'nope'"):
        vtkio.export_mesh(s, tmp_path / "m.ply", array="nope")
    with pytest.raises(ValueError, match="2D surface"):
        vtkio.export_mesh(make_surface(5, 1), tmp_path / "m.ply")
    with pytest.raises(ValueError, match="scale must be a finite non-zero number; got 0"):
        vtkio.export_mesh(s, tmp_path / "m.ply", scale=0)
    s.loss[:] = np.nan
    with pytest.raises(ValueError, match="nothing to export"):
        vtkio.export_mesh(s, tmp_path / "m.ply")
    assert list(tmp_path.iterdir()) == []
