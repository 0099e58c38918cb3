"""The state files: built reproducibly from a run, loaded on a *different* run, rendered by pvbatch."""
from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import HANG_GUARD, ROOT, SHIM, STATES, clean_env, picture_stats, run_paraview

from pipeline.render.pvbatch import xvfb_prefix

pytestmark = pytest.mark.paraview

VIEWS = ("2d_contours", "3d_contours", "3d_mesh", "3d_surface")
PLUGIN_FILTERS = {"LossThreshold", "LossContours", "LossCriticalPoints", "WarpByLoss"}


def _sources(pvsm) -> dict[str, str]:
    """{registration name: proxy type} of the pipeline sources in a state file."""
    root = ET.parse(pvsm).getroot()
    types = {p.get("id"): p.get("type") for p in root.iter("Proxy") if p.get("group") in ("sources", "filters")}
    names = {}
    for coll in root.iter("ProxyCollection"):
        if coll.get("name") == "sources":
            names.update({item.get("name"): types.get(item.get("id")) for item in coll.iter("Item")})
    return names


def _check_state(pvsm, view: str) -> dict[str, str]:
    sources = _sources(pvsm)
    assert sources["surface"] == "XMLStructuredGridReader"
    assert sources["trajectory"] == "XMLPolyDataReader"
    expected = PLUGIN_FILTERS if view.startswith("3d") else PLUGIN_FILTERS - {"WarpByLoss"}
    assert expected <= set(sources.values()), sources
    return sources


@pytest.mark.parametrize("view", VIEWS)
def test_build_states_writes_each_view_with_file_names_only(built_states, run_a, view):
    pvsm = built_states / f"landscape_{view}.pvsm"
    sources = _check_state(pvsm, view)
    text = pvsm.read_text()
    assert str(run_a) not in text  # no machine path: the readers hold bare file names
    assert 'value="surface_random.vts"' in text and 'value="trajectory_random.vtp"' in text
    committed = STATES / f"landscape_{view}.pvsm"
    assert committed.is_file(), f"{committed} missing: run states/build_states.py"
    assert _sources(committed) == sources  # the committed state has the builder's current pipeline


RENDER = SHIM + r"""
import sys
from paraview import simple
sys.path.insert(0, sys.argv[1])
import build_states
build_states.load_plugin(simple)
states, data_dir, out = sys.argv[2:5]
for view_name in build_states.VIEWS:
    # plain LoadState, as the GUI's "Search files under specified directory": no fitting to the data
    simple.LoadState(f"{states}/landscape_{view_name}.pvsm", data_directory=data_dir)
    simple.SaveScreenshot(f"{out}/{view_name}.png", simple.GetRenderViews()[0], ImageResolution=[800, 600])
    build_states.clear_session(simple)
"""


def test_built_states_load_on_a_fresh_run_with_data_directory(built_states, run_b, tmp_path):
    """Built from run A, loaded on run B (other extents, shapes and wells) by file name."""
    run_paraview(RENDER, tmp_path, str(STATES), str(built_states), str(run_b), str(tmp_path),
                 exe="pvbatch", render=True)
    for view in VIEWS:
        stats = picture_stats(tmp_path / f"{view}.png")
        assert stats["background"] == (255, 255, 255)
        assert stats["drawn"] > 0.03, (view, stats)
        assert stats["red"] > 100, (view, stats)  # the descent path


def test_committed_states_render_both_planes_of_a_fresh_run(run_b, tmp_path):
    """The shipped states, through the driver (filenames=..., fitted camera, colours and titles)."""
    from pipeline.render.pvbatch import render_paraview

    paths = render_paraview(run_b, ["random", "pca"], VIEWS, tmp_path / "renders", size=(900, 675))
    assert [p.name for p in paths] == [f"{plane}_{v}.png" for plane in ("random", "pca") for v in VIEWS]
    for p in paths:
        stats = picture_stats(p)
        assert (stats["width"], stats["height"]) == (900, 675)
        assert stats["background"] == (255, 255, 255)
        assert stats["drawn"] > 0.05, (p.name, stats)
        assert stats["red"] > 100, (p.name, stats)


