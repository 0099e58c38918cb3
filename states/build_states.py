"""Build lossvista's ParaView state files from a run directory (a pvbatch/pvpython script).

    xvfb-run -a pvbatch states/build_states.py RUN [--plane random] [--out states] [--preview DIR]

RUN holds ``surface_<plane>.vts`` and ``trajectory_<plane>.vtp`` (what ``lossvista run``
writes), for the volume states ``volume_<plane>.vti`` and ``trajectory_volume_<plane>.vtp``
(``lossvista volume``), for the animations ``evolve/landscape.pvd`` and ``evolve/path_pca.pvd``
(``lossvista evolve``; without them those states are not rebuilt). One state per view is
written to ``--out`` (default: this folder); the volume views are ``volume_<view>.pvsm``
(:mod:`volume_states`), the animations ``animation_<name>.pvsm`` (:mod:`animation_states`):

landscape_2d_contours.pvsm
    Contour lines of the loss on the (alpha, beta) plane seen from above.
landscape_3d_contours.pvsm
    The same lines lifted to their level on the warped surface.
landscape_3d_mesh.pvsm
    The warped surface as a wireframe mesh coloured by loss.
landscape_3d_surface.pvsm
    The warped surface coloured by loss, with dark contour lines on it.
landscape_eig_ratio.pvsm
    The plane seen from above coloured by ``eig_ratio`` = |lambda_min / lambda_max| of the
    Hessian (Li et al. 2018, section 6), with the loss's contour lines in white; it needs a
    surface with curvature maps (``lossvista surface --hessian``): ``--views eig_ratio``.

Every state also shows the descent path (red tube, colour absent from the viridis loss map;
black sphere at the start, gold sphere at the end) and the critical points of
``Loss Critical Points`` (spheres coloured by type, the quick-look colours), with scalar
bars for loss, the critical-point types and the path's markers, axis titles, a white
background and a fixed camera direction. Sizes of lines and markers are in pixels, so a
state looks the same on any plane, however large.

Data files are read by two readers registered as ``surface`` and ``trajectory``; every
other source is derived from them, so a state loads on any run:
``LoadState(state, data_directory=RUN)`` (random plane: the files keep their names) or
``LoadState(state, filenames=[{"name": "surface", "id": <proxy id>, "FileName": ...}, ...])``
(any plane; ``states/render_state.py`` does this and also fits the camera, the colour
ranges and the axis titles to the run).

The plugin ``paraview_plugins/lossvista_filters.py`` must be loaded before a state is (a
state names the filters but not the plugin); this script and ``render_state.py`` do it.
Loading the plugin also makes lossvista's ``pipeline`` package importable, whose display rules
(:mod:`pipeline.display`: colours, views) the states share with the quick-look pictures.
"""
import argparse
import inspect
import json
import os
import sys

if not hasattr(inspect, "getargspec"):  # Debian ParaView 5.11 + Python 3.11 (paraview_plugins/sitecustomize.py)
    inspect.getargspec = inspect.getfullargspec

HERE = os.path.dirname(os.path.abspath(__file__))
# the plugin sits in paraview_plugins/ beside this folder, in a checkout and in an installed package
PLUGIN = os.path.join(os.path.dirname(HERE), "paraview_plugins", "lossvista_filters.py")


