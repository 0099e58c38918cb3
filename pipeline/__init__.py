"""lossvista: loss-landscape visualization (Li et al. 2018) on VTK and ParaView.

The import package is ``pipeline``. Importing it loads nothing heavy (no torch, vtk or
matplotlib), so ParaView's own Python can use its numpy-only parts. The common names are
available here and imported on first use::

    from pipeline import Grid, Run, evaluate, random_directions

Where each concept lives: docs/architecture.md.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# public name -> module that defines it (imported on first access)
_API = {
    "Grid": "datamodel", "Surface": "datamodel", "Trajectory": "datamodel",
    "RunDir": "rundir", "Run": "run", "open_run": "run",
    "LossSpec": "objective",
    "Recorder": "recorder", "ImportConfig": "importer", "import_run": "importer", "landscape": "workflow",
    "EvalConfig": "engine", "evaluate_points": "engine",
    "evaluate": "surface", "SurfaceRequest": "surface", "compute_surface": "surface",
    "Directions": "directions", "random_directions": "directions", "pca_directions": "directions",
    "interpolation_direction": "directions",
    "project_trajectory": "trajectory",
    "analyze_surface": "analyze", "analyze_file": "analyze",
    "compare_runs": "compare",
    "LossvistaError": "errors",
}

__all__ = ["__version__", "software_versions", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def software_versions() -> dict[str, str | None]:
    """Versions recorded in every file's metadata: lossvista, Python, numpy, torch, torchvision.

    torch and torchvision are read from their installed metadata, not imported (None when
    absent), so this is cheap and works in ParaView's Python.
    """
    import platform
    from importlib import metadata

    import numpy

    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"lossvista": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "torch": installed("torch"), "torchvision": installed("torchvision")}
