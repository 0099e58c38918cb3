"""Render lossvista's ParaView states on a run's files (a pvbatch script).

    xvfb-run -a pvbatch states/render_state.py RUN [--plane random pca] [--views ...] [--out RUN/renders]

For each view, loads ``states/landscape_<view>.pvsm`` with the readers ``surface`` and
``trajectory`` pointed at ``RUN/surface_<plane>.vts`` and ``RUN/trajectory_<plane>.vtp``
(``LoadState(..., filenames=[{"name", "id", "FileName"}])``), then fits what depends on the
data: the axis titles (alpha/beta, or "PC1 (xx.x%)" from the surface's
``explained_variance``), the colour range of the loss (minimum to cap; the clamped plateau
above the cap is grey) and the camera (same direction as saved, fitted to this plane).
Writes ``<out>/<plane>_<view>.png`` and prints one line ``wrote <path>`` per picture.

Several views are rendered in one process: between two states the views and sources are
deleted (``ResetSession`` after a render makes 5.11's pvbatch exit with status 1 under Xvfb).
``pipeline.render.pvbatch`` runs this script; errors end it with a one-line message on the
last line of stderr.
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build_states as common  # noqa: E402  (shim, plugin path, view names, camera, colours)
from pipeline.atomic import write_png  # noqa: E402  (importable once build_states has found the package)
from pipeline.errors import LossvistaError  # noqa: E402

READERS = {"surface": common.RunDir.surface, "trajectory": common.RunDir.trajectory}  # reader -> file of a plane


def fail(message):
    sys.stderr.write(f"render_state: {message}\n")
    sys.exit(2)


def reader_ids(state_file):
    """{registration name: proxy id} of the sources in a .pvsm file."""
    root = ET.parse(state_file).getroot()
    ids = {}
    for coll in root.iter("ProxyCollection"):
        if coll.get("name") == "sources":
            for item in coll.iter("Item"):
                ids[item.get("name")] = item.get("id")
    return ids


def render_one(simple, view_name, run, plane, out_dir, states_dir, size):
    state = os.path.join(states_dir, common.STATE_NAME.format(view=view_name))
    if not os.path.isfile(state):
        fail(f"no state file {state}")
    ids = reader_ids(state)
    filenames = []
    for name, path_of in READERS.items():
        path = str(path_of(common.RunDir(run), plane))
        if not os.path.isfile(path):
            fail(f"{path} not found (needed by {os.path.basename(state)})")
        if name not in ids:
            fail(f"{state} has no reader named {name!r}; rebuild it with states/build_states.py")
        filenames.append({"name": name, "id": ids[name], "FileName": [path]})
    simple.LoadState(state, filenames=filenames)
    for name in READERS:
        reader = simple.FindSource(name)
        if reader is not None:
            reader.UpdatePipeline()
        if reader is None or reader.GetDataInformation().GetNumberOfPoints() == 0:
            fail(f"{filenames[list(READERS).index(name)]['FileName'][0]} holds no data "
                 f"(not a VTK XML {'structured grid' if name == 'surface' else 'polydata'} file, or empty)")
    views = simple.GetRenderViews()
    if not views:
        fail(f"{state} holds no render view")
    view = views[0]
    view.ViewSize = list(size)
    common.fit_to_data(simple, view, view_name)
    target = str(common.RunDir.picture(out_dir, plane, view_name))
    try:  # a complete picture replaces the old one, or nothing does
        write_png(target, lambda tmp: simple.SaveScreenshot(str(tmp), view, ImageResolution=list(size),
                                                            TransparentBackground=0))
    except LossvistaError as exc:
        fail(str(exc))
    print(f"wrote {target}", flush=True)
    common.clear_session(simple)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run directory")
    parser.add_argument("--plane", nargs="+", default=["random"],
                        help="random and/or pca (file names surface_<plane>.vts, ...)")
    parser.add_argument("--views", nargs="+", default=list(common.VIEWS), choices=common.STATE_VIEWS)
    parser.add_argument("--out", help="output folder (default: RUN/renders)")
    parser.add_argument("--states", default=HERE, help="folder of the .pvsm files (default: states/)")
    parser.add_argument("--plugin", default=common.PLUGIN, help="the lossvista plugin file (default: beside states/)")
    parser.add_argument("--size", nargs=2, type=int, default=[1200, 900], metavar=("W", "H"))
    args = parser.parse_args(argv)

    run = os.path.abspath(args.run)
    if not os.path.isdir(run):
        fail(f"run directory {run} not found")
    out_dir = os.path.abspath(args.out or str(common.RunDir(run).renders))
    os.makedirs(out_dir, exist_ok=True)

    from paraview import simple

    common.load_plugin(simple, args.plugin)
    for plane in args.plane:
        for name in args.views:
            render_one(simple, name, run, plane, out_dir, os.path.abspath(args.states), args.size)


if __name__ == "__main__":
    main()
