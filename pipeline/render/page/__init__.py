"""A run as one self-contained interactive HTML page (``lossvista export RUN --format html``,
``RUN/index.html`` of ``lossvista run``), and its display in notebooks.

- :mod:`.scene`: what the page shows of a plane, as numbers (the display rules of
  :mod:`pipeline.display` applied in Python);
- :mod:`.summary`: the run's and each plane's facts and tables as HTML;
- :mod:`.build`: the document: scene JSON, summary, plotly.js and ``assets/page.js``,
  ``assets/page.css`` inline, written atomically;
- :mod:`.notebook`: Jupyter's bundle (the page in an iframe, a PNG without JavaScript).

Light to import: plotly and matplotlib are imported when a page is built.
"""
from __future__ import annotations

import os
from pathlib import Path

from .build import CSP, VIEWS, page_html, write_page
from .notebook import notebook_bundle, static_png
from .scene import PlaneData, plane_scene

__all__ = ["PlaneData", "plane_scene", "page_html", "write_page", "export_page", "notebook_bundle", "static_png",
           "VIEWS", "CSP"]


def export_page(source: str | os.PathLike, out: str | os.PathLike | None = None, *, array: str = "loss") -> Path:
    """Write the page of ``source``: a run directory (every plane, default ``RUN/index.html``) or
    one ``surface_<kind>.vts`` (that plane alone, default beside it with the suffix ``.html``).

    ``array`` colours the surface first. Bad input (no such source, a run without surfaces,
    ``out`` a directory) is a one-line :class:`~pipeline.errors.LossvistaError` before anything
    is written.
    """
    from ...errors import LossvistaError, ParameterError, param
    from ...rundir import surface_kind
    from ...run import Run
    from ...vtkio import read_surface

    src = Path(source)
    if out is not None and Path(out).is_dir():
        raise ParameterError(f"{param('out')} must be a file, not a directory; got {str(out)!r}")
    if src.is_dir():
        return Run(src).write_page(out, array=array)
    if not src.exists():
        raise LossvistaError(f"no run directory or surface file {str(src)!r}")
    surface = read_surface(src)
    target = Path(out) if out else src.with_suffix(".html")
    return write_page([PlaneData(surface_kind(src, surface.meta), surface)], target, array=array)
