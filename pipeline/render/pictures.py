"""The pictures of a run's planes and volumes: ParaView's views through pvbatch, the quick looks,
and the curvature views of planes whose surface holds curvature maps (``lossvista render``).

Light to import: pvbatch, matplotlib and pyvista are loaded on call.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from ..display import ANIMATIONS, HESSIAN_VIEWS, PLANES, QUICKLOOK_VIEWS, VIEWS, VOLUME_VIEWS
from ..errors import LossvistaError, ParameterError, param
from ..rundir import RunDir, volume_kind

log = logging.getLogger(__name__)

__all__ = ["render_pictures", "has_curvature_maps", "BACKENDS", "Notice"]

BACKENDS = ("auto", "paraview", "pyvista", "none")
Notice = Callable[[str], None]


def render_pictures(run: RunDir, *, backend: str = "auto", planes: Sequence[str] | None = None,
                    views: Sequence[str] | None = None, out: str | Path | None = None,
                    size: tuple[int, int] = (1200, 900), with_quicklooks: bool = False,
                    notice: Notice | None = None, animations: Sequence[str] | None = None) -> list[Path]:
    """The pictures of a run's planes.

    ``backend``: ``paraview`` (pvbatch and the saved states), ``pyvista`` (the matplotlib and
    pyvista quick looks), ``auto`` (ParaView when pvbatch can render here, else the quick looks
    with a notice), ``none``. ``with_quicklooks``: the quick looks too, beside ParaView's views
    (what ``lossvista run`` makes). ``planes``: default every plane whose surface exists and every
    volume (``volume_<kind>``, ParaView only); then ParaView skips, with a notice, the planes and
    volumes without a trajectory (its states draw the path).
    ``views``: default all (a volume's: :data:`~pipeline.display.VOLUME_VIEWS`), ``eig_ratio`` (:data:`~pipeline.display.HESSIAN_VIEWS`) for the planes
    whose surface holds curvature maps (``lossvista surface --hessian``); the quick looks have no
    ``3d_contours``. ``out``: the pictures' folder (default ``RUN/renders``; quick looks beside
    ParaView's go to ``RUN/renders/quicklook``). ``animations``: ParaView's animations of
    ``lossvista evolve`` (:data:`~pipeline.display.ANIMATIONS`,
    :func:`~pipeline.render.pvbatch.render_animations`); default: with the default planes, those
    whose files the run has; with ``planes=()`` the animations alone.
    """
    from . import pvbatch
    from .pvbatch import animation_files
    from .quicklook import render_run_quicklook

    say = notice or (lambda msg: log.warning("%s", msg))
    if backend not in BACKENDS:
        raise ParameterError(f"{param('backend')} must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    if backend == "none":
        return []
    run.require()
    only_animations = planes is not None and not planes
    chosen = list(dict.fromkeys(planes)) if planes or only_animations else (
        [k for k in PLANES if run.surface(k).is_file()] + [volume_kind(k) for k in run.volumes()])
    bad = [a for a in animations or () if a not in ANIMATIONS]
    if bad:
        raise ParameterError(f"{param('animations')} must be among {', '.join(map(repr, ANIMATIONS))}; got {bad}")
    if animations is None:
        animations = [] if planes else [a for a in ANIMATIONS if all(f.is_file() for f in animation_files(run, a))]
    if only_animations and not animations:
        raise LossvistaError(f"{str(run.root)!r}: no animation to render (lossvista evolve writes their files)")
    if not chosen and not only_animations:
        raise LossvistaError(f"{str(run.root)!r} has no {run.surface('random').name} or {run.surface('pca').name}; "
                             f"compute them first (lossvista run, or lossvista surface)")
    use_paraview = backend == "paraview" or (backend == "auto" and pvbatch.paraview_available())
    if backend == "auto" and not use_paraview:
        say("ParaView (pvbatch, and xvfb-run without a display) not found: rendering the pyvista/matplotlib quick "
            "looks only; install Debian's paraview and xvfb for the ParaView views")
    every = VIEWS + HESSIAN_VIEWS + VOLUME_VIEWS
    unknown = [v for v in (views or ()) if v not in every]
    if unknown:
        raise ParameterError(f"{param('views')} must be among {', '.join(map(repr, every))}; got {unknown}")
    # planes whose surface holds eig_ratio
    mapped = [p for p in chosen if not pvbatch.is_volume(p) and has_curvature_maps(run, p)]
    curvature_views = [v for v in (views or HESSIAN_VIEWS) if v in HESSIAN_VIEWS]
    if views and curvature_views and not mapped:
        raise LossvistaError(f"{', '.join(curvature_views)} needs a surface with curvature maps; none of "
                             f"{', '.join(run.surface(p).name for p in chosen)} has them (lossvista surface --hessian)")
    landscape_views = [v for v in views if v in VIEWS + VOLUME_VIEWS] if views else None
    pictures: list[Path] = []
    if with_quicklooks or not use_paraview:
        quick = [v for v in (views or QUICKLOOK_VIEWS) if v in QUICKLOOK_VIEWS]
        folder = out if (out and not use_paraview) else run.quicklooks
        for plane in [p for p in chosen if not pvbatch.is_volume(p)]:
            wanted = quick + (curvature_views if plane in mapped else [])
            if wanted:
                pictures += render_run_quicklook(run.root, plane, wanted, folder)
        skipped = [v for v in (views or ()) if v not in QUICKLOOK_VIEWS + HESSIAN_VIEWS + VOLUME_VIEWS]
        if skipped and pictures:
            say(f"the quick looks have no {', '.join(skipped)} view; skipped")
    if not use_paraview and not pictures and not only_animations:  # asked for ParaView's views only
        volumes = [p for p in chosen if pvbatch.is_volume(p)]
        paraview_only = [v for v in (views or ()) if v not in QUICKLOOK_VIEWS + HESSIAN_VIEWS]
        why = ([f"the volumes ({', '.join(volumes)}) are drawn by ParaView only"] if volumes else []) + \
            ([f"{', '.join(paraview_only)} {'is a ParaView view' if len(paraview_only) == 1 else 'are ParaView views'}"]
             if paraview_only else [])
        raise LossvistaError(f"the quick looks draw none of what was asked ({'; '.join(why) or 'no view applies'}); "
                             f"render it with {param('backend')} paraview")
    if only_animations and not use_paraview:
        raise LossvistaError(f"the animations ({', '.join(animations)}) are ParaView's and ParaView is not used here; "
                             f"lossvista evolve --backend pyvista writes their matplotlib quick looks")
    if animations and not use_paraview:
        say(f"the animations ({', '.join(animations)}) are ParaView's; lossvista evolve --backend pyvista writes "
            f"their quick looks")
    if use_paraview and chosen:
        ready = chosen
        if not planes:  # default planes: skip, with a notice, those the states cannot draw
            ready = [p for p in chosen if run.trajectory(p).is_file()]
            for p in chosen:
                if p not in ready:
                    kind = p[len("volume_"):] if pvbatch.is_volume(p) else p
                    say(f"the {p} {'volume' if kind != p else 'plane'} has no {run.trajectory(p).name} (lossvista "
                        f"trajectory --run RUN --directions RUN/directions/{kind}{'_3d' if kind != p else ''}.pt); "
                        f"not rendered with ParaView")
        if landscape_views is None or landscape_views:
            pictures += pvbatch.render_paraview(run.root, ready or chosen, landscape_views, out or run.renders,
                                                size=size)
        drawn = [p for p in (ready or chosen) if p in mapped]
        if curvature_views and drawn:
            pictures += pvbatch.render_paraview(run.root, drawn, curvature_views, out or run.renders, size=size)
    if use_paraview and animations:
        pictures += pvbatch.render_animations(run.root, animations, size=size)
    return pictures


def has_curvature_maps(run: RunDir, plane: str) -> bool:
    """Whether the plane's surface holds the curvature maps (``eig_ratio``)."""
    from ..vtkio import read_surface

    path = run.surface(plane)
    return path.is_file() and "eig_ratio" in read_surface(path).names()
