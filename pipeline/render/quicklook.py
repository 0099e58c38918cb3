"""Quick-look pictures of a loss surface: 2D contour lines, 3D warped surface, 3D mesh, 1D line.

matplotlib draws the 2D and 1D plots (:mod:`.plots2d`); pyvista renders the 3D views off screen,
no X server needed (:mod:`.scene3d`); :mod:`.field` decides what is shown. Both libraries are
imported inside the functions, so importing this module is cheap. The rules behind the
pictures (cap, thresholds, levels, colours, axis titles) are :mod:`pipeline.display`'s, the
geometry (interpolation, relief scale) :mod:`pipeline.geometry`'s, which the ParaView plugin
and ``lossvista export`` use too.

Conventions shared by every picture
-----------------------------------
- **Cap for divergent losses.** Losses above ``cap`` are *divergent*: they do not stretch the
  colour map or the height axis. Default ``cap = cap_factor * max(centre loss, floor)`` with
  ``cap_factor = 5`` and ``floor`` the loss of a uniform guess, ``ln(num_classes)`` when the
  metadata says ``num_classes`` (else 1.0): a trained model's centre loss is often tiny
  (docs/design-notes.md), and 5x that alone would grey out almost the whole plane. The colour
  range and the contour levels run from the smallest usable value to ``min(cap, largest
  usable value)``.
- **Unusable points are divergent, never zero.** Points whose value is not usable
  (:meth:`pipeline.datamodel.Surface.usable`: non-finite, or only bounded) are drawn with
  divergent ones: hatched grey in 2D, a grey plateau at the cap height in 3D, grey bands /
  markers at the top in 1D.
- **Levels** are log-spaced (``geomspace``) when every usable value is positive, else linear.
- **Axis titles**: ``PC1 (xx.x%)``/``PC2 (yy.y%)`` when the metadata holds
  ``explained_variance`` (a PCA plane), else alpha/beta.
- **The descent path** is drawn in :data:`pipeline.display.PATH_COLOR` (red, absent from the
  viridis map), with a marker per checkpoint, the start (:data:`~pipeline.display.START_COLOR`)
  as a square and the end (:data:`~pipeline.display.END_COLOR`) as a star. Its 3D height is the
  trajectory's ``surface_loss`` (interpolated from the surface where that is NaN).
- **Critical points** ``(coords (K, 2), types (K,))`` with TTK codes (0 minimum, 1 or 2
  saddle, 3 maximum, 4 degenerate) get distinct colours and shapes
  (:data:`pipeline.display.CRITICAL_STYLE`).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..datamodel import Surface, Trajectory
from ..display import DEFAULT_CAP_FACTOR, HESSIAN_VIEWS, QUICKLOOK_VIEWS
from ..rundir import RunDir
from .plots2d import plot_contours_2d, plot_line_1d
from .scene3d import render_surface_3d

__all__ = ["render_quicklook", "render_run_quicklook", "plot_contours_2d", "plot_line_1d", "render_surface_3d"]

logger = logging.getLogger(__name__)


def render_quicklook(surface: Surface, trajectory: Trajectory | None = None, critical: Any = None, *,
                     out_dir: str | os.PathLike, prefix: str = "surface", cap_factor: float = DEFAULT_CAP_FACTOR,
                     cap: float | None = None, floor: float | None = None, n_levels: int = 20,
                     views: Sequence[str] | None = None, title: str | None = None) -> list[Path]:
    """Write the quick-look PNGs of a surface into ``out_dir`` and return their paths.

    2D surfaces: ``<prefix>_2d_contours.png``, ``<prefix>_3d_surface.png``, ``<prefix>_3d_mesh.png``
    (``views`` picks a subset of ``'2d_contours'``, ``'3d_surface'``, ``'3d_mesh'``).
    1D surfaces (``ny == 1``): ``<prefix>_1d.png``.

    ``critical``: ``(coords (K, 2), types (K,))`` with TTK codes, or what
    :func:`pipeline.vtkio.read_points` returns for a ``critical_points_<kind>.vtp``.
    ``cap_factor``/``cap``/``floor``/``n_levels``: see :func:`pipeline.render.field.display_field`.
    """
    out_dir = Path(out_dir)
    common = dict(cap_factor=cap_factor, cap=cap, floor=floor, title=title)
    if surface.grid.ndim == 1:
        return [plot_line_1d(surface, RunDir.picture(out_dir, prefix, "1d"), **common)]
    views = tuple(views) if views is not None else QUICKLOOK_VIEWS
    bad = [v for v in views if v not in QUICKLOOK_VIEWS]
    if bad:
        raise ValueError(f"views must be among {', '.join(map(repr, QUICKLOOK_VIEWS))}; got {bad}")
    out: list[Path] = []
    extra = dict(trajectory=trajectory, critical=critical, n_levels=n_levels, **common)
    if "2d_contours" in views:
        out.append(plot_contours_2d(surface, RunDir.picture(out_dir, prefix, "2d_contours"), **extra))
    if "3d_surface" in views:
        out.append(render_surface_3d(surface, RunDir.picture(out_dir, prefix, "3d_surface"), view="surface", **extra))
    if "3d_mesh" in views:
        out.append(render_surface_3d(surface, RunDir.picture(out_dir, prefix, "3d_mesh"), view="mesh", **extra))
    for p in out:
        logger.info("wrote %s", p)
    return out


def render_run_quicklook(run_dir: str | os.PathLike, plane: str, views: Sequence[str] | None = None,
                         out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Quick looks of one plane of a run directory: its surface with its trajectory and critical
    points when present, written as ``<out_dir>/<plane>_<view>.png`` (default
    ``RUN/renders/quicklook``, beside the ParaView pictures in ``RUN/renders``). ``views`` may
    hold ``eig_ratio`` (:data:`~pipeline.display.HESSIAN_VIEWS`) for a surface with curvature
    maps (:func:`pipeline.render.curvature.plot_eig_ratio`)."""
    from ..vtkio import read_points, read_surface, read_trajectory

    run = RunDir(run_dir)
    surface = read_surface(run.surface(plane))
    traj_file, crit_file = run.trajectory(plane), run.critical_points(plane)
    trajectory = read_trajectory(traj_file) if traj_file.is_file() else None
    critical = read_points(crit_file) if crit_file.is_file() else None
    folder = out_dir if out_dir else run.quicklooks
    wanted = list(views) if views is not None else list(QUICKLOOK_VIEWS)
    out: list[Path] = []
    landscape = [v for v in wanted if v not in HESSIAN_VIEWS]
    if landscape or views is None:
        out += render_quicklook(surface, trajectory, critical, out_dir=folder, prefix=plane, views=landscape)
    if "eig_ratio" in wanted:
        from .curvature import plot_eig_ratio

        out.append(plot_eig_ratio(surface, RunDir.picture(folder, plane, "eig_ratio"), trajectory=trajectory))
    return out
