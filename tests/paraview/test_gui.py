"""`lossvista paraview` opens the real ParaView GUI on a private Xvfb screen; the run's own states
(`RUN/states/<plane>_<view>.pvsm`) open after the run directory has moved."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, clean_env
from tests.conftest import HANG_GUARD, require

pytestmark = pytest.mark.paraview

SCREEN = (1280, 900)
PATH_RED = np.array([0xE4, 0x1A, 0x1C])  # display.PATH_COLOR, the descent path's tube


@pytest.fixture(autouse=True)
def _gui_required():
    missing = [t for t in ("paraview", "Xvfb") if shutil.which(t) is None]
    require(missing, f"the GUI tests need {', '.join(missing)} (Debian: apt install paraview xvfb)",
            "LOSSVISTA_REQUIRE_PARAVIEW")


@pytest.fixture
def screen(tmp_path):
    """A private X server: ``{"display": ":N", "env": {...}}``; ParaView's settings in a private
    folder (its welcome dialog off, nothing written to the user's own settings)."""
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    assert number.isdigit(), "Xvfb did not report its display"
    config = tmp_path / "config"
    (config / "ParaView").mkdir(parents=True)
    (config / "ParaView" / "ParaView5.11.0.ini").write_text("[General]\nGeneralSettings.ShowWelcomeDialog=0\n")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "DISPLAY": f":{number}", "XDG_CONFIG_HOME": str(config), "XDG_RUNTIME_DIR": str(runtime),
           "TQDM_DISABLE": "1"}
    yield {"display": f":{number}", "env": env}
    xvfb.terminate()
    xvfb.wait(timeout=30)


def _grab(display: str) -> np.ndarray:
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB")).astype(int)


def _window(rgb: np.ndarray) -> tuple[int, int]:
    """First and last column of ParaView's window (the root window around it is black)."""
    columns = np.nonzero(rgb.max(axis=2).max(axis=0) > 0)[0]
    return int(columns.min()), int(columns.max())


