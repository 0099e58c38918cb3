"""The ParaView views of a volume (``volume_<kind>.vti``), imported by ``build_states.py`` and
``render_state.py`` (pvbatch/pvpython scripts).

volume_isosurfaces.pvsm
    Nested translucent isosurfaces of the loss at log-spaced levels from the minimum to the cap,
    coloured by their level, with the descent path in the volume and the critical points.
volume_volume_rendering.pvsm
    The volume rendered directly: log10 of the loss, opaque near the minima, clear where the loss
    is high, with the path and the critical points.
volume_slices.pvsm
    Three orthogonal slices through the final weights (the origin), coloured by loss, with the
    path and the critical points.

Every state reads the data through two readers registered as ``volume`` (XMLImageDataReader)
and ``trajectory`` (the path in the volume, ``trajectory_volume_<kind>.vtp``); everything else
is derived from them, so a state loads on any run (``render_state.py`` remaps the two files).
The colours, levels and critical-point styles are :mod:`pipeline.display`'s.
"""
from pipeline import display

STATE_NAME = "volume_{view}.pvsm"
VIEWS = display.VOLUME_VIEWS
READERS = ("volume", "trajectory")
CRITICAL = [(code, label, display.rgb(color)) for code, (label, color, _) in display.CRITICAL_STYLE_3D.items()]
CRITICAL_PERSISTENCE = 0.01  # shown: features above 1 % of the loss range from minimum to cap


def build_volume_view(simple, common, view_name, volume_file, trajectory_file):
    """Readers, filters and the render view of one volume state; returns the view.

    ``common`` is ``build_states`` (the shared styles: path, critical points, colour bars, axes).
    """
    view = simple.CreateView("RenderView")
    simple.AssignViewToLayout(view)
    common._style_view(view, True)
    view.AxesGrid.ZAxisUseCustomLabels = 0  # gamma is a direction here, not a height
    view.AxesGrid.ZTitle = "gamma (direction 3)"
    view.DepthPeeling = 1  # translucent isosurfaces in the right order
    view.MaximumNumberOfPeels = 8

    volume = simple.XMLImageDataReader(registrationName="volume", FileName=[volume_file])
    path = simple.XMLPolyDataReader(registrationName="trajectory", FileName=[trajectory_file])
    outline = simple.Show(simple.Outline(registrationName="Box", Input=volume), view)
    outline.ColorArrayName = ["POINTS", ""]
    outline.AmbientColor = outline.DiffuseColor = [0.55, 0.55, 0.55]

    capped = simple.LossThreshold(registrationName="Loss Threshold", Input=volume)
    capped.Mode = "Clamp at cap"
    capped.CapMode = "Multiple of max(centre value, chance loss)"
    capped.CapFactor = 5.0
    critical = simple.LossCriticalPoints(registrationName="Loss Critical Points", Input=capped)
    critical.ThresholdMode = "Relative to value range"
    critical.PersistenceThreshold = CRITICAL_PERSISTENCE
    critical.Boundary = "Leave out"  # the box's faces cut the landscape: their maxima and saddles are the cut's
    lut = common._loss_lut(simple)

    if view_name == "isosurfaces":
        iso = simple.LossContours(registrationName="Loss Isosurfaces", Input=capped)
        iso.NumberOfLevels = display.ISOSURFACE_LEVELS
        iso.Spacing = "Log"
        rep = simple.Show(iso, view)
        rep.Opacity = display.ISOSURFACE_OPACITY
        rep.Specular = 0.2
        common._color_by_loss(simple, view, rep, lut)
    elif view_name == "volume_rendering":
        logged = simple.LossThreshold(registrationName="Log Loss", Input=volume)
        logged.Mode = "Log10"
        rep = simple.Show(logged, view)
        rep.Representation = "Volume"
        simple.ColorBy(rep, ("POINTS", "loss"))
        log_lut = simple.GetColorTransferFunction("log_loss")
        log_lut.ApplyPreset(common.LOSS_PRESET, True)
        log_lut.AutomaticRescaleRangeMode = "Never"
        rep.LookupTable = log_lut
        rep.ScalarOpacityFunction = simple.GetOpacityTransferFunction("log_loss")
        rep.SetScalarBarVisibility(view, True)
        common._style_bar(simple.GetScalarBar(log_lut, view), "log10 loss", (common.VALUE_BAR_X, 0.58), length=0.36)
    elif view_name == "slices":
        for axis, normal in zip("xyz", ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])):
            cut = simple.Slice(registrationName=f"Slice {axis}", Input=capped)
            cut.SliceType = "Plane"
            cut.SliceType.Origin = [0.0, 0.0, 0.0]  # the final weights
            cut.SliceType.Normal = normal
            rep = simple.Show(cut, view)
            rep.Ambient, rep.Diffuse, rep.Specular = 1.0, 0.0, 0.0  # the colour map's own colours, unshaded
            common._color_by_loss(simple, view, rep, lut)
            simple.Hide3DWidgets(proxy=cut.SliceType)
    else:
        raise ValueError(f"unknown volume view {view_name!r}; one of {', '.join(VIEWS)}")
    common._show_path(simple, view, path)
    show_critical(simple, common, view, simple.OutputPort(critical, 0))
    fit_volume(simple, common, view, view_name)
    return view


