"""The user's own code, named as ``module:attribute``: models, data functions, losses, metrics,
forward hooks.

``load_callable("mymodels:Net", search=["/home/me/project"])`` imports ``mymodels`` from the
given folders first (the folder a run was imported from, so that no ``PYTHONPATH`` is needed),
then from ``sys.path``. A spec that does not parse, a module that does not import or an
attribute that is missing or not callable is a one-line :class:`~pipeline.errors.ParameterError`
naming the parameter it came from.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from .errors import ParameterError, param

__all__ = ["load_callable", "is_spec"]

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_spec(text: Any) -> bool:
    """Whether ``text`` looks like ``module:attribute`` (``package.module:Class.factory`` too)."""
    return isinstance(text, str) and bool(_SPEC.match(text))


def load_callable(spec: str, *, search: Sequence[str | os.PathLike] = (), name: str = "spec") -> Callable[..., Any]:
    """The callable ``spec`` (``"module:attribute"``) names, imported from ``search`` first.

    Parameters
    ----------
    spec : str
        ``"package.module:attribute"``; the attribute may be dotted (``"mod:Class.create"``).
    search : folders
        Tried before ``sys.path`` for the module's top-level package (only for this import;
        ``sys.path`` is restored).
    name : str
        The parameter the spec came from (``model``, ``data``, ``loss``), for error messages.
    """
    if not is_spec(spec):
        raise ParameterError(f"{param(name)} must look like 'module:function' (e.g. 'mymodels:Net'); got {spec!r}")
    module_name, _, attr = spec.partition(":")
    module = _import(module_name, [str(Path(s)) for s in search], name, spec)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ParameterError(f"{param(name)} {spec!r}: module {module_name!r} has no callable {attr!r}")
    if not callable(obj):
        raise ParameterError(f"{param(name)} {spec!r}: module {module_name!r} has no callable {attr!r} (it is a "
                             f"{type(obj).__name__})")
    return obj


def _import(module_name: str, search: list[str], name: str, spec: str) -> Any:
    top = module_name.split(".", 1)[0]
    loaded = sys.modules.get(top)
    if (loaded is not None and search and top != __name__.split(".")[0] and not _installed(loaded)
            and not _under(loaded, search)):
        # the same name imported from elsewhere earlier (another run's module): import this one
        # afresh (an installed library such as torch never: a second copy of its C extension crashes)
        for key in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
            del sys.modules[key]
    old = list(sys.path)
    sys.path[:0] = [s for s in search if s not in sys.path[:len(search)]]
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # the user's module: its failure in one line, in its own words
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        where = f" (looked in {', '.join(search)} and sys.path)" if isinstance(exc, ImportError) and search else ""
        raise ParameterError(f"{param(name)} {spec!r}: cannot import module {module_name!r}{where}: "
                             f"{type(exc).__name__}" + (f": {first}" if first else "")) from None
    finally:
        sys.path[:] = old


def library_folders() -> list[str]:
    """The folders that hold Python's own modules and installed packages (real paths): code there is
    not the user's."""
    import site
    import sysconfig

    folders = [*sysconfig.get_paths().values(), *site.getsitepackages(), site.getusersitepackages(),
               *(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))]
    return sorted({os.path.realpath(f) for f in folders if f})


def _installed(module: Any) -> bool:
    """Whether ``module`` is built in, Python's own or an installed package (not the user's code)."""
    if not getattr(module, "__file__", None):
        return True
    return _under(module, library_folders())


def _under(module: Any, folders: list[str]) -> bool:
    origin = os.path.realpath(getattr(module, "__file__", None) or "")
    return any(origin.startswith(os.path.realpath(f) + os.sep) for f in folders)
