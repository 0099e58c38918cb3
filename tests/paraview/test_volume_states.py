"""Volumes on the ParaView side: the plugin's filters on a ``.vti`` volume (real pvpython), the
volume states built by ``states/build_states.py``, and the shipped states rendered by pvbatch on
another run's volumes."""
from __future__ import annotations

import collections
import subprocess

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkIOXML import vtkXMLImageDataReader, vtkXMLPolyDataReader

from conftest import HANG_GUARD, LOAD, ROOT, STATES, clean_env, picture_stats, run_paraview
from test_states import _sources

pytestmark = pytest.mark.paraview

VOLUME_VIEWS = ("isosurfaces", "volume_rendering", "slices")
RELATIVE = 0.003  # below the persistence of the synthetic volume's shallowest basin (0.234 of a range of 47.5)


@pytest.fixture(scope="module")
def volume_a(tmp_path_factory):
    from synthetic import make_run, make_volume_run

    run = make_run(tmp_path_factory.mktemp("vol_a") / "run", variant=0)
    return make_volume_run(run, variant=0)


@pytest.fixture(scope="module")
def volume_b(tmp_path_factory):
    from synthetic import make_volume_run

    return make_volume_run(tmp_path_factory.mktemp("vol_b") / "run", variant=1)


FILTERS = LOAD + f"RELATIVE = {RELATIVE!r}\n" + r"""
import sys
from paraview import simple as S
run, out = sys.argv[1], sys.argv[2]
volume = S.XMLImageDataReader(FileName=[run + "/volume_pca.vti"])
def save(name, src, port=0):
    S.SaveData(f"{out}/{name}", proxy=S.OutputPort(src, port))
save("thr.vti", S.LossThreshold(Input=volume, Mode="Clamp at cap", CapMode="Absolute", Cap=3.0))
critical = S.LossCriticalPoints(Input=volume, ThresholdMode="Relative to value range", PersistenceThreshold=RELATIVE)
save("critical.vtp", critical, 0)
save("basins.vti", critical, 1)
save("iso.vtp", S.LossContours(Input=volume, NumberOfLevels=4, Spacing="Linear", RangeMode="Given",
                               Range=[1.0, 2.5]))
"""


def _read(path, reader):
    r = reader()
    r.SetFileName(str(path))
    r.Update()
    return r.GetOutput()


def test_plugin_filters_take_a_volume(volume_a, tmp_path):
    """Threshold keeps the image, critical points equal lossvista's 3-D analysis, contours are isosurfaces."""
    from synthetic import make_volume

    from pipeline.topology import analyze

    run_paraview(FILTERS, tmp_path, str(volume_a), str(tmp_path))
    vol = make_volume("pca", 0)

    thr = _read(tmp_path / "thr.vti", vtkXMLImageDataReader)
    assert thr.GetDimensions() == vol.grid.shape
    clamped = vtk_to_numpy(thr.GetPointData().GetArray("loss"))
    assert np.nanmax(clamped) == pytest.approx(3.0)

    topo = analyze(vol.values("loss", masked=True), persistence=RELATIVE, relative=True, xs=vol.grid.xs,
                   ys=vol.grid.ys, zs=vol.grid.zs)
    expected = collections.Counter(c.type for c in topo.critical_points)
    assert expected["minimum"] == 3 and expected["1-saddle"] == 2  # three basins joined by two saddles
    crit = _read(tmp_path / "critical.vtp", vtkXMLPolyDataReader)
    codes = vtk_to_numpy(crit.GetPointData().GetArray("CriticalType"))
    names = {0: "minimum", 1: "1-saddle", 2: "2-saddle", 3: "maximum", 4: "degenerate"}
    assert collections.Counter(names[int(c)] for c in codes) == expected
    ids = vtk_to_numpy(crit.GetPointData().GetArray("vertex_id"))
    nx, ny, _ = vol.grid.shape
    want = sorted(int(i + nx * j + nx * ny * k) for c in topo.critical_points for i, j, k in [c.index])
    assert sorted(int(i) for i in ids) == want
    points = vtk_to_numpy(crit.GetPoints().GetData())
    assert points[np.argmin(vtk_to_numpy(crit.GetPointData().GetArray("loss")))] == pytest.approx([0, 0, 0])

    basins = _read(tmp_path / "basins.vti", vtkXMLImageDataReader)
    labels = vtk_to_numpy(basins.GetPointData().GetArray("basin"))
    assert len(set(labels.tolist()) - {-1}) == 3

    iso = _read(tmp_path / "iso.vtp", vtkXMLPolyDataReader)
    assert iso.GetNumberOfPolys() > 100  # closed triangle surfaces, not lines
    levels = vtk_to_numpy(iso.GetPointData().GetArray("level"))
    assert set(np.round(levels, 9).tolist()) <= set(np.round(np.linspace(1.0, 2.5, 4), 9).tolist())
    values = vtk_to_numpy(iso.GetPointData().GetArray("loss"))
    assert np.allclose(values, levels, atol=1e-9)  # each point lies on its level


