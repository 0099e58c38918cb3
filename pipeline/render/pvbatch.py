"""The ParaView driver: render a run's pictures with pvbatch and the bundled state files.

:func:`render_paraview` runs ``pvbatch states/render_state.py`` once per call (all the views
of one plane in one process), under ``xvfb-run -a`` when there is no ``DISPLAY`` (Debian's
ParaView renders through GLX only), and returns ``RUN/renders/<plane>_<view>.png``.
The states and the plugin ship with the package (:func:`paraview_files`): in a checkout they
are the repository's ``states/`` and ``paraview_plugins/``, in an installed wheel the package
data ``pipeline/states/`` and ``pipeline/paraview_plugins/``; either works from any directory.

pvbatch runs on the system's Python with ParaView's own VTK; the child gets an environment
without this process's ``PYTHONPATH``, ``PYTHONHOME`` and ``VIRTUAL_ENV`` so that the
virtual environment's pip ``vtk`` never mixes with it. Running a program is this module's
whole job, the one exception to "library code never shells out". Nothing is printed: the
child's output goes to the log (``logging``), its failure into a :class:`LossvistaError`
carrying the last line of its stderr.
"""
from __future__ import annotations

import logging
import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ..display import HESSIAN_VIEWS, VIEWS
from ..errors import LossvistaError, param
from ..rundir import RunDir

__all__ = ["VIEWS", "find_pvbatch", "paraview_available", "paraview_files", "render_paraview"]

logger = logging.getLogger(__name__)

STATE_FILE = "landscape_{view}.pvsm"  # one saved state per view in the states folder
PLUGIN_FILE = "lossvista_filters.py"
XVFB_SCREEN = "-screen 0 1920x1200x24"  # 24-bit colour: GLX needs a true-colour visual
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_XVFB_CLEANUP = "problem while cleaning up temporary directory"
_XVFB_START = "Xvfb failed to start"


def xvfb_prefix(xvfb: str = "xvfb-run") -> list[str]:
    """``xvfb-run`` arguments for one private X server (24-bit screen).

    The search for a free display starts at a random number rather than at :99, so renders
    started together rarely probe the same display; ``-a`` still skips one that is taken.
    """
    return [xvfb, "-a", "-n", str(random.randrange(100, 30000)), "-s", XVFB_SCREEN]


def find_pvbatch(pvbatch: str | os.PathLike | None = None) -> str | None:
    """Path of the pvbatch executable (``pvbatch`` argument, else the one on ``PATH``), or None."""
    if pvbatch is not None:
        p = Path(pvbatch)
        found = str(p) if p.is_file() and os.access(p, os.X_OK) else shutil.which(str(pvbatch))
        return found
    return shutil.which("pvbatch")


def paraview_files() -> tuple[Path, Path]:
    """``(states folder, plugin file)``: the package's own copies (an installed wheel holds them as
    ``pipeline/states`` and ``pipeline/paraview_plugins``), else a checkout's ``states/`` and
    ``paraview_plugins/`` beside the package."""
    package = Path(__file__).resolve().parents[1]
    for base in (package, package.parent):
        states, plugin = base / "states", base / "paraview_plugins" / PLUGIN_FILE
        if (states / "render_state.py").is_file() and plugin.is_file():
            return states, plugin
    raise LossvistaError(f"the ParaView state files and plugin are missing from this installation of lossvista "
                         f"(looked in {package} and {package.parent}); reinstall it")


def _needs_xvfb() -> bool:
    return not os.environ.get("DISPLAY")


def paraview_available(pvbatch: str | os.PathLike | None = None) -> bool:
    """True when pvbatch is found and can render here (a DISPLAY, or xvfb-run to make one)."""
    return find_pvbatch(pvbatch) is not None and (not _needs_xvfb() or shutil.which("xvfb-run") is not None)


def _child_env() -> dict[str, str]:
    """This process's environment minus what would point pvbatch's Python at our venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _last_line(text: str) -> str:
    """Last meaningful line of pvbatch's stderr (no colour codes, no indented detail)."""
    lines = [_ANSI.sub("", ln).rstrip() for ln in (text or "").splitlines()]
    lines = [ln for ln in lines if ln.strip() and not ln.startswith((" ", "\t"))]
    return lines[-1].strip() if lines else "(no output on stderr)"


