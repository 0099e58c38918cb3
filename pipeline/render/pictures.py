"""The pictures of a run's planes: ParaView's views through pvbatch, the quick looks, and the
curvature views of planes whose surface holds curvature maps (``lossvista render``).

Light to import: pvbatch, matplotlib and pyvista are loaded on call.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from ..display import HESSIAN_VIEWS, PLANES, QUICKLOOK_VIEWS, VIEWS
from ..errors import LossvistaError, ParameterError, param
from ..rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["render_pictures", "BACKENDS"]

BACKENDS = ("auto", "paraview", "pyvista", "none")
Notice = Callable[[str], None]


def render_pictures(run: RunDir, *, backend: str = "auto", planes: Sequence[str] | None = None,
                    views: Sequence[str] | None = None, out: str | Path | None = None,
                    size: tuple[int, int] = (1200, 900), with_quicklooks: bool = False,
                    notice: Notice | None = None) -> list[Path]:
    """The pictures of a run's planes.

    ``backend``: ``paraview`` (pvbatch and the saved states), ``pyvista`` (the matplotlib and
    pyvista quick looks), ``auto`` (ParaView when pvbatch can render here, else the quick looks
    with a notice), ``none``. ``with_quicklooks``: the quick looks too, beside ParaView's views
    (what ``lossvista run`` makes). ``planes``: default every plane whose surface exists; then
    ParaView skips, with a notice, the planes without a trajectory (its states draw the path).
    ``views``: default all, ``eig_ratio`` (:data:`~pipeline.display.HESSIAN_VIEWS`) for the planes
    whose surface holds curvature maps (``lossvista surface --hessian``); the quick looks have no
    ``3d_contours``. ``out``: the pictures' folder (default ``RUN/renders``; quick looks beside
    ParaView's go to ``RUN/renders/quicklook``).
    """
    from . import pvbatch
    from .quicklook import render_run_quicklook

    say = notice or (lambda msg: log.warning("%s", msg))
    if backend not in BACKENDS:
        raise ParameterError(f"{param('backend')} must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    if backend == "none":
        return []
    if not run.root.is_dir():
        raise LossvistaError(f"run directory not found: {str(run.root)!r}")
    chosen = list(dict.fromkeys(planes)) if planes else [k for k in PLANES if run.surface(k).is_file()]
    if not chosen:
        raise LossvistaError(f"{str(run.root)!r} has no {run.surface('random').name} or {run.surface('pca').name}; "
                             f"compute them first (lossvista run, or lossvista surface)")
    use_paraview = backend == "paraview" or (backend == "auto" and pvbatch.paraview_available())
    if backend == "auto" and not use_paraview:
        say("ParaView (pvbatch, and xvfb-run without a display) not found: rendering the pyvista/matplotlib quick "
            "looks only; install Debian's paraview and xvfb for the ParaView views")
    unknown = [v for v in (views or ()) if v not in VIEWS + HESSIAN_VIEWS]
    if unknown:
        raise ParameterError(f"{param('views')} must be among {', '.join(map(repr, VIEWS + HESSIAN_VIEWS))}; "
                             f"got {unknown}")
    mapped = [p for p in chosen if _has_maps(run, p)]  # planes whose surface holds eig_ratio
    curvature_views = [v for v in (views or HESSIAN_VIEWS) if v in HESSIAN_VIEWS]
    if views and curvature_views and not mapped:
        raise LossvistaError(f"{', '.join(curvature_views)} needs a surface with curvature maps; none of "
                             f"{', '.join(run.surface(p).name for p in chosen)} has them (lossvista surface --hessian)")
    landscape_views = [v for v in views if v in VIEWS] if views else None
    pictures: list[Path] = []
    if with_quicklooks or not use_paraview:
        quick = [v for v in (views or QUICKLOOK_VIEWS) if v in QUICKLOOK_VIEWS]
        skipped = [v for v in (views or ()) if v not in QUICKLOOK_VIEWS + HESSIAN_VIEWS]
        if skipped:
            say(f"the quick looks have no {', '.join(skipped)} view; skipped")
        folder = out if (out and not use_paraview) else run.quicklooks
        for plane in chosen:
            wanted = quick + (curvature_views if plane in mapped else [])
            if wanted:
                pictures += render_run_quicklook(run.root, plane, wanted, folder)
    if use_paraview:
        ready = chosen
        if not planes:  # default planes: skip, with a notice, those the states cannot draw
            ready = [p for p in chosen if run.trajectory(p).is_file()]
            for p in chosen:
                if p not in ready:
                    say(f"the {p} plane has no {run.trajectory(p).name} (lossvista trajectory --run RUN "
                        f"--directions RUN/directions/{p}.pt); not rendered with ParaView")
        if landscape_views is None or landscape_views:
            pictures += pvbatch.render_paraview(run.root, ready or chosen, landscape_views, out or run.renders,
                                                size=size)
        drawn = [p for p in (ready or chosen) if p in mapped]
        if curvature_views and drawn:
            pictures += pvbatch.render_paraview(run.root, drawn, curvature_views, out or run.renders, size=size)
    return pictures


def _has_maps(run: RunDir, plane: str) -> bool:
    """Whether the plane's surface holds the curvature maps (``eig_ratio``)."""
    from ..vtkio import read_surface

    path = run.surface(plane)
    return path.is_file() and "eig_ratio" in read_surface(path).names()
