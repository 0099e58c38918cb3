"""``.pvd`` collections and metadata of any lossvista VTK file."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._core import _TYPE_OF_SUFFIX, _atomic_write, _check_suffix, _read_meta_of, _read_xml

__all__ = ["write_pvd", "read_meta"]


# collections


def write_pvd(path: str | os.PathLike, entries: Iterable[str | os.PathLike | Mapping[str, Any]]) -> Path:
    """Write a ParaView collection (``.pvd``) listing the given files, one block each.

    Parameters
    ----------
    path : path ending in ``.pvd``
    entries : iterable of paths or dicts
        A dict has ``file`` and optionally ``name`` (block name; default: the file's stem),
        ``timestep`` (default 0) and ``part`` (default: its position). An absolute path, or a
        relative one that exists from the current directory, is written relative to the
        ``.pvd``'s directory when it lies below it (absolute otherwise); any other relative
        path is written as given, i.e. relative to the ``.pvd``.

    The XML is built with :mod:`xml.etree.ElementTree` (VTK has no collection writer that
    takes file names outside ParaView).
    """
    path = Path(path)
    _check_suffix(path, (".pvd",), "collection")
    root = ET.Element("VTKFile", type="Collection", version="0.1", byte_order="LittleEndian")
    coll = ET.SubElement(root, "Collection")
    base = path.parent.resolve()
    for pos, entry in enumerate(entries):
        e = {"file": entry} if not isinstance(entry, Mapping) else dict(entry)
        if "file" not in e:
            raise ValueError(f"entries must be paths or dicts with a 'file' key; got {entry!r}")
        f = Path(e["file"])
        try:
            rel = f.resolve().relative_to(base) if f.is_absolute() or f.exists() else f
        except ValueError:
            rel = f.resolve()
        ET.SubElement(coll, "DataSet", timestep=str(e.get("timestep", 0)), group="",
                      part=str(e.get("part", pos)), name=str(e.get("name", f.stem)), file=rel.as_posix())
    tree = ET.ElementTree(root)
    ET.indent(tree)

    def write(tmp: Path) -> None:
        tree.write(tmp, encoding="utf-8", xml_declaration=True)

    return _atomic_write(path, write)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``losscape_meta`` JSON of a ``.vts``, ``.vti`` or ``.vtp`` file (``{}`` when it has none)."""
    path = Path(path)
    data = _read_xml(path, tuple(_TYPE_OF_SUFFIX.values()), "VTK")
    return _read_meta_of(data, path)


# --------------------------------------------------------------------------------------------
