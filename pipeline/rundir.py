"""The run directory: the one place that knows its file names.

A run directory ``runs/NAME/`` holds::

    run.json                          resolved config, model/dataset facts, per-epoch metrics
    checkpoints/epoch_000.pt ...      model state_dicts; epoch 0 is the initial weights
    checkpoints/resume.pt             optimizer state of the newest epoch (to resume training)
    directions/<kind>.pt              random, pca, interp
    trajectory_<kind>.vtp             the descent path projected onto the plane
    surface_<kind>.vts                the loss surface (.vti twin on request; .vts.parts/ while running)
    critical_points_<kind>.vtp        topology of the surface's loss ...
    topology_<kind>.json              ... (``_<array>`` appended for another array, e.g. test_loss)
    renders/<plane>_<view>.png        ParaView pictures
    renders/quicklook/<plane>_<view>.png   matplotlib / pyvista pictures
    index.html                        the run as one self-contained interactive page

Standard library only (no torch): the analysis, the pictures and ParaView's own Python use it.
Only :meth:`RunDir.build_model` imports torch, when called.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LossvistaError

__all__ = ["RunDir", "read_json", "surface_kind", "epoch_of"]

_EPOCH_RE = re.compile(r"^epoch_(\d+)\.pt$")
_SURFACE_RE = re.compile(r"surface_([\w.-]+)\.vts")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a missing or malformed file is a one-line :class:`LossvistaError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LossvistaError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LossvistaError(f"{path} is not valid JSON ({exc})") from None


def epoch_of(path: str | os.PathLike) -> int | None:
    """The epoch of a checkpoint file named like ``epoch_007.pt`` (-> 7), or None."""
    m = re.search(r"epoch_(\d+)", Path(path).name)
    return int(m.group(1)) if m else None


def surface_kind(path: str | os.PathLike, meta: dict[str, Any] | None = None) -> str:
    """The plane's kind of a surface file: from ``surface_<kind>.vts``, else the metadata's
    ``direction_kind``, else the file's stem."""
    path = Path(path)
    m = _SURFACE_RE.fullmatch(path.name)
    if m:
        return m.group(1)
    meta = meta or {}
    kind = meta.get("direction_kind") or (meta.get("directions") or {}).get("kind")
    return re.sub(r"[^\w.-]", "_", str(kind)) if kind else path.stem


@dataclass(frozen=True)
class RunDir:
    """Paths inside a run directory (nothing is created until asked)."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

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

    # -- planes --------------------------------------------------------------------------
    def directions(self, kind: str) -> Path:
        return self.root / "directions" / f"{kind}.pt"

    def surface(self, kind: str) -> Path:
        return self.root / f"surface_{kind}.vts"

    def surfaces(self) -> dict[str, Path]:
        """``{kind: path}`` of the surface files present, sorted by kind."""
        if not self.root.is_dir():
            return {}
        found = sorted(p for p in self.root.glob("surface_*.vts") if _SURFACE_RE.fullmatch(p.name))
        return {surface_kind(p): p for p in found}

    def trajectory(self, kind: str) -> Path:
        return self.root / f"trajectory_{kind}.vtp"

    def critical_points(self, kind: str, array: str = "loss") -> Path:
        return self.root / f"critical_points_{kind}{_suffix(array)}.vtp"

    def topology(self, kind: str, array: str = "loss") -> Path:
        return self.root / f"topology_{kind}{_suffix(array)}.json"

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
    def read_run(self) -> dict[str, Any]:
        """run.json, with a one-line error when RUN is not a run directory."""
        if not self.root.is_dir():
            raise LossvistaError(f"run directory {self.root} does not exist")
        if not self.run_json.is_file():
            raise LossvistaError(f"{self.root} is not a lossvista run directory (no run.json); "
                                 f"create one with 'lossvista train --out {self.root}'")
        return read_json(self.run_json)

    def build_model(self, epoch: int | None = None, device: Any = "cpu") -> tuple[Any, int]:
        """The run's model with the weights of ``epoch`` (default: the last), in eval mode."""
        from .checkpoints import load_checkpoint, load_state_into
        from .models import build_model

        info = self.read_run()
        epochs = self.epochs()
        if not epochs:
            raise LossvistaError(f"{self.checkpoints_dir} holds no epoch_*.pt checkpoints")
        epoch = epochs[-1] if epoch is None else epoch
        if epoch not in epochs:
            raise LossvistaError(f"epoch must be one of {epochs[0]}..{epochs[-1]} present in {self.checkpoints_dir}; "
                                 f"got {epoch}")
        model = build_model(info["config"]["model"], num_classes=info["num_classes"],
                            in_channels=info["input_shape"][0])
        path = self.checkpoint(epoch)
        load_state_into(model, load_checkpoint(path, map_location=device), source=str(path))
        return model.to(device).eval(), epoch


def _suffix(array: str) -> str:
    return "" if array == "loss" else f"_{array}"