def render_paraview(
    run_dir: str | os.PathLike,
    plane: str | Sequence[str] = "random",
    views: Sequence[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    pvbatch: str | os.PathLike | None = None,
    states_dir: str | os.PathLike | None = None,
    size: tuple[int, int] = (1200, 900),
    timeout: float = 600.0,
) -> list[Path]:
    """Render the ParaView views of one plane of a run; return the PNG paths.

    Parameters
    ----------
    run_dir : run directory holding each plane's surface and trajectory.
    plane : str or sequence of str, default "random"
        ``"random"``, ``"pca"`` or both (any name with files ``surface_<plane>.vts`` etc.
        works). Several planes are rendered in the same pvbatch process.
    views : names from :data:`VIEWS`, default all four; or :data:`~pipeline.display.HESSIAN_VIEWS`
        (``eig_ratio``) for surfaces with curvature maps.
    out_dir : default ``run_dir/renders``. Pictures are ``<out_dir>/<plane>_<view>.png``
        (returned as absolute paths, planes in the order given, then views).
    pvbatch : path or name of the executable; default: ``pvbatch`` on ``PATH``.
    states_dir : folder of the ``landscape_<view>.pvsm`` files; default: the package's
        (:func:`paraview_files`).
    size : (width, height) in pixels.
    timeout : seconds for the whole pvbatch run.

    Raises
    ------
    ValueError
        Unknown view, bad plane name or size.
    LossvistaError
        pvbatch (or, without a display, xvfb-run) missing; input files or states missing;
        pvbatch failed (the message ends with the last line of its stderr) or timed out.
    """
    views = tuple(VIEWS if views is None else views)
    bad = [v for v in views if v not in VIEWS + HESSIAN_VIEWS]
    if bad or not views:
        raise ValueError(f"views must be among {', '.join(map(repr, VIEWS + HESSIAN_VIEWS))}; got {list(views)!r}")
    planes = [plane] if isinstance(plane, str) else list(plane)
    if not planes or not all(isinstance(p, str) and re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in planes):
        raise ValueError(f"plane must be a plane name such as 'random' or 'pca' (or a list of them); got {plane!r}")
    w, h = (int(x) for x in size)
    if w < 64 or h < 64:
        raise ValueError(f"size must be at least 64 x 64 pixels; got {size!r}")

    run = RunDir(run_dir)
    if not run.root.is_dir():
        raise LossvistaError(f"run directory not found: {str(run.root)!r}")
    for p in planes:
        for path in (run.surface(p), run.trajectory(p)):
            if not path.is_file():
                raise LossvistaError(f"{str(path)!r} not found: the {p} plane of this run has not been "
                                     f"computed (lossvista surface / lossvista trajectory)")
    package_states, plugin = paraview_files()
    states_dir = Path(states_dir) if states_dir is not None else package_states
    script = package_states / "render_state.py"
    missing = [p for p in (states_dir / STATE_FILE.format(view=v) for v in views) if not p.is_file()]
    if missing:
        raise LossvistaError(f"ParaView state files not found ({', '.join(map(str, missing))})")

    out_dir = Path(out_dir or run.renders).resolve()
    exe = find_pvbatch(pvbatch)
    if exe is None:
        raise LossvistaError(f"pvbatch not found ({'no ' + str(pvbatch) if pvbatch else 'not on PATH'}): install "
                             f"ParaView (Debian: apt install paraview python3-paraview) or use {param('backend')} pyvista")
    cmd = [exe, str(script), str(run.root.resolve()), "--plane", *planes, "--views", *views,
           "--out", str(out_dir), "--states", str(states_dir.resolve()), "--plugin", str(plugin),
           "--size", str(w), str(h)]
    if _needs_xvfb():
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            raise LossvistaError("no DISPLAY and xvfb-run not found: Debian's ParaView renders through GLX only; "
                                 "install xvfb (apt install xvfb) or run with a display")
        cmd = [*xvfb_prefix(xvfb), *cmd]
    out_dir.mkdir(parents=True, exist_ok=True)

    what = " and ".join(planes)
    logger.info("rendering the %s views %s with ParaView", what, ", ".join(views))
    logger.debug("command: %s", " ".join(cmd))
    start = time.perf_counter()
    for attempt in (1, 2):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_child_env(),
                                  cwd=str(out_dir))
        except subprocess.TimeoutExpired:
            raise LossvistaError(f"pvbatch did not finish rendering the {what} views within {timeout:g} s") from None
        except OSError as exc:
            raise LossvistaError(f"cannot run pvbatch ({exe}): {exc}") from None
        # OpenGL under Xvfb now and then dies on a busy machine (SIGABRT/SIGSEGV, or Xvfb does
        # not start): one more try; a crash that repeats is reported
        crashed = proc.returncode < 0 or proc.returncode in (134, 139) or _XVFB_START in proc.stderr
        if not crashed or attempt == 2:
            break
        logger.warning("pvbatch crashed (exit status %d: %s); trying once more", proc.returncode,
                       _last_line(proc.stderr))
    for line in proc.stderr.splitlines():
        if line.strip():
            logger.debug("pvbatch: %s", _ANSI.sub("", line))
    paths = [RunDir.picture(out_dir, p, v) for p in planes for v in views]
    absent = [str(p) for p in paths if not (p.is_file() and f"wrote {p}" in proc.stdout)]
    done = not absent
    if proc.returncode == 5 and done and _XVFB_CLEANUP in proc.stderr:
        # xvfb-run's own clean-up raced with xauth (exit 5) after pvbatch had finished
        logger.warning("xvfb-run: %s (ignored: every picture was written)", _XVFB_CLEANUP)
    elif proc.returncode != 0:
        raise LossvistaError(f"pvbatch failed (exit status {proc.returncode}) rendering the {what} views: "
                             f"{_last_line(proc.stderr)}")
    if absent:
        raise LossvistaError(f"pvbatch exited normally but wrote no {', '.join(absent)}: {_last_line(proc.stderr)}")
    logger.info("rendered %d ParaView pictures in %.1f s", len(paths), time.perf_counter() - start)
    return paths
