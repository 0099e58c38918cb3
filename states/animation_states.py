"""The ParaView animations of the landscape along training (``lossvista evolve``), imported by
``build_states.py`` and ``render_state.py`` (pvbatch/pvpython scripts).

animation_landscape.pvsm
    The time series ``evolve/landscape.pvd`` (the random plane around each checkpoint, timestep =
    epoch) as a 3D surface with its contour lines and critical points; one colour range (the
    lowest loss of all planes to the largest of their caps) for every frame, and the epoch shown.
animation_path.pvsm
    The run's PCA plane as a 3D surface with the descent path, and a marker travelling along the
    path: the time series ``evolve/path_pca.pvd`` (one point per checkpoint, timestep = epoch);
    the epoch shown.

The landscape's frames share one cap, one colour range and one height scale (z = scale x
loss), so a plane that flattens or deepens along training reads so.

The readers are registered as ``landscape`` (PVDReader), or ``surface``, ``trajectory`` and
``marker``; ``render_state.py`` points them at any run's files. The styles are
``build_states``'s (:mod:`pipeline.display`'s colours).
"""
import json
import math
import os

from pipeline import display

STATE_NAME = "animation_{name}.pvsm"
NAMES = display.ANIMATIONS
TEXT_FORMAT = "{unit} {{time:.0f}}"  # AnnotateTime's format: "epoch 12"


def build_animation_view(simple, common, name, files):
    """Readers, filters and the render view of one animation state; returns the view.

    ``files``: {reader name: file} (``landscape``; or ``surface``, ``trajectory``, ``marker``).
    """
    if name == "landscape":
        return _build_landscape(simple, common, files["landscape"])
    if name == "path":
        return _build_path(simple, common, files["surface"], files["trajectory"], files["marker"])
    raise ValueError(f"unknown animation {name!r}; one of {', '.join(NAMES)}")


def _build_landscape(simple, common, pvd):
    view = simple.CreateView("RenderView")
    simple.AssignViewToLayout(view)
    common._style_view(view, True)
    series = simple.PVDReader(registrationName="landscape", FileName=pvd)
    capped = simple.LossThreshold(registrationName="Loss Threshold", Input=series)
    capped.Mode = "Clamp at cap"
    capped.CapMode = "Multiple of max(centre value, chance loss)"  # fit_animation: one absolute cap for all frames
    capped.CapFactor = 5.0
    critical = simple.LossCriticalPoints(registrationName="Loss Critical Points", Input=capped)
    critical.ThresholdMode = "Relative to value range"
    critical.PersistenceThreshold = common.CRITICAL_PERSISTENCE
    contours = simple.LossContours(registrationName="Loss Contours", Input=capped)
    contours.NumberOfLevels = 20
    contours.Spacing = "Log"
    lut = common._loss_lut(simple)

    def warp(label, src):
        w = simple.WarpByLoss(registrationName=label, Input=src, Surface=capped)
        w.ReliefFraction = display.RELIEF_FRACTION
        return w

    rep = simple.Show(warp("Warp surface", capped), view)
    rep.Representation = "Surface"
    rep.Specular = 0.15
    common._color_by_loss(simple, view, rep, lut)
    lines = simple.Show(warp("Warp contours", contours), view)
    lines.ColorArrayName = ["POINTS", ""]
    lines.AmbientColor = lines.DiffuseColor = [0.12, 0.12, 0.12]
    lines.LineWidth = common.SIZE["contour_on_surface"]
    common._show_critical(simple, view, warp("Warp critical points", simple.OutputPort(critical, 0)))
    _show_time(simple, common, view, series)
    fit_animation(simple, common, view, "landscape")
    return view


def _build_path(simple, common, surface_file, trajectory_file, marker_file):
    view = common.build_view(simple, "3d_surface", surface_file, trajectory_file)
    marker = simple.PVDReader(registrationName="marker", FileName=marker_file)
    moved = simple.WarpByLoss(registrationName="Warp marker", Input=marker,
                              Surface=simple.FindSource("Loss Threshold"))
    moved.ReliefFraction = display.RELIEF_FRACTION
    rep = simple.Show(moved, view)
    rep.Representation = "Points"
    rep.PointSize = common.SIZE["marker"] * 1.4
    rep.RenderPointsAsSpheres = 1
    rep.ColorArrayName = ["POINTS", ""]
    rep.AmbientColor = rep.DiffuseColor = display.rgb(display.MARKER_COLOR)
    _show_time(simple, common, view, marker)
    fit_animation(simple, common, view, "path")
    return view