@pytest.fixture(scope="module")
def built_volume_states(volume_a, tmp_path_factory):
    out = tmp_path_factory.mktemp("volume_states")
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1920x1200x24", "pvbatch", str(STATES / "build_states.py"),
                           str(volume_a), "--views", *VOLUME_VIEWS, "--out", str(out)],
                          capture_output=True, text=True, cwd=str(ROOT), env=clean_env(), timeout=HANG_GUARD)
    assert proc.returncode == 0 or "cleaning up temporary" in proc.stderr, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("view", VOLUME_VIEWS)
def test_build_states_writes_each_volume_view(built_volume_states, volume_a, view):
    pvsm = built_volume_states / f"volume_{view}.pvsm"
    sources = _sources(pvsm)
    assert sources["volume"] == "XMLImageDataReader" and sources["trajectory"] == "XMLPolyDataReader"
    assert {"LossThreshold", "LossCriticalPoints"} <= set(sources.values())
    text = pvsm.read_text()
    assert str(volume_a) not in text  # bare file names: the state loads on any run
    assert 'value="volume_random.vti"' in text and 'value="trajectory_volume_random.vtp"' in text
    committed = STATES / f"volume_{view}.pvsm"
    assert committed.is_file(), f"{committed} missing: run states/build_states.py"
    assert _sources(committed) == sources


def test_committed_volume_states_render_a_fresh_run(volume_b, tmp_path):
    """The shipped volume states through the driver, on a run with other extents and basins."""
    from pipeline.render.pvbatch import render_paraview

    paths = render_paraview(volume_b, ["volume_random", "volume_pca"], VOLUME_VIEWS, tmp_path / "renders",
                            size=(800, 600))
    assert [p.name for p in paths] == [f"volume_{k}_{v}.png" for k in ("random", "pca") for v in VOLUME_VIEWS]
    for p in paths:
        stats = picture_stats(p)
        assert (stats["width"], stats["height"]) == (800, 600)
        assert stats["background"] == (255, 255, 255)
        assert stats["drawn"] > 0.05, (p.name, stats)
        assert stats["red"] > 30, (p.name, stats)  # the descent path


PVD = LOAD + r"""
import sys
from paraview import simple as S
from paraview import servermanager as sm
reader = S.PVDReader(FileName=sys.argv[1])
print("TIMES", list(reader.TimestepValues))
critical = S.LossCriticalPoints(Input=reader)
for t in reader.TimestepValues:
    critical.UpdatePipeline(time=t)
    data = sm.Fetch(critical)
    print("MINIMA", t, sum(1 for k in range(data.GetNumberOfPoints())
                           if data.GetPointData().GetArray("CriticalType").GetValue(k) == 0))
"""


def test_time_series_plays_in_paraview(tmp_path):
    """A .pvd of planes (as lossvista evolve writes it) opens with its epochs as time steps, and the
    plugin's filters follow the time: each step's critical points are its own plane's."""
    from synthetic import make_surface

    from pipeline.analyze import analyze_surface
    from pipeline.vtkio import write_pvd, write_surface

    surfaces = {0: make_surface("random", 0), 5: make_surface("random", 1)}
    entries = []
    for epoch, s in surfaces.items():
        write_surface(tmp_path / f"surface_epoch_{epoch:03d}.vts", s)
        entries.append({"file": tmp_path / f"surface_epoch_{epoch:03d}.vts", "timestep": epoch})
    pvd = write_pvd(tmp_path / "landscape.pvd", entries)
    proc = run_paraview(PVD, tmp_path, str(pvd))
    lines = [ln.split() for ln in proc.stdout.splitlines()]
    assert [ln for ln in proc.stdout.splitlines() if ln.startswith("TIMES")] == ["TIMES [0.0, 5.0]"]
    minima = {float(ln[1]): int(ln[2]) for ln in lines if ln and ln[0] == "MINIMA"}
    assert minima == {float(e): len(analyze_surface(s).minima) for e, s in surfaces.items()}
    assert minima[0.0] != minima[5.0]  # the two planes differ, so a stale step would show
