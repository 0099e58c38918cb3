"""`lossvista analyze` and `lossvista compare` on surface files with known topology.

Fields: a tilted double well (two minima, minima and saddle from the roots of a cubic) and
a bowl (one minimum, Hessian known); real subprocesses for exit codes and stderr.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pipeline import vtkio
from pipeline.analyze import analyze_file
from pipeline.compare import compare_runs
from pipeline.datamodel import Grid
from pipeline.datamodel import Surface

from .conftest import assert_one_line_error, run_cli

T = 0.3  # tilt of the double well


def double_well(grid: Grid) -> np.ndarray:
    a, b = np.meshgrid(grid.xs, grid.ys, indexing="ij")
    return 1.0 + (a**2 - 1) ** 2 + T * a + 1.5 * b**2


def write(path, loss, grid, **meta):
    return vtkio.write_surface(path, Surface(grid, loss, np.clip(1 - loss / 5, 0, 1), meta=dict(meta)))


@pytest.fixture()
def double_well_file(tmp_path):
    g = Grid(-1.8, 1.7, 71, -1.0, 1.2, 45)
    loss = double_well(g)
    loss[-3:, -3:] = np.nan  # a corner that diverged
    return write(tmp_path / "surface_random.vts", loss, g, model="toy", direction_kind="random")


def test_analyze_writes_three_files(double_well_file):
    before = vtkio.read_surface(double_well_file)
    proc = run_cli("analyze", str(double_well_file), "--persistence", "0.05")
    assert proc.returncode == 0, proc.stderr
    d = double_well_file.parent
    assert sorted(p.name for p in d.iterdir()) == ["critical_points_random.vtp", "surface_random.vts",
                                                    "topology_random.json"]
    assert "critical points: 2 min," in proc.stdout

    doc = json.loads((d / "topology_random.json").read_text())
    g = lambda x: (x**2 - 1) ** 2 + T * x  # noqa: E731
    x1, x2, x3 = np.sort(np.roots([4, 0, -4, T]).real)
    assert [m["coords"][0] for m in doc["minima"]] == pytest.approx([x3 if g(x3) < g(x1) else x1,
                                                                     x1 if g(x3) < g(x1) else x3], abs=0.05)
    assert doc["minima"][1]["persistence"] == pytest.approx(g(x2) - max(g(x1), g(x3)), abs=0.01)
    assert doc["meta"]["kind"] == "random" and doc["meta"]["array"] == "loss" and doc["meta"]["model"] == "toy"
    assert doc["threshold"] == 0.05

    coords, arrays, meta = vtkio.read_points(d / "critical_points_random.vtp")
    assert set(arrays) >= {"CriticalType", "persistence", "loss", "vertex_id"}
    assert meta["content"] == "critical_points" and meta["threshold"] == 0.05
    cps = doc["critical_points"]
    np.testing.assert_array_equal(arrays["vertex_id"], [c["vertex_id"] for c in cps])
    np.testing.assert_array_equal(arrays["CriticalType"], [{"minimum": 0, "saddle": 1, "maximum": 3,
                                                            "degenerate": 4}[c["type"]] for c in cps])
    np.testing.assert_allclose(coords, [c["coords"] for c in cps])
    nx = 71
    np.testing.assert_array_equal(arrays["vertex_id"], [c["index"][0] + nx * c["index"][1] for c in cps])

    after = vtkio.read_surface(double_well_file)
    basin = after.extra["basin"]
    assert basin.dtype == np.int32 and basin.shape == (71, 45)
    assert (basin[-3:, -3:] == -1).all() and set(np.unique(basin)) == {-1, 0, 1}
    np.testing.assert_array_equal(after.loss, before.loss)  # everything else kept
    assert after.meta["model"] == "toy"


def test_analyze_other_array_and_kind_from_meta(tmp_path):
    g = Grid(-1, 1, 21, -1, 1, 17)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    s = Surface(g, 0.1 + a**2 + b**2, np.full(g.shape, 0.9), test_loss=0.2 + a**2 + 2 * b**2,
                test_accuracy=np.full(g.shape, 0.8), meta={"direction_kind": "pca"})
    path = vtkio.write_surface(tmp_path / "landscape.vts", s)
    topo, files = analyze_file(path, array="test_loss")
    assert files.topology.name == "topology_pca_test_loss.json"
    assert files.critical_points.name == "critical_points_pca_test_loss.vtp"
    assert "basin_test_loss" in vtkio.read_surface(path).extra
    # beside the run's own surface of that kind, the file's analysis is named after the file
    vtkio.write_surface(tmp_path / "surface_pca.vts", s)
    _, files = analyze_file(path, array="test_loss")
    assert files.topology.name == "topology_landscape_test_loss.json"
    assert json.loads(files.topology.read_text())["meta"]["kind"] == "landscape"
    # bowl: one minimum at the centre, Hessian diag(2, 4)
    assert len(topo.minima) == 1 and topo.minima[0].coords == (0.0, 0.0)
    np.testing.assert_allclose(topo.minima.curvature[0], [2.0, 4.0], rtol=1e-9)


def test_bounded_losses_are_treated_as_divergent():
    g = Grid(-1, 1, 5, -1, 1, 5)
    loss = np.full(g.shape, 1.0)
    bounded = np.zeros(g.shape, bool)
    bounded[0, 0] = True
    values = Surface(g, loss, loss, bounded=bounded).values("loss", masked=True)
    assert np.isnan(values[0, 0]) and np.isfinite(values).sum() == 24


def test_analyze_bad_input_writes_nothing(tmp_path, double_well_file):
    d = double_well_file.parent
    original = double_well_file.read_bytes()
    cases = [
        ([str(tmp_path / "none.vts")], ["not found", "none.vts"]),
        ([str(double_well_file), "--array", "energy"], ["array must be one of", "'energy'"]),
        ([str(double_well_file), "--persistence", "-1"], ["persistence must be", "got -1"]),
        ([str(double_well_file), "--persistence", "2", "--relative"], ["between 0 and 1"]),
    ]
    (d / "notes.txt").write_text("hello")
    cases.append(([str(d / "notes.txt")], ["must be a .vts surface", "notes.txt"]))
    (d / "fake.vts").write_text("hello")
    cases.append(([str(d / "fake.vts")], ["not a VTK XML file"]))
    g1 = Grid(-1, 1, 11, 0, 0, 1)
    write(d / "surface_line.vts", np.linspace(1, 2, 11)[:, None], g1)
    cases.append(([str(d / "surface_line.vts")], ["2D surface", "(11, 1)"]))
    g2 = Grid(-1, 1, 4, -1, 1, 3)
    write(d / "surface_nan.vts", np.full((4, 3), np.nan), g2)
    cases.append(([str(d / "surface_nan.vts")], ["no finite", "'loss'"]))
    before = sorted(p.name for p in d.iterdir())
    for args, fragments in cases:
        assert_one_line_error(run_cli("analyze", *args), *fragments)
    assert sorted(p.name for p in d.iterdir()) == before  # no output, no temporary file
    assert double_well_file.read_bytes() == original


# ------------------------------------------------------------------------------ compare
def make_run(root, name, loss, grid, **meta):
    (root / name).mkdir()
    write(root / name / "surface_random.vts", loss, grid, model=name, direction_kind="random", **meta)
    return root / name


def test_compare_two_runs(tmp_path):
    g = Grid(-2, 2, 81, -1, 1, 41)  # spacing 0.05 both ways
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    bowl = 0.05 + 0.5 * (3 * a**2 + b**2)  # Hessian diag(3, 1)
    blocked = bowl.copy()
    blocked[60:70, 10:20] = 100.0  # 100 interior points above any cap: 100 * 0.05^2 of 8
    blocked[10:14, 5:9] = np.nan  # 16 more interior points
    runs = [make_run(tmp_path, "bowl", bowl, g, num_classes=10),
            make_run(tmp_path, "wells", double_well(g), g, num_classes=10),
            make_run(tmp_path, "blocked", blocked, g, num_classes=10)]
    out = tmp_path / "report"
    proc = run_cli("compare", *map(str, runs), "--out", str(out), "--cap", "50", "--persistence", "0.05")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["compare_random.json", "compare_random.md", "compare_random.png"]
    assert proc.stdout.startswith("| run |") and "| bowl | bowl | loss | n/a | 1 |" in proc.stdout
    assert "different losses" not in proc.stdout
    doc = json.loads((out / "compare_random.json").read_text())
    by = {r["name"]: r for r in doc["runs"]}
    assert doc["plane"] == "random"
    assert by["bowl"]["n_minima"] == 1 and by["wells"]["n_minima"] == 2
    x1, x2, x3 = np.sort(np.roots([4, 0, -4, T]).real)
    gw = lambda x: (x**2 - 1) ** 2 + T * x  # noqa: E731
    assert by["wells"]["minima_persistence"][1] == pytest.approx(gw(x2) - max(gw(x1), gw(x3)), abs=0.01)
    assert by["bowl"]["global_min"]["curvature"] == pytest.approx([1.0, 3.0])
    assert by["bowl"]["global_min"]["basin_fraction"] == pytest.approx(1.0)
    assert by["bowl"]["divergent_fraction"] == 0.0
    assert by["blocked"]["divergent_fraction"] == pytest.approx(116 * 0.05**2 / 8.0)
    # width: the sublevel set 0.5 (3 a^2 + b^2) <= delta is an ellipse of area 2 pi delta / sqrt(3)
    area = 2 * math.pi * 0.1 / math.sqrt(3)
    assert by["bowl"]["global_min"]["width_diameter"] == pytest.approx(2 * math.sqrt(area / math.pi), rel=0.1)
    png = (out / "compare_random.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_compare_names_each_runs_loss_and_says_when_they_differ(tmp_path):
    """A classifier's cross-entropy beside a regression's MSE: the table, the JSON and the
    diagrams' axes name each loss, and a note says their values do not compare."""
    g = Grid(-1, 1, 21, -1, 1, 21)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    bowl = 0.5 + a**2 + b**2
    runs = [make_run(tmp_path, "clf", bowl, g, loss_name="cross_entropy"),
            make_run(tmp_path, "reg", 2 * bowl, g, loss_name="mse")]
    summaries = compare_runs(runs)
    assert [s.loss for s in summaries] == ["cross_entropy", "mse"]
    from pipeline.compare import comparison_dict, comparison_markdown

    table = comparison_markdown(summaries)
    assert "| clf | clf | cross_entropy |" in table and "| reg | reg | mse |" in table
    assert "different losses (clf: cross_entropy, reg: mse)" in table
    assert [r["loss"] for r in comparison_dict(summaries)["runs"]] == ["cross_entropy", "mse"]
    same = compare_runs([runs[0], make_run(tmp_path, "clf2", bowl, g, loss_name="cross_entropy")])
    assert "different losses" not in comparison_markdown(same)


