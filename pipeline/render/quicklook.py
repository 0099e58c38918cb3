"""Quick-look pictures of a loss surface: 2D contour lines, 3D warped surface, 3D mesh, 1D line.

matplotlib draws the 2D and 1D plots (:mod:`.plots2d`); pyvista renders the 3D views off screen,
no X server needed (:mod:`.scene3d`); :mod:`.field` decides what is shown (cap, levels, labels).
Both libraries are imported inside the functions, so importing this module is cheap. This
module is the entry point and re-exports the public names. The numbers behind the pictures
(cap, thresholds, levels, interpolation, relief scale) come from :mod:`pipeline.fields`, which
the ParaView plugin and ``losscape export`` use too.

Conventions shared by every picture
-----------------------------------
- **Cap for divergent losses.** Losses above ``cap`` are *divergent*: they do not stretch the
  colour map or the height axis. Default ``cap = cap_factor * max(centre loss, floor)`` with
  ``cap_factor = 5`` and ``floor`` the loss of a uniform guess, ``ln(num_classes)`` when the
  metadata says ``num_classes`` (else 1.0). The floor matters: a trained model's centre loss is
  often ~1e-4 (measured here on the digits CNN: 4.4e-4 at the centre, 8.7 at the plane's edge),
  and 5x that alone would grey out almost the whole plane. The colour range and the contour
  levels run from the smallest valid value to ``min(cap, largest valid value)``.
- **Invalid points are divergent, never zero.** Points with ``valid == 0`` (non-finite or only
  bounded loss) are drawn with divergent ones: hatched grey in 2D, a grey plateau at the cap
  height in 3D, grey bands / markers at the top in 1D.
- **Levels** are log-spaced (``geomspace``) when every valid value is positive, else linear.
- **Axis titles**: ``PC1 (xx.x%)``/``PC2 (yy.y%)`` when the metadata holds
  ``explained_variance`` (a PCA plane), else alpha/beta.
- **The descent path** is drawn in :data:`PATH_COLOR` (red, absent from the viridis map), with
  a marker per checkpoint, the start as a square and the end as a star. Its 3D height is the
  trajectory's ``surface_loss`` (interpolated from the surface where that is NaN).
- **Critical points** ``(coords (K, 2), types (K,))`` with TTK codes (0 minimum, 1 or 2
  saddle, 3 maximum, 4 degenerate) get distinct colours and shapes (:data:`CRITICAL_STYLE`).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..surface import Surface, Trajectory
from .field import (CRITICAL_STYLE, DIVERGENT_COLOR, PATH_COLOR, DisplayField, axis_labels, default_cap,
                    display_field)
from .plots2d import plot_contours_2d, plot_line_1d
from .scene3d import render_surface_3d

__all__ = ["render_run_quicklook", 
    "PATH_COLOR",
    "DIVERGENT_COLOR",
    "CRITICAL_STYLE",
    "DisplayField",
    "display_field",
    "default_cap",
    "axis_labels",
    "plot_contours_2d",
    "plot_line_1d",
    "render_surface_3d",
    "render_quicklook",
]

logger = logging.getLogger(__name__)


def render_quicklook(surface: Surface, trajectory: Trajectory | None = None, critical: Any = None, *,
                     out_dir: str | os.PathLike, prefix: str = "surface", cap_factor: float = 5.0,
                     cap: float | None = None, floor: float | None = None, n_levels: int = 20, views: Sequence[str] | None = None,
                     title: str | None = None) -> list[Path]:
    """Write the quick-look PNGs of a surface into ``out_dir`` and return their paths.

    2D surfaces: ``<prefix>_2d_contours.png``, ``<prefix>_3d_surface.png``, ``<prefix>_3d_mesh.png``
    (``views`` picks a subset of ``'2d_contours'``, ``'3d_surface'``, ``'3d_mesh'``).
    1D surfaces (``ny == 1``): ``<prefix>_1d.png``.

    ``critical``: ``(coords (K, 2), types (K,))`` with TTK codes, or what
    :func:`pipeline.vtkio.read_points` returns for a ``critical_points_<kind>.vtp``.
    ``cap_factor``/``cap``/``floor``/``n_levels``: see :func:`display_field`.
    """
    out_dir = Path(out_dir)
    common = dict(cap_factor=cap_factor, cap=cap, floor=floor, title=title)
    if surface.grid.ndim == 1:
        return [plot_line_1d(surface, out_dir / f"{prefix}_1d.png", **common)]
    all_views = ("2d_contours", "3d_surface", "3d_mesh")
    views = tuple(views) if views is not None else all_views
    bad = [v for v in views if v not in all_views]
    if bad:
        raise ValueError(f"views must be among {', '.join(map(repr, all_views))}; got {bad}")
    out: list[Path] = []
    extra = dict(trajectory=trajectory, critical=critical, n_levels=n_levels, **common)
    if "2d_contours" in views:
        out.append(plot_contours_2d(surface, out_dir / f"{prefix}_2d_contours.png", **extra))
    if "3d_surface" in views:
        out.append(render_surface_3d(surface, out_dir / f"{prefix}_3d_surface.png", view="surface", **extra))
    if "3d_mesh" in views:
        out.append(render_surface_3d(surface, out_dir / f"{prefix}_3d_mesh.png", view="mesh", **extra))
    for p in out:
        logger.info("wrote %s", p)
    return out


def render_run_quicklook(run_dir: str | os.PathLike, plane: str, views: Sequence[str] | None = None,
                         out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Quick looks of one plane of a run directory: ``surface_<plane>.vts`` with its trajectory and
    critical points when present, written as ``<out_dir>/<plane>_<view>.png`` (default ``RUN/renders/quicklook``, beside
    the ParaView pictures in ``RUN/renders``)."""
    from ..vtkio import read_points, read_surface, read_trajectory

    run_dir = Path(run_dir)
    surface = read_surface(run_dir / f"surface_{plane}.vts")
    traj_file = run_dir / f"trajectory_{plane}.vtp"
    crit_file = run_dir / f"critical_points_{plane}.vtp"
    trajectory = read_trajectory(traj_file) if traj_file.is_file() else None
    critical = read_points(crit_file) if crit_file.is_file() else None
    return render_quicklook(surface, trajectory, critical, out_dir=Path(out_dir) if out_dir else run_dir / "renders" / "quicklook",
                            prefix=plane, views=views)
