"""The ParaView driver: render a run's pictures with pvbatch and the bundled state files.

:func:`render_paraview` runs ``pvbatch states/render_state.py`` once per call (all the views
of one plane in one process), under ``xvfb-run -a`` when there is no ``DISPLAY`` (Debian's
ParaView renders through GLX only), and returns ``RUN/renders/<plane>_<view>.png``. A plane
named ``volume_<kind>`` is a volume (``RUN/volume_<kind>.vti``): its views are
:data:`~pipeline.display.VOLUME_VIEWS` (states ``volume_<view>.pvsm``).
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

from ..display import ANIMATION_FILES, ANIMATIONS, HESSIAN_VIEWS, VIEWS, VOLUME_VIEWS
from ..errors import LossvistaError, param
from ..rundir import RunDir

__all__ = ["VIEWS", "find_pvbatch", "find_executable", "child_env", "paraview_available", "paraview_files",
           "render_paraview", "render_animations", "views_of", "plane_files", "animation_files"]

logger = logging.getLogger(__name__)

STATE_FILE = "landscape_{view}.pvsm"  # one saved state per view in the states folder
VOLUME_STATE_FILE = "volume_{view}.pvsm"  # the views of a volume
PLUGIN_FILE = "lossvista_filters.py"
XVFB_SCREEN = "-screen 0 1920x1200x24"  # 24-bit colour: GLX needs a true-colour visual
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_XVFB_CLEANUP = "problem while cleaning up temporary directory"
_XVFB_START = "Xvfb failed to start"
CRASH_TRIES = 3  # pvbatch runs started when OpenGL under Xvfb crashed (a bad X connection on a busy machine)
_WARNING = "render_state: warning: "  # how states/render_state.py starts a warning on stderr


def xvfb_prefix(xvfb: str = "xvfb-run") -> list[str]:
    """``xvfb-run`` arguments for one private X server (24-bit screen).

    The search for a free display starts at a random number rather than at :99, so renders
    started together rarely probe the same display; ``-a`` still skips one that is taken.
    """
    return [xvfb, "-a", "-n", str(random.randrange(100, 30000)), "-s", XVFB_SCREEN]


def find_executable(name: str, given: str | os.PathLike | None = None) -> str | None:
    """Path of a ParaView executable: ``given`` (a path, or a name on ``PATH``), else ``name`` on
    ``PATH``; None when not found."""
    if given is not None:
        p = Path(given)
        return str(p) if p.is_file() and os.access(p, os.X_OK) else shutil.which(str(given))
    return shutil.which(name)


def find_pvbatch(pvbatch: str | os.PathLike | None = None) -> str | None:
    """Path of the pvbatch executable (``pvbatch`` argument, else the one on ``PATH``), or None."""
    return find_executable("pvbatch", pvbatch)


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


def is_volume(plane: str) -> bool:
    """A plane ``volume_<kind>`` is the volume of ``kind`` (``RUN/volume_<kind>.vti``)."""
    return plane.startswith("volume_")


def views_of(plane: str, views: Sequence[str] | None = None) -> list[str]:
    """The views of ``plane`` among ``views`` (default: all of its kind: a plane's or a volume's;
    a plane's ``eig_ratio`` only when asked)."""
    own = VOLUME_VIEWS if is_volume(plane) else VIEWS + HESSIAN_VIEWS
    return [v for v in ((VOLUME_VIEWS if is_volume(plane) else VIEWS) if views is None else views) if v in own]


def plane_files(run: RunDir, plane: str) -> list[Path]:
    """The data files the states of ``plane`` read: surface and path, or volume and its path."""
    first = run.volume(plane) if is_volume(plane) else run.surface(plane)
    return [first, run.trajectory(plane)]


def _needs_xvfb() -> bool:
    return not os.environ.get("DISPLAY")


def paraview_available(pvbatch: str | os.PathLike | None = None) -> bool:
    """True when pvbatch is found and can render here (a DISPLAY, or xvfb-run to make one)."""
    return find_pvbatch(pvbatch) is not None and (not _needs_xvfb() or shutil.which("xvfb-run") is not None)


def child_env() -> dict[str, str]:
    """This process's environment minus what would point ParaView's Python at our venv."""
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
        works); ``"volume_random"``, ``"volume_pca"`` for volumes. Several planes are rendered
        in the same pvbatch process.
    views : names from :data:`VIEWS`, :data:`~pipeline.display.HESSIAN_VIEWS` (``eig_ratio``,
        for surfaces with curvature maps) and :data:`~pipeline.display.VOLUME_VIEWS`; each plane
        takes those of its kind; default: all of :data:`VIEWS` and of ``VOLUME_VIEWS``.
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
    every = VIEWS + HESSIAN_VIEWS + VOLUME_VIEWS
    views = tuple(VIEWS + VOLUME_VIEWS if views is None else views)
    bad = [v for v in views if v not in every]
    if bad or not views:
        raise ValueError(f"views must be among {', '.join(map(repr, every))}; got {list(views)!r}")
    planes = [plane] if isinstance(plane, str) else list(plane)
    if not planes or not all(isinstance(p, str) and re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in planes):
        raise ValueError(f"plane must be a plane name such as 'random' or 'pca' (or a list of them); got {plane!r}")
    if not any(views_of(p, views) for p in planes):
        raise ValueError(f"none of the views {list(views)} applies to {', '.join(planes)} (a plane's views: "
                         f"{', '.join(VIEWS)}; a volume's: {', '.join(VOLUME_VIEWS)})")
    w, h = (int(x) for x in size)
    if w < 64 or h < 64:
        raise ValueError(f"size must be at least 64 x 64 pixels; got {size!r}")

    run = RunDir(run_dir)
    run.require()
    for p in planes:
        for path in plane_files(run, p):
            if not path.is_file():
                how = "lossvista volume" if is_volume(p) else "lossvista surface / lossvista trajectory"
                raise LossvistaError(f"{str(path)!r} not found: the {p} {'volume' if is_volume(p) else 'plane'} of "
                                     f"this run has not been computed ({how})")
    states_dir = Path(states_dir) if states_dir is not None else paraview_files()[0]
    needed = {(VOLUME_STATE_FILE if is_volume(p) else STATE_FILE).format(view=v)
              for p in planes for v in views_of(p, views)}
    missing = [p for p in (states_dir / name for name in sorted(needed)) if not p.is_file()]
    if missing:
        raise LossvistaError(f"ParaView state files not found ({', '.join(map(str, missing))})")

    out_dir = Path(out_dir or run.renders).resolve()
    args = [str(run.root.resolve()), "--plane", *planes, "--views", *views, "--out", str(out_dir)]
    paths = [RunDir.picture(out_dir, p, v) for p in planes for v in views_of(p, views)]
    what = f"the {' and '.join(planes)} views"
    logger.info("rendering %s %s with ParaView", what,
                ", ".join(dict.fromkeys(v for p in planes for v in views_of(p, views))))
    start = time.perf_counter()
    _run_pvbatch(args, paths, what, out_dir, pvbatch=pvbatch, states_dir=states_dir, size=(w, h), timeout=timeout)
    logger.info("rendered %d ParaView pictures in %.1f s", len(paths), time.perf_counter() - start)
    return paths