def render_view(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` of the active render view: ParaView frames it in pure blue."""
    blue = (rgb[..., 2] == 255) & (rgb[..., 0] == 0) & (rgb[..., 1] == 0)
    rows = np.nonzero(blue.sum(axis=1) > 100)[0]
    columns = np.nonzero(blue.sum(axis=0) > 100)[0]
    if len(rows) < 2 or len(columns) < 2:
        return None
    return int(rows.min()), int(rows.max()), int(columns.min()), int(columns.max())


def surface_pixels(rgb: np.ndarray) -> dict[str, float]:
    """What the render view shows left of its colour bars (its right quarter): pixels of the path's
    red and of other saturated colours (the loss's colours, shaded; the critical points), the
    share of that area they cover, and the view's share of the window's width."""
    box = render_view(rgb)
    if box is None:
        return {"red": 0, "colour": 0, "share": 0.0, "width": 0.0}
    top, bottom, left, right = box
    scene = rgb[top + 3: bottom - 2, left + 3: left + 3 * (right - left) // 4]
    red = np.abs(scene - PATH_RED).max(axis=2) < 60
    colour = (scene.max(axis=2) - scene.min(axis=2)) > 40
    first, last = _window(rgb)
    return {"red": int(red.sum()), "colour": int((colour & ~red).sum()), "share": float(colour.mean()),
            "width": (right - left) / (last - first)}


def _open_in_gui(screen, *args, deadline: float = HANG_GUARD):
    """Start ``lossvista paraview ARGS`` on the screen; return (its pid's executable, the screenshot,
    its pixel counts) once the surface shows, or the last screenshot when it never does (ParaView
    ended, or hung past ``deadline``)."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "paraview", *args], cwd=ROOT, env=screen["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        exe, counts, rgb = None, {}, None
        end = time.monotonic() + deadline
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(2)
            exe = os.path.realpath(f"/proc/{proc.pid}/exe")
            rgb = _grab(screen["display"])
            counts = surface_pixels(rgb)
            if counts["red"] > 100 and counts["colour"] > 10000:
                time.sleep(2)  # the last frame of the render, then the picture that is checked
                rgb = _grab(screen["display"])
                counts = surface_pixels(rgb)
                break
        still_running = proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert still_running, f"lossvista paraview ended ({proc.returncode}): {err[-2000:]}"
    return exe, rgb, counts, err


def _save(rgb: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(rgb.astype(np.uint8)).save(path)


def test_paraview_command_opens_the_pca_surface_in_the_gui(run_b, screen, tmp_path):
    exe, rgb, counts, err = _open_in_gui(screen, str(run_b), "--plane", "pca")
    _save(rgb, tmp_path / "gui.png")
    assert os.path.basename(exe) == "paraview", exe  # the GUI itself (exec'd), not pvpython or a wrapper
    assert counts["red"] > 100 and counts["colour"] > 10000, (counts, err[-2000:], tmp_path / "gui.png")
    assert counts["width"] > 0.6, counts  # the view alone in its layout (the saved states split it in two)
    assert counts["share"] < 0.5, counts  # the camera fitted to this plane, not zoomed into part of it


LOAD_MOVED = """
import json, os, sys
import inspect
if not hasattr(inspect, 'getargspec'): inspect.getargspec = inspect.getfullargspec
from paraview import simple
state, plugin, mode = sys.argv[1:4]
simple.LoadPlugin(plugin, remote=False)
if mode == "search":  # the GUI's File > Load State, "Search files under specified directory"
    simple.LoadState(state, data_directory=os.path.dirname(state))
else:  # "Use File Names From State", ParaView started in the state's folder
    simple.LoadState(os.path.basename(state))
out = {}
for name in ("surface", "trajectory"):
    reader = simple.FindSource(name)
    reader.UpdatePipeline()
    out[name] = [os.path.realpath(reader.FileName[0]), reader.GetDataInformation().GetNumberOfPoints()]
out["views"] = len(simple.GetRenderViews())
print("RESULT" + json.dumps(out))
"""


def test_run_state_written_by_render_opens_after_the_run_moved(run_b, screen, tmp_path):
    from pipeline.vtkio import read_surface, read_trajectory

    first = tmp_path / "first" / "run"
    shutil.copytree(run_b, first, ignore=shutil.ignore_patterns("states", "renders"))
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-q", "render", str(first), "--backend", "paraview",
                           "--plane", "pca", "--views", "3d_surface", "2d_contours", "--size", "480", "360"],
                          capture_output=True, text=True, cwd=ROOT, timeout=HANG_GUARD, env=screen["env"])
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (first / "states").iterdir()) == ["pca_2d_contours.pvsm", "pca_3d_surface.pvsm"]
    text = (first / "states" / "pca_3d_surface.pvsm").read_text()
    assert str(tmp_path) not in text  # no absolute path of the run
    assert 'value="../surface_pca.vts"' in text and 'value="../trajectory_pca.vtp"' in text

    moved = tmp_path / "elsewhere" / "deeper" / "moved_run"
    moved.parent.mkdir(parents=True)
    shutil.move(str(first), str(moved))
    state = moved / "states" / "pca_3d_surface.pvsm"
    grid = read_surface(moved / "surface_pca.vts").grid
    expected = {"surface": [str(moved / "surface_pca.vts"), grid.nx * grid.ny],
                "trajectory": [str(moved / "trajectory_pca.vtp"), len(read_trajectory(moved / "trajectory_pca.vtp").epoch)],
                "views": 1}
    script = tmp_path / "load_moved.py"
    script.write_text(LOAD_MOVED)
    for mode in ("search", "cwd"):
        done = subprocess.run(["pvpython", str(script), str(state), str(ROOT / "paraview_plugins" / "lossvista_filters.py"),
                               mode], capture_output=True, text=True, timeout=HANG_GUARD, cwd=str(state.parent),
                              env=clean_env())
        assert done.returncode == 0, done.stderr[-3000:]
        line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT"))
        assert json.loads(line[len("RESULT"):]) == expected, mode

    # the one command opens the moved state in the GUI, from another folder
    exe, rgb, counts, err = _open_in_gui(screen, str(state))
    _save(rgb, tmp_path / "gui_state.png")
    assert os.path.basename(exe) == "paraview", exe
    assert counts["red"] > 100 and counts["colour"] > 10000, (counts, err[-2000:], tmp_path / "gui_state.png")
    assert counts["width"] > 0.6, counts


def test_render_into_another_folder_keeps_going_when_the_run_cannot_hold_states(run_b, tmp_path, caplog):
    from pipeline.render.pvbatch import render_paraview

    run = tmp_path / "run"
    shutil.copytree(run_b, run, ignore=shutil.ignore_patterns("states", "renders"))
    (run / "states").write_text("a file where the folder would go")
    pictures = render_paraview(run, "pca", ["2d_contours"], tmp_path / "pics", size=(320, 240))
    assert pictures == [tmp_path / "pics" / "pca_2d_contours.png"] and pictures[0].is_file()
    assert (run / "states").read_text() == "a file where the folder would go"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(w.startswith("no ParaView state saved in the run: ") for w in warnings), warnings
