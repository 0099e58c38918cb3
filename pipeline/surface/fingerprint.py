"""What makes two surface evaluations the same computation: the identity behind a fingerprint.

A work directory's chunks may only be combined with chunks of the same computation. The
identity records everything that changes a point's value: the loss, the contents of the directions and
of the centre weights (digests of the tensors, not of the files: saving the same tensors again
writes other bytes), the model, the data actually evaluated (a digest of its tensors, the split,
the subset), the grid, the chunk size, every setting of the evaluation engine (batch sizes,
precision, cap, device type), and the settings of the curvature maps when they are computed. It
deliberately leaves out the number of processes and the device index, which do not change results.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ..datamodel import Grid

__all__ = ["surface_identity"]


def _plain(value: Any) -> Any:
    """JSON-friendly: dataclasses to dicts, devices/paths to strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def surface_identity(*, directions_digest: str, centre_digest: str, model: str, dataset: Mapping[str, Any],
                     split: str, data_digest: str, grid: Grid, chunk_size: int, eval_config: Any,
                     loss: Mapping[str, Any] | None = None, hessian: Any = None) -> dict[str, Any]:
    """The identity of one surface computation (JSON-serialisable; see the module docstring).

    ``eval_config`` is the engine's config object (a dataclass); its ``device`` is reduced to the
    device type (``cpu``/``cuda``), since the index (which GPU of a node) does not change values.
    ``hessian``: the curvature maps' settings (:class:`pipeline.curvature.maps.HessianMaps`), when
    the chunks hold them; absent otherwise, so a surface without them keeps its identity.
    """
    cfg = _plain(eval_config)
    if isinstance(cfg, dict) and cfg.get("device") is not None:
        cfg["device"] = str(cfg["device"]).split(":", 1)[0]
    identity = {
        "directions": directions_digest,
        "centre_weights": centre_digest,
        "model": model,
        "dataset": _plain(dict(dataset)),
        "split": split,
        "data_digest": data_digest,
        "grid": grid.to_dict(),
        "chunk_size": int(chunk_size),
        "eval": cfg,
        "loss": _plain(dict(loss or {"name": "cross_entropy"})),
    }
    if hessian is not None:
        identity["hessian"] = _plain(hessian)
    return identity

