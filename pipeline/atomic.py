"""Atomic file writes: the one mechanism behind every file lossvista writes.

A writer fills a temporary file beside the target (same directory, so the rename is atomic),
the data is fsynced, then the file is renamed onto the target. On any failure, Ctrl-C
included, the temporary file is removed and an existing target is left as it was.
Standard library only: ParaView's Python imports it through ``pipeline.vtkio``.
(The chunk store of :mod:`pipeline.surface.store` adds exclusive publication on top of its own.)
"""
from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import LossvistaError

__all__ = ["atomic_path", "write_text", "write_json"]


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp", make_parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the block to write; rename it onto ``path``
    only if the block succeeds and wrote a file.

    ``suffix`` ends the temporary name (writers that infer the format from it, like
    matplotlib's ``savefig``, need e.g. ``".tmp.png"``). The output directory must exist
    (``make_parents``: create it) and be writable, else a one-line :class:`LossvistaError`.
    The temporary file is created by the writer, so it gets the usual permissions (umask).
    """
    path = Path(path)
    parent = path.parent
    if make_parents:
        parent.mkdir(parents=True, exist_ok=True)
    if not parent.is_dir():
        raise LossvistaError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise LossvistaError(f"output directory {parent} is not writable")
    tmp = parent / f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}"
    try:
        yield tmp
        if not tmp.is_file():
            raise LossvistaError(f"writing {str(path)!r} produced no file")
        with open(tmp, "rb+") as f:  # the data is on disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically. Non-finite floats are refused (JSON has none)."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
