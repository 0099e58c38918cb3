"""Each plugin filter run by real pvpython, its output checked against numpy computed here.

One pvpython process applies the filters to a synthetic run and writes every output to a
VTK file; the tests read them back with the venv's VTK and compare with values computed
independently (caps, levels, piecewise-linear interpolation, heights) or with
``lossvista analyze`` run on the same surface file.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkIOXML import vtkXMLPolyDataReader, vtkXMLStructuredGridReader

from conftest import HANG_GUARD, LOAD, ROOT, run_paraview

pytestmark = pytest.mark.paraview

HIDDEN = 2  # vtkDataSetAttributes::HIDDENPOINT

RELATIVE = 5e-4  # between the persistences of the synthetic field's small features (3e-4 and 8e-4 of the range)

SCRIPT = LOAD + f"RELATIVE = {RELATIVE!r}\n" + r"""
import sys
from paraview import simple as S
run, out = sys.argv[1], sys.argv[2]
surface = S.XMLStructuredGridReader(FileName=[run + "/surface_random.vts"])
surface_b = S.XMLStructuredGridReader(FileName=[run + "/surface_b.vts"])
path = S.XMLPolyDataReader(FileName=[run + "/trajectory_random.vtp"])

def save(name, src, port=0):
    S.SaveData(f"{out}/{name}", proxy=S.OutputPort(src, port))

blank = S.LossThreshold(Input=surface, Mode="Blank above cap", CapMode="Absolute", Cap=1.5)
save("thr_blank.vts", blank)
clamp = S.LossThreshold(Input=surface, Mode="Clamp at cap", CapMode="Multiple of minimum", CapFactor=3.0)
save("thr_clamp.vts", clamp)
save("thr_log.vts", S.LossThreshold(Input=surface, Mode="Log10"))
save("thr_default.vts", S.LossThreshold(Input=surface))
save("thr_default_b.vts", S.LossThreshold(Input=surface_b))
save("thr_centre.vts", S.LossThreshold(Input=surface, Mode="Clamp at cap", CapMode="Multiple of centre value",
                                       CapFactor=2.0))

auto = S.LossContours(Input=clamp, NumberOfLevels=12, Spacing="Log")
save("contours_auto_log.vtp", auto)
save("contours_given_linear.vtp", S.LossContours(Input=surface, NumberOfLevels=7, Spacing="Linear",
                                                  RangeMode="Given", Range=[0.5, 2.0]))

critical = S.LossCriticalPoints(Input=surface)
save("critical.vtp", critical, 0)
save("basins.vts", critical, 1)
save("critical_relative.vtp", S.LossCriticalPoints(Input=surface, ThresholdMode="Relative to value range",
                                                   PersistenceThreshold=RELATIVE), 0)

save("warp_surface.vts", S.WarpByLoss(Input=clamp))
save("warp_path.vtp", S.WarpByLoss(Input=path, Surface=clamp))
save("warp_critical.vtp", S.WarpByLoss(Input=S.OutputPort(critical, 0), Surface=clamp))
save("warp_contours.vtp", S.WarpByLoss(Input=auto, Surface=clamp))
save("warp_explicit_log.vtp", S.WarpByLoss(Input=path, Surface=clamp, ScaleMode="Explicit", ScaleFactor=2.0,
                                           Height="Log10 of value"))
