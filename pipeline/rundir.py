"""The run directory: the one place that knows its file names.

A run directory ``runs/NAME/`` holds::

    run.json                          resolved config, model/dataset facts, per-epoch metrics
    checkpoints/epoch_000.pt ...      model state_dicts; epoch 0 is the initial weights
    checkpoints/resume.pt             optimizer state of the newest epoch (to resume training)
    directions/<kind>.pt              random, pca, interp
    directions/<kind>_3d.pt           three directions: random, pca (PC1-PC3), stacked
    trajectory_<kind>.vtp             the descent path projected onto the plane
    surface_<kind>.vts                the loss surface (.vti twin on request; .vts.parts/ while running)
    critical_points_<kind>.vtp        topology of the surface's loss ...
    topology_<kind>.json              ... (``_<array>`` appended for another array, e.g. test_loss)
    volume_<kind>.vti                 the loss on a lattice of three directions (.vti.parts/ while running)
    trajectory_volume_<kind>.vtp      the descent path in the volume; the volume's topology is
    critical_points_volume_<kind>.vtp   ... named as a plane's, with the kind volume_<kind>
    topology_volume_<kind>.json
    evolve/                           planes around several checkpoints (``lossvista evolve``), their
                                      time series landscape.pvd, path_pca.pvd (the path's marker),
                                      animations <name>.gif with frames/ (quicklook/: matplotlib's)
    curvature.json                    Hessian eigenvalues and trace at the checkpoints, spectral density
    states/<plane>_<view>.pvsm        ParaView states of this run (data paths relative to the run)
    renders/<plane>_<view>.png        ParaView pictures
    renders/quicklook/<plane>_<view>.png   matplotlib / pyvista pictures
    renders/curvature_{sharpness,density}.png   the curvature along training, the spectral density
    index.html                        the run as one self-contained interactive page

Standard library only (no torch): the analysis, the pictures and ParaView's own Python use it.
What a run's files mean (its model, data and loss) is :class:`pipeline.run.Run`'s business.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LossvistaError

__all__ = ["RunDir", "read_json", "surface_kind", "volume_kind", "epoch_of", "ranges"]

_EPOCH_RE = re.compile(r"^epoch_(\d+)\.pt$")
_SURFACE_RE = re.compile(r"surface_([\w.-]+)\.vts")
_VOLUME_RE = re.compile(r"(volume_[\w.-]+)\.vti")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a missing or malformed file is a one-line :class:`LossvistaError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LossvistaError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LossvistaError(f"{path} is not valid JSON ({exc})") from None


def volume_kind(kind: str) -> str:
    """The kind under which a volume's files are named: ``random`` -> ``volume_random`` (unchanged
    when it is one already)."""
    return kind if kind.startswith("volume_") else f"volume_{kind}"


def epoch_of(path: str | os.PathLike) -> int | None:
    """The epoch of a checkpoint file named like ``epoch_007.pt`` (-> 7), or None."""
    m = re.search(r"epoch_(\d+)", Path(path).name)
    return int(m.group(1)) if m else None


def surface_kind(path: str | os.PathLike, meta: dict[str, Any] | None = None) -> str:
    """The plane's kind of a surface file: from ``surface_<kind>.vts``, else the metadata's
    ``direction_kind``, else the file's stem. A volume ``volume_<kind>.vti`` is ``volume_<kind>``
    (so its analysis files are ``topology_volume_<kind>.json``, ...)."""
    path = Path(path)
    m = _SURFACE_RE.fullmatch(path.name) or _VOLUME_RE.fullmatch(path.name)
    if m:
        return m.group(1)
    meta = meta or {}
    kind = meta.get("direction_kind") or (meta.get("directions") or {}).get("kind")
    if kind and meta.get("content") == "volume":
        kind = f"volume_{kind}"
    return re.sub(r"[^\w.-]", "_", str(kind)) if kind else path.stem


@dataclass(frozen=True)
class RunDir:
    """Paths inside a run directory (nothing is created until asked)."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        root = Path(root)
        try:
            str(root).encode("utf-8")  # metadata and VTK files record it as text
        except UnicodeEncodeError:
            raise LossvistaError(f"the run directory's name {str(root)!r} is not valid UTF-8; rename it") from None
        object.__setattr__(self, "root", root)

    # -- training ------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def resume_state(self) -> Path:
        return self.checkpoints_dir / "resume.pt"

    def checkpoint(self, epoch: int) -> Path:
        return self.checkpoints_dir / f"epoch_{epoch:03d}.pt"

    def epochs(self) -> list[int]:
        """Epoch numbers of the checkpoints present, ascending."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = (_EPOCH_RE.match(p.name) for p in self.checkpoints_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def checkpoints(self) -> list[Path]:
        return [self.checkpoint(e) for e in self.epochs()]

    def missing_epochs(self) -> list[int]:
        """Epochs between the first and the last checkpoint that have none (a gap in the path)."""
        epochs = self.epochs()
        return sorted(set(range(epochs[0], epochs[-1] + 1)) - set(epochs)) if epochs else []

    def epochs_text(self) -> str:
        """The epochs present, gaps shown: ``"0..9, 11..20"``."""
        return ranges(self.epochs(), sep="..")

    # -- planes --------------------------------------------------------------------------
    def directions(self, kind: str, ndim: int = 2) -> Path:
        """``directions/<kind>.pt``; three directions (a volume's): ``directions/<kind>_3d.pt``."""
        return self.root / "directions" / (f"{kind}_3d.pt" if ndim == 3 else f"{kind}.pt")

    def surface(self, kind: str) -> Path:
        return self.root / f"surface_{kind}.vts"

    def surfaces(self) -> dict[str, Path]:
        """``{kind: path}`` of the surface files present, sorted by kind."""
        if not self.root.is_dir():
            return {}
        found = sorted(p for p in self.root.glob("surface_*.vts") if _SURFACE_RE.fullmatch(p.name))
        return {surface_kind(p): p for p in found}

    def trajectory(self, kind: str) -> Path:
        """``trajectory_<kind>.vtp``; the path in a volume is ``trajectory(volume_kind(kind))``."""
        return self.root / f"trajectory_{kind}.vtp"

    def volume(self, kind: str) -> Path:
        """``volume_<kind>.vti``: the loss on a lattice of three directions."""
        return self.root / f"{volume_kind(kind)}.vti"

    def volumes(self) -> dict[str, Path]:
        """``{kind: path}`` of the volume files present (``random`` for ``volume_random.vti``)."""
        if not self.root.is_dir():
            return {}
        found = sorted(p for p in self.root.glob("volume_*.vti") if _VOLUME_RE.fullmatch(p.name))
        return {p.stem[len("volume_"):]: p for p in found}

    @property
    def evolve(self) -> Path:
        """``evolve/``: the planes around several checkpoints and their time series."""
        return self.root / "evolve"

    def path_markers(self, plane: str = "pca") -> Path:
        """``evolve/path_<plane>.pvd``: the path's checkpoints one at a time (timestep = epoch,
        files ``evolve/path_<plane>/epoch_<eee>.vtp``), the marker of the path's animation."""
        return self.evolve / f"path_{plane}.pvd"

    def animation(self, name: str, quicklook: bool = False) -> Path:
        """``evolve/<name>.gif``, ``name`` ``landscape`` or ``path_<plane>``: ParaView's animation;
        ``quicklook``: matplotlib's, ``evolve/quicklook/<name>.gif``."""
        return (self.evolve / "quicklook" if quicklook else self.evolve) / f"{name}.gif"

    def frames(self, quicklook: bool = False) -> Path:
        """``evolve/frames/`` (``evolve/quicklook/frames/``): the animations' frames as PNGs."""
        return self.animation("frames", quicklook).with_suffix("")

    @property
    def states(self) -> Path:
        """``states/``: ParaView states of this run, their data paths relative to the run."""
        return self.root / "states"

    def state(self, plane: str, view: str) -> Path:
        """``states/<plane>_<view>.pvsm``."""
        return self.states / f"{plane}_{view}.pvsm"

    def critical_points(self, kind: str, array: str = "loss") -> Path:
        return self.root / f"critical_points_{kind}{_suffix(array)}.vtp"

    def topology(self, kind: str, array: str = "loss") -> Path:
        return self.root / f"topology_{kind}{_suffix(array)}.json"

    # -- curvature -----------------------------------------------------------------------
    @property
    def curvature_json(self) -> Path:
        """Hessian eigenvalues and trace at the checkpoints, the spectral density (``lossvista curvature``)."""
        return self.root / "curvature.json"

    # -- pictures ------------------------------------------------------------------------
    @property
    def renders(self) -> Path:
        return self.root / "renders"

    @property
    def quicklooks(self) -> Path:
        return self.renders / "quicklook"

    @property
    def index_html(self) -> Path:
        """The run's page: every plane, the path, the critical points and the summary in one HTML file."""
        return self.root / "index.html"

    @staticmethod
    def picture(folder: str | os.PathLike, plane: str, view: str) -> Path:
        """``<folder>/<plane>_<view>.png``, the name of every picture of a run."""
        return Path(folder) / f"{plane}_{view}.png"

    # -- reading -------------------------------------------------------------------------
    def require(self) -> "RunDir":
        """This run directory, or a one-line error: it does not exist, or it is a file."""
        if not self.root.is_dir():
            if self.root.exists():
                raise LossvistaError(f"{str(self.root)!r} is a file, not a run directory")
            raise LossvistaError(f"run directory {str(self.root)!r} does not exist")
        return self

    def read_run(self) -> dict[str, Any]:
        """run.json, with a one-line error when RUN is not a run directory."""
        self.require()
        if not self.run_json.is_file():
            raise LossvistaError(f"{self.root} is not a lossvista run directory (no run.json); "
                                 f"create one with 'lossvista train --out {self.root}'")
        info = read_json(self.run_json)
        problem = _run_info_problem(info)
        if problem:
            raise LossvistaError(f"{self.run_json} is malformed: {problem}")
        return info

    def check_directions(self, directions: Any) -> None:
        """Refuse directions that span no plane, or that were made around another run's weights
        (their ``centre_digest`` is not the digest of this run's checkpoint of their centre epoch)."""
        from .checkpoints import load_checkpoint
        from .errors import CheckpointError

        directions.check_usable()
        epoch = directions.centre_epoch
        if epoch is None or directions.meta.get("centre_digest") is None:
            return  # made from weights outside a run: nothing to compare with
        if epoch not in self.epochs():
            raise CheckpointError(f"the directions were made around epoch {epoch}, which {self.checkpoints_dir} "
                                  f"does not hold (directions of another run?); make directions for this run with "
                                  f"'lossvista directions'")
        path = self.checkpoint(epoch)
        directions.check_centre(load_checkpoint(path), str(path))


def ranges(ids: list[int], limit: int = 8, sep: str = "-") -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"`` (at most ``limit`` pieces)."""
    pieces: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        pieces.append(str(ids[i]) if i == j else f"{ids[i]}{sep}{ids[j]}")
        i = j + 1
    return ", ".join(pieces[:limit]) + (", ..." if len(pieces) > limit else "")


def _run_info_problem(info: Any) -> str | None:
    """What is wrong with the content of a run.json, in a few words, or None."""
    if not isinstance(info, dict):
        return f"it holds a {type(info).__name__}, not an object"
    config = info.get("config")
    if not isinstance(config, dict):
        return "no 'config' object"
    for key in ("model", "dataset"):
        if not isinstance(config.get(key), str) or not config.get(key):
            return f"config.{key} must be a non-empty string; got {config.get(key)!r}"
    n = info.get("num_classes")  # null for a run imported from the user's training
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        return f"num_classes must be a positive integer; got {n!r}"
    shape = info.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and shape and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        return f"input_shape must be a list of positive integers; got {shape!r}"
    for key in ("search",):
        if info.get(key) is not None and not (isinstance(info[key], list) and all(isinstance(p, str) for p in info[key])):
            return f"{key} must be a list of folders; got {info[key]!r}"
    return None


def _suffix(array: str) -> str:
    return "" if array == "loss" else f"_{array}"
