"""User-facing errors. The CLI prints these as one line and exits non-zero.

Library messages name a parameter the way the library knows it (``lr``, ``shard``, ``x``),
wrapped by :func:`param`. ``str(error)`` shows the plain name; the CLI shows the flag that
sets that parameter (``--lr``) through :func:`render`, so one message serves both.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["LossvistaError", "ParameterError", "DataNotFoundError", "CheckpointError", "param", "render"]

_MARK = "\x1f"  # unit separator: never part of a path, a value or a message's own text
_PARAM = re.compile(_MARK + r"([A-Za-z_][A-Za-z0-9_]*)" + _MARK)


def param(name: str) -> str:
    """``name`` marked as a parameter inside an error message (see the module docstring)."""
    return f"{_MARK}{name}{_MARK}"


def render(text: str, flags: Mapping[str, str] | None = None) -> str:
    """``text`` with every :func:`param` mark replaced by ``flags[name]``, else by the plain name."""
    flags = flags or {}
    return _PARAM.sub(lambda m: flags.get(m.group(1), m.group(1)), text)


class LossvistaError(Exception):
    """A problem with the user's input or environment (bad file, missing data, ...).

    Library code raises this (or :class:`ParameterError` for a bad parameter value); the CLI
    turns it into ``lossvista <command>: error: <message>`` and exit status 1.
    """

    def __str__(self) -> str:
        return render(super().__str__())

    @property
    def template(self) -> str:
        """The message with its parameter marks, for :func:`render` with a command's flags."""
        return super().__str__()


class ParameterError(LossvistaError, ValueError):
    """A parameter has a value outside what is allowed (also a ``ValueError``)."""


class DataNotFoundError(LossvistaError, FileNotFoundError):
    """A dataset's files are not where they were expected."""


class CheckpointError(LossvistaError):
    """A checkpoint or directions file cannot be loaded safely or does not fit the model."""
