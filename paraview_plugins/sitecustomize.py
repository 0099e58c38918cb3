"""Make Debian's ParaView 5.11 load Python plugins on Python 3.11.

ParaView 5.11.0's ``paraview/detail/pythonalgorithm.py`` does
``from inspect import getargspec``, which Python 3.11 removed, so every Python plugin
(ours included) fails to load with ``ImportError: cannot import name 'getargspec'``.
``inspect.getfullargspec`` returns the same ``args`` field that ParaView reads, so aliasing
it is enough. Newer ParaView releases no longer need this; the alias is then a no-op.

Python imports ``sitecustomize`` by itself at start-up when it is on ``sys.path``, which is
what makes this work for the GUI and for plugins auto-loaded from ``PV_PLUGIN_PATH``
(before any of our code runs)::

    PYTHONPATH=/path/to/lossvista/paraview_plugins \\
    PV_PLUGIN_PATH=/path/to/lossvista/paraview_plugins paraview

Scripts (``pvpython``/``pvbatch``) can instead set the alias themselves before
``LoadPlugin``, as ``states/*.py`` do.

Because a ``sitecustomize`` found first hides the system's own (Debian's installs an apport
hook), this module runs the next ``sitecustomize.py`` on ``sys.path`` after doing its job.
"""
import inspect
import os
import sys

if not hasattr(inspect, "getargspec"):
    inspect.getargspec = inspect.getfullargspec


def _run_next_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        folder = os.path.abspath(entry or os.getcwd())
        candidate = os.path.join(folder, "sitecustomize.py")
        if folder == here or not os.path.isfile(candidate):
            continue
        import importlib.util

        spec = importlib.util.spec_from_file_location("_next_sitecustomize", candidate)
        if spec is None or spec.loader is None:
            return
        try:
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        except Exception as exc:  # a broken system hook must not stop ParaView from starting
            sys.stderr.write(f"lossvista sitecustomize: {candidate} failed: {exc}\n")
        return


_run_next_sitecustomize()