def test_eig_ratio_state_is_the_builders_and_renders_a_run_with_curvature_maps(tmp_path):
    """landscape_eig_ratio.pvsm: built from a run whose surface has curvature maps, the committed
    one the same, rendered by the driver with eig_ratio as colour (viridis from 0 to its largest value)."""
    import numpy as np
    from PIL import Image
    from synthetic import add_curvature_maps, make_run

    from pipeline.render.pvbatch import render_paraview

    run = make_run(tmp_path / "run", variant=1)
    add_curvature_maps(run / "surface_random.vts")
    built = tmp_path / "states"
    proc = subprocess.run([*xvfb_prefix(), "pvbatch", str(STATES / "build_states.py"),
                           str(run), "--views", "eig_ratio", "--out", str(built)],
                          capture_output=True, text=True, cwd=str(ROOT), env=clean_env(), timeout=HANG_GUARD)
    assert proc.returncode == 0 or "cleaning up temporary" in proc.stderr, proc.stderr[-3000:]
    pvsm = built / "landscape_eig_ratio.pvsm"
    sources = _check_state(pvsm, "eig_ratio")
    assert sorted(p.name for p in built.glob("*.pvsm")) == ["landscape_eig_ratio.pvsm"]
    assert 'value="surface_random.vts"' in pvsm.read_text() and str(run) not in pvsm.read_text()
    assert _sources(STATES / "landscape_eig_ratio.pvsm") == sources
    (png,) = render_paraview(run, ["random"], ["eig_ratio"], tmp_path / "renders", size=(900, 675))
    stats = picture_stats(png)
    assert stats["background"] == (255, 255, 255) and stats["drawn"] > 0.25 and stats["red"] > 100, stats
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    dark = (rgb[..., 0] < 90) & (rgb[..., 1] < 60) & (rgb[..., 2] > 60)  # viridis near 0: convex
    light = (rgb[..., 1] > 150) & (rgb[..., 2] < 120) & (rgb[..., 0] < 220)  # viridis' green-yellow end
    assert dark.sum() > 2000 and light.sum() > 50, (int(dark.sum()), int(light.sum()))


TITLES = SHIM + r"""
import sys
from paraview import simple
sys.path.insert(0, sys.argv[1])
import build_states, render_state
build_states.load_plugin(simple)
run = sys.argv[2]
for plane in ("random", "pca"):
    state = sys.argv[1] + "/landscape_2d_contours.pvsm"
    ids = render_state.reader_ids(state)
    simple.LoadState(state, filenames=[
        {"name": "surface", "id": ids["surface"], "FileName": [f"{run}/surface_{plane}.vts"]},
        {"name": "trajectory", "id": ids["trajectory"], "FileName": [f"{run}/trajectory_{plane}.vtp"]}])
    view = simple.GetRenderViews()[0]
    build_states.fit_to_data(simple, view, "2d_contours")
    lut = simple.GetColorTransferFunction("loss")
    rec = build_states.field_record(simple, simple.FindSource("Loss Threshold"), "lossvista_threshold")
    bar = simple.GetScalarBar(lut, view)
    wide = bar.Position[0]
    view.ViewSize = [800, 600]
    build_states.fit_value_bars(simple, view)
    print("RESULT", plane, view.AxesGrid.XTitle, "|", view.AxesGrid.YTitle, "|", lut.RGBPoints[0], rec["cap"], "|",
          bar.Title, "|", wide, bar.Position[0], [b.Position[0] for b in view.Representations
                                                   if b.GetXMLName() == "ScalarBarWidgetRepresentation"
                                                   and b.LookupTable.InterpretValuesAsCategories])
    build_states.clear_session(simple)
"""


def test_axis_titles_and_colours_follow_the_run(run_b, tmp_path):
    import shutil

    from pipeline.display import surface_cap as default_cap
    from pipeline.vtkio import read_surface, write_surface

    run = tmp_path / "run"  # run_b with a loss named in its surfaces' metadata
    shutil.copytree(run_b, run)
    for plane in ("random", "pca"):
        surface = read_surface(run / f"surface_{plane}.vts")
        surface.meta["loss_name"] = "mse"
        write_surface(run / f"surface_{plane}.vts", surface)
    proc = run_paraview(TITLES, tmp_path, str(STATES), str(run), exe="pvbatch", render=True)
    lines = {ln.split()[1]: ln.split(None, 2)[2] for ln in proc.stdout.splitlines() if ln.startswith("RESULT")}
    titles = {plane: [t.strip() for t in lines[plane].split("|")] for plane in lines}
    assert titles["random"][:2] == ["alpha (direction 1)", "beta (direction 2)"]
    assert titles["pca"][:2] == ["PC1 (90.5%)", "PC2 (4.1%)"]  # synthetic explained variance [0.905, 0.041]
    for plane in ("random", "pca"):
        surface = read_surface(run_b / f"surface_{plane}.vts")
        lo, cap = (float(x) for x in titles[plane][2].split())
        assert titles[plane][3] == "mse"  # the loss's name (meta loss_name) on its colour bar
        # 1200 px wide: the bar where the state put it; 800 px: moved left so that its title fits,
        # the categorical legends (labels on their left) stay
        wide, narrow, legends = titles[plane][4].split(None, 2)
        assert float(wide) == pytest.approx(0.89) and float(narrow) == pytest.approx(1 - 110 / 800)
        assert json.loads(legends) and set(json.loads(legends)) == {0.89}
        assert lo == pytest.approx(float(surface.loss[surface.valid.astype(bool)].min()), rel=1e-6)
        assert cap == pytest.approx(default_cap(surface), rel=1e-9)  # the same cap as the quick looks