def _import_plugin_module(path):
    """Run the plugin file as a module: it makes ``pipeline`` importable (see its ``_import_pipeline``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lossvista_filters_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_import_plugin_module(PLUGIN)
from pipeline import display  # noqa: E402
from pipeline.render.pvsm import relative_data_files  # noqa: E402
from pipeline.rundir import RunDir  # noqa: E402

VIEWS = display.VIEWS  # the landscape states, built by default
STATE_VIEWS = display.VIEWS + display.HESSIAN_VIEWS  # every state (eig_ratio needs a surface with curvature maps)
STATE_NAME = "landscape_{view}.pvsm"

# Colours of pipeline.display, shared with the quick looks (the pyvista/matplotlib pictures).
PATH_RGB = display.rgb(display.PATH_COLOR)
START_RGB = display.rgb(display.START_COLOR)
END_RGB = display.rgb(display.END_COLOR)
CRITICAL = [(code, label, display.rgb(color))  # TTK code, label, colour; code 2 is drawn as 1
            for code, (label, color, _) in display.CRITICAL_STYLE.items() if code != 2]
CRITICAL_PERSISTENCE = 0.01  # shown: features above 1 % of the loss range from minimum to cap
TEXT_RGB = [0.1, 0.1, 0.1]
BACKGROUND_RGB = [1.0, 1.0, 1.0]
LOSS_PRESET = "Viridis (matplotlib)"
# ASCII: ParaView's bundled fonts have no Greek letters
RANDOM_TITLES = ("alpha (direction 1)", "beta (direction 2)")
ABOVE_CAP_RGB = display.rgb(display.DIVERGENT_COLOR)  # above the cap (the clamped plateau)
VALUE_BAR_X = 0.89  # left edge of the colour bar of values (loss, eig_ratio), a fraction of the width
VALUE_BAR_ROOM = 110  # pixels from that edge to the right end of its tick labels and vertical title

# Rendering sizes, in pixels (independent of the plane's extent).
SIZE = {"path": 6.0, "marker": 26.0, "critical": 13.0, "contour": 2.0, "contour_on_surface": 1.5, "mesh": 1.0}

# Camera directions: 3D views look from the (-alpha, -beta) side, 35 degrees above the plane.
CAMERA_3D = {"direction": (-0.55, -0.85, 0.62), "view_up": (0.0, 0.0, 1.0)}
CAMERA_2D = {"direction": (0.0, 0.0, 1.0), "view_up": (0.0, 1.0, 0.0)}


def load_plugin(simple, plugin=PLUGIN):
    simple.LoadPlugin(plugin, remote=False)  # adds the filters to paraview.simple


def _loss_lut(simple):
    lut = simple.GetColorTransferFunction("loss")
    lut.ApplyPreset(LOSS_PRESET, True)
    lut.UseLogScale = 1  # losses are positive; levels are log-spaced
    lut.AutomaticRescaleRangeMode = "Grow and update on 'Apply'"
    lut.NanColor = display.rgb(display.DIVERGENT_COLOR)
    return lut


def _categorical_lut(simple, array, entries):
    lut = simple.GetColorTransferFunction(array)
    lut.InterpretValuesAsCategories = 1
    lut.AnnotationsInitialized = 1
    lut.Annotations = [x for code, label, _ in entries for x in (str(code), label)]
    lut.IndexedColors = [c for _, _, rgb in entries for c in rgb]
    return lut


def _style_bar(bar, title, position, length=0.33):
    bar.Title = title
    bar.ComponentTitle = ""
    bar.WindowLocation = "Any Location"
    bar.Orientation = "Vertical"
    bar.Position = list(position)
    bar.ScalarBarLength = length
    bar.TitleColor = TEXT_RGB
    bar.LabelColor = TEXT_RGB
    bar.TitleFontSize = 16
    bar.LabelFontSize = 14
    bar.RangeLabelFormat = "%-#.3g"
    bar.Visibility = 1


def _style_view(view, three_d):
    view.ViewSize = [1200, 900]
    view.OrientationAxesVisibility = 0
    view.UseColorPaletteForBackground = 0
    view.BackgroundColorMode = "Single Color"
    view.Background = BACKGROUND_RGB
    view.UseFXAA = 1
    view.CameraParallelProjection = 0 if three_d else 1
    grid = view.AxesGrid
    grid.Visibility = 1
    grid.XTitle, grid.YTitle, grid.ZTitle = RANDOM_TITLES[0], RANDOM_TITLES[1], ""
    # z is scale x loss, not loss: no labels on it (the colour bar reads loss)
    grid.ZAxisUseCustomLabels = 1
    grid.ZAxisLabels = []
    grid.FacesToRender = 63 if three_d else 4  # 2D: only the z-min face (the plane)
    grid.GridColor = [0.55, 0.55, 0.55]
    for axis in "XYZ":
        setattr(grid, f"{axis}TitleColor", TEXT_RGB)
        setattr(grid, f"{axis}LabelColor", TEXT_RGB)
        setattr(grid, f"{axis}TitleFontSize", 16)
        setattr(grid, f"{axis}LabelFontSize", 14)


def _show_path(simple, view, path_src):
    """The path as a red tube and its start/end markers."""
    rep = simple.Show(path_src, view)
    rep.ColorArrayName = ["POINTS", ""]  # solid colour
    rep.Representation = "Surface"
    rep.AmbientColor = rep.DiffuseColor = PATH_RGB
    rep.LineWidth = SIZE["path"]
    rep.RenderLinesAsTubes = 1
    rep.Specular = 0.3
    # marker: 1 at the first epoch, 2 at the last (works for any number of checkpoints);
    # vertices first, since Threshold keeps whole cells and the path is one polyline
    marks = simple.PythonCalculator(registrationName="path markers", Input=path_src)
    marks.Expression = "(epoch == min(epoch)) * 1 + (epoch == max(epoch)) * 2"
    marks.ArrayName = "marker"
    verts = simple.MaskPoints(registrationName="path vertices", Input=marks)
    verts.OnRatio = 1
    verts.MaximumNumberofPoints = 1000000
    verts.GenerateVertices = 1
    verts.SingleVertexPerCell = 1
    ends = simple.Threshold(registrationName="path ends", Input=verts)
    ends.Scalars = ["POINTS", "marker"]
    ends.LowerThreshold, ends.UpperThreshold = 0.5, 2.5
    ends.ThresholdMethod = "Between"
    rep_ends = simple.Show(ends, view)
    rep_ends.Representation = "Points"
    rep_ends.PointSize = SIZE["marker"]
    rep_ends.RenderPointsAsSpheres = 1
    rep_ends.Opacity = 0.6  # a halo: a critical point at the same place stays visible
    lut = _categorical_lut(simple, "marker", [(1, "start", START_RGB), (2, "end", END_RGB)])
    simple.ColorBy(rep_ends, ("POINTS", "marker"))
    rep_ends.LookupTable = lut
    rep_ends.SetScalarBarVisibility(view, True)
    _style_bar(simple.GetScalarBar(lut, view), "descent path", (0.89, 0.08), length=0.12)
    return rep


def _show_critical(simple, view, cp_src):
    rep = simple.Show(cp_src, view)
    rep.Representation = "Points"
    rep.PointSize = SIZE["critical"]
    rep.RenderPointsAsSpheres = 1
    lut = _categorical_lut(simple, "CriticalType", CRITICAL)
    simple.ColorBy(rep, ("POINTS", "CriticalType"))
    rep.LookupTable = lut
    rep.SetScalarBarVisibility(view, True)
    _style_bar(simple.GetScalarBar(lut, view), "critical points", (0.89, 0.3), length=0.2)
    return rep


def _show_eig_ratio(simple, view, surface, contours):
    """The plane coloured by eig_ratio (grey where it has no value) and the loss's contours in white."""
    rep = simple.Show(surface, view)
    rep.Representation = "Surface"
    simple.ColorBy(rep, ("POINTS", "eig_ratio"))
    lut = simple.GetColorTransferFunction("eig_ratio")
    lut.ApplyPreset(LOSS_PRESET, True)
    lut.NanColor = display.rgb(display.DIVERGENT_COLOR)
    lut.AutomaticRescaleRangeMode = "Never"
    rep.LookupTable = lut
    rep.SetScalarBarVisibility(view, True)
    _style_bar(simple.GetScalarBar(lut, view), "abs(lambda_min / lambda_max)", (VALUE_BAR_X, 0.58), length=0.36)
    lines = simple.Show(contours, view)
    lines.ColorArrayName = ["POINTS", ""]
    lines.AmbientColor = lines.DiffuseColor = [1.0, 1.0, 1.0]
    lines.LineWidth = SIZE["contour_on_surface"]
    return rep


