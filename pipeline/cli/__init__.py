"""Command line: ``lossvista <command>`` (also ``python -m pipeline``).

This package is the only place that parses arguments. Each subcommand lives in its own
module here and exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed namespace. Those functions build typed config
objects and call plain library functions; they hold no library logic.

Errors: user mistakes (``ValueError``, ``LossvistaError``, missing or unreadable files)
become a one-line ``lossvista <command>: error: ...`` on stderr and exit status 1
(argparse's own usage errors exit 2). So does any other exception raised through the user's
own code (their model's forward, data function, loss, metric or forward hook): the line names
the innermost of their frames (``mymodels.py:12 in forward``); an exception that never passed
through their code is lossvista's bug and keeps its traceback. The library names parameters (``lr``, ``x``,
``shard``); the message shows the command's flag for each (``--lr``), taken from the
command's parser. Set ``LOSSVISTA_DEBUG=1`` to see tracebacks.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from .. import __version__
from ._common import compile_cache_dir

# Subcommands in the order of the pipeline's stages; each name is a module of this package.
COMMANDS = ["run", "train", "import", "directions", "surface", "volume", "evolve", "trajectory", "analyze", "curvature",
            "render", "paraview", "export", "compare", "study"]


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``lossvista <command>: error: ...``), exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{parameter: how the command line spells it}``: ``lr -> --lr``, ``from_epoch -> --from``,
    a positional ``file -> FILE.vts`` (its metavar)."""
    flags = {}
    for action in parser._actions:
        if action.dest in (argparse.SUPPRESS, "help"):
            continue
        if action.option_strings:
            flags[action.dest] = max(action.option_strings, key=len)
        else:
            flags[action.dest] = action.metavar or action.dest.upper()
    return flags


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lossvista",
        description="Loss-landscape visualization for PyTorch models (Li et al. 2018), "
        "written as VTK files for ParaView.",
        epilog="Run 'lossvista <command> --help' for a command's options. "
        "Set LOSSVISTA_DEBUG=1 for tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"lossvista {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f".{name.replace('-', '_')}_cmd", __name__)
        module.register(sub)
        command = sub.choices[name]
        command.set_defaults(param_flags={**flags_of(command), **getattr(module, "PARAM_FLAGS", {})})
    return parser


def _user_error_types() -> tuple[type[BaseException], ...]:
    from ..errors import LossvistaError

    return (LossvistaError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError,
            NotADirectoryError, FileExistsError, OSError, MemoryError)


def user_frame(exc: BaseException) -> str | None:
    """``"FILE:LINE in FUNCTION"`` of the innermost frame of ``exc``'s traceback that is the user's
    own code (neither lossvista's package nor an installed library nor Python's), else None."""
    import traceback

    from ..usercode import library_folders

    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the pipeline package
    libraries = set(library_folders())
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):  # the code torch.compile generates is not the user's
        libraries.add(os.path.realpath(os.environ["TORCHINDUCTOR_CACHE_DIR"]))
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("<"):  # generated code
            continue
        path = os.path.realpath(frame.filename)
        if path.startswith(here + os.sep) or any(path.startswith(lib + os.sep) for lib in libraries):
            continue
        found = frame
    if found is None:
        return None
    path = os.path.realpath(found.filename)
    cwd = os.path.realpath(os.getcwd())
    shown = os.path.relpath(path, cwd) if path.startswith(cwd + os.sep) else path
    return f"{shown}:{found.lineno} in {found.name}"


def error_message(exc: BaseException, flags: dict[str, str] | None = None) -> str:
    """One line for ``exc``, parameters shown as the command's flags."""
    from ..errors import LossvistaError, render

    msg = render(exc.template, flags) if isinstance(exc, LossvistaError) else str(exc)
    msg = msg or type(exc).__name__
    if isinstance(exc, MemoryError):
        msg = f"out of memory ({msg})"
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename:
        from pathlib import Path

        # a folder to create or write into where a file is: name that file, not the errno
        blocking = next((p for p in (Path(exc.filename), *Path(exc.filename).parents)
                         if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            return f"{str(blocking)!r} is a file where a folder is needed (for {str(exc.filename)!r})" \
                if blocking != Path(exc.filename) else f"{str(blocking)!r} is a file where a folder is needed"
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
        msg = f"{msg}: {exc.filename}"
    return " ".join(msg.split())  # one line


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given (a launcher repeats it for its workers)
    level = logging.WARNING if args.quiet else (logging.INFO if args.verbose <= 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(message)s")
    if args.quiet:
        os.environ.setdefault("TQDM_DISABLE", "1")  # the CLI, not the library, sets this
    # compiled code outlives the run (torch reads where from the environment only)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_dir()))
    debug = os.environ.get("LOSSVISTA_DEBUG", "") not in ("", "0")
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print(f"lossvista {args.command}: interrupted", file=sys.stderr)
        return 130
    except _user_error_types() as exc:
        if debug:
            raise
        print(f"lossvista {args.command}: error: {error_message(exc, args.param_flags)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - raised through the user's code: theirs to fix, in one line
        where = user_frame(exc)
        if debug or where is None:
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"lossvista {args.command}: error: {type(exc).__name__} in your code ({where})"
              f"{': ' + text if text else ''} (LOSSVISTA_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    return int(result or 0)