def show_critical(simple, common, view, source):
    """The critical points of a volume as spheres coloured by TTK's 3D codes (1- and 2-saddles apart)."""
    rep = simple.Show(source, view)
    rep.Representation = "Points"
    rep.PointSize = common.SIZE["critical"]
    rep.RenderPointsAsSpheres = 1
    lut = common._categorical_lut(simple, "CriticalType", CRITICAL)
    simple.ColorBy(rep, ("POINTS", "CriticalType"))
    rep.LookupTable = lut
    rep.SetScalarBarVisibility(view, True)
    common._style_bar(simple.GetScalarBar(lut, view), "critical points", (0.89, 0.3), length=0.2)
    return rep


def fit_volume(simple, common, view, view_name):
    """What depends on the data: axis titles (PC1..PC3 or alpha, beta, gamma), the colours of the
    loss (minimum to cap, log) or of log10 loss, the opacity of the volume rendering, the camera."""
    volume = simple.FindSource("volume")
    meta = common.field_record(simple, volume, "losscape_meta")
    grid = view.AxesGrid
    grid.XTitle, grid.YTitle, grid.ZTitle = display.axis_labels(meta, unicode=False, dims=3)
    common.fit_loss_bar(simple, view, meta)
    common.fit_colours(simple, view)
    logged = simple.FindSource("Log Loss")
    if view_name == "volume_rendering" and logged is not None:
        fit_log_volume(simple, common, view, logged, display.array_label(meta, "loss"))
    simple.Render(view)
    common.fit_camera(simple, view, three_d=True)


def fit_log_volume(simple, common, view, logged, label):
    """log10 colours from the minimum to log10 of the cap; opacity high at the minimum, clear above
    the cap's first decade below it, so the basins glow inside a clear volume."""
    capped = simple.FindSource("Loss Threshold")
    record = common.field_record(simple, capped, "lossvista_threshold") if capped is not None else {}
    lo, hi = logged.PointData["loss"].GetRange()
    cap = record.get("cap")
    if cap and cap > 0:
        import math

        hi = min(hi, math.log10(cap))
    if not hi > lo:
        return
    lut = simple.GetColorTransferFunction("log_loss")
    lut.RescaleTransferFunction(lo, hi)
    span = hi - lo
    opacity = simple.GetOpacityTransferFunction("log_loss")
    opacity.Points = [lo, 0.9, 0.5, 0.0,
                      lo + 0.25 * span, 0.35, 0.5, 0.0,
                      lo + 0.6 * span, 0.06, 0.5, 0.0,
                      hi, 0.0, 0.5, 0.0]
    opacity.RescaleTransferFunction(lo, hi)
    simple.GetScalarBar(lut, view).Title = f"log10 {label}"