def test_compare_reads_each_file_once(tmp_path, monkeypatch):
    """Files name their plane: the first one is read once, for its kind and for its summary."""
    from pipeline import vtkio

    g = Grid(-1, 1, 11, -1, 1, 11)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    files = [make_run(tmp_path, n, 0.5 + k * a**2 + b**2, g) / "surface_random.vts" for k, n in ((1, "a"), (2, "b"))]
    read, calls = vtkio.read_grid, []
    monkeypatch.setattr(vtkio, "read_grid", lambda path: calls.append(Path(path)) or read(path))
    summaries = compare_runs(files)
    assert calls == files
    assert [s.kind for s in summaries] == ["random", "random"]
    assert summaries[1].global_min["curvature"] != summaries[0].global_min["curvature"]


def test_compare_default_cap_follows_the_pictures(tmp_path):
    g = Grid(-1, 1, 21, -1, 1, 21)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    loss = 0.5 + 20 * (a**2 + b**2)
    runs = [make_run(tmp_path, n, loss, g, num_classes=10) for n in ("a", "b")]
    s = compare_runs(runs)
    cap = 5 * max(0.5, math.log(10))  # render.field.default_cap: 5 x max(centre, ln classes)
    assert s[0].cap == pytest.approx(cap)
    assert s[0].divergent_fraction == pytest.approx(
        float((np.outer(*(np.r_[0.5, np.ones(19), 0.5],) * 2) * (loss > cap)).sum() / 400))
    assert compare_runs(runs, cap=None, cap_factor=10)[0].cap == pytest.approx(2 * cap)


