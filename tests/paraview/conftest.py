"""ParaView tests: real pvpython/pvbatch in subprocesses, on synthetic run directories.

They need Debian's ParaView (``pvbatch``, ``pvpython``; ParaView 5.11 or newer) and, for
pictures, ``xvfb-run`` (Debian's ParaView renders through GLX only). Without them every
test here is skipped with the reason, unless ``LOSSVISTA_REQUIRE_PARAVIEW=1`` (CI): then
they fail. pvpython/pvbatch run on the system Python with ParaView's own VTK, in an
environment without this venv's ``PYTHONPATH``/``VIRTUAL_ENV``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.render.pvbatch import xvfb_prefix
from tests.conftest import HANG_GUARD, require

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PLUGIN = ROOT / "paraview_plugins" / "lossvista_filters.py"
STATES = ROOT / "states"
sys.path.insert(0, str(HERE))  # synthetic.py


def _missing_tools() -> list[str]:
    return [t for t in ("pvpython", "pvbatch", "xvfb-run") if shutil.which(t) is None]


@pytest.fixture(autouse=True)
def _paraview_required():
    """Skip (or, with LOSSVISTA_REQUIRE_PARAVIEW=1, fail) when ParaView or Xvfb is missing."""
    missing = _missing_tools()
    require(missing, f"ParaView tests need {', '.join(missing)} (Debian: apt install paraview python3-paraview xvfb; "
                     f"'make system' does it as root)", "LOSSVISTA_REQUIRE_PARAVIEW")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for ParaView's Python: none of this venv's Python settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(extra)
    return env


SHIM = "import inspect\nif not hasattr(inspect, 'getargspec'): inspect.getargspec = inspect.getfullargspec\n"
LOAD = SHIM + f"from paraview import simple\nsimple.LoadPlugin({str(PLUGIN)!r}, remote=False)\n"


def run_paraview(script: str, tmp_path: Path, *args: str, exe: str = "pvpython", render: bool = False,
                 env: dict[str, str] | None = None, timeout: float = HANG_GUARD, check: bool = True
                 ) -> subprocess.CompletedProcess:
    """Write ``script`` to a file and run it with pvpython/pvbatch (under xvfb-run if ``render``)."""
    path = tmp_path / f"script_{abs(hash(script)) % 10**8}.py"
    path.write_text(script)
    cmd = [exe, str(path), *args]
    if render:
        cmd = [*xvfb_prefix(), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT),
                          env=env if env is not None else clean_env())
    ok = proc.returncode == 0 or (render and proc.returncode == 5 and "cleaning up temporary" in proc.stderr)
    if check and not ok:
        raise AssertionError(f"{exe} failed ({proc.returncode}):\nSTDOUT:\n{proc.stdout[-3000:]}\n"
                             f"STDERR:\n{proc.stderr[-3000:]}")
    return proc


def analyze_run(run_dir: Path) -> None:
    """``lossvista analyze`` on both planes (critical_points_*, topology_*, basin)."""
    for kind in ("random", "pca"):
        proc = subprocess.run([sys.executable, "-m", "pipeline", "-q", "analyze", str(run_dir / f"surface_{kind}.vts")],
                              capture_output=True, text=True, cwd=str(ROOT), timeout=HANG_GUARD)
        assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="session")
def run_a(tmp_path_factory) -> Path:
    """Synthetic run (variant 0): surfaces and trajectories only (no analysis yet)."""
    from synthetic import make_run

    return make_run(tmp_path_factory.mktemp("run_a") / "run", variant=0)


@pytest.fixture(scope="session")
def run_b(tmp_path_factory) -> Path:
    """Another synthetic run (variant 1: other extents, shapes, wells), analysed like `lossvista run`."""
    from synthetic import make_run

    run = make_run(tmp_path_factory.mktemp("run_b") / "run", variant=1)
    analyze_run(run)
    return run


@pytest.fixture(scope="session")
def built_states(run_a, tmp_path_factory) -> Path:
    """The four states built by states/build_states.py from run A, in a folder of their own."""
    out = tmp_path_factory.mktemp("states")
    missing = _missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    proc = subprocess.run([*xvfb_prefix(), "pvbatch",
                           str(STATES / "build_states.py"), str(run_a), "--out", str(out)],
                          capture_output=True, text=True, cwd=str(ROOT), env=clean_env(), timeout=HANG_GUARD)
    assert proc.returncode == 0 or "cleaning up temporary" in proc.stderr, proc.stderr[-3000:]
    return out


def picture_stats(png: Path) -> dict[str, float]:
    """Size, share of non-background pixels and count of path-red pixels (#e41a1c, shaded) of a PNG."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    background = rgb[0, 0]
    drawn = np.any(np.abs(rgb - background) > 12, axis=-1)
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
    return {"width": rgb.shape[1], "height": rgb.shape[0], "drawn": float(drawn.mean()), "red": int(red.sum()),
            "background": tuple(int(c) for c in background)}