save("warp_fraction.vts", S.WarpByLoss(Input=clamp, ReliefFraction=0.25))
print("DONE")
"""


def _read(path):
    reader = (vtkXMLStructuredGridReader if str(path).endswith(".vts") else vtkXMLPolyDataReader)()
    reader.SetFileName(str(path))
    reader.Update()
    return reader.GetOutput()


def _arrays(data) -> dict[str, np.ndarray]:
    pd = data.GetPointData()
    return {pd.GetArrayName(k): vtk_to_numpy(pd.GetArray(k)).copy() for k in range(pd.GetNumberOfArrays())
            if pd.GetArray(k) is not None}


def _points(data) -> np.ndarray:
    return vtk_to_numpy(data.GetPoints().GetData()).astype(np.float64) if data.GetNumberOfPoints() else np.zeros((0, 3))


def _record(data, name) -> dict:
    arr = data.GetFieldData().GetAbstractArray(name)
    assert arr is not None, f"no field data {name!r}"
    return json.loads(arr.GetValue(0))


def pl_interpolate(xs, ys, values, xy):
    """Piecewise-linear interpolant of grid ``values[i, j]`` on DESIGN.md's triangles (independent code)."""
    out = np.empty(len(xy))
    for k, (x, y) in enumerate(xy):
        i = min(max(np.searchsorted(xs, x) - 1, 0), len(xs) - 2)
        j = min(max(np.searchsorted(ys, y) - 1, 0), len(ys) - 2)
        s, t = (x - xs[i]) / (xs[i + 1] - xs[i]), (y - ys[j]) / (ys[j + 1] - ys[j])
        if s + t <= 1:  # triangle (i, j), (i+1, j), (i, j+1)
            out[k] = (1 - s - t) * values[i, j] + s * values[i + 1, j] + t * values[i, j + 1]
        else:  # triangle (i+1, j+1), (i, j+1), (i+1, j)
            out[k] = (s + t - 1) * values[i + 1, j + 1] + (1 - s) * values[i, j + 1] + (1 - t) * values[i + 1, j]
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Run the filters once; returns (folder of outputs, run folder)."""
    from synthetic import make_run, make_surface
    from pipeline.vtkio import write_surface

    base = tmp_path_factory.mktemp("filters")
    run = make_run(base / "run", variant=0, kinds=("random",))
    write_surface(run / "surface_b.vts", make_surface("random", variant=1))
    out = base / "out"
    out.mkdir()
    # `lossvista analyze` on a copy, so the plugin sees the surface as analyze did (no basin array yet)
    shutil.copytree(run, base / "analyzed")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-q", "analyze",
                           str(base / "analyzed" / "surface_random.vts")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    run_paraview(SCRIPT, base, str(run), str(out), timeout=HANG_GUARD)
    return out, run, base / "analyzed"


@pytest.fixture(scope="module")
def surface(outputs):
    from pipeline.vtkio import read_surface

    return read_surface(outputs[1] / "surface_random.vts")


def _flat(a):
    """(nx, ny) -> VTK point order (x fastest)."""
    return np.ascontiguousarray(np.asarray(a).T).ravel()


# ----------------------------------------------------------------------------- Loss Threshold


def test_threshold_blank_hides_points_above_an_absolute_cap(outputs, surface):
    data = _read(outputs[0] / "thr_blank.vts")
    a = _arrays(data)
    raw, valid = _flat(surface.loss), _flat(surface.valid).astype(bool)
    hidden = ~(raw <= 1.5) | ~valid
    assert data.GetNumberOfPoints() == raw.size  # still the whole structured grid
    np.testing.assert_array_equal(a["loss_raw"], raw)
    np.testing.assert_array_equal((a["vtkGhostType"] & HIDDEN) != 0, hidden)
    np.testing.assert_array_equal(a["loss"][~hidden], raw[~hidden])
    assert np.isnan(a["loss"][hidden]).all()
    rec = _record(data, "lossvista_threshold")
    assert rec["mode"] == "blank" and rec["cap"] == 1.5 and rec["hidden_points"] == hidden.sum()


def test_threshold_clamp_at_a_multiple_of_the_minimum(outputs, surface):
    a = _arrays(_read(outputs[0] / "thr_clamp.vts"))
    raw, valid = _flat(surface.loss), _flat(surface.valid).astype(bool)
    cap = 3.0 * raw[valid].min()
    # the early-exit point (valid = 0, bound 50 > cap) is known to be above the cap: shown at the cap;
    # the NaN point is hidden
    hidden = ~valid & ~(raw >= cap)
    assert hidden.sum() == 1 and np.isnan(raw[hidden]).all()
    np.testing.assert_allclose(a["loss"][~hidden], np.minimum(raw, cap)[~hidden], rtol=0, atol=0)
    np.testing.assert_array_equal((a["vtkGhostType"] & HIDDEN) != 0, hidden)
    assert (a["loss"][~hidden] == cap).sum() == (raw[~hidden] >= cap).sum() > 0


def test_threshold_log10(outputs, surface):
    a = _arrays(_read(outputs[0] / "thr_log.vts"))
    raw, valid = _flat(surface.loss), _flat(surface.valid).astype(bool)
    np.testing.assert_allclose(a["loss"][valid], np.log10(raw[valid]), rtol=1e-14)
    assert np.isnan(a["loss"][~valid]).all()


@pytest.mark.parametrize("name, centre_loss, floor, factor", [
    ("thr_default.vts", None, 1.0, 5.0),  # no num_classes in the metadata: chance loss 1
    ("thr_default_b.vts", None, math.log(10), 5.0),  # num_classes = 10: ln 10
    ("thr_centre.vts", None, 0.0, 2.0),  # 2 x the centre value
])
def test_threshold_caps_relative_to_the_centre(outputs, name, centre_loss, floor, factor):
    from pipeline.vtkio import read_surface

    src = outputs[1] / ("surface_b.vts" if name.endswith("_b.vts") else "surface_random.vts")
    s = read_surface(src)
    i, j = s.centre_index()
    expected = factor * max(s.loss[i, j], floor)
    rec = _record(_read(outputs[0] / name), "lossvista_threshold")
    assert rec["cap"] == pytest.approx(expected, rel=1e-12)
    if name != "thr_centre.vts":  # the default is the quick-look pictures' cap
        from pipeline.display import surface_cap as default_cap

        assert rec["cap"] == pytest.approx(default_cap(s), rel=1e-12)


# ----------------------------------------------------------------------------- Loss Contours


def _levels_of(data):
    lv = vtk_to_numpy(data.GetCellData().GetArray("level"))
    return np.unique(lv)


def test_contours_automatic_log_levels_from_minimum_to_cap(outputs, surface):
    data = _read(outputs[0] / "contours_auto_log.vtp")
    raw, valid = surface.loss, surface.valid.astype(bool)
    cap = 3.0 * raw[valid].min()
    expected = np.geomspace(raw[valid].min(), cap, 14)[1:-1]
    np.testing.assert_allclose(_record(data, "lossvista_contours")["levels"], expected, rtol=1e-12)
    np.testing.assert_allclose(_levels_of(data), expected, rtol=1e-12)  # every level has a line
    # every point lies on the piecewise-linear surface at its level
    shown = np.where(valid | (raw >= cap), np.minimum(raw, cap), np.nan)
    xy = _points(data)[:, :2]
    level = _arrays(data)["level"]
    np.testing.assert_allclose(pl_interpolate(surface.xs, surface.ys, shown, xy), level, rtol=1e-9)
    assert data.GetNumberOfLines() >= len(expected)


def test_contours_given_linear_levels_include_the_ends(outputs, surface):
    data = _read(outputs[0] / "contours_given_linear.vtp")
    expected = np.linspace(0.5, 2.0, 7)
    np.testing.assert_allclose(_record(data, "lossvista_contours")["levels"], expected, rtol=1e-12)
    np.testing.assert_allclose(_levels_of(data), expected, rtol=1e-12)
    values = np.where(surface.valid.astype(bool), surface.loss, np.nan)
    np.testing.assert_allclose(pl_interpolate(surface.xs, surface.ys, values, _points(data)[:, :2]),
                               _arrays(data)["level"], rtol=1e-9)


# ----------------------------------------------------------------------------- Loss Critical Points


def test_critical_points_equal_lossvista_analyze(outputs):
    from pipeline.vtkio import read_points, read_surface

    coords, arrays, _ = read_points(outputs[2] / "critical_points_random.vtp")
    data = _read(outputs[0] / "critical.vtp")
    ours = _arrays(data)
    assert len(coords) > 3
    assert sorted(ours) == sorted(arrays)
    for name in arrays:
        np.testing.assert_array_equal(ours[name], arrays[name], err_msg=name)
        assert ours[name].dtype == arrays[name].dtype, name
    np.testing.assert_array_equal(_points(data)[:, :2], coords)
    assert data.GetNumberOfVerts() == len(coords)
    basins = _arrays(_read(outputs[0] / "basins.vts"))["basin"]
    np.testing.assert_array_equal(basins, _flat(read_surface(outputs[2] / "surface_random.vts").extra["basin"]))


def test_critical_points_relative_threshold_equal_the_topology_module(outputs, surface):
    from pipeline.analyze import analyze_surface

    topo = analyze_surface(surface, persistence=RELATIVE, relative=True)
    expected = topo.critical_point_arrays()
    data = _read(outputs[0] / "critical_relative.vtp")
    ours = _arrays(data)
    np.testing.assert_array_equal(_points(data), expected.pop("points"))
    for name, values in expected.items():
        np.testing.assert_array_equal(ours[name], values, err_msg=name)
    assert len(ours["CriticalType"]) < len(_arrays(_read(outputs[0] / "critical.vtp"))["CriticalType"])


# ----------------------------------------------------------------------------- Warp By Loss


@pytest.fixture(scope="module")
def shown(surface):
    """The clamped surface of thr_clamp (numpy), its cap and the automatic scale (fraction 0.5)."""
    raw, valid = surface.loss, surface.valid.astype(bool)
    cap = 3.0 * raw[valid].min()
    values = np.where(valid | (raw >= cap), np.minimum(raw, cap), np.nan)
    size = math.sqrt(np.ptp(surface.xs) * np.ptp(surface.ys))
    scale = 0.5 * size / (np.nanmax(values) - np.nanmin(values))
    return values, cap, scale


def test_warp_surface_relief_is_the_chosen_fraction_of_the_plane(outputs, surface, shown):
    values, cap, scale = shown
    for name, fraction in (("warp_surface.vts", 0.5), ("warp_fraction.vts", 0.25)):
        data = _read(outputs[0] / name)
        z = _points(data)[:, 2]
        ok = np.isfinite(_flat(values))
        s = scale * fraction / 0.5
        np.testing.assert_allclose(z[ok], s * _flat(values)[ok], rtol=1e-12)
        assert np.ptp(z[ok]) == pytest.approx(fraction * math.sqrt(np.ptp(surface.xs) * np.ptp(surface.ys)))
        assert _record(data, "lossvista_warp")["scale"] == pytest.approx(s, rel=1e-12)
        np.testing.assert_array_equal(_points(data)[:, :2], _points(_read(outputs[1] / "surface_random.vts"))[:, :2])


def test_warped_path_critical_points_and_contours_share_the_surface_scale(outputs, surface, shown):
    from pipeline.vtkio import read_trajectory

    values, cap, scale = shown
    scales = {n: _record(_read(outputs[0] / n), "lossvista_warp")["scale"]
              for n in ("warp_surface.vts", "warp_path.vtp", "warp_critical.vtp", "warp_contours.vtp")}
    assert len(set(scales.values())) == 1, scales

    traj = read_trajectory(outputs[1] / "trajectory_random.vtp")
    z = _points(_read(outputs[0] / "warp_path.vtp"))[:, 2]
    np.testing.assert_allclose(z, scale * np.minimum(traj.surface_loss, cap), rtol=1e-12)
    # ... so the path lies on the warped surface, up to the grid's interpolation error
    on_surface = scale * pl_interpolate(surface.xs, surface.ys, values, traj.coords)
    relief = scale * (np.nanmax(values) - np.nanmin(values))
    assert np.max(np.abs(z - on_surface)) < 0.04 * relief  # grid step 0.05 across a well of width 0.35

    cp = _read(outputs[0] / "warp_critical.vtp")
    np.testing.assert_allclose(_points(cp)[:, 2], scale * np.minimum(_arrays(cp)["loss"], cap), rtol=1e-12)
    lines = _read(outputs[0] / "warp_contours.vtp")
    np.testing.assert_allclose(_points(lines)[:, 2], scale * _arrays(lines)["level"], rtol=1e-12)


def test_warp_explicit_scale_and_log_height(outputs, shown):
    from pipeline.vtkio import read_trajectory

    _, cap, _ = shown
    traj = read_trajectory(outputs[1] / "trajectory_random.vtp")
    data = _read(outputs[0] / "warp_explicit_log.vtp")
    np.testing.assert_allclose(_points(data)[:, 2], 2.0 * np.log10(np.minimum(traj.surface_loss, cap)), rtol=1e-12)
    np.testing.assert_allclose(_arrays(data)["height"], _points(data)[:, 2])
    rec = _record(data, "lossvista_warp")
    assert rec["scale"] == 2.0 and rec["height"] == "log10" and rec["scale_mode"] == "explicit"


# ----------------------------------------------------------------------------- bad input


ERRORS = LOAD + r"""
import sys
from paraview import simple as S
run = sys.argv[1]
surface = S.XMLStructuredGridReader(FileName=[run + "/surface_random.vts"])
path = S.XMLPolyDataReader(FileName=[run + "/trajectory_random.vtp"])
cases = {
    "polydata": S.LossThreshold(Input=path),
    "volume": S.WarpByLoss(Input=S.Wavelet()),
    "thin": S.LossContours(Input=S.Wavelet(WholeExtent=[0, 20, 0, 0, 0, 20])),
    "no_array": S.LossCriticalPoints(Input=surface, Array="nope"),
    "no_surface": S.WarpByLoss(Input=path),
    "log_range": S.LossContours(Input=surface, Spacing="Log", RangeMode="Given", Range=[-1.0, 2.0]),
    "twice": S.LossThreshold(Input=S.LossThreshold(Input=surface)),
}
for name, f in cases.items():
    f.UpdatePipeline()
    print(name, f.GetDataInformation().GetNumberOfPoints(), flush=True)
