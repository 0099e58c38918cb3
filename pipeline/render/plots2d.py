"""matplotlib pictures: 2D contour lines on the plane, 1D line along a direction.

Uses ``matplotlib.figure.Figure`` directly (no pyplot: no global figure state, no backend choice).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_png
from ..datamodel import Surface, Trajectory
from ..display import COLORMAP, CRITICAL_STYLE, DIVERGENT_COLOR, END_COLOR, PATH_COLOR, START_COLOR, axis_labels
from .field import _cap_note, _epoch_labels, _title, display_field, parse_critical

__all__ = ["plot_contours_2d", "plot_line_1d"]


def _figure(figsize):
    from matplotlib.figure import Figure

    # no pyplot: no global figure state and no backend choice; savefig renders with Agg
    return Figure(figsize=figsize, layout="constrained")


def plane_figure(surface: Surface) -> tuple[Any, Any, bool]:
    """``(figure, axes, equal)`` for a picture of a 2D plane: ``equal`` keeps distances in weight
    space true unless the plane is very elongated, and a wide plane drawn to scale gets a shorter
    figure, so the colour bar is not taller than the plot."""
    xs, ys = surface.xs, surface.ys
    ratio = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
    equal = 0.25 <= ratio <= 4
    fig = _figure((7.2, min(6.0, max(3.6, 5.4 * ratio + 1.9)) if equal else 6.0))
    return fig, fig.add_subplot(), equal


def frame_plane(ax: Any, surface: Surface, equal: bool) -> None:
    """The plane's axis titles (its directions), limits at its edges, and its aspect."""
    xlabel, ylabel = axis_labels(surface.meta)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(surface.xs[0], surface.xs[-1])
    ax.set_ylim(surface.ys[0], surface.ys[-1])
    if equal:
        ax.set_aspect("equal")


def plot_contours_2d(surface: Surface, path: str | os.PathLike, *, trajectory: Trajectory | None = None,
                     critical: Any = None, array: str = "loss", cap_factor: float = 5.0, cap: float | None = None,
                     floor: float | None = None, n_levels: int = 20, title: str | None = None, dpi: int = 150) -> Path:
    """Contour lines of ``array`` on the (alpha, beta) plane, with the path and critical points.

    Lines are coloured by level (viridis, log-spaced levels) with a colour bar; divergent and
    invalid regions are hatched grey. Returns the PNG path.
    """
    from matplotlib import colors, ticker

    if surface.grid.ndim != 2:
        raise ValueError(f"plot_contours_2d needs a 2D surface (ny > 1); got grid shape {surface.grid.shape}")
    field = display_field(surface, array, cap_factor=cap_factor, cap=cap, floor=floor, n_levels=n_levels)
    crit = parse_critical(critical)
    xs, ys = surface.xs, surface.ys
    A, B = np.meshgrid(xs, ys, indexing="ij")  # (nx, ny)
    fig, ax, equal = plane_figure(surface)
    norm = colors.LogNorm(field.vmin, field.vmax) if field.log else colors.Normalize(field.vmin, field.vmax)
    Z = np.ma.masked_invalid(field.values)
    cs = ax.contour(A, B, Z, levels=field.levels, cmap=COLORMAP, norm=norm, linewidths=1.1)
    labelled = cs.levels[:: max(1, len(cs.levels) // 5)]
    ax.clabel(cs, labelled, inline=True, fontsize=7, fmt=lambda v: f"{v:.3g}")
    if field.divergent.any():
        ax.contourf(A, B, field.divergent.astype(float), levels=[0.5, 1.5], colors=[DIVERGENT_COLOR],
                    alpha=0.55, hatches=["////"])
    cb = fig.colorbar(cs, ax=ax, shrink=0.9, pad=0.02)
    cb.set_label(f"{field.name}" + (" (log scale)" if field.log else ""))
    if field.log:
        cb.ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))
        cb.ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    frame_plane(ax, surface, equal)
    ax.set_title(_title(surface, field, title), fontsize=11)
    note = _cap_note(field)
    if note:
        ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=7, color="0.25",
                bbox=dict(facecolor="white", alpha=0.7, edgecolor="none", pad=1.5))
    if crit is not None and len(crit[0]):
        for code in sorted(set(crit[1].tolist())):
            label, color, marker = CRITICAL_STYLE[code]
            sel = crit[1] == code
            ax.scatter(crit[0][sel, 0], crit[0][sel, 1], s=70, c=color, marker=marker, edgecolors="black",
                       linewidths=0.8, zorder=6, label=f"{label} ({int(sel.sum())})")
    if trajectory is not None and len(trajectory.coords):
        c = trajectory.coords
        ax.plot(c[:, 0], c[:, 1], "-", color=PATH_COLOR, lw=2.2, zorder=7, label="descent path")
        ax.plot(c[:, 0], c[:, 1], "o", color=PATH_COLOR, ms=4, mec="white", mew=0.6, zorder=8)
        ax.plot(*c[0], "s", color=START_COLOR, mec=PATH_COLOR, mew=2, ms=9, zorder=9,
                label=f"start ({trajectory.unit} {int(trajectory.epoch[0])})")
        ax.plot(*c[-1], "*", color=END_COLOR, mec="black", mew=0.8, ms=15, zorder=9,
                label=f"end ({trajectory.unit} {int(trajectory.epoch[-1])})")
        for k in _epoch_labels(len(c))[1:-1]:
            if k == len(c) - 2:
                continue  # would sit on the end marker
            ax.annotate(str(int(trajectory.epoch[k])), c[k], xytext=(4, 4), textcoords="offset points",
                        fontsize=7, color=PATH_COLOR, zorder=9)
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # below the axes: a legend inside would hide part of the plane
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8,
                   frameon=False)
    return write_png(path, lambda tmp: fig.savefig(tmp, dpi=dpi))


