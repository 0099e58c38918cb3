"""The analysis stage: topology of a surface and of its file (critical points, summary, basins).

Glue between the data model (:mod:`pipeline.datamodel`), :mod:`pipeline.vtkio` and
:mod:`pipeline.topology` (no torch), used by ``lossvista analyze``, ``lossvista run`` and the
comparison of runs (:mod:`pipeline.compare`).

Files written by :func:`analyze_file` beside ``surface_<kind>.vts`` (each atomically):

* ``critical_points_<kind>.vtp``: the surviving critical points (schema: docs/architecture.md, plus
  ``multiplicity``);
* ``topology_<kind>.json``: ``Topology.to_dict()`` plus ``meta`` (source file, array, kind,
  model, dataset);
* the surface itself, rewritten with the int32 point array ``basin`` (-1 where none), and
  its ``.vti`` twin when one exists.

For an array other than ``loss`` the names get a suffix (``topology_<kind>_<array>.json``,
``basin_<array>``; :class:`~pipeline.rundir.RunDir`), so analysing ``test_loss`` does not
overwrite the analysis of ``loss``. Values that are not usable (:meth:`Surface.usable
<pipeline.datamodel.Surface.usable>`: non-finite, or only a lower bound after an early exit)
are treated as non-finite: above every finite value, no basin.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import write_text
from .datamodel import Surface
from .errors import ParameterError, param
from .rundir import RunDir, surface_kind
from .topology import Topology, analyze

__all__ = ["AnalysisFiles", "analyze_surface", "analyze_file", "SUMMARY_KEYS"]

SUMMARY_KEYS = ("model", "dataset", "split", "direction_kind", "centre_loss", "epoch", "run")  # copied into results
JSON_INDENT_MAX_PAIRS = 5000  # above this many pairs the JSON is written compact


def analyze_surface(surface: Surface, *, array: str = "loss", persistence: float = 0.0, relative: bool = False,
                    delta: float | None = None) -> Topology:
    """``pipeline.topology.analyze`` of one array of a surface, on its (alpha, beta) grid.

    Raises ``ValueError`` for a 1D surface, an unknown array or one without a usable value.
    """
    if surface.grid.nx < 2 or surface.grid.ny < 2:
        raise ValueError(f"topology needs a 2D surface (nx >= 2 and ny >= 2); got grid shape {surface.grid.shape}")
    values = surface.values(array, masked=True)
    if not np.isfinite(values).any():
        raise ValueError(f"array {array!r} has no finite (valid) value; nothing to analyze")
    topo = analyze(values, persistence=persistence, relative=relative, xs=surface.grid.xs, ys=surface.grid.ys,
                   delta=delta)
    topo.meta.update({"array": array, **{k: surface.meta[k] for k in SUMMARY_KEYS if k in surface.meta}})
    return topo


@dataclass(frozen=True)
class AnalysisFiles:
    surface: Path
    critical_points: Path
    topology: Path


def analyze_file(path: str | os.PathLike, *, array: str = "loss", persistence: float = 0.0,
                 relative: bool = False, delta: float | None = None) -> tuple[Topology, AnalysisFiles]:
    """Analyse ``path`` (a ``.vts`` surface) and write the files listed in the module docstring.

    Everything is computed and checked before the first file is written; each file is
    written atomically.
    """
    from . import vtkio

    path = Path(path)
    if path.suffix.lower() != ".vts":
        raise ParameterError(f"{param('file')} must be a .vts surface (e.g. surface_random.vts); got {str(path)!r}")
    surface = vtkio.read_surface(path)
    kind = surface_kind(path, surface.meta)
    topo = analyze_surface(surface, array=array, persistence=persistence, relative=relative, delta=delta)
    topo.meta.update({"kind": kind, "source": path.name})
    beside = RunDir(path.parent)  # the analysis files sit beside the surface, named as in a run
    files = AnalysisFiles(path, beside.critical_points(kind, array), beside.topology(kind, array))
    arrays = topo.critical_point_arrays()
    coords = arrays.pop("points")[:, :2]
    indent = 1 if len(topo.surviving_pairs()) <= JSON_INDENT_MAX_PAIRS else None
    text = topo.to_json(indent=indent)
    surface.extra["basin" if array == "loss" else f"basin_{array}"] = topo.basins

    vtkio.write_points(files.critical_points, coords, arrays,
                       meta={"content": "critical_points", "kind": kind, "array": array, "source": path.name,
                             "threshold": topo.threshold, "persistence": topo.persistence, "relative": topo.relative})
    write_text(files.topology, text)
    vtkio.write_surface(path, surface, vti=path.with_suffix(".vti").is_file())
    return topo, files