def render_animations(
    run_dir: str | os.PathLike,
    names: Sequence[str] | None = None,
    *,
    pvbatch: str | os.PathLike | None = None,
    states_dir: str | os.PathLike | None = None,
    size: tuple[int, int] = (960, 720),
    ms: int | None = None,
    timeout: float = 600.0,
) -> list[Path]:
    """Play the ParaView animations of ``lossvista evolve`` and write them; return the GIF paths.

    ``names``: among :data:`~pipeline.display.ANIMATIONS` (default: both). ``landscape`` plays
    ``RUN/evolve/landscape.pvd``; ``path`` moves a marker along the descent path over the PCA
    plane (``surface_pca.vts``, ``trajectory_pca.vtp``, ``evolve/path_pca.pvd``). pvbatch saves
    one frame per time step (``SaveAnimation``) as ``RUN/evolve/frames/<name>.<nnnn>.png``;
    Pillow joins them into ``RUN/evolve/landscape.gif`` and ``path_pca.gif``
    (:meth:`~pipeline.rundir.RunDir.animation`; ``ms`` per frame, default
    :data:`~pipeline.render.animate.FRAME_MS`).

    Raises :class:`LossvistaError` when a file is missing, pvbatch is missing or fails.
    """
    from .animate import FRAME_MS, write_gif

    names = list(dict.fromkeys(ANIMATIONS if names is None else names))
    bad = [n for n in names if n not in ANIMATIONS]
    if bad or not names:
        raise ValueError(f"names must be among {', '.join(map(repr, ANIMATIONS))}; got {list(names)!r}")
    w, h = (int(x) for x in size)
    if w < 64 or h < 64:
        raise ValueError(f"size must be at least 64 x 64 pixels; got {size!r}")
    run = RunDir(run_dir)
    for name in names:
        for path in animation_files(run, name):
            if not path.is_file():
                raise LossvistaError(f"{str(path)!r} not found: the {name} animation needs it (lossvista evolve"
                                     f"{'' if name == 'landscape' else ', on a run with its PCA plane'})")
    states = Path(states_dir) if states_dir is not None else paraview_files()[0]
    missing = [str(states / f"animation_{n}.pvsm") for n in names if not (states / f"animation_{n}.pvsm").is_file()]
    if missing:
        raise LossvistaError(f"ParaView state files not found ({', '.join(missing)})")
    frames = run.frames().resolve()  # pvbatch runs in that folder: a relative path would land inside it
    what = f"the {' and '.join(names)} animation{'s' if len(names) > 1 else ''}"
    logger.info("playing %s with ParaView", what)
    start = time.perf_counter()
    proc = _run_pvbatch([str(run.root.resolve()), "--plane", "--animations", *names, "--out", str(frames)], [],
                        what, frames, pvbatch=pvbatch, states_dir=states_dir, size=(w, h), timeout=timeout)
    gifs = []
    for name in names:
        stem = ANIMATION_FILES[name]
        written = sorted(frames.glob(f"{stem}.*.png"))
        fresh = [f for f in written if f"wrote {f}" in proc.stdout]
        if not fresh or len(fresh) != len(written):
            raise LossvistaError(f"pvbatch exited normally but wrote {len(fresh)} frames of the {name} animation "
                                 f"({len(written)} there): {_last_line(proc.stderr)}")
        gifs.append(write_gif(run.animation(stem), fresh, ms=ms or FRAME_MS))
    logger.info("played %s in %.1f s", what, time.perf_counter() - start)
    return gifs


