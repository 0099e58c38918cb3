"""Load a view of a run into the ParaView GUI: the start-up script of ``lossvista paraview``.

    LOSSVISTA_PARAVIEW='{"run": RUN, "plane": "pca", "view": "3d_surface"}' paraview --script=states/gui_state.py

``lossvista paraview`` starts ParaView this way (:mod:`pipeline.render.gui`). The environment
variable ``LOSSVISTA_PARAVIEW`` holds one JSON object:

``{"states": DIR, "run": RUN, "plane": PLANE, "view": VIEW}``
    loads ``DIR/landscape_<VIEW>.pvsm`` on ``RUN/surface_<PLANE>.vts``
    and ``RUN/trajectory_<PLANE>.vtp``, as ``lossvista render`` does
    (:func:`render_state.load_view`), and fits the camera, colours and axis titles to the data
    and to the window;
``{"states": DIR, "state": FILE.pvsm}``
    loads a saved state, its data files searched from the state's folder (a run's own
    ``states/<plane>_<view>.pvsm`` stores them as ``../surface_<plane>.vts``; the GUI's
    *Search files under specified directory*, :mod:`pipeline.render.pvsm`).

Either way the plugin is loaded first (with the 5.11 ``inspect.getargspec`` shim, set when
``build_states`` is imported), and loading a state replaces ParaView's start-up view by the
state's layout, which holds the view alone. No dialog is opened. A problem is raised as an
exception, which ParaView shows in its Output Messages window. ``DIR`` is this folder (ParaView
runs a start-up script without ``__file__``); the other scripts of the states are found there.
"""
import json
import os
import sys

ENVIRONMENT = "LOSSVISTA_PARAVIEW"


def _spec():
    text = os.environ.get(ENVIRONMENT)
    if not text:
        raise RuntimeError(f"lossvista: {ENVIRONMENT} is not set; start ParaView with 'lossvista paraview RUN'")
    return json.loads(text)


SPEC = _spec()
sys.path.insert(0, SPEC["states"])
import build_states as common  # noqa: E402  (shim, plugin, fitting)
import render_state  # noqa: E402  (load_view: a state on a run's files)


def open_in_gui(simple, spec):
    """Load what ``spec`` names (see the module's docstring) into the running GUI; return the view."""
    common.load_plugin(simple, spec.get("plugin", common.PLUGIN))
    if "state" in spec:
        state = os.path.abspath(spec["state"])
        simple.LoadState(state, data_directory=os.path.dirname(state))
        views = simple.GetRenderViews()
        if not views:
            raise RuntimeError(f"lossvista: {state} holds no render view")
        view = views[0]
    else:
        view = render_state.load_view(simple, spec["view"], os.path.abspath(spec["run"]), spec["plane"],
                                      os.path.abspath(spec["states"]))
    common.single_view_layout(simple, view)
    if "state" not in spec:
        common.fit_to_data(simple, view, spec["view"])
    view.SMProxy.UpdateVTKObjects()  # else the GUI may show the state's own camera, saved for another run
    simple.SetActiveView(view)
    simple.Render(view)
    return view


def main():
    from paraview import simple

    open_in_gui(simple, SPEC)


main()