def _color_by_loss(simple, view, rep, lut):
    simple.ColorBy(rep, ("POINTS", "loss"))
    rep.LookupTable = lut
    rep.SetScalarBarVisibility(view, True)
    _style_bar(simple.GetScalarBar(lut, view), "loss", (VALUE_BAR_X, 0.58), length=0.36)


def fit_loss_bar(simple, view, meta):
    """Title the loss's colour bar with the loss's name (:func:`pipeline.display.array_label` of
    the surface's metadata ``meta``) and fit the bars of values to the picture's width."""
    for rep in _loss_representations(simple, view):
        simple.GetScalarBar(rep.LookupTable, view).Title = display.array_label(meta, "loss")
    fit_value_bars(simple, view)


def fit_value_bars(simple, view):
    """Move the visible colour bars of values (not the categorical legends, whose labels are on
    their left) left of ``VALUE_BAR_X`` where the picture is too narrow for their tick labels and
    title (under 1000 pixels wide: an 800 x 600 animation frame, the GUI's view)."""
    width = max(int(view.ViewSize[0]), 1)
    x = min(VALUE_BAR_X, 1.0 - VALUE_BAR_ROOM / width)
    for bar in view.Representations:  # the view's bars as they are (GetScalarBar would add missing ones)
        if bar.GetXMLName() != "ScalarBarWidgetRepresentation" or not bar.Visibility:
            continue
        lut = bar.LookupTable
        if lut is not None and not lut.InterpretValuesAsCategories:
            bar.Position = [x, list(bar.Position)[1]]


