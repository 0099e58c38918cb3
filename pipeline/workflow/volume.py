"""The volume stage: three directions, the path among them, the loss on a lattice.

A volume is a surface with a third direction: its directions file holds ``x``, ``y`` and ``z``
(:class:`~pipeline.directions.Directions`), its grid is a :class:`~pipeline.datamodel.Lattice`,
and the surface stage (:mod:`pipeline.surface`: chunks, resume, shards, torchrun) computes it
into ``RUN/volume_<kind>.vti``. This module chooses the directions:

=========  ===========================================================================
random     ``directions/random_3d.pt``: the seeded Gaussian directions of the run's
           random plane (``directions/random.pt``: same seed, norm, ignore rule and
           centre) and a third one drawn after them, so the volume's slice at gamma 0
           is that plane, bit for bit
pca        ``directions/pca_3d.pt``: PC1 to PC3 of the trajectory, each with its
           explained variance (PC1 and PC2 are the plane's)
stacked    ``directions/stacked_3d.pt``: the first direction of each of three files
=========  ===========================================================================

and writes the descent path in the volume (``trajectory_volume_<kind>.vtp``).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import LossvistaError, ParameterError, param
from ..rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["VOLUME_KINDS", "volume_directions"]

VOLUME_KINDS = ("random", "pca")  # made by lossvista; any three files give a "stacked" volume
_PLANE_KEYS = ("norm", "ignore", "dir_type", "seed", "centre_epoch")  # what a random volume takes from its plane


def volume_directions(run: RunDir, kind: str | None = None, *, files: Sequence[str | os.PathLike] | None = None,
                      seed: int | None = None, norm: str | None = None, ignore: str | None = None,
                      epoch: int | None = None, remake: bool = False) -> tuple[Any, Path]:
    """The three directions of a volume of ``run``: ``(directions, path)``.

    Parameters
    ----------
    run : RunDir
    kind : {'random', 'pca'}, optional
        Made by :func:`pipeline.workflow.make_directions` with ``ndim=3`` into
        ``RUN/directions/<kind>_3d.pt``, or reused when that file exists and nothing below asks
        for other ones (``remake`` makes them again). A random volume takes ``seed``, ``norm``,
        ``ignore`` and the centre from the run's random plane (``directions/random.pt``) when
        they are not given, so that its central slice is that plane.
    files : three paths, optional
        Instead of ``kind``: the first direction of each (:func:`~pipeline.directions.stack_directions`),
        saved as ``RUN/directions/stacked_3d.pt``.
    seed, norm, ignore, epoch : optional
        As for ``lossvista directions``.
    """
    from ..directions import Directions, stack_directions
    from .stages import make_directions

    if (kind is None) == (files is None):
        raise ParameterError(f"give either {param('kind')} (random or pca) or three {param('directions')} files")
    if files is not None:
        d = stack_directions(list(files))
        run.check_directions(d)
        return d, d.save(run.directions("stacked", 3))
    if kind not in VOLUME_KINDS:
        raise ParameterError(f"{param('kind')} must be one of {', '.join(map(repr, VOLUME_KINDS))}; got {kind!r}")
    asked = {"seed": seed, "norm": norm, "ignore": ignore, "centre_epoch": epoch}
    path = run.directions(kind, 3)
    if path.is_file() and not remake:
        d = Directions.load(path)
        differs = {k: v for k, v in asked.items() if v is not None and d.meta.get(k) != v}
        if d.ndim == 3 and not differs:
            return d, path
        log.info("making %s again (%s)", path, "; ".join(f"{k} {d.meta.get(k)!r} -> {v!r}" for k, v in differs.items())
                 or "it holds fewer than three directions")
    if kind == "random":
        plane = run.directions("random")
        if plane.is_file():  # the plane's own settings, unless given
            made = Directions.load(plane).meta
            asked = {k: made.get(k) if asked.get(k) is None else asked.get(k) for k in _PLANE_KEYS}
        d, path = make_directions(run, "random", seed=asked.get("seed") or 0, norm=asked.get("norm"),
                                  ignore=asked.get("ignore"), dir_type=asked.get("dir_type"),
                                  epoch=asked.get("centre_epoch"), ndim=3)
    else:
        d, path = make_directions(run, "pca", ignore=ignore, epoch=epoch, ndim=3)
    return d, path


def check_made(path: str | os.PathLike) -> None:
    """Refuse to start ranks of a distributed volume without its directions file (each rank would
    make its own, and PCA's last bits may differ between machines)."""
    if not Path(path).is_file():
        raise LossvistaError(f"{path} does not exist: make the volume's directions before starting the ranks "
                             f"(lossvista directions --ndim 3, or lossvista volume in one process)")


def make_volume(run: RunDir, kind: str, *, points: int = 21, split: str = "train", eval_config: Any = None,
                persistence: float = 0.01) -> dict[str, Any]:
    """The volume of ``kind`` (random or pca) with its path and analysis, as ``lossvista run --volume`` makes it.

    Directions (:func:`volume_directions`), the path in the volume, the volume on its default
    lattice of ``points`` per axis (resumable), then :func:`pipeline.analyze.analyze_file` with a
    relative ``persistence`` threshold. Returns ``{"files", "outcome", "topology"}``.
    """
    from ..analyze import analyze_file
    from ..surface import SurfaceRequest, default_grid
    from .stages import compute_own_surface, make_trajectory

    directions, dfile = volume_directions(run, kind)
    config = eval_config
    _, tfile = make_trajectory(run, dfile, split="train" if split == "both" else split,
                               max_samples=getattr(config, "max_samples", None))
    grid = default_grid(run, directions, n=points)
    outcome = compute_own_surface(SurfaceRequest(run=run.root, directions=dfile, grid=grid, split=split,
                                                 eval=config))
    topo, afiles = analyze_file(outcome.out, persistence=persistence, relative=True)
    return {"files": [dfile, tfile, outcome.out, afiles.critical_points, afiles.topology], "outcome": outcome,
            "topology": topo}
