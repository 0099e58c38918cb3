"""Pictures of a run: quick looks (matplotlib/pyvista) and the ParaView (pvbatch) driver.

Light on purpose: importing ``pipeline.render`` loads neither matplotlib nor pyvista nor
ParaView. Import the submodule you need:

- :mod:`pipeline.render.quicklook`: PNGs from a :class:`~pipeline.datamodel.Surface` with
  matplotlib (2D contour lines, 1D line plot) and off-screen pyvista (3D surface, 3D mesh);
  entry point :func:`pipeline.render.quicklook.render_quicklook`.
- ``pipeline.render.pvbatch``: the ParaView state-file driver.
- :mod:`pipeline.render.page`: the run as one self-contained interactive HTML page (Plotly),
  and its display in notebooks.
"""
from __future__ import annotations

__all__ = ["render_quicklook"]


def render_quicklook(*args, **kwargs):
    """Lazy alias of :func:`pipeline.render.quicklook.render_quicklook` (imports matplotlib/pyvista on call)."""
    from .quicklook import render_quicklook as _render

    return _render(*args, **kwargs)
