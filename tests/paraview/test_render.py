"""`lossvista render` and the pvbatch driver: real pvbatch, real failures, clear errors."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import HANG_GUARD, ROOT, picture_stats
from tests.conftest import as_cli

pytestmark = pytest.mark.paraview


def _cli(*args, env=None):
    full = {**os.environ, "TQDM_DISABLE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=ROOT,
                          env=full, timeout=HANG_GUARD)


def test_cli_renders_with_paraview(run_b, tmp_path):
    out = tmp_path / "pics"
    proc = _cli("-q", "render", str(run_b), "--backend", "paraview", "--plane", "pca", "--views", "3d_contours",
                "--out", str(out), "--size", "640", "480")
    assert proc.returncode == 0, proc.stderr
    png = out / "pca_3d_contours.png"
    assert proc.stdout.split() == [str(png)]
    stats = picture_stats(png)
    assert (stats["width"], stats["height"]) == (640, 480) and stats["red"] > 50, stats


def test_cli_pyvista_backend_skips_the_view_it_has_not(run_b, tmp_path):
    proc = _cli("-q", "render", str(run_b), "--backend", "pyvista", "--plane", "random",
                "--views", "3d_contours", "2d_contours", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "no 3d_contours view" in proc.stderr
    assert proc.stdout.split() == [str(tmp_path / "random_2d_contours.png")]
    assert picture_stats(tmp_path / "random_2d_contours.png")["red"] > 50


def test_cli_pyvista_default_folder_leaves_the_paraview_pictures_alone(run_b):
    paraview_picture = run_b / "renders" / "random_2d_contours.png"
    paraview_picture.parent.mkdir(exist_ok=True)
    paraview_picture.write_bytes(b"stands for a ParaView picture")
    proc = _cli("-q", "render", str(run_b), "--backend", "pyvista", "--plane", "random", "--views", "2d_contours")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(run_b / "renders" / "quicklook" / "random_2d_contours.png")]
    assert paraview_picture.read_bytes() == b"stands for a ParaView picture"
    paraview_picture.unlink()


def test_cli_default_planes_skip_one_without_a_trajectory(run_b, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_b, run, ignore=shutil.ignore_patterns("renders"))
    (run / "trajectory_random.vtp").unlink()
    proc = _cli("-q", "render", str(run), "--views", "2d_contours", "--size", "320", "240")
    assert proc.returncode == 0, proc.stderr
    assert "notice: the random plane has no trajectory_random.vtp" in proc.stderr
    assert proc.stdout.split() == [str(run / "renders" / "pca_2d_contours.png")]
    proc = _cli("-q", "render", str(run), "--plane", "random", "--views", "2d_contours")  # asked for: an error
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "trajectory_random.vtp' not found" in proc.stderr


def test_cli_falls_back_to_pyvista_with_a_notice_when_pvbatch_is_missing(run_b, tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with python but without pvbatch
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python")
    proc = _cli("render", str(run_b), "--plane", "random", "--views", "2d_contours", "--out", str(tmp_path),
                env={"PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stderr
    assert "notice: ParaView (pvbatch" in proc.stderr and "pyvista" in proc.stderr
    assert (tmp_path / "random_2d_contours.png").is_file()


def test_cli_error_is_one_line(tmp_path):
    proc = _cli("render", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"lossvista render: error: run directory '{tmp_path / 'nope'}' "
                                                f"does not exist"]
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _cli("render", str(empty))
    assert proc.returncode == 1 and "has no surface_random.vts or surface_pca.vts" in proc.stderr


def test_driver_missing_pvbatch(run_b, tmp_path):
    from pipeline.errors import LossvistaError
    from pipeline.render.pvbatch import render_paraview

    with pytest.raises(LossvistaError, match=r"pvbatch not found .*no /nonexistent/pvbatch.*backend pyvista") as e:
        render_paraview(run_b, "random", ["2d_contours"], tmp_path, pvbatch="/nonexistent/pvbatch")
    assert "use --backend pyvista" in as_cli(e.value)


def test_driver_without_display_needs_xvfb_run(run_b, tmp_path, monkeypatch):
    from pipeline.errors import LossvistaError
    from pipeline.render.pvbatch import paraview_available, render_paraview

    pvbatch = shutil.which("pvbatch")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # neither xvfb-run nor pvbatch on PATH
    assert not paraview_available()
    with pytest.raises(LossvistaError, match="no DISPLAY and xvfb-run not found"):
        render_paraview(run_b, "random", ["2d_contours"], tmp_path, pvbatch=pvbatch)


def test_driver_reports_the_last_line_of_pvbatch_stderr(run_b, tmp_path):
    from pipeline.errors import LossvistaError
    from pipeline.render.pvbatch import render_paraview

    broken = tmp_path / "run"
    shutil.copytree(run_b, broken)
    (broken / "surface_random.vts").write_text("<VTKFile>this is not a structured grid</VTKFile>\n")
    with pytest.raises(LossvistaError) as info:
        render_paraview(broken, "random", ["2d_contours"], tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith("pvbatch failed (exit status 2) rendering the random views: render_state: ")
    assert msg.endswith("surface_random.vts holds no data (not a VTK XML structured grid file, or empty)")


@pytest.mark.parametrize("kwargs, message", [
    ({"views": ["4d_hologram"]}, "views must be among"),
    ({"plane": "../x"}, "plane must be a plane name"),
    ({"size": (10, 10)}, "size must be at least 64 x 64"),
])
def test_driver_bad_arguments(run_b, kwargs, message):
    from pipeline.render.pvbatch import render_paraview

    with pytest.raises(ValueError, match=message):
        render_paraview(run_b, **kwargs)


def test_driver_missing_plane_files(run_b, tmp_path):
    from pipeline.errors import LossvistaError
    from pipeline.render.pvbatch import render_paraview

    with pytest.raises(LossvistaError, match=r"surface_interp.vts' not found: the interp plane"):
        render_paraview(run_b, "interp")
