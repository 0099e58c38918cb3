"""A run directory, read: its planes with their paths, critical points and topology, and run.json.

``open_run("runs/demo")`` is what a notebook shows: the run's interactive page inline
(:mod:`pipeline.render.page`), or a static picture where no JavaScript runs. File names come
from :class:`~pipeline.rundir.RunDir`; files are read through :mod:`pipeline.vtkio` when asked
for, so opening a run is cheap.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .display import PLANES
from .errors import LossvistaError
from .rundir import RunDir, read_json

__all__ = ["Run", "open_run"]


class Run:
    """The files of a run directory, read on demand.

    Parameters
    ----------
    root : path of the run directory (``lossvista run --out``)

    Raises :class:`~pipeline.errors.LossvistaError` when ``root`` is not a directory or holds no
    ``surface_<plane>.vts``.
    """

    def __init__(self, root: str | os.PathLike):
        self.dir = RunDir(root)
        if not self.dir.root.is_dir():
            raise LossvistaError(f"run directory {str(self.dir.root)!r} does not exist")
        if not self.dir.surfaces():
            raise LossvistaError(f"{str(self.dir.root)!r} has no surface_<plane>.vts; compute one first "
                                 f"(lossvista run, or lossvista surface)")

    @property
    def root(self) -> Path:
        return self.dir.root

    @property
    def planes(self) -> list[str]:
        """Kinds of the surfaces present: the default planes first (random, pca), then the others."""
        kinds = list(self.dir.surfaces())
        return [k for k in PLANES if k in kinds] + [k for k in kinds if k not in PLANES]

    @property
    def info(self) -> dict[str, Any]:
        """``run.json`` (``{}`` when the folder holds surfaces only)."""
        return read_json(self.dir.run_json) if self.dir.run_json.is_file() else {}

    def surface(self, kind: str):
        """The :class:`~pipeline.datamodel.Surface` of the plane ``kind``."""
        from .vtkio import read_surface

        if kind not in self.planes:
            raise LossvistaError(f"plane must be one of {', '.join(map(repr, self.planes))} in "
                                 f"{str(self.root)!r}; got {kind!r}")
        return read_surface(self.dir.surface(kind))

    def trajectory(self, kind: str):
        """The descent path projected onto the plane ``kind``, or None when it has none."""
        from .vtkio import read_trajectory

        path = self.dir.trajectory(kind)
        return read_trajectory(path) if path.is_file() else None

    def critical_points(self, kind: str):
        """:func:`pipeline.vtkio.read_points` of ``critical_points_<kind>.vtp``, or None."""
        from .vtkio import read_points

        path = self.dir.critical_points(kind)
        return read_points(path) if path.is_file() else None

    def topology(self, kind: str) -> dict[str, Any] | None:
        """``topology_<kind>.json`` (critical points, counts, minima, ...), or None."""
        path = self.dir.topology(kind)
        return read_json(path) if path.is_file() else None

    def plane(self, kind: str):
        """Everything the page draws of one plane (:class:`pipeline.render.page.PlaneData`)."""
        from .render.page import PlaneData

        return PlaneData(kind, self.surface(kind), self.trajectory(kind), self.critical_points(kind),
                         self.topology(kind))

    def page_html(self, **kwargs: Any) -> str:
        """The run's self-contained page (:func:`pipeline.render.page.page_html`'s options)."""
        from .render.page import page_html

        return page_html([self.plane(k) for k in self.planes], info=self.info, **kwargs)

    def write_page(self, out: str | os.PathLike | None = None, **kwargs: Any) -> Path:
        """Write the page to ``out`` (default ``RUN/index.html``) atomically and return its path."""
        from .render.page import write_page

        return write_page([self.plane(k) for k in self.planes], out or self.dir.index_html, info=self.info,
                          **kwargs)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        """Jupyter: the page inline, and a PNG of the first plane where no JavaScript runs."""
        from .render.page import notebook_bundle

        return notebook_bundle([self.plane(k) for k in self.planes], info=self.info)

    def __repr__(self) -> str:
        return f"Run({str(self.root)!r}, planes={self.planes})"


def open_run(root: str | os.PathLike) -> Run:
    """The run directory ``root``, ready to show (in a notebook: its interactive page)."""
    return Run(root)