def build_view(simple, view_name, surface_file, trajectory_file):
    """Create the readers, filters and the render view of one state; return the view."""
    three_d = view_name.startswith("3d")
    view = simple.CreateView("RenderView")
    simple.AssignViewToLayout(view)
    _style_view(view, three_d)

    surface = simple.XMLStructuredGridReader(registrationName="surface", FileName=[surface_file])
    path = simple.XMLPolyDataReader(registrationName="trajectory", FileName=[trajectory_file])
    capped = simple.LossThreshold(registrationName="Loss Threshold", Input=surface)
    capped.Mode = "Clamp at cap"  # contours stay closed up to the cap; 3D: a plateau above it
    capped.CapMode = "Multiple of max(centre value, chance loss)"  # as the quick looks
    capped.CapFactor = 5.0
    # on the capped surface: the relative threshold then refers to the range shown (min to cap),
    # not to divergent corners, and the clamped plateau adds no critical point
    critical = simple.LossCriticalPoints(registrationName="Loss Critical Points", Input=capped)
    critical.ThresholdMode = "Relative to value range"
    critical.PersistenceThreshold = CRITICAL_PERSISTENCE
    contours = simple.LossContours(registrationName="Loss Contours", Input=capped)
    contours.NumberOfLevels = 20
    contours.Spacing = "Log"
    lut = _loss_lut(simple)

    if three_d:
        def warp(name, src):
            w = simple.WarpByLoss(registrationName=name, Input=src, Surface=capped)
            w.ReliefFraction = display.RELIEF_FRACTION
            return w

        path_shown = warp("Warp path", path)
        critical_shown = warp("Warp critical points", simple.OutputPort(critical, 0))
    else:
        path_shown = path
        critical_shown = simple.OutputPort(critical, 0)

    if view_name == "eig_ratio":
        _show_eig_ratio(simple, view, surface, contours)
    elif view_name in ("2d_contours", "3d_contours"):
        lines = warp("Warp contours", contours) if three_d else contours
        rep = simple.Show(lines, view)
        rep.LineWidth = SIZE["contour"]
        _color_by_loss(simple, view, rep, lut)
        if not three_d:  # the plane's edge: the axes then span the whole plane, lines or not
            edge = simple.Show(capped, view)
            edge.Representation = "Outline"
            edge.ColorArrayName = ["POINTS", ""]
            edge.AmbientColor = edge.DiffuseColor = [0.55, 0.55, 0.55]
    else:
        warped = warp("Warp surface", capped)
        rep = simple.Show(warped, view)
        _color_by_loss(simple, view, rep, lut)
        if view_name == "3d_mesh":
            rep.Representation = "Wireframe"
            rep.LineWidth = SIZE["mesh"]
        else:
            rep.Representation = "Surface"
            rep.Specular = 0.15
            lines = simple.Show(warp("Warp contours", contours), view)
            lines.ColorArrayName = ["POINTS", ""]
            lines.AmbientColor = lines.DiffuseColor = [0.12, 0.12, 0.12]
            lines.LineWidth = SIZE["contour_on_surface"]
    _show_path(simple, view, path_shown)
    _show_critical(simple, view, critical_shown)
    fit_to_data(simple, view, view_name)
    return view


def axis_titles(meta):
    """The quick looks' axis titles (:func:`pipeline.display.axis_labels`) in ASCII: ("PC1 (71.2%)",
    "PC2 (18.3%)") for a PCA plane, the eigenvectors and their eigenvalues for a Hessian plane, else
    RANDOM_TITLES."""
    return display.axis_labels(meta, unicode=False)


