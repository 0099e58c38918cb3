"""ParaView's animations of the landscape along training (states/animation_*.pvsm, played by
pvbatch through pipeline.render.pvbatch.render_animations and lossvista render --animation)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import HANG_GUARD, ROOT, STATES, clean_env, picture_stats
from test_states import _sources

pytestmark = pytest.mark.paraview

MARKER_RGB = (255, 127, 0)  # pipeline.display.MARKER_COLOR, shaded


def _evolved_run(path, variant):
    from synthetic import make_evolve, make_run

    return make_evolve(make_run(path, variant=variant), variant=variant)


def test_build_states_writes_the_animation_states(tmp_path):
    run = _evolved_run(tmp_path / "run", 0)
    out = tmp_path / "states"
    from pipeline.render.pvbatch import xvfb_prefix

    for _ in range(3):  # as pipeline.render.pvbatch, more tries after OpenGL under Xvfb crashed (busy machine)
        proc = subprocess.run([*xvfb_prefix(), "pvbatch", str(STATES / "build_states.py"),
                               str(run), "--views", "--animations", "landscape", "path", "--out", str(out)],
                              capture_output=True, text=True, cwd=str(ROOT), env=clean_env(), timeout=HANG_GUARD)
        if proc.returncode not in (134, 139):
            break
    assert proc.returncode == 0 or "cleaning up temporary" in proc.stderr, proc.stderr[-3000:]
    landscape, path = _sources(out / "animation_landscape.pvsm"), _sources(out / "animation_path.pvsm")
    assert landscape["landscape"] == "PVDReader" and landscape["Epoch"] == "TimeToTextConvertor"  # AnnotateTime
    assert {"LossThreshold", "LossCriticalPoints", "LossContours", "WarpByLoss"} <= set(landscape.values())
    assert (path["surface"], path["trajectory"], path["marker"]) == ("XMLStructuredGridReader", "XMLPolyDataReader",
                                                                     "PVDReader")
    text = (out / "animation_path.pvsm").read_text()
    assert str(run) not in text and 'value="evolve/path_pca.pvd"' in text  # relative: loads on any run
    for name in ("landscape", "path"):
        committed = STATES / f"animation_{name}.pvsm"
        assert committed.is_file(), f"{committed} missing: run states/build_states.py"
        assert _sources(committed) == _sources(out / f"animation_{name}.pvsm")


def _orange(png):
    """Centre (row, column) of the marker's orange pixels, and their count."""
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    mask = (rgb[..., 0] > 180) & (np.abs(rgb[..., 1] - 110) < 60) & (rgb[..., 2] < 70)
    rows, cols = np.nonzero(mask)
    return (rows.mean(), cols.mean()) if rows.size else (np.nan, np.nan), int(mask.sum())


def test_committed_animation_states_play_a_fresh_run(tmp_path):
    """lossvista render --animation on a run with other extents: one frame per time step of
    each time series, none blank, each different from the others; the landscape deepens, the
    path's marker travels; the GIFs hold the frames. The run is named relative to the working
    directory, as users type it (pvbatch runs in another folder)."""
    from PIL import Image

    run = _evolved_run(tmp_path / "run", 1)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "render", "run", "--animation", "landscape",
                           "--animation", "path"], capture_output=True, text=True, cwd=str(tmp_path),
                          timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    frames = run / "evolve" / "frames"
    landscape = sorted(frames.glob("landscape.*.png"))
    path = sorted(frames.glob("path_pca.*.png"))
    assert [p.name for p in landscape] == [f"landscape.{k:04d}.png" for k in range(3)]  # epochs 0, 4, 10
    assert len(path) == 11  # the synthetic path's checkpoints 0..10
    for f in landscape + path:
        stats = picture_stats(f)
        assert stats["background"] == (255, 255, 255) and stats["drawn"] > 0.05, (f.name, stats)
    pictures = [np.asarray(Image.open(f).convert("L"), float) for f in landscape]
    assert all(np.abs(a - b).mean() > 0.5 for k, a in enumerate(pictures) for b in pictures[k + 1:])
    centres = [_orange(f) for f in path]
    assert all(n > 30 for _, n in centres), [n for _, n in centres]
    first, last = np.array(centres[0][0]), np.array(centres[-1][0])
    assert np.hypot(*(first - last)) > 40  # the marker went from the path's start to its end
    for name, count in (("landscape", 3), ("path_pca", 11)):
        gif = run / "evolve" / f"{name}.gif"
        assert Image.open(gif).n_frames == count
        assert f"{name}.gif" in proc.stdout


@pytest.mark.parametrize("extra,fragment", [
    ([], "landscape.pvd' not found"),
    (["--backend", "pyvista"], "the animations (landscape) are ParaView's"),
])
def test_render_animation_refusals_are_one_line(tmp_path, extra, fragment):
    from synthetic import make_run

    run = make_run(tmp_path / "run", variant=0)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "render", str(run), "--animation", "landscape", *extra],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=HANG_GUARD)
    assert proc.returncode != 0
    assert fragment in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (run / "evolve").exists() and not (run / "renders").exists()
