"""Pictures of the curvature (matplotlib): sharpness along training, the spectral density, and
the eigen-ratio map of a plane.

The first two read the record of ``curvature.json`` (:mod:`pipeline.curvature.stage`); the map
reads a surface evaluated with ``--hessian`` (arrays ``eig_ratio``, ``hessian_max``,
``hessian_min``), drawn as Li et al. draw it: ``|lambda_min / lambda_max|`` as colour over the
plane (near 0: locally convex; large: strong negative curvature), the loss's contour lines
over it, the descent path on top.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_png
from ..datamodel import Surface, Trajectory
from ..display import COLORMAP, DIVERGENT_COLOR, END_COLOR, PATH_COLOR, START_COLOR
from .plots2d import _figure, frame_plane, plane_figure

__all__ = ["plot_sharpness", "plot_density", "plot_eig_ratio"]

_MAX_COLOUR = "#1f4e9c"
_MIN_COLOUR = "#d95f02"
_TRACE_COLOUR = "#1b9e77"


def _head(record: Mapping[str, Any]) -> str:
    samples = record.get("samples")
    on = f"{record.get('split', 'train')} split" + (f", {samples} samples" if samples else "")
    return f"{record.get('model', 'model')}: {record.get('loss_name', 'loss')} on the {on}"


def plot_sharpness(record: Mapping[str, Any], path: str | os.PathLike, dpi: int = 150) -> Path:
    """lambda_max and lambda_min (top) and the trace with its 95% band (bottom) against the
    checkpoint number. Checkpoints without values (an ``error``) are left out."""
    from matplotlib.ticker import MaxNLocator

    rows = [r for r in record["checkpoints"] if r.get("lambda_max") is not None]
    unit = record.get("unit") or "epoch"
    x = np.array([r["epoch"] for r in rows], dtype=float)
    fig = _figure((7.2, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(x, [r["lambda_max"] for r in rows], "o-", color=_MAX_COLOUR, ms=4, label="λ_max (sharpness)")
    top.plot(x, [r["lambda_min"] for r in rows], "s-", color=_MIN_COLOUR, ms=3.5, label="λ_min")
    top.axhline(0.0, color="0.6", lw=0.8, zorder=0)
    rough = [r for r in rows if not r.get("converged", True)]
    if rough:
        top.plot([r["epoch"] for r in rough], [r["lambda_max"] for r in rough], "x", color="black", ms=8,
                 label=f"not converged to tol {record.get('tol', 0):g}")
    # symmetric log: the early sharpness and the small negative curvature later both readable
    scale = max(abs(r[k]) for r in rows for k in ("lambda_max", "lambda_min"))
    top.set_yscale("symlog", linthresh=max(scale * 1e-3, 1e-12))
    low = min(min(r["lambda_min"] for r in rows), 0.0)
    top.set_ylim(low * 1.5 if low < 0 else -scale * 1e-3, scale * 30)  # the legend's room above lambda_max
    top.set_ylabel("Hessian eigenvalue (symmetric log)")
    top.legend(fontsize=8, loc="upper right")
    traced = [r for r in rows if r.get("trace") is not None]
    if traced:
        tx = np.array([r["epoch"] for r in traced], dtype=float)
        t = np.array([r["trace"] for r in traced])
        se = np.array([r.get("trace_stderr") or 0.0 for r in traced])
        bottom.fill_between(tx, t - 1.96 * se, t + 1.96 * se, color=_TRACE_COLOUR, alpha=0.25, lw=0,
                            label="95% interval")
        bottom.plot(tx, t, "o-", color=_TRACE_COLOUR, ms=4,
                    label=f"trace (Hutchinson, {record.get('trace_samples')} vectors)")
        bottom.legend(fontsize=8, loc="best")
    else:
        bottom.text(0.5, 0.5, "no trace (--trace-samples 0)", transform=bottom.transAxes, ha="center", color="0.4")
    bottom.set_ylabel("trace of the Hessian")
    bottom.set_xlabel(unit)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.set_title(f"Curvature along training — {_head(record)}", fontsize=10)
    return write_png(path, lambda tmp: fig.savefig(tmp, dpi=dpi))


def plot_density(record: Mapping[str, Any], path: str | os.PathLike, dpi: int = 150) -> Path:
    """The spectral density at the record's density checkpoint (log scale, as PyHessian draws
    it), with lambda_min and lambda_max of Lanczos marked."""
    from ..curvature.density import SpectralDensity

    d = record["density"]
    density = SpectralDensity.from_dict(d)
    x, y = density.curve()
    fig = _figure((7.2, 4.4))
    ax = fig.add_subplot()
    floor = max(y.max() * 1e-8, 1e-300)
    ax.semilogy(x, np.maximum(y, floor), color=_MAX_COLOUR, lw=1.4)
    ax.set_ylim(floor * 10, y.max() * 3)
    row = next((r for r in record["checkpoints"] if r.get("epoch") == d["epoch"] and r.get("lambda_max") is not None),
               None)
    if row is not None:
        for key, colour in (("lambda_max", _MAX_COLOUR), ("lambda_min", _MIN_COLOUR)):
            ax.axvline(row[key], color=colour, ls="--", lw=1, label=f"{key.replace('lambda', 'λ')} = {row[key]:.4g}")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (log scale)")
    unit = record.get("unit") or "epoch"
    ax.set_title(f"Hessian spectral density at {unit} {d['epoch']} ({d['vectors']} vectors x {d['steps']} Lanczos "
                 f"steps)\n{_head(record)}", fontsize=10)
    return write_png(path, lambda tmp: fig.savefig(tmp, dpi=dpi))


def plot_eig_ratio(surface: Surface, path: str | os.PathLike, *, trajectory: Trajectory | None = None,
                   n_levels: int = 15, dpi: int = 150) -> Path:
    """``eig_ratio`` over the plane (colour, linear from 0), the loss's contour lines and the path."""
    import matplotlib
    from matplotlib import colors

    if surface.grid.ndim != 2:
        raise ValueError(f"an eigen-ratio map needs a 2D surface (ny > 1); got grid shape {surface.grid.shape}")
    if "eig_ratio" not in surface.names():
        raise ValueError("the surface has no eig_ratio array: evaluate it with lossvista surface --hessian")
    from .field import display_field

    ratio = np.where(surface.usable("eig_ratio"), surface.values("eig_ratio"), np.nan)
    if not np.isfinite(ratio).any():
        raise ValueError("eig_ratio has no finite value to draw")
    xs, ys = surface.xs, surface.ys
    A, B = np.meshgrid(xs, ys, indexing="ij")  # (nx, ny)
    fig, ax, equal = plane_figure(surface)
    cmap = matplotlib.colormaps[COLORMAP].with_extremes(bad=DIVERGENT_COLOR)
    mesh = ax.pcolormesh(A, B, np.ma.masked_invalid(ratio), cmap=cmap, shading="gouraud",
                         norm=colors.Normalize(0.0, max(float(np.nanmax(ratio)), 1e-12)))
    cb = fig.colorbar(mesh, ax=ax, shrink=0.9, pad=0.02)
    cb.set_label("|λ_min / λ_max| of the Hessian")
    field = display_field(surface, "loss", n_levels=n_levels)
    Z = np.ma.masked_invalid(field.values)
    if np.isfinite(field.values).sum() >= 4:
        cs = ax.contour(A, B, Z, levels=field.levels, colors="white", linewidths=0.7, alpha=0.8)
        ax.clabel(cs, cs.levels[:: max(1, len(cs.levels) // 4)], inline=True, fontsize=6, fmt=lambda v: f"{v:.3g}")
    if trajectory is not None and len(trajectory.coords):
        c = trajectory.coords
        ax.plot(c[:, 0], c[:, 1], "-", color=PATH_COLOR, lw=2.0, zorder=7, label="descent path")
        ax.plot(*c[0], "s", color=START_COLOR, mec=PATH_COLOR, mew=2, ms=8, zorder=9)
        ax.plot(*c[-1], "*", color=END_COLOR, mec="black", mew=0.8, ms=14, zorder=9)
    frame_plane(ax, surface, equal)
    meta = surface.meta
    h = meta.get("hessian") or {}
    bad = int((~surface.usable("eig_ratio")).sum())
    note = [f"white lines: {field.name} contours"]
    if bad:
        note.append(f"grey: no value ({bad} points)")
    if h.get("unconverged_points"):
        note.append(f"{h['unconverged_points']} points not converged to tol {h.get('tol', 0):g}")
    ax.text(0.01, 0.01, "; ".join(note), transform=ax.transAxes, fontsize=7, color="0.2",
            bbox=dict(facecolor="white", alpha=0.7, edgecolor="none", pad=1.5))
    kind = meta.get("direction_kind") or "plane"
    ax.set_title(f"{meta.get('model', 'model')} — Hessian eigen-ratio on the {kind} plane", fontsize=11)
    return write_png(path, lambda tmp: fig.savefig(tmp, dpi=dpi))