def field_record(simple, source, name):
    """JSON object in the field data array ``name`` of ``source``'s output, or {}."""
    data = simple.servermanager.Fetch(source)
    arr = data.GetFieldData().GetAbstractArray(name) if data is not None else None
    if arr is None or arr.GetNumberOfValues() < 1:
        return {}
    try:
        value = json.loads(arr.GetValue(0))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _loss_representations(simple, view):
    for src in simple.GetSources().values():
        rep = simple.servermanager.GetRepresentation(src, view) if src is not None else None
        if (rep is not None and rep.Visibility and rep.GetProperty("ColorArrayName") is not None  # text has none
                and list(rep.ColorArrayName)[1:] == ["loss"]):
            yield rep


def fit_colours(simple, view):
    """Loss colours from the minimum to the cap; the clamped plateau above the cap is grey."""
    capped = simple.FindSource("Loss Threshold")
    if capped is None or "loss" not in capped.PointData.keys():
        return
    record = field_record(simple, capped, "lossvista_threshold")
    lo, hi = capped.PointData["loss"].GetRange()
    hi = record.get("cap", hi)
    if not hi > lo:
        return
    if record.get("mode") == "clamp":
        hi *= 1 - 1e-3  # the plateau (== cap) takes the above-range colour, without speckles
    for rep in _loss_representations(simple, view):
        lut = rep.LookupTable
        if lut.UseLogScale and lo <= 0:
            lut.UseLogScale = 0
        lut.UseAboveRangeColor = 1
        lut.AboveRangeColor = ABOVE_CAP_RGB
        lut.AutomaticRescaleRangeMode = "Never"
        lut.RescaleTransferFunction(lo, hi)


def fit_ratio_colours(simple, view):
    """eig_ratio colours from 0 to its largest value on this surface."""
    surface = simple.FindSource("surface")
    if surface is None or "eig_ratio" not in surface.PointData.keys():
        return
    lo, hi = surface.PointData["eig_ratio"].GetRange()
    if hi > 0:
        simple.GetColorTransferFunction("eig_ratio").RescaleTransferFunction(0.0, hi)


def fit_to_data(simple, view, view_name):
    """Fit what depends on the data: axis titles, the loss's name on its colour bar
    (:func:`pipeline.display.array_label`), loss colour range, camera (after a render)."""
    surface = simple.FindSource("surface")
    meta = field_record(simple, surface, "losscape_meta")
    x_title, y_title = axis_titles(meta)
    view.AxesGrid.XTitle, view.AxesGrid.YTitle = x_title, y_title
    fit_loss_bar(simple, view, meta)
    fit_colours(simple, view)
    if view_name in display.HESSIAN_VIEWS:
        fit_ratio_colours(simple, view)
    simple.Render(view)  # the first render resets the camera; fit it afterwards
    fit_camera(simple, view, three_d=view_name.startswith("3d"))


def _visible_bounds(simple, view):
    """Union of the bounds of what the view shows (x0, x1, y0, y1, z0, z1)."""
    out = None
    for src in simple.GetSources().values():
        rep = simple.servermanager.GetRepresentation(src, view)
        if rep is None or not rep.Visibility:
            continue
        b = src.GetDataInformation().GetBounds()
        if b[0] > b[1]:
            continue  # empty
        out = list(b) if out is None else [min(out[k], b[k]) if k % 2 == 0 else max(out[k], b[k]) for k in range(6)]
    return out


def fit_camera(simple, view, three_d, legend_room=0.22):
    """Look along the fixed direction and frame the data (any plane size or shape).

    The picture's right ``legend_room`` is left to the colour bars; the scene is scaled and
    centred in the rest, with margins for the axis labels and titles.
    """
    cam = CAMERA_3D if three_d else CAMERA_2D
    width, height = view.ViewSize
    camera = view.GetActiveCamera()
    if three_d:
        view.CameraFocalPoint = [0.0, 0.0, 0.0]
        view.CameraPosition = list(cam["direction"])
        view.CameraViewUp = list(cam["view_up"])
        view.ResetCamera(False)
        bounds = _visible_bounds(simple, view)
        if bounds is not None:
            _frame(camera, bounds, width, height, legend_room, fill=(0.74, 0.78))
    else:  # the plane seen from above, framed by its own bounds
        b = simple.FindSource("surface").GetDataInformation().GetBounds()
        cx, cy = (b[0] + b[1]) / 2, (b[2] + b[3]) / 2
        camera.SetFocalPoint(cx, cy, 0.0)
        camera.SetPosition(cx, cy, 1.0 + 10 * max(b[1] - b[0], b[3] - b[2]))
        camera.SetViewUp(*cam["view_up"])
        camera.SetParallelScale(1.0)
        _frame(camera, list(b[:4]) + [0.0, 0.0], width, height, legend_room, fill=(0.62, 0.62))
    view.CameraFocalPoint = list(camera.GetFocalPoint())
    view.CameraPosition = list(camera.GetPosition())
    view.CameraViewUp = list(camera.GetViewUp())
    view.CameraParallelScale = camera.GetParallelScale()


