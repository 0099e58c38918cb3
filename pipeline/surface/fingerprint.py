"""What makes two surface evaluations the same computation: the identity behind a fingerprint.

A work directory's chunks may only be combined with chunks of the same computation. The
identity records everything that changes a point's value: the bytes of the directions file and
of the centre checkpoint, the model, the data actually evaluated (a digest of its tensors, the
split, the subset), the grid, the chunk size, and every setting of the evaluation engine
(batch sizes, precision, cap, device type). It deliberately leaves out the number of processes
and the device index, which do not change results.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any, Mapping

from ..datamodel import Grid

__all__ = ["file_digest", "tensor_digest", "surface_identity"]

_BLOCK = 1 << 20


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (streamed in 1 MiB blocks), as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def tensor_digest(*tensors: Any) -> str:
    """BLAKE2b of tensors' dtypes, shapes and bytes (CPU copies), as hex; ``None`` entries allowed."""
    import torch

    h = hashlib.blake2b(digest_size=20)
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        t = torch.as_tensor(t).detach().to("cpu").contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


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


def surface_identity(*, directions_file: str | os.PathLike, checkpoint_file: str | os.PathLike, model: str,
                     dataset: Mapping[str, Any], split: str, data_digest: str, grid: Grid, chunk_size: int,
                     eval_config: Any) -> dict[str, Any]:
    """The identity of one surface computation (JSON-serialisable; see the module docstring).

    ``eval_config`` is the engine's config object (a dataclass); its ``device`` is reduced to the
    device type (``cpu``/``cuda``), since the index (which GPU of a node) does not change values.
    """
    cfg = _plain(eval_config)
    if isinstance(cfg, dict) and cfg.get("device") is not None:
        cfg["device"] = str(cfg["device"]).split(":", 1)[0]
    return {
        "directions_sha256": file_digest(directions_file),
        "checkpoint_sha256": file_digest(checkpoint_file),
        "model": model,
        "dataset": _plain(dict(dataset)),
        "split": split,
        "data_digest": data_digest,
        "grid": grid.to_dict(),
        "chunk_size": int(chunk_size),
        "eval": cfg,
    }

