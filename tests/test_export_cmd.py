"""`lossvista export`: a real subprocess, real exit codes and stderr."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline import vtkio
from pipeline.datamodel import Grid
from pipeline.datamodel import Surface

from .conftest import assert_one_line_error, run_cli

meshio = pytest.importorskip("meshio")


@pytest.fixture()
def surface_file(tmp_path):
    g = Grid(-1.0, 1.0, 9, -0.5, 0.5, 5)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    loss = 0.2 + a**2 + b**2
    loss[4, 2] = np.nan
    return vtkio.write_surface(tmp_path / "surface_random.vts", Surface(g, loss, 1 - loss / 3))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # meshio's STL size check
@pytest.mark.parametrize("fmt", ["ply", "obj", "stl"])
def test_export_writes_mesh(surface_file, fmt):
    proc = run_cli("export", str(surface_file), "--format", fmt, "--scale", "2")
    assert proc.returncode == 0, proc.stderr
    out = surface_file.with_suffix(f".{fmt}")
    assert proc.stdout.strip() == str(out)
    m = meshio.read(out)
    assert len(m.points) == 9 * 5 - 1  # the NaN point is left out, not written as 0
    assert m.points[:, 2].min() == pytest.approx(2 * 0.2 + 2 * 0.0625, rel=1e-6)  # lowest valid point


def test_export_out_and_log(surface_file, tmp_path):
    out = tmp_path / "sub" / "m.ply"
    proc = run_cli("export", str(surface_file), "--format", "ply", "--out", str(out), "--log", "--scale", "1")
    assert proc.returncode == 0, proc.stderr
    m = meshio.read(out)
    np.testing.assert_allclose(m.points[:, 2], np.log10(m.point_data["loss"]), rtol=1e-12)


@pytest.mark.parametrize("args, fragments", [
    (["--format", "vtk"], ["--format must be one of ply, obj, stl, html", "'vtk'"]),
    (["--format", "ply", "--scale", "0"], ["scale must be a finite non-zero number", "got 0"]),
    (["--format", "ply", "--array", "energy"], ["array must be one of", "got 'energy'"]),
])
def test_bad_arguments(surface_file, args, fragments):
    before = sorted(p.name for p in surface_file.parent.iterdir())
    proc = run_cli("export", str(surface_file), *args)
    assert_one_line_error(proc, *fragments)
    assert sorted(p.name for p in surface_file.parent.iterdir()) == before  # no output file


def test_the_format_comes_from_the_out_suffix_or_the_run_directory(surface_file, run_dir, tmp_path):
    import meshio

    folder = tmp_path / "out"  # apart from the surface file
    folder.mkdir()
    out = folder / "m.obj"
    proc = run_cli("export", str(surface_file), "--out", str(out))
    assert proc.returncode == 0 and proc.stdout.strip() == str(out), proc.stderr
    assert len(meshio.read(out).points) > 0
    page = folder / "page.htm"
    assert run_cli("export", str(surface_file), "--out", str(page)).returncode == 0 and _scene(page)["planes"]
    assert_one_line_error(run_cli("export", str(surface_file)), "--format must be given (ply, obj, stl, html)")
    assert_one_line_error(run_cli("export", str(surface_file), "--out", str(folder / "m.xyz")),
                          "--format must be given", "nor --out tells it")
    assert_one_line_error(run_cli("export", str(run_dir), "--format", "ply"),
                          "a ply mesh is made of one surface file", "a run directory exports as --format html")
    assert sorted(p.name for p in folder.iterdir()) == ["m.obj", "page.htm"]
    proc = run_cli("export", str(run_dir))  # a run directory: its page
    assert proc.returncode == 0 and proc.stdout.strip() == str(run_dir / "index.html"), proc.stderr


def test_missing_and_wrong_files(tmp_path):
    proc = run_cli("export", str(tmp_path / "none.vts"), "--format", "ply")
    assert_one_line_error(proc, "not found", "none.vts")
    proc = run_cli("export", str(tmp_path / "nosuchdir"))  # the missing path is named, not a missing --format
    assert_one_line_error(proc, "nosuchdir", "not found: no run directory or surface file there")
    (tmp_path / "notes.vts").write_text("hello")
    proc = run_cli("export", str(tmp_path / "notes.vts"), "--format", "obj")
    assert_one_line_error(proc, "not a VTK XML file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.vts"]


# -- the page: lossvista export RUN --format html ----------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from .page_run import make_run

    return make_run(tmp_path_factory.mktemp("export") / "toy")


def _scene(path):
    import json
    import re

    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    return json.loads(re.search(r'id="lossvista-scene">(.*?)</script>', text, re.S).group(1))


def test_export_html_of_a_run(run_dir, tmp_path):
    proc = run_cli("export", str(run_dir), "--format", "html")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(run_dir / "index.html")
    assert [p["kind"] for p in _scene(run_dir / "index.html")["planes"]] == ["random", "pca"]
    out = tmp_path / "page.html"
    proc = run_cli("export", str(run_dir), "--format", "HTML", "--out", str(out), "--array", "accuracy")
    assert proc.returncode == 0, proc.stderr
    assert _scene(out)["initial"] == {"plane": 0, "view": "3d", "array": "accuracy"}


def test_export_html_of_one_surface(surface_file):
    proc = run_cli("export", str(surface_file), "--format", "html")
    assert proc.returncode == 0, proc.stderr
    out = surface_file.with_suffix(".html")
    assert proc.stdout.strip() == str(out)
    assert [p["kind"] for p in _scene(out)["planes"]] == ["random"]


@pytest.mark.parametrize("case, fragments", [
    ("empty run", ["has no surface_<plane>.vts"]),
    ("out is a directory", ["--out must be a file, not a directory"]),
    ("scale", ["--scale shapes a mesh (ply, obj, stl)", "got 2.0"]),
    ("no such run", ["no run directory or surface file"]),
])
def test_export_html_bad_input(run_dir, tmp_path, case, fragments):
    (tmp_path / "empty").mkdir()
    args = {"empty run": [str(tmp_path / "empty")],
            "out is a directory": [str(run_dir), "--out", str(tmp_path)],
            "scale": [str(run_dir), "--scale", "2", "--out", str(tmp_path / "p.html")],
            "no such run": [str(tmp_path / "nope"), "--out", str(tmp_path / "p.html")]}[case]
    proc = run_cli("export", *args, "--format", "html")
    assert_one_line_error(proc, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing written
