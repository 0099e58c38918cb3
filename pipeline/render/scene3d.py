"""pyvista pictures, rendered off screen: the warped surface with contour lines, and its mesh.

Needs no X server: without ``DISPLAY`` VTK falls back to EGL/OSMesa.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .. import geometry
from ..atomic import write_png
from ..datamodel import Surface, Trajectory
from ..display import CAMERA_3D, COLORMAP, CRITICAL_STYLE, DIVERGENT_COLOR, END_COLOR, PATH_COLOR, START_COLOR, axis_labels
from ..vtkio import to_vtk_order
from .field import _cap_note, _title, display_field, parse_critical

__all__ = ["render_surface_3d", "VIEWS_3D"]

VIEWS_3D = ("surface", "mesh")


@contextmanager
def _quiet_vtk_without_display():
    """Without an X display VTK warns once per window before falling back to EGL/OSMesa; hide that WARN only."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        yield
        return
    from vtkmodules.vtkCommonCore import vtkLogger

    old = vtkLogger.GetCurrentVerbosityCutoff()
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_ERROR)
    try:
        yield
    finally:
        vtkLogger.SetStderrVerbosity(old)


def render_surface_3d(surface: Surface, path: str | os.PathLike, *, view: str = "surface",
                      trajectory: Trajectory | None = None, critical: Any = None, array: str = "loss",
                      cap_factor: float = 5.0, cap: float | None = None, floor: float | None = None,
                      n_levels: int = 20,
                      title: str | None = None, window_size: tuple[int, int] = (1200, 900),
                      height_ratio: float = 0.6) -> Path:
    """Off-screen pyvista picture of the warped surface ``z = array`` (capped).

    Parameters
    ----------
    view : {'surface', 'mesh'}
        ``surface``: shaded surface coloured by value with black contour lines;
        ``mesh``: coloured wireframe of the grid.
    height_ratio : float, default 0.6
        Displayed height of the value range as a fraction of the larger side of the plane
        (the axes still show true values: the scene is scaled, not the data).

    Divergent and invalid points sit at the cap height in grey. The path (if given) is drawn
    at ``surface_loss`` in :data:`PATH_COLOR` without lighting (its colour stays exact).
    """
    if view not in VIEWS_3D:
        raise ValueError(f"view must be one of {', '.join(map(repr, VIEWS_3D))}; got {view!r}")
    if surface.grid.ndim != 2:
        raise ValueError(f"render_surface_3d needs a 2D surface (ny > 1); got grid shape {surface.grid.shape}")
    import pyvista as pv

    pv.OFF_SCREEN = True  # set here, not at import: importing this module changes nothing
    field = display_field(surface, array, cap_factor=cap_factor, cap=cap, floor=floor, n_levels=n_levels)
    crit = parse_critical(critical)
    xs, ys = surface.xs, surface.ys
    nx, ny = surface.grid.shape
    A, B = np.meshgrid(xs, ys, indexing="ij")  # (nx, ny)
    sides = (xs[-1] - xs[0], ys[-1] - ys[0])
    extent = geometry.plane_size(sides, "larger")
    zscale = geometry.relief_scale([field.vmin, field.vmax], sides, height_ratio, size="larger")

    def height(v):  # value -> scene z; the axes are labelled with values, not z
        return (np.asarray(v, dtype=np.float64) - field.vmin) * zscale

    mesh = pv.StructuredGrid()
    mesh.points = to_vtk_order(np.stack([A, B, height(field.capped())], axis=-1))
    mesh.dimensions = (nx, ny, 1)
    mesh.point_data["shown"] = to_vtk_order(field.values)  # NaN where divergent -> grey
    mesh.point_data["capped"] = to_vtk_order(field.capped())
    lift = 0.01 * height_ratio * extent  # keeps the path and markers just above the surface

    with _quiet_vtk_without_display():
        pl = pv.Plotter(off_screen=True, window_size=list(window_size))
        try:
            pl.set_background("white")
            bar = dict(title=field.name + (" (log)" if field.log else ""), n_labels=5, fmt="%.3g", color="black",
                       vertical=True, position_x=0.89, position_y=0.18, height=0.6, width=0.045,
                       title_font_size=18, label_font_size=15)
            common = dict(scalars="shown", cmap=COLORMAP, clim=(field.vmin, field.vmax), log_scale=field.log,
                          nan_color=DIVERGENT_COLOR, scalar_bar_args=bar)
            # cells touching a divergent point form a translucent grey plateau at the cap height, so
            # they neither take a colour nor hide the valid surface behind them
            d = field.divergent
            cell_div = to_vtk_order(d[:-1, :-1] | d[1:, :-1] | d[:-1, 1:] | d[1:, 1:])  # (nx-1)(ny-1) cells
            good = mesh.extract_cells(np.flatnonzero(~cell_div)) if (~cell_div).any() else None
            bad = mesh.extract_cells(np.flatnonzero(cell_div)) if cell_div.any() else None
            if good is not None:
                if view == "surface":
                    pl.add_mesh(_surface_of(good), smooth_shading=True, specular=0.15, **common)
                else:
                    pl.add_mesh(good, style="wireframe", line_width=1.3, lighting=False, **common)
            if bad is not None:
                pl.add_mesh(bad, color=DIVERGENT_COLOR, opacity=0.35 if view == "surface" else 0.6,
                            style="surface" if view == "surface" else "wireframe", line_width=1.0,
                            lighting=view == "surface")
            if view == "surface":
                lines = mesh.contour(isosurfaces=list(field.levels[:-1]), scalars="capped")
                if lines.n_points:
                    lines.points[:, 2] += 0.2 * lift
                    pl.add_mesh(lines, color="black", line_width=1.2, opacity=0.7)
            if crit is not None and len(crit[0]):
                at = geometry.fill_heights(np.full(len(crit[0]), np.nan), crit[0], (xs, ys, field.capped()),
                                         top=field.vmax, method="bilinear")
                z = height(at) + 1.5 * lift
                for code in sorted(set(crit[1].tolist())):
                    _, color, _ = CRITICAL_STYLE[code]
                    sel = crit[1] == code
                    pl.add_points(np.column_stack([crit[0][sel], z[sel]]), color=color, point_size=16,
                                  render_points_as_spheres=True)
            if trajectory is not None and len(trajectory.coords):
                c = trajectory.coords
                v = geometry.fill_heights(trajectory.surface_loss, c, (xs, ys, field.capped()), top=field.vmax,
                                        method="bilinear")
                v = np.clip(v, field.vmin, field.vmax)
                pts = np.column_stack([c, height(v) + lift])
                if len(pts) > 1:
                    pl.add_mesh(pv.lines_from_points(pts), color=PATH_COLOR, line_width=6,
                                render_lines_as_tubes=True, lighting=False)
                pl.add_points(pts, color=PATH_COLOR, point_size=11, render_points_as_spheres=True, lighting=False)
                pl.add_points(pts[:1], color=START_COLOR, point_size=19, render_points_as_spheres=True)
                pl.add_points(pts[-1:], color=END_COLOR, point_size=19, render_points_as_spheres=True)
                e0, e1, unit = int(trajectory.epoch[0]), int(trajectory.epoch[-1]), trajectory.unit
                if np.linalg.norm(c[-1] - c[0]) > 0.04 * extent:
                    ends, labels = pts[[0, -1]], [f"start ({unit} {e0})", f"end ({unit} {e1})"]
                else:  # a path that stays this close to the centre (random planes): one label, no overlap
                    ends, labels = pts[-1:], [f"path: {unit}s {e0}-{e1}" if len(pts) > 1 else f"{unit} {e1}"]
                pl.add_point_labels(ends, labels, font_size=14, text_color="black", fill_shape=True,
                                    shape_color="white", shape_opacity=0.75, show_points=False,
                                    always_visible=True)
            xlabel, ylabel = axis_labels(surface.meta, unicode=False)
            pl.show_bounds(bounds=(xs[0], xs[-1], ys[0], ys[-1], 0.0, float(height(field.vmax))),
                           axes_ranges=(xs[0], xs[-1], ys[0], ys[-1], field.vmin, field.vmax),
                           xtitle=xlabel, ytitle=ylabel, ztitle=field.name, color="black", font_size=12,
                           location="outer", fmt="%.3g", n_xlabels=5, n_ylabels=5, n_zlabels=4)
            pl.add_text(_title(surface, field, title) + ("" if view == "surface" else " (mesh)"), font_size=12,
                        color="black", position="upper_left")
            note = _cap_note(field)
            if note:
                pl.add_text(note, font_size=9, color="black", position="lower_left")
            _set_camera(pl, mesh.bounds)
            path = write_png(path, lambda tmp: pl.screenshot(str(tmp)))
        finally:
            pl.close()
    return path


def _surface_of(cells):
    """PolyData of an unstructured grid of quads (vtkDataSetSurfaceFilter; same across pyvista versions)."""
    import pyvista as pv
    from vtkmodules.vtkFiltersGeometry import vtkDataSetSurfaceFilter

    f = vtkDataSetSurfaceFilter()
    f.SetInputData(cells)
    f.Update()
    return pv.wrap(f.GetOutput())


def _set_camera(pl, bounds, azimuth: float = CAMERA_3D[0], elevation: float = CAMERA_3D[1]) -> None:
    """Look at the scene's centre from ``azimuth`` degrees (from -y, towards +x) and ``elevation`` above it."""
    x0, x1, y0, y1, z0, z1 = bounds
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2])
    az, el = math.radians(azimuth), math.radians(elevation)
    direction = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])
    radius = np.linalg.norm([x1 - x0, y1 - y0, z1 - z0])
    pl.camera_position = [tuple(centre + 2.2 * radius * direction), tuple(centre), (0.0, 0.0, 1.0)]
    pl.reset_camera()
    pl.camera.zoom(1.05)
