"""The data files of a ParaView state file (``.pvsm``): read them, store them relative to a folder.

ParaView saves every reader's ``FileName`` as an absolute path. lossvista's states store them
relative instead: the package's states relative to the run they were built from
(``surface_random.vts``: no machine's paths in the repository), a run's own states
(``RUN/states/<plane>_<view>.pvsm``) relative to their folder (``../surface_pca.vts``), so
that a moved run directory still opens. ParaView resolves a relative name from its working
folder, or, with *Search files under specified directory* (``LoadState(...,
data_directory=...)``), from that directory, whose default in the GUI is the state's folder;
:func:`missing_data_files` checks the latter.

Standard library only: the states' pvbatch scripts use it in ParaView's own Python. The file
is edited as text, one property at a time, so the rest stays as ParaView wrote it.
"""
from __future__ import annotations

import html
import os
import re
from pathlib import Path

from ..atomic import write_text

__all__ = ["data_files", "relative_data_files", "missing_data_files"]

# a reader's FileName property, and the FileNameInfo that mirrors it
_FILE_NAME = re.compile(r'(<Property name="FileName(?:Info)?" id="(\d+)\.(\w+)"[^>]*>)(.*?)(</Property>)', re.S)
_ELEMENT_VALUE = re.compile(r'(<Element index="\d+" value=")([^"]*)(")')


def data_files(state_file: str | os.PathLike) -> list[tuple[str, list[str]]]:
    """``[(proxy id, [file names as stored])]`` of every reader's ``FileName`` in a .pvsm file."""
    text = Path(state_file).read_text(encoding="utf-8")
    found = []
    for match in _FILE_NAME.finditer(text):
        values = [html.unescape(m.group(2)) for m in _ELEMENT_VALUE.finditer(match.group(4))]
        if match.group(3) == "FileName" and values:
            found.append((match.group(2), values))
    return found


def relative_data_files(state_file: str | os.PathLike, start: str | os.PathLike) -> None:
    """Rewrite the absolute data files of a .pvsm file relative to the folder ``start`` (in place,
    atomically)."""
    path = Path(state_file)

    def element(match: re.Match) -> str:
        value = html.unescape(match.group(2))
        if os.path.isabs(value):
            value = os.path.relpath(value, start)
        return match.group(1) + html.escape(value, quote=True) + match.group(3)

    def prop(match: re.Match) -> str:
        return match.group(1) + _ELEMENT_VALUE.sub(element, match.group(4)) + match.group(5)

    write_text(path, _FILE_NAME.sub(prop, path.read_text(encoding="utf-8")))


def missing_data_files(state_file: str | os.PathLike) -> list[str]:
    """The data files of a .pvsm file that exist neither as stored (absolute) nor from the
    state's folder (relative), as stored; empty when ParaView will find them all."""
    folder = Path(state_file).resolve().parent
    return [name for _, names in data_files(state_file) for name in names
            if not (folder / name).is_file()]  # an absolute name stays itself under "/"