def test_compare_cap_of_one_reference_loss(tmp_path):
    """``--cap 1x``: the cap is the reference loss itself (one definition of the cap rule, factor >= 1)."""
    g = Grid(-1, 1, 21, -1, 1, 21)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    loss = 0.5 + 20 * (a**2 + b**2)
    runs = [make_run(tmp_path, n, loss, g, num_classes=10) for n in ("a", "b")]
    proc = run_cli("compare", *map(str, runs), "--cap", "1x", "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stderr
    got = json.loads((tmp_path / "cmp" / "compare_random.json").read_text())
    assert got["runs"][0]["cap"] == pytest.approx(math.log(10))  # 1 x max(centre 0.5, ln 10)


def test_compare_bad_input(tmp_path):
    g = Grid(-1, 1, 9, -1, 1, 9)
    a = make_run(tmp_path, "a", np.ones((9, 9)), g)
    b = make_run(tmp_path, "b", np.ones((9, 9)), g)
    assert_one_line_error(run_cli("compare", str(a)), "at least two runs", "got 1")
    assert_one_line_error(run_cli("compare", str(a), str(b), "--plane", "pca"), "no surface_pca.vts",
                          "surface_random.vts")
    assert_one_line_error(run_cli("compare", str(a), str(tmp_path / "zz")), "run directory", "zz'", "does not exist")
    (tmp_path / "afile").write_text("hi")
    assert_one_line_error(run_cli("compare", str(a), str(tmp_path / "afile")), "afile' is a file, not a run directory")
    assert_one_line_error(run_cli("compare", str(a), str(b), "--cap", "0.5x"), "--cap must be", "'0.5x'")
    assert not any(p.name.startswith("compare_") for p in tmp_path.iterdir())
