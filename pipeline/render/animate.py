"""Pictures of the landscape along training (matplotlib and Pillow, no ParaView needed).

plot_evolution        the central basin and the counts of critical points against epoch
landscape_animation   the quick look of the planes' animation: one contour plot per checkpoint's
                      plane (``evolve/surface_epoch_<eee>.vts``), one cap for all frames, as PNG
                      frames and an animated GIF in ``evolve/quicklook/``
path_animation        the quick look of the path's animation: the descent path over the PCA plane
                      with a ring travelling along it, one frame per checkpoint, in ``evolve/quicklook/``
write_gif             an animated GIF of PNG frames (also of ParaView's frames,
                      :func:`pipeline.render.pvbatch.render_animations`)

ParaView's animations (3D, played from the time series) are
:func:`pipeline.render.pvbatch.render_animations`; these quick looks stand in where ParaView is
missing (``lossvista evolve --backend pyvista``).

Every file is written atomically (:mod:`pipeline.atomic`).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_png

__all__ = ["plot_evolution", "landscape_animation", "path_animation", "write_gif"]

FRAME_MS = 700  # how long each frame of a GIF shows


def write_gif(path: str | os.PathLike, frames: Sequence[str | os.PathLike], *, ms: int = FRAME_MS) -> Path:
    """An animated GIF of the PNG ``frames`` (looping, ``ms`` per frame), written atomically."""
    from PIL import Image

    if not frames:
        raise ValueError("frames must name at least one picture")
    images = [Image.open(f).convert("RGB") for f in frames]
    size = images[0].size
    images = [im if im.size == size else im.resize(size) for im in images]
    path = Path(path)
    with atomic_path(path, suffix=".tmp.gif", make_parents=True) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=ms, loop=0)
    return path


def plot_evolution(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, delta: float,
                   unit: str = "epoch", loss_name: str = "loss", dpi: int = 130) -> Path:
    """Three panels against ``unit`` (epoch or step): the loss (named ``loss_name``) at theta_e and
    at the central basin's minimum, the width of the central basin at value + ``delta``, and the
    counts of minima and saddles."""
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in rows]
    basin = [r["central_basin"] for r in rows]
    fig = Figure(figsize=(7.0, 7.2), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True)
    ax1.plot(epochs, [r["centre_loss"] for r in rows], "o-", color="#e41a1c", label="loss at theta_e (centre)")
    ax1.plot(epochs, [b["value"] for b in basin], "s--", color="#377eb8", label="minimum of the central basin")
    ax1.set_ylabel(loss_name)
    ax1.set_yscale("log" if all(r["centre_loss"] > 0 for r in rows) else "linear")
    ax1.legend(fontsize=8)
    ax2.plot(epochs, [b["width_diameter"] for b in basin], "o-", color="#4daf4a")
    ax2.set_ylabel(f"width at min + {delta:g}\n(plane units)")
    ax2.set_ylim(bottom=0)
    for name, plural, style in (("minimum", "minima", "v-"), ("saddle", "saddles", "X-"), ("maximum", "maxima", "^-")):
        ax3.plot(epochs, [r["counts"].get(name, 0) for r in rows], style, label=plural)
    ax3.yaxis.get_major_locator().set_params(integer=True)
    ax3.set_ylabel("critical points\n(above threshold)")
    ax3.set_xlabel(unit)
    ax3.legend(fontsize=8)
    ax3.set_xticks(epochs)
    fig.suptitle("The plane around each checkpoint (same seed, its own filter norms)", fontsize=10)
    if any(math.isnan(b["width_diameter"]) for b in basin):
        ax2.text(0.01, 0.02, "no point: the centre lies in no basin", transform=ax2.transAxes, fontsize=7)
    return write_png(path, lambda tmp: fig.savefig(tmp, dpi=dpi))


def landscape_animation(run_dir: str | os.PathLike, *, cap_factor: float = 5.0) -> tuple[list[Path], Path]:
    """Frames ``evolve/quicklook/frames/landscape_<eee>.png`` of every plane listed in
    ``evolve/evolution.json`` and ``evolve/quicklook/landscape.gif``. Each frame is the plane's contour plot (:func:`~.plots2d.plot_contours_2d`)
    with its critical points, titled with its epoch; all frames share one cap (the largest of the
    planes' default caps), so the grey divergent region means the same loss in every frame."""
    from ..display import surface_cap
    from ..rundir import RunDir, read_json
    from ..vtkio import read_points, read_surface
    from .plots2d import plot_contours_2d

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    folder = RunDir(run.evolve)
    rows = read_json(folder.root / "evolution.json")["epochs"]
    surfaces = [read_surface(folder.root / r["surface"]) for r in rows]
    cap = max(surface_cap(s, cap_factor=cap_factor) for s in surfaces)
    frames = []
    for r, s in zip(rows, surfaces):
        kind = Path(r["surface"]).stem[len("surface_"):]
        crit = folder.critical_points(kind)
        frames.append(plot_contours_2d(s, run.frames(quicklook=True) / f"landscape_{r['epoch']:03d}.png",
                                       critical=read_points(crit) if crit.is_file() else None, cap=cap,
                                       title=f"around the weights of epoch {r['epoch']}"))
    return frames, write_gif(run.animation("landscape", quicklook=True), frames)


def path_animation(run_dir: str | os.PathLike, plane: str = "pca") -> tuple[list[Path], Path]:
    """Frames ``evolve/quicklook/frames/path_<plane>_<eee>.png``: the run's ``surface_<plane>.vts``
    with the descent path and a ring on the checkpoint of each frame, and
    ``evolve/quicklook/path_<plane>.gif``."""
    from ..errors import LossvistaError
    from ..rundir import RunDir
    from ..vtkio import read_surface, read_trajectory
    from .plots2d import plot_contours_2d

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    files = (run.surface(plane), run.trajectory(plane))
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise LossvistaError(f"{', '.join(missing)} not found: the path's animation needs the {plane} plane "
                             f"(lossvista run, or lossvista surface and trajectory)")
    surface, path = read_surface(files[0]), read_trajectory(files[1])
    frames = [plot_contours_2d(surface, run.frames(quicklook=True) / f"path_{plane}_{int(e):03d}.png", trajectory=path,
                               highlight=k, title=f"{path.unit} {int(e)} on the {plane} plane")
              for k, e in enumerate(path.epoch)]
    return frames, write_gif(run.animation(f"path_{plane}", quicklook=True), frames)