def _frame(camera, bounds, width, height, legend_room, fill):
    """Zoom and pan ``camera`` so that the box ``bounds`` fills ``fill`` (x, y fractions) of the
    picture left of the legends, centred there. Two passes (perspective is not linear)."""
    import math

    aspect = width / height
    corners = [(x, y, z) for x in bounds[0:2] for y in bounds[2:4] for z in bounds[4:6]]
    for _ in range(3):
        m = camera.GetCompositeProjectionTransformMatrix(aspect, -1, 1)
        ndc = []
        for c in corners:
            v = [sum(m.GetElement(r, k) * (list(c) + [1.0])[k] for k in range(4)) for r in range(4)]
            ndc.append((v[0] / v[3], v[1] / v[3]))
        xs, ys = [p[0] for p in ndc], [p[1] for p in ndc]
        span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
        room_x = 2 * (1 - legend_room) * fill[0]
        zoom = min(room_x / span_x if span_x > 0 else math.inf, 2 * fill[1] / span_y if span_y > 0 else math.inf)
        if not math.isfinite(zoom):
            return
        # pan: the box's centre to the centre of the plot area (NDC x = -legend_room, y = 0)
        dx, dy = (max(xs) + min(xs)) / 2 + legend_room, (max(ys) + min(ys)) / 2
        if camera.GetParallelProjection():
            half_h = camera.GetParallelScale()
        else:
            half_h = camera.GetDistance() * math.tan(math.radians(camera.GetViewAngle()) / 2)
        fp, pos, up = camera.GetFocalPoint(), camera.GetPosition(), camera.GetViewUp()
        dop = [f - p for f, p in zip(fp, pos)]
        right = [dop[1] * up[2] - dop[2] * up[1], dop[2] * up[0] - dop[0] * up[2], dop[0] * up[1] - dop[1] * up[0]]
        rn = math.sqrt(sum(c * c for c in right)) or 1.0
        upn = math.sqrt(sum(c * c for c in up)) or 1.0
        move = [dx * half_h * aspect * r / rn + dy * half_h * u / upn for r, u in zip(right, up)]
        camera.SetFocalPoint(*[f + d for f, d in zip(fp, move)])
        camera.SetPosition(*[p + d for p, d in zip(pos, move)])
        if camera.GetParallelProjection():
            camera.SetParallelScale(camera.GetParallelScale() / zoom)
        else:
            camera.Dolly(zoom)


def single_view_layout(simple, view):
    """Make ``view`` fill its layout alone: the saved states hold it in one half of a split
    layout whose other half is empty (the GUI shows a "Create View" panel there). The empty
    cells beside it are collapsed, so that the GUI keeps the view's widget where it is."""
    layout = simple.GetLayout(view)
    if layout is None:
        layout = simple.CreateLayout()
        simple.AssignViewToLayout(view=view, layout=layout, hint=0)
        return layout
    cells = layout.SMProxy
    where = cells.GetViewLocation(view.SMProxy)
    while where > 0:
        sibling = where - 1 if where % 2 == 0 else where + 1  # children of cell k: 2k+1, 2k+2
        if cells.IsSplitCell(sibling) or cells.GetView(sibling) is not None:
            break  # another view shares the layout: keep it
        cells.Collapse(sibling)
        where = cells.GetViewLocation(view.SMProxy)
    return layout


