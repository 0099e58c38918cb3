"""`lossvista run` end to end on digits (small grids), and the stage functions it is made of."""
import json

import numpy as np
import pytest

from pipeline.rundir import RunDir
from pipeline.config import load_preset
from pipeline.vtkio import read_points, read_surface, read_trajectory
from pipeline.workflow import RunOptions

from .conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "demo"
    proc = run_cli("run", "--out", str(out), "--epochs", "4", "--grid", "9", "--backend", "pyvista",
                   "--max-samples", "400")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_run_writes_every_file(demo):
    out, proc = demo
    run = RunDir(out)
    assert proc.stdout.strip() == str(out)
    assert run.epochs() == [0, 1, 2, 3, 4]
    for plane in ("random", "pca"):
        s = read_surface(run.surface(plane))
        assert s.grid.shape == (9, 9) and s.meta["direction_kind"] == plane and s.meta["samples"] == 400
        assert np.isfinite(s.loss).all() and "basin" in s.extra
        # the centre is a grid point and holds the loss of the final weights
        i, j = s.centre_index()
        t = read_trajectory(run.trajectory(plane))
        assert t.epoch.tolist() == [0, 1, 2, 3, 4] and t.coords[-1].tolist() == [0.0, 0.0]
        assert s.loss[i, j] == pytest.approx(t.loss[-1], rel=1e-5)
        coords, arrays, _ = read_points(run.critical_points(plane))
        assert (arrays["CriticalType"] == 0).sum() >= 1
        topo = json.loads(run.topology(plane).read_text())
        assert any(c["type"] == "minimum" for c in topo["critical_points"])
        for view in ("2d_contours", "3d_surface", "3d_mesh"):
            assert (run.renders / "quicklook" / f"{plane}_{view}.png").stat().st_size > 10_000
    pca = read_surface(run.surface("pca"))
    assert len(pca.meta["explained_variance"]) == 2
    # the run's page, printed among the outputs
    assert run.index_html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert f"page (opens in any browser, offline): {run.index_html}" in proc.stderr
    assert f"open in ParaView: lossvista paraview {run.root} [--plane pca]" in proc.stderr  # the one command
    # the PCA plane spans the whole path
    t = read_trajectory(run.trajectory("pca"))
    assert (t.coords[:, 0].min() >= pca.grid.xmin) and (t.coords[:, 0].max() <= pca.grid.xmax)


def test_rerun_reuses_everything_trained(demo):
    out, _ = demo
    run = RunDir(out)
    before = {p: p.stat().st_mtime_ns for p in [*run.checkpoints(), run.index_html]}
    proc = run_cli("run", "--out", str(out), "--epochs", "4", "--grid", "9", "--backend", "none",
                   "--max-samples", "400", "--planes", "random", "--no-page")
    assert proc.returncode == 0, proc.stderr
    assert {p: p.stat().st_mtime_ns for p in [*run.checkpoints(), run.index_html]} == before
    assert "page" not in proc.stderr


def test_run_adds_the_hessian_plane_on_request(demo, tmp_path):
    import shutil

    from pipeline.directions import Directions

    out = tmp_path / "demo"
    shutil.copytree(demo[0], out, ignore=shutil.ignore_patterns("renders", "index.html"))
    proc = run_cli("run", "--out", str(out), "--epochs", "4", "--grid", "9", "--backend", "none",
                   "--max-samples", "400", "--planes", "hessian", "--no-page")
    assert proc.returncode == 0, proc.stderr
    run = RunDir(out)
    d = Directions.load(run.directions("hessian"))
    assert d.kind == "hessian" and d.meta["centre_epoch"] == 4 and d.meta["converged"]
    s = read_surface(run.surface("hessian"))
    tx, ty = d.meta["grid_extent"]
    assert s.grid.shape == (9, 9) and s.meta["direction_kind"] == "hessian"
    assert (s.grid.xmax, s.grid.ymax) == pytest.approx((tx, ty))
    # along the top eigenvector the loss rises fastest: its quadratic model's rise at the edge
    # is the chance level, and the loss at the ends of the x axis is above the centre's
    i, j = s.centre_index()
    assert s.loss[0, j] > s.loss[i, j] and s.loss[-1, j] > s.loss[i, j]
    assert run.trajectory("hessian").is_file() and run.topology("hessian").is_file()
    assert "hessian plane 9x9" in proc.stderr and "Hessian eigenvalues" in proc.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--planes", "random,eigen"], "planes must be among 'random', 'pca', 'hessian'"),
    (["--grid", "1"], "--grid must be an odd integer >= 3"),
    (["--grid", "10"], "--grid must be an odd integer >= 3"),
    (["--epochs", "1"], "the pca plane needs at least 3 checkpoints"),  # before any training
    (["--preset", "nosuch"], "preset must be one of"),
    (["--volume", "--volume-grid", "4"], "--volume-grid must be odd (so the trained weights are a grid point)"),
])
def test_run_bad_input(tmp_path, args, fragment):
    proc = run_cli("run", "--out", str(tmp_path / "r"), *args)
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "r").exists()


def test_run_options_validate():
    with pytest.raises(ValueError, match="backend must be one of"):
        RunOptions(backend="vtk")
    assert load_preset("digits").random_grid.nx % 2 == 1
    with pytest.raises(ValueError, match="pca_points must be odd"):
        RunOptions(pca_points=4)


def test_interpolation_grid_keeps_batchnorm_variances_valid():
    from pipeline.datamodel import Grid
    from pipeline.directions import Directions
    from pipeline.surface import default_grid
    from pipeline.surface import check_grid as check_variances

    d = Directions({}, None, {"kind": "interp", "variance_valid_range": [-0.3, None]})
    g = default_grid(None, d)
    assert (g.xmin, g.xmax, g.ny) == (-0.3, 1.5, 1)
    check_variances(d, g)
    with pytest.raises(ValueError, match=r"leaves \[-0.3, inf\].*BatchNorm running variance"):
        check_variances(d, Grid(-1, 1, 21, 0, 0, 1))
    unbounded = Directions({}, None, {"kind": "interp", "variance_valid_range": [None, None]})
    assert (default_grid(None, unbounded).xmin, default_grid(None, unbounded).xmax) == (-0.5, 1.5)
