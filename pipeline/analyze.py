"""The analysis stage: topology of a surface (or a volume) and of its file (critical points, summary, basins).

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

A volume ``volume_<kind>.vti`` is analysed the same way on its tetrahedral subdivision
(minima, 1-saddles, 2-saddles, maxima: :mod:`pipeline.topology`); its files are named with the
kind ``volume_<kind>`` (``topology_volume_<kind>.json``, ``critical_points_volume_<kind>.vtp``
with points ``(alpha, beta, gamma)``) and its ``basin`` array goes into the ``.vti``.

A file of another name (``fine.vts``) takes its plane's kind from its metadata, unless the
surface of that kind (``surface_random.vts``) is beside it: then its own stem
(``topology_fine.json``), so the run's own analysis is never overwritten.

For an array other than ``loss`` the names get a suffix (``topology_<kind>_<array>.json``,
``basin_<array>``; :class:`~pipeline.rundir.RunDir`), so analysing ``test_loss`` does not
overwrite the analysis of ``loss``. Values that are not usable (:meth:`Surface.usable
<pipeline.datamodel.Surface.usable>`: non-finite, or only a lower bound after an early exit)
are treated as non-finite: above every finite value, no basin.
"""
from __future__ import annotations

import os
import re
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
    """``pipeline.topology.analyze`` of one array of a surface, on its (alpha, beta) grid (of a
    :class:`~pipeline.datamodel.Volume`, on its (alpha, beta, gamma) lattice).

    Raises ``ValueError`` for a 1D surface, an unknown array or one without a usable value.
    """
    if min(surface.grid.shape) < 2:
        what = "volume (every axis >= 2 points)" if surface.grid.ndim == 3 else "2D surface (nx >= 2 and ny >= 2)"
        raise ValueError(f"topology needs a {what}; got grid shape {surface.grid.shape}")
    values = surface.values(array, masked=True)
    if not np.isfinite(values).any():
        raise ValueError(f"array {array!r} has no finite (valid) value; nothing to analyze")
    axes = dict(zip(("xs", "ys", "zs"), surface.grid.axes))
    topo = analyze(values, persistence=persistence, relative=relative, delta=delta, **axes)
    topo.meta.update({"array": array, **{k: surface.meta[k] for k in SUMMARY_KEYS if k in surface.meta}})
    return topo


@dataclass(frozen=True)
class AnalysisFiles:
    surface: Path
    critical_points: Path
    topology: Path


def analyze_file(path: str | os.PathLike, *, array: str = "loss", persistence: float = 0.0,
                 relative: bool = False, delta: float | None = None) -> tuple[Topology, AnalysisFiles]:
    """Analyse ``path`` (a ``.vts`` surface or a ``.vti`` volume) and write the files listed in the
    module docstring.

    Everything is computed and checked before the first file is written; each file is
    written atomically.
    """
    from . import vtkio
    from .datamodel import Volume

    path = Path(path)
    if path.suffix.lower() not in (".vts", ".vti"):
        raise ParameterError(f"{param('file')} must be a .vts surface or a .vti volume (e.g. surface_random.vts, "
                             f"volume_random.vti); got {str(path)!r}")
    surface = vtkio.read_grid(path)
    volume = isinstance(surface, Volume)
    kind = surface_kind(path, surface.meta)
    beside = RunDir(path.parent)  # the analysis files sit beside the surface, named as in a run
    owner = beside.root / (f"{kind}.vti" if volume else f"surface_{kind}.vts")
    if owner.exists() and not owner.samefile(path):  # fine.vts of a random plane beside surface_random.vts:
        kind = re.sub(r"[^\w.-]", "_", path.stem)  # its analysis is fine's, not the run's random plane's
    topo = analyze_surface(surface, array=array, persistence=persistence, relative=relative, delta=delta)
    topo.meta.update({"kind": kind, "source": path.name})
    files = AnalysisFiles(path, beside.critical_points(kind, array), beside.topology(kind, array))
    arrays = topo.critical_point_arrays()
    coords = arrays.pop("points")[:, :topo.ndim]
    indent = 1 if len(topo.surviving_pairs()) <= JSON_INDENT_MAX_PAIRS else None
    text = topo.to_json(indent=indent)
    surface.extra["basin" if array == "loss" else f"basin_{array}"] = topo.basins

    vtkio.write_points(files.critical_points, coords, arrays,
                       meta={"content": "critical_points", "kind": kind, "array": array, "source": path.name,
                             "threshold": topo.threshold, "persistence": topo.persistence, "relative": topo.relative,
                             "ndim": topo.ndim})
    write_text(files.topology, text)
    if volume:
        vtkio.write_volume(path, surface)
    else:
        vtkio.write_surface(path, surface, vti=path.with_suffix(".vti").is_file())
    return topo, files