def animation_files(run: RunDir, name: str) -> list[Path]:
    """The data files the animation ``name`` plays."""
    if name == "landscape":
        return [run.evolve / "landscape.pvd"]
    return [run.surface("pca"), run.trajectory("pca"), run.path_markers("pca")]


def _run_pvbatch(args: list[str], expected: list[Path], what: str, out_dir: Path, *, pvbatch, states_dir, size,
                 timeout: float) -> subprocess.CompletedProcess:
    """``pvbatch states/render_state.py ARGS`` (under xvfb-run without a display), one retry after
    a crash; the finished process. ``expected``: the pictures it must have written (``wrote``)."""
    package_states, plugin = paraview_files()
    states_dir = Path(states_dir) if states_dir is not None else package_states
    script = package_states / "render_state.py"
    exe = find_pvbatch(pvbatch)
    if exe is None:
        raise LossvistaError(f"pvbatch not found ({'no ' + str(pvbatch) if pvbatch else 'not on PATH'}): install "
                             f"ParaView (Debian: apt install paraview python3-paraview) or use {param('backend')} pyvista")
    cmd = [exe, str(script), *args, "--states", str(states_dir.resolve()), "--plugin", str(plugin),
           "--size", str(size[0]), str(size[1])]
    if _needs_xvfb():
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            raise LossvistaError("no DISPLAY and xvfb-run not found: Debian's ParaView renders through GLX only; "
                                 "install xvfb (apt install xvfb) or run with a display")
        cmd = [*xvfb_prefix(xvfb), *cmd]
    out_dir.mkdir(parents=True, exist_ok=True)
    logger.debug("command: %s", " ".join(cmd))
    for attempt in range(1, CRASH_TRIES + 1):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env(),
                                  cwd=str(out_dir))
        except subprocess.TimeoutExpired:
            raise LossvistaError(f"pvbatch did not finish rendering {what} within {timeout:g} s") from None
        except OSError as exc:
            raise LossvistaError(f"cannot run pvbatch ({exe}): {exc}") from None
        # OpenGL under Xvfb now and then dies on a busy machine (SIGABRT/SIGSEGV, or Xvfb does
        # not start): more tries; a crash that repeats is reported
        crashed = proc.returncode < 0 or proc.returncode in (134, 139) or _XVFB_START in proc.stderr
        if not crashed or attempt == CRASH_TRIES:
            break
        logger.warning("pvbatch crashed (exit status %d: %s); trying again (%d of %d)", proc.returncode,
                       _last_line(proc.stderr), attempt + 1, CRASH_TRIES)
    for line in proc.stderr.splitlines():
        if line.startswith(_WARNING):  # the script's own warnings (a run's state it could not save)
            logger.warning("%s", line[len(_WARNING):])
        elif line.strip():
            logger.debug("pvbatch: %s", _ANSI.sub("", line))
    absent = [str(p) for p in expected if not (p.is_file() and f"wrote {p}" in proc.stdout)]
    if proc.returncode == 5 and not absent and _XVFB_CLEANUP in proc.stderr:
        # xvfb-run's own clean-up raced with xauth (exit 5) after pvbatch had finished
        logger.warning("xvfb-run: %s (ignored: every picture was written)", _XVFB_CLEANUP)
    elif proc.returncode != 0:
        raise LossvistaError(f"pvbatch failed (exit status {proc.returncode}) rendering {what}: "
                             f"{_last_line(proc.stderr)}")
    if absent:
        raise LossvistaError(f"pvbatch exited normally but wrote no {', '.join(absent)}: {_last_line(proc.stderr)}")
    return proc