def plot_line_1d(surface: Surface, path: str | os.PathLike, *, cap_factor: float = 5.0, cap: float | None = None,
                 floor: float | None = None, title: str | None = None, dpi: int = 150) -> Path:
    """Loss (and test loss, accuracy) along a 1D slice; divergent points marked at the top in grey."""
    field = display_field(surface, "loss", cap_factor=cap_factor, cap=cap, floor=floor)
    xs = surface.xs
    loss = surface.loss[:, 0]
    fig = _figure((7.2, 4.2))
    ax = fig.add_subplot()
    ax.plot(xs, field.values[:, 0], "-", color="#1f4e9c", lw=1.8, label=f"{surface.loss_label} (train)" if surface.test_loss is not None else surface.loss_label)
    if surface.test_loss is not None:
        t = np.where(np.isfinite(surface.test_loss[:, 0]) & (surface.test_loss[:, 0] <= field.cap), surface.test_loss[:, 0], np.nan)
        ax.plot(xs, t, "--", color="#1f4e9c", lw=1.4, label=f"{surface.loss_label} (test)")
    top = field.vmax * (1.25 if field.log else 1.0) + (0 if field.log else 0.05 * (field.vmax - field.vmin))
    div = field.divergent[:, 0]
    if div.any():
        step = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
        for x in xs[div & ~np.isfinite(loss)]:
            ax.axvspan(x - step / 2, x + step / 2, color=DIVERGENT_COLOR, alpha=0.6, lw=0)
        ax.plot(xs[div], np.full(div.sum(), top), "^", color="0.45", ms=5, clip_on=False,
                label=f"above cap {field.cap:.3g} or invalid")
    if field.log:
        ax.set_yscale("log")
    bottom = field.vmin / 1.25 if field.log else field.vmin - 0.05 * (field.vmax - field.vmin)
    ax.set_ylim(bottom, top * (1.1 if field.log else 1.02))
    ax.set_xlim(xs[0], xs[-1])
    ax.set_xlabel(axis_labels(surface.meta)[0])
    ax.set_ylabel(surface.loss_label)
    acc = surface.accuracy[:, 0] if surface.accuracy is not None else np.full(len(xs), np.nan)
    if np.isfinite(acc).any():
        ax2 = ax.twinx()
        ax2.plot(xs, acc, ":", color="#d95f02", lw=1.6, label="accuracy")
        ax2.set_ylim(0, 1.02)
        ax2.set_ylabel("accuracy", color="#d95f02")
        ax2.tick_params(axis="y", colors="#d95f02")
    handles, labels = [], []
    for a in fig.axes:
        h, lab = a.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)
    centre = surface.centre_index()
    if centre is not None:
        ax.axvline(0.0, color="0.6", lw=0.8, ls="--", zorder=0)
    ax.set_title(_title(surface, field, title), fontsize=11)
    return write_png(path, lambda tmp: fig.savefig(tmp, dpi=dpi))
