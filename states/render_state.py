"""Render lossvista's ParaView states on a run's files (a pvbatch script).

    xvfb-run -a pvbatch states/render_state.py RUN [--plane random pca volume_random] [--views ...]
        [--out RUN/renders]

For each view, loads ``states/landscape_<view>.pvsm`` with the readers ``surface`` and
``trajectory`` pointed at ``RUN/surface_<plane>.vts`` and ``RUN/trajectory_<plane>.vtp``
(``LoadState(..., filenames=[{"name", "id", "FileName"}])``), then fits what depends on the
data: the axis titles (alpha/beta, or "PC1 (xx.x%)" from the surface's
``explained_variance``), the colour range of the loss (minimum to cap; the clamped plateau
above the cap is grey) and the camera (same direction as saved, fitted to this plane).
A plane ``volume_<kind>`` takes the volume views (``states/volume_<view>.pvsm``, readers
``volume`` and ``trajectory`` on ``RUN/volume_<kind>.vti`` and ``RUN/trajectory_volume_<kind>.vtp``);
views that do not apply to a plane are skipped. Writes ``<out>/<plane>_<view>.png`` and prints
one line ``wrote <path>`` per picture; saves the state so loaded and fitted as
``RUN/states/<plane>_<view>.pvsm``, its data files relative to that folder
(``../surface_<plane>.vts``), and prints ``wrote state <path>``. ParaView opens it directly
(``lossvista paraview RUN/states/<plane>_<view>.pvsm``), after the run has moved too.

``--animations landscape path`` plays ``states/animation_<name>.pvsm`` on the run's
``evolve/landscape.pvd`` (readers ``landscape``), or on ``surface_pca.vts``,
``trajectory_pca.vtp`` and ``evolve/path_pca.pvd`` (``surface``, ``trajectory``, ``marker``),
and saves one frame per time step (``SaveAnimation``) as ``evolve/frames/<name>.<nnnn>.png``
(``path`` is named ``path_pca``), replacing the animation's old frames once the new ones are
written; one line ``wrote <frame>`` each.

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
from pipeline.atomic import atomic_path, write_png  # noqa: E402  (importable once build_states has found the package)
from pipeline.errors import LossvistaError  # noqa: E402
from pipeline.render.pvsm import relative_data_files  # noqa: E402

import animation_states  # noqa: E402
import volume_states  # noqa: E402

READERS = {"surface": common.RunDir.surface, "trajectory": common.RunDir.trajectory}  # reader -> file of a plane
VOLUME_READERS = {"volume": common.RunDir.volume, "trajectory": common.RunDir.trajectory}  # of a plane volume_<kind>


def is_volume(plane):
    return plane.startswith("volume_")


def views_of(plane, views):
    """The asked views that apply to ``plane`` (a volume's or a plane's)."""
    own = volume_states.VIEWS if is_volume(plane) else common.STATE_VIEWS
    return [v for v in views if v in own]


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


def load_state(simple, state, files):
    """Load ``state`` with its readers ({registration name: file}) pointed at ``files``.

    Raises ``LossvistaError`` when the state, a file or a reader is missing.
    """
    if not os.path.isfile(state):
        raise LossvistaError(f"no state file {state}")
    ids = reader_ids(state)
    filenames = []
    for name, path in files.items():
        if not os.path.isfile(path):
            raise LossvistaError(f"{path} not found (needed by {os.path.basename(state)})")
        if name not in ids:
            raise LossvistaError(f"{state} has no reader named {name!r}; rebuild it with states/build_states.py")
        filenames.append({"name": name, "id": ids[name], "FileName": [path]})
    simple.LoadState(state, filenames=filenames)


def load_view(simple, view_name, run, plane, states_dir):
    """Load ``landscape_<view>.pvsm`` (a volume's ``volume_<view>.pvsm``) on the files of
    ``plane`` of ``run``; return its render view.

    Raises ``LossvistaError`` when a file or reader is missing or a reader reads no data.
    """
    readers = VOLUME_READERS if is_volume(plane) else READERS
    pattern = volume_states.STATE_NAME if is_volume(plane) else common.STATE_NAME
    state = os.path.join(states_dir, pattern.format(view=view_name))
    files = {name: str(path_of(common.RunDir(run), plane)) for name, path_of in readers.items()}
    load_state(simple, state, files)
    for name in readers:
        reader = simple.FindSource(name)
        if reader is not None:
            reader.UpdatePipeline()
        if reader is None or reader.GetDataInformation().GetNumberOfPoints() == 0:
            kind = {"surface": "structured grid", "volume": "image data"}.get(name, "polydata")
            raise LossvistaError(f"{files[name]} holds no data (not a VTK XML {kind} file, or empty)")
    views = simple.GetRenderViews()
    if not views:
        raise LossvistaError(f"{state} holds no render view")
    return views[0]


def save_run_state(simple, run, plane, view_name):
    """Save the loaded, fitted state as ``RUN/states/<plane>_<view>.pvsm``, its data files
    relative to that folder (``../surface_<plane>.vts``), so that it opens after the run
    directory has moved; return its path."""
    target = common.RunDir(run).state(plane, view_name)
    common.single_view_layout(simple, simple.GetRenderViews()[0])
    with atomic_path(target, suffix=".pvsm", make_parents=True) as tmp:
        simple.SaveState(str(tmp))
        relative_data_files(tmp, target.parent)
    return target


def render_one(simple, view_name, run, plane, out_dir, states_dir, size):
    view = load_view(simple, view_name, run, plane, states_dir)
    view.ViewSize = list(size)
    if is_volume(plane):
        volume_states.fit_volume(simple, common, view, view_name)
    else:
        common.fit_to_data(simple, view, view_name)
    target = str(common.RunDir.picture(out_dir, plane, view_name))
    # a complete picture replaces the old one, or nothing does
    write_png(target, lambda tmp: simple.SaveScreenshot(str(tmp), view, ImageResolution=list(size),
                                                        TransparentBackground=0))
    print(f"wrote {target}", flush=True)
    try:  # the picture is what was asked; a run directory that cannot be written keeps no state
        print(f"wrote state {save_run_state(simple, run, plane, view_name)}", flush=True)
    except LossvistaError as exc:
        sys.stderr.write(f"render_state: warning: no ParaView state saved in the run: {exc}\n")
    common.clear_session(simple)


def animation_readers(run, name):
    """{reader name: file} of the animation ``name`` on ``run``."""
    d = common.RunDir(run)
    if name == "landscape":
        return {"landscape": str(d.evolve / "landscape.pvd")}
    return {"surface": str(d.surface("pca")), "trajectory": str(d.trajectory("pca")),
            "marker": str(d.path_markers("pca"))}


def render_animation(simple, name, run, states_dir, size):
    """The frames of one animation, into ``RUN/evolve/frames/``."""
    import glob
    import shutil
    import tempfile

    state = os.path.join(states_dir, animation_states.STATE_NAME.format(name=name))
    load_state(simple, state, animation_readers(run, name))
    for reader, path in animation_readers(run, name).items():
        renamed = simple.FindSource(os.path.basename(path))  # LoadState names a PVDReader after its file
        if simple.FindSource(reader) is None and renamed is not None:
            simple.RenameSource(reader, renamed)
        if simple.FindSource(reader) is None:
            fail(f"{state}: no reader {reader!r} after loading it")
    views = simple.GetRenderViews()
    if not views:
        fail(f"{state} holds no render view")
    view = views[0]
    view.ViewSize = list(size)
    evolve_dir = str(common.RunDir(run).evolve)
    animation_states.fit_animation(simple, common, view, name, unit=animation_states.evolution_unit(evolve_dir))
    steps = animation_states.time_steps(simple)
    if not steps:
        fail(f"{state}: the time series holds no time steps")
    stem = common.display.ANIMATION_FILES[name]
    frames_dir = os.path.join(evolve_dir, "frames")
    os.makedirs(frames_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{stem}-", dir=frames_dir)
    try:
        simple.SaveAnimation(os.path.join(tmp, f"{stem}.png"), view, ImageResolution=list(size),
                             FrameWindow=[0, len(steps) - 1], TransparentBackground=0)
        made = sorted(glob.glob(os.path.join(tmp, f"{stem}.*.png")))
        if len(made) != len(steps):
            fail(f"SaveAnimation wrote {len(made)} frames of {len(steps)} time steps")
        for old in glob.glob(os.path.join(frames_dir, f"{stem}.*.png")):
            os.remove(old)
        for frame in made:
            target = os.path.join(frames_dir, os.path.basename(frame))
            os.replace(frame, target)
            print(f"wrote {target}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    common.clear_session(simple)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run directory")
    parser.add_argument("--plane", nargs="*", default=["random"],
                        help="random, pca, hessian (file names surface_<plane>.vts, ...) and/or volume_random, "
                        "volume_pca")
    parser.add_argument("--views", nargs="+", default=list(common.VIEWS) + list(volume_states.VIEWS),
                        choices=list(common.STATE_VIEWS) + list(volume_states.VIEWS))
    parser.add_argument("--animations", nargs="*", default=[], choices=animation_states.NAMES,
                        help="also these animations of lossvista evolve (frames in RUN/evolve/frames)")
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
    try:
        for plane in args.plane:
            for name in views_of(plane, args.views):
                render_one(simple, name, run, plane, out_dir, os.path.abspath(args.states), args.size)
        for name in args.animations:
            render_animation(simple, name, run, os.path.abspath(args.states), args.size)
    except LossvistaError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()
