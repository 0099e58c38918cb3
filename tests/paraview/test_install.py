"""A non-editable install (``pip install .`` into a fresh venv) renders with ParaView from anywhere:
the states and the plugin ship as package data."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

import pytest

from conftest import HANG_GUARD, ROOT, picture_stats

pytestmark = pytest.mark.paraview


def _fresh_venv(path):
    """A venv with nothing installed; this environment's packages (torch, vtk, ...) reachable through a
    path entry (its ``.pth`` files, the editable install of this checkout among them, are not run)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=HANG_GUARD)
    site = path / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return site


def test_pip_install_then_render_with_paraview_from_an_unrelated_directory(run_b, tmp_path):
    venv = tmp_path / "venv"
    site = _fresh_venv(venv)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                           "--no-build-isolation", str(ROOT)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    package = site / "pipeline"
    assert (package / "states" / "landscape_3d_surface.pvsm").is_file()
    assert (package / "paraview_plugins" / "lossvista_filters.py").is_file()
    assert (package / "render" / "page" / "assets" / "page.js").is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "pictures"
    proc = subprocess.run([str(venv / "bin" / "lossvista"), "-vv", "render", str(run_b), "--backend", "paraview",
                           "--plane", "random", "--views", "3d_surface", "--out", str(out), "--size", "480", "360"],
                          cwd=elsewhere, env={**env, "TQDM_DISABLE": "1"}, capture_output=True, text=True,
                          timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    png = out / "random_3d_surface.png"
    assert proc.stdout.split() == [str(png)]
    assert f"{package / 'states' / 'render_state.py'}" in proc.stderr  # the installed copy ran, not the checkout
    stats = picture_stats(png)
    assert (stats["width"], stats["height"]) == (480, 360) and stats["red"] > 50, stats
    # the page's script and style ship too: the installed command writes the run's page
    page = tmp_path / "page.html"
    proc = subprocess.run([str(venv / "bin" / "lossvista"), "export", str(run_b), "--format", "html", "--out",
                           str(page)], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "window.lossvista" in page.read_text(encoding="utf-8")
