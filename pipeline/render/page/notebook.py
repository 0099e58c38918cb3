"""Jupyter display of a run or a surface: the page inline, a static PNG where no JavaScript runs.

The bundle holds ``text/html`` (the page in a sandboxed ``<iframe srcdoc>``, so its script and
style stay apart from the notebook's, followed by the PNG, which the iframe removes once it has
loaded) and ``image/png`` (the 2D contour lines of the first plane, drawn by the quick look
:func:`pipeline.render.plots2d.plot_contours_2d`) for front ends and converters that show no
HTML.
"""
from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .build import page_html
from .scene import PlaneData

__all__ = ["notebook_bundle", "static_png"]

HEIGHT = 1100  # pixels of the inline page: the plot and the start of the summary


def static_png(plane: PlaneData) -> bytes:
    """PNG bytes of the plane's 2D contour lines, path and critical points (a 1D slice: its line plot)."""
    from ..plots2d import plot_contours_2d, plot_line_1d

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"{plane.kind}.png"
        if plane.surface.grid.ndim == 1:
            return plot_line_1d(plane.surface, out, dpi=100).read_bytes()
        return plot_contours_2d(plane.surface, out, trajectory=plane.trajectory, critical=plane.critical,
                                dpi=100).read_bytes()


def notebook_bundle(planes: Sequence[PlaneData], *, info: Mapping[str, Any] | None = None) -> dict[str, str]:
    """``{"text/html": ..., "image/png": base64}`` for ``_repr_mimebundle_``."""
    png = base64.b64encode(static_png(planes[0])).decode("ascii")
    if any(p.surface.grid.ndim != 2 for p in planes):  # the page draws planes; a 1D slice is a picture
        return {"image/png": png}
    page = page_html(planes, info=info)
    alt = html.escape(f"{planes[0].kind} plane: 2D contour lines (static picture)")
    doc = (f'<div class="lossvista-output">'
           f'<iframe srcdoc="{html.escape(page, quote=True)}" title="lossvista page" '
           f'sandbox="allow-scripts allow-downloads" '
           f'style="width:100%;height:{HEIGHT}px;border:1px solid #ddd" '
           f'onload="var n = this.nextElementSibling; if (n) n.remove();"></iframe>'
           f'<img src="data:image/png;base64,{png}" alt="{alt}" style="max-width:100%"></div>')
    return {"text/html": doc, "image/png": png}