def _show_time(simple, common, view, source):
    """The epoch of the frame, upper left (AnnotateTime follows the animation's time)."""
    text = simple.AnnotateTimeFilter(registrationName="Epoch", Input=source)
    text.Format = TEXT_FORMAT.format(unit="epoch")
    rep = simple.Show(text, view)
    rep.WindowLocation = "Upper Left Corner"
    rep.FontSize = 30
    rep.Color = common.TEXT_RGB
    return text


def time_steps(simple):
    """The animation's times (the epochs of the time series), ascending."""
    return [float(t) for t in simple.GetTimeKeeper().TimestepValues or []]


def fit_animation(simple, common, view, name, unit=None):
    """What depends on the data: the time steps, the epoch's unit, axis titles, and for the
    landscape one colour range and cap over every frame (the lowest loss to the largest of the
    planes' default caps, :func:`pipeline.display.default_cap`), the camera on the last frame."""
    scene = simple.GetAnimationScene()
    scene.UpdateAnimationUsingDataTimeSteps()
    scene.PlayMode = "Snap To TimeSteps"
    times = time_steps(simple)
    text = simple.FindSource("Epoch")
    if text is not None and unit:
        text.Format = TEXT_FORMAT.format(unit=unit)
    if name == "landscape":
        series = simple.FindSource("landscape")
        capped = simple.FindSource("Loss Threshold")
        capped.CapMode = "Multiple of max(centre value, chance loss)"
        capped.CapFactor = 5.0
        lo, cap = math.inf, -math.inf
        for t in times:  # each plane's own default cap first, then the largest for all
            scene.AnimationTime = t
            capped.UpdatePipeline(t)
            record = common.field_record(simple, capped, "lossvista_threshold")
            if "loss" in capped.PointData.keys():
                low, high = capped.PointData["loss"].GetRange()
                lo = min(lo, low) if math.isfinite(low) else lo
                cap = max(cap, record.get("cap", high))
        if math.isfinite(cap):
            capped.CapMode = "Absolute"
            capped.Cap = cap
        b = series.GetDataInformation().GetBounds()
        size = math.sqrt(max(b[1] - b[0], 0.0) * max(b[3] - b[2], 0.0))
        if math.isfinite(lo) and math.isfinite(cap) and cap > lo and size > 0:
            # one height scale for every frame (the automatic one follows each plane's own range,
            # which lifts a nearly flat plane out of sight): z = scale x loss
            for label in ("Warp surface", "Warp contours", "Warp critical points"):
                warp = simple.FindSource(label)
                warp.ScaleMode = "Explicit"
                warp.ScaleFactor = display.RELIEF_FRACTION * size / (cap - lo)
        if times:
            scene.AnimationTime = times[-1]
        meta = common.field_record(simple, series, "losscape_meta")
        view.AxesGrid.XTitle, view.AxesGrid.YTitle = common.axis_titles(meta)
        simple.Render(view)
        common.fit_loss_bar(simple, view, meta)
        if math.isfinite(lo) and math.isfinite(cap) and cap > lo:
            for rep in common._loss_representations(simple, view):
                lut = rep.LookupTable
                lut.UseAboveRangeColor = 1
                lut.AboveRangeColor = common.ABOVE_CAP_RGB
                lut.AutomaticRescaleRangeMode = "Never"
                lut.RescaleTransferFunction(lo, cap * (1 - 1e-3))
        common.fit_camera(simple, view, three_d=True)
    else:
        common.fit_to_data(simple, view, "3d_surface")
    if times:
        scene.AnimationTime = times[0]
    simple.Render(view)


def evolution_unit(evolve_dir):
    """The checkpoints' unit (epoch or step) from ``evolution.json`` beside the time series."""
    try:
        with open(os.path.join(evolve_dir, "evolution.json"), encoding="utf-8") as f:
            return str(json.load(f).get("unit") or "epoch")
    except (OSError, ValueError):
        return "epoch"
