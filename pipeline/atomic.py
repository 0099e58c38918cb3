"""Atomic file writes: the one mechanism behind every file lossvista writes.

A writer fills a temporary file beside the target (same directory, so the rename is atomic),
the data is fsynced, then the file is renamed onto the target. On any failure, Ctrl-C
included, the temporary file is removed and an existing target is left as it was.
Standard library only: ParaView's Python imports it through ``pipeline.vtkio``.
:func:`write_bytes` writes bytes the same way and can publish them exclusively (``os.link``:
an existing file is never replaced), which the chunk store of :mod:`pipeline.surface.store`
uses so that two processes never overwrite each other's chunks.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import LossvistaError

__all__ = ["atomic_path", "write_bytes", "write_text", "write_json", "write_png", "check_writable", "write_failure",
           "WriteError"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of a complete PNG


def check_writable(path: str | os.PathLike, *, make_parents: bool = False) -> Path:
    """Raise a one-line :class:`LossvistaError` unless a file can be created beside ``path``
    (its folder exists, or is created with ``make_parents``, and is writable). For checks made
    before long work, so that the work is not lost at the final write."""
    path = Path(path)
    parent = path.parent
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise LossvistaError(f"the path {str(path)!r} is not valid UTF-8; choose another name") from None
    if path.is_dir():
        raise LossvistaError(f"{path} is a directory, not a file name")
    blocking = next((p for p in (parent, *parent.parents) if p.exists() or p.is_symlink()), None)
    if blocking is not None and not blocking.is_dir():
        raise LossvistaError(f"output directory {parent}: {blocking} is "
                             f"{'a link to nowhere' if blocking.is_symlink() and not blocking.exists() else 'a file'}"
                             f", not a folder")
    if make_parents:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LossvistaError(f"output directory {parent} is not writable ({exc.strerror or exc})") from None
    if not parent.is_dir():
        raise LossvistaError(f"output directory {parent} does not exist")
    try:  # create a file there (permissions alone say nothing for root, or on a read-only mount)
        fd, probe = tempfile.mkstemp(prefix=".lossvista-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LossvistaError(f"output directory {parent} is not writable ({exc.strerror or exc})") from None
    return path


class WriteError(LossvistaError):
    """A file could not be written; ``cause`` is the reason in a few words (``No space left on device``)."""

    def __init__(self, message: str, cause: str):
        super().__init__(message)
        self.cause = cause


def write_failure(path: str | os.PathLike, exc: BaseException) -> WriteError:
    """A one-line error for a failed write of ``path``, naming the cause: the operating system's
    (``No space left on device``), a full disk found afterwards, else the writer's first line."""
    import shutil

    if isinstance(exc, OSError) and exc.strerror:
        cause = exc.strerror
    else:
        try:
            full = shutil.disk_usage(Path(path).parent).free < (64 << 10)
        except OSError:
            full = False
        text = str(exc).strip()
        cause = "No space left on device" if full else (text.splitlines()[0] if text else type(exc).__name__)
    return WriteError(f"cannot write {path} ({cause}); nothing was written there", cause)


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp", make_parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the block to write; rename it onto ``path``
    only if the block succeeds and wrote a file.

    ``suffix`` ends the temporary name (writers that infer the format from it, like
    matplotlib's ``savefig``, need e.g. ``".tmp.png"``). The output directory must exist
    (``make_parents``: create it) and be writable, else a one-line :class:`LossvistaError`.
    The temporary file is created by the writer, so it gets the usual permissions (umask). A
    ``path`` that is a symbolic link is written through: its target is replaced.
    A writer that fails with ``OSError`` or ``RuntimeError`` (a full disk) becomes a one-line
    :class:`LossvistaError` naming the cause (:func:`write_failure`).
    """
    if Path(path).is_symlink():  # write through a link: its target gets the new content, the link stays
        path = os.path.realpath(path)
    path = check_writable(path, make_parents=make_parents)
    # absolute: a writer that expands "~" itself (pyvista) writes where this module looks
    tmp = Path(os.path.abspath(path.parent)) / f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}"
    try:
        yield tmp
        if not tmp.is_file():
            raise LossvistaError(f"writing {str(path)!r} produced no file")
        with open(tmp, "rb+") as f:  # the data is on disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # a full disk, a writer that failed (torch.save: RuntimeError)
        raise write_failure(path, exc) from None
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


def write_png(path: str | os.PathLike, save: Callable[[Path], Any]) -> Path:
    """``save(tmp)`` writes a PNG to a temporary name beside ``path``; it replaces ``path`` only
    when it is a complete PNG (signature and end chunk: a writer that swallowed a full disk
    leaves a truncated one), so an earlier picture is never lost. Parents are created."""
    path = Path(path)
    with atomic_path(path, suffix=".tmp.png", make_parents=True) as tmp:
        save(tmp)
        if tmp.is_file():
            with open(tmp, "rb") as f:
                head = f.read(8)
                f.seek(max(0, tmp.stat().st_size - 8))
                tail = f.read(8)
            if head != _PNG_SIGNATURE or tail != _PNG_END:
                raise write_failure(path, RuntimeError("the picture was written incomplete"))
    return path


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, *, exclusive: bool = False) -> bool:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename (or link) it into place.

    ``exclusive``: publish with ``os.link`` so an existing ``path`` is never replaced; returns
    False when ``path`` already existed. A failed write removes the temp file.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_HARDLINKS:
                    raise
                return _create_exclusive(path, data)  # a filesystem without hard links
            finally:
                os.unlink(tmp)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
        return True
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def _create_exclusive(path: Path, data: bytes) -> bool:
    """``O_CREAT | O_EXCL`` write (not atomic: a crash mid-write leaves a file that reads as damaged)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True