"""


def test_bad_input_gives_clear_errors_in_the_output_window(outputs, tmp_path):
    proc = run_paraview(ERRORS, tmp_path, str(outputs[1]))
    counts = dict(line.split() for line in proc.stdout.splitlines() if len(line.split()) == 2)
    assert set(counts) == {"polydata", "volume", "thin", "no_array", "no_surface", "log_range", "twice"}
    assert all(v == "0" for v in counts.values()), counts  # no output on bad input
    for message in (
        "Loss Threshold: the input must be a 2D grid (a lossvista surface_*.vts: vtkStructuredGrid with "
        "dimensions (nx, ny, 1)); got a vtkPolyData",
        "Warp By Loss: the input is a volume: its third axis is a direction (gamma), not a height",
        "Loss Contours: the input must be a volume with every dimension >= 2; got (21, 1, 21)",
        "Loss Critical Points: the input has no point array 'nope' (point arrays: loss, accuracy, valid, bounded)",
        "Warp By Loss: the automatic scale needs the loss surface: connect it",
        "Loss Contours: log spacing needs a positive range; the range starts at -1",
        "Loss Threshold: the input is already thresholded",
    ):
        assert message in proc.stderr, (message, proc.stderr[-4000:])
    assert "Traceback" not in proc.stderr
