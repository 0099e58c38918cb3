"""Open a run in the ParaView GUI (``lossvista paraview``).

:func:`paraview_launch` checks what is asked and builds the command: Debian's ``paraview``
with the start-up script ``states/gui_state.py`` (``--script``), told what to load by the
environment variable ``LOSSVISTA_PARAVIEW`` (one JSON object). The script loads the plugin
(with the 5.11 ``inspect.getargspec`` shim) and then either the package's state of a view on
one plane's files, fitted as ``lossvista render`` fits its pictures, or a saved state
(a run's ``states/<plane>_<view>.pvsm``, whose data files are found from its folder). The
layout holds that view alone and no dialog is opened. :func:`open_paraview` replaces this
process with ParaView (``os.execve``): the GUI is the process the user started, and closing
it ends the command.

ParaView runs on the system's Python with its own VTK, in the environment of
:mod:`pipeline.render.pvbatch` (without this virtual environment's ``PYTHONPATH``). Besides
pvbatch, this is the one other module that starts a program.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from ..display import HESSIAN_VIEWS, PLANES, VIEWS
from ..errors import LossvistaError, ParameterError, param
from ..rundir import RunDir
from .pvbatch import child_env, find_executable, paraview_files
from .pvsm import missing_data_files

__all__ = ["Launch", "paraview_launch", "open_paraview", "ENVIRONMENT", "DEFAULT_VIEW"]

ENVIRONMENT = "LOSSVISTA_PARAVIEW"  # read by states/gui_state.py
SCRIPT = "gui_state.py"  # in the states folder
DEFAULT_VIEW = "3d_surface"


@dataclass(frozen=True)
class Launch:
    """The ParaView GUI command: ``argv``, the child's whole environment ``env`` and what the
    start-up script loads (``spec``, also in ``env[ENVIRONMENT]``)."""

    argv: list[str]
    env: dict[str, str] = field(repr=False)
    spec: dict[str, Any]

    def shell(self) -> str:
        """The command as one shell line (the variable that differs from this environment first)."""
        return " ".join([f"{ENVIRONMENT}={shlex.quote(self.env[ENVIRONMENT])}", *map(shlex.quote, self.argv)])


def _plane_problem(run: RunDir, plane: str) -> str | None:
    """What is missing for ParaView's views of ``plane``, and the command that computes it; None if nothing."""
    directions = run.directions(plane)
    make = f"lossvista directions --run {run.root} --kind {plane}, then " if not directions.is_file() else ""
    if not run.surface(plane).is_file():
        return (f"the {plane} plane of {run.root} has not been computed yet (no {run.surface(plane).name}): "
                f"{make}lossvista surface --run {run.root} --directions {directions}")
    if not run.trajectory(plane).is_file():
        return (f"the {plane} plane of {run.root} has no descent path yet (no {run.trajectory(plane).name}): "
                f"{make}lossvista trajectory --run {run.root} --directions {directions}")
    return None


def _check_display() -> None:
    if not os.environ.get("DISPLAY"):
        raise LossvistaError("no DISPLAY: the ParaView GUI needs a screen; run it on a desktop (or over ssh -X), "
                             "or in a virtual one under xvfb-run (xvfb-run -a lossvista paraview RUN)")


def paraview_launch(target: str | os.PathLike, *, plane: str | None = None, view: str | None = None,
                    paraview: str | os.PathLike | None = None, check_display: bool = True) -> Launch:
    """The command that opens ``target`` in the ParaView GUI.

    Parameters
    ----------
    target : a run directory, or a state file ``.pvsm`` (a run's ``states/<plane>_<view>.pvsm``,
        written by ``lossvista render``; its plane and view are its own).
    plane : for a run: a plane it has computed (surface and descent path); default: the first
        of :data:`~pipeline.display.PLANES` whose surface exists.
    view : for a run: one of :data:`~pipeline.display.VIEWS`, or ``eig_ratio`` for a surface with
        curvature maps; default ``"3d_surface"``.
    paraview : path or name of the GUI's executable; default: ``paraview`` on ``PATH``.
    check_display : refuse to build the command without ``DISPLAY`` (off for a dry run).

    Raises
    ------
    ParameterError
        A plane or view that does not exist, or one given with a state file.
    LossvistaError
        No such run or state file; the plane's surface or path not computed (the message
        names the command that computes it); no ``paraview``; no ``DISPLAY``.
    """
    states, plugin = paraview_files()
    target = Path(target)
    spec: dict[str, Any] = {"states": str(states.resolve()), "plugin": str(plugin.resolve())}
    if target.suffix == ".pvsm":
        if plane is not None or view is not None:
            raise ParameterError(f"a state file holds its own plane and view; {param('plane')} and {param('view')} "
                                 f"apply to a run directory")
        if not target.is_file():
            raise LossvistaError(f"state file {str(target)!r} not found ('lossvista render RUN' writes "
                                 f"RUN/states/<plane>_<view>.pvsm)")
        missing = missing_data_files(target)
        if missing:
            raise LossvistaError(f"{target} reads {', '.join(missing)}, not found from its folder (a run's own "
                                 f"states open from RUN/states/; a view of any run: lossvista paraview RUN --view VIEW)")
        spec["state"] = str(target.resolve())
    else:
        run = RunDir(target)
        if not run.root.is_dir():
            raise LossvistaError(f"run directory {str(run.root)!r} not found" +
                                 (" (a file; a state file ends with .pvsm)" if run.root.exists() else ""))
        if plane is None:
            plane = next((p for p in PLANES if run.surface(p).is_file()), None)
            if plane is None:
                raise LossvistaError(f"{str(run.root)!r} has no surface yet ({run.surface('random').name} or "
                                     f"{run.surface('pca').name}); compute one: lossvista run --out {run.root}")
        elif plane not in PLANES:
            raise ParameterError(f"{param('plane')} must be one of {', '.join(map(repr, PLANES))}; got {plane!r}")
        view = DEFAULT_VIEW if view is None else view
        if view not in VIEWS + HESSIAN_VIEWS:
            raise ParameterError(f"{param('view')} must be one of {', '.join(map(repr, VIEWS + HESSIAN_VIEWS))}; "
                                 f"got {view!r}")
        problem = _plane_problem(run, plane)
        if problem:
            raise LossvistaError(problem)
        if view in HESSIAN_VIEWS:
            from .pictures import has_curvature_maps

            if not has_curvature_maps(run, plane):
                raise LossvistaError(f"the {view} view needs curvature maps, which {run.surface(plane).name} lacks: "
                                     f"lossvista surface --run {run.root} --directions {run.directions(plane)} --hessian")
        spec.update(run=str(run.root.resolve()), plane=plane, view=view)
    exe = find_executable("paraview", paraview)
    if exe is None:
        raise LossvistaError(f"{paraview or 'paraview'} not found{'' if paraview else ' on PATH'}: install ParaView's "
                             f"GUI (Debian: apt install paraview)")
    if check_display:
        _check_display()
    env = child_env()
    env[ENVIRONMENT] = json.dumps(spec)
    return Launch(argv=[exe, f"--script={states.resolve() / SCRIPT}"], env=env, spec=spec)


def open_paraview(launch: Launch) -> NoReturn:
    """Replace this process with the ParaView GUI of ``launch`` (returns only by an error)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(launch.argv[0], launch.argv, launch.env)
    except OSError as exc:
        raise LossvistaError(f"cannot start {launch.argv[0]}: {exc}") from None