def clear_session(simple):
    """Delete views, sources and colour maps (ResetSession after a render crashes 5.11's
    pvbatch under Xvfb); the next state then starts from nothing."""
    for view in list(simple.GetViews()):
        simple.Delete(view)
    # sinks first: a source cannot be deleted while a filter uses it
    for _ in range(10):
        left = list(simple.GetSources().values())
        if not left:
            break
        for src in left:
            try:
                simple.Delete(src)
            except RuntimeError:
                pass
    pxm = simple.servermanager.ProxyManager()
    for group in ("lookup_tables", "piecewise_functions", "scalar_bars"):
        for (name, _id), proxy in list(pxm.GetProxiesInGroup(group).items()):
            pxm.UnRegisterProxy(group, name, proxy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run directory with surface_<plane>.vts and trajectory_<plane>.vtp")
    parser.add_argument("--plane", default="random", help="plane whose files the states are built from")
    parser.add_argument("--out", default=HERE, help="folder for the .pvsm files (default: states/)")
    parser.add_argument("--views", nargs="*", default=list(VIEWS) + list(display.VOLUME_VIEWS),
                        choices=list(STATE_VIEWS) + list(display.VOLUME_VIEWS))
    parser.add_argument("--animations", nargs="*", default=list(display.ANIMATIONS), choices=display.ANIMATIONS,
                        help="animation states to build (default: both, when the run has their files)")
    parser.add_argument("--preview", metavar="DIR", help="also save a PNG of each view here")
    args = parser.parse_args(argv)

    run = os.path.abspath(args.run)
    files = [str(RunDir(run).surface(args.plane)), str(RunDir(run).trajectory(args.plane))]
    volume_files = [str(RunDir(run).volume(args.plane)), str(RunDir(run).trajectory(f"volume_{args.plane}"))]
    views = list(args.views)
    missing = [f for f in files if not os.path.isfile(f)] if set(views) - set(display.VOLUME_VIEWS) else []
    if missing:
        sys.exit(f"build_states: missing {', '.join(missing)}")
    if not all(os.path.isfile(f) for f in volume_files):
        views = [v for v in views if v not in display.VOLUME_VIEWS]
        print(f"no {os.path.basename(volume_files[0])} with its path: the volume states are not rebuilt")
    animation_files = {"landscape": {"landscape": str(RunDir(run).evolve / "landscape.pvd")},
                       "path": {"surface": str(RunDir(run).surface("pca")),
                                "trajectory": str(RunDir(run).trajectory("pca")),
                                "marker": str(RunDir(run).path_markers("pca"))}}
    animations = [a for a in args.animations if all(os.path.isfile(f) for f in animation_files[a].values())]
    for a in sorted(set(args.animations) - set(animations)):
        print(f"no {', '.join(animation_files[a].values())}: the {a} animation state is not rebuilt")
    os.makedirs(args.out, exist_ok=True)

    from paraview import simple

    sys.path.insert(0, HERE)
    import volume_states

    load_plugin(simple)
    for name in views:
        if name in display.VOLUME_VIEWS:
            view = volume_states.build_volume_view(simple, sys.modules[__name__], name, *volume_files)
            target = os.path.join(args.out, volume_states.STATE_NAME.format(view=name))
        else:
            view = build_view(simple, name, *files)
            target = os.path.join(args.out, STATE_NAME.format(view=name))
        simple.Render(view)
        simple.SaveState(target)
        relative_data_files(target, run)  # names only: no machine's paths in the repository
        print(f"wrote {target}")
        if args.preview:
            os.makedirs(args.preview, exist_ok=True)
            plane = f"volume_{args.plane}" if name in display.VOLUME_VIEWS else args.plane
            png = str(RunDir.picture(args.preview, plane, name))
            simple.SaveScreenshot(png, view, ImageResolution=list(view.ViewSize))
            print(f"wrote {png}")
        clear_session(simple)
    import animation_states

    for name in animations:
        view = animation_states.build_animation_view(simple, sys.modules[__name__], name, animation_files[name])
        target = os.path.join(args.out, animation_states.STATE_NAME.format(name=name))
        simple.SaveState(target)
        relative_data_files(target, run)
        print(f"wrote {target}")
        if args.preview:
            os.makedirs(args.preview, exist_ok=True)
            png = os.path.join(args.preview, f"animation_{name}.png")
            simple.SaveScreenshot(png, view, ImageResolution=list(view.ViewSize))
            print(f"wrote {png}")
        clear_session(simple)


if __name__ == "__main__":
    main()
