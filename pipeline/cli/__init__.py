"""Command line: ``losscape <command>`` (also ``python -m pipeline``).

This package is the only place that parses arguments. Each subcommand lives in its own
module here and exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed namespace. Those functions build typed config
objects and call plain library functions.

Errors: user mistakes (``ValueError``, ``LosscapeError``, missing or unreadable files)
become a one-line ``losscape <command>: error: ...`` on stderr and exit status 1
(argparse's own usage errors exit 2). Set ``LOSSCAPE_DEBUG=1`` to see tracebacks.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from .. import __version__

# Subcommands in the order of DESIGN.md; each name is a module of this package.
COMMANDS = ["run", "train", "directions", "surface", "trajectory", "analyze", "render", "export", "compare"]


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``losscape <command>: error: ...``), exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="losscape",
        description="Loss-landscape visualization for PyTorch models (Li et al. 2018), "
        "written as VTK files for ParaView.",
        epilog="Run 'losscape <command> --help' for a command's options. "
        "Set LOSSCAPE_DEBUG=1 for tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"losscape {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f".{name.replace('-', '_')}_cmd", __name__)
        module.register(sub)
    return parser


def _user_error_types() -> tuple[type[BaseException], ...]:
    from ..errors import LosscapeError

    return (LosscapeError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError,
            NotADirectoryError, FileExistsError, OSError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.INFO if args.verbose <= 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(message)s")
    if args.quiet:
        os.environ.setdefault("TQDM_DISABLE", "1")  # the CLI, not the library, sets this
    debug = os.environ.get("LOSSCAPE_DEBUG", "") not in ("", "0")
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print(f"losscape {args.command}: interrupted", file=sys.stderr)
        return 130
    except _user_error_types() as exc:
        if debug:
            raise
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        msg = " ".join(msg.split())  # one line
        print(f"losscape {args.command}: error: {msg}", file=sys.stderr)
        return 1
    return int(result or 0)


def not_built(name: str, issue: str):
    """A ``func`` for a subcommand that is not built yet: says so plainly, exits 3."""

    def func(args: argparse.Namespace) -> int:
        print(f"losscape {name}: not built yet ({issue}); nothing was done", file=sys.stderr)
        return 3

    return func
