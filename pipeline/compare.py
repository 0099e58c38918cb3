"""The comparison of runs: the landscapes of several runs on the same kind of plane, side by side.

For each run's ``surface_<plane>.vts`` (or a ``.vts`` file; a volume: ``volume_<kind>.vti`` with
the plane ``volume_<kind>``, or a ``.vti`` file): the minima above a persistence
threshold and their persistence, the global minimum's basin, width and curvature, and the
share of the plane that diverges (above the cap of :func:`pipeline.display.surface_cap`, or not
usable); written as Markdown, JSON and persistence diagrams (``lossvista compare``).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .analyze import SUMMARY_KEYS, analyze_surface
from .atomic import write_png, write_text
from .datamodel import Surface
from .errors import LossvistaError, ParameterError, param
from .rundir import RunDir, surface_kind, volume_kind
from .topology import cell_areas

__all__ = ["RunSummary", "summarize_surface", "compare_runs", "comparison_markdown", "comparison_dict",
           "plot_persistence_diagrams", "write_comparison", "resolve_surface"]


@dataclass(frozen=True)
class RunSummary:
    """The numbers ``lossvista compare`` puts side by side for one run's plane.

    minima_persistence : persistence of each surviving minimum, largest first.
    divergent_fraction : share of the plane's area (dual cells) whose loss is above ``cap``,
        non-finite or not exact (``valid == 0``).
    pairs : (P, 3) float64 ``(birth value, death value, kind)`` of the surviving pairs, for
        persistence diagrams (kind 0 min-saddle, 1 saddle-max, 2 min-max).
    test_accuracy : the final test accuracy of the run the surface belongs to (its ``run.json``
        beside the surface), None when unknown (a surface alone, the user's imported training).
    loss : the loss's name (``cross_entropy``, ``mse``...; ``loss`` when the file does not say).
    """

    name: str
    surface: Path
    kind: str
    meta: dict[str, Any]
    shape: tuple[int, ...]
    extent: tuple[float, ...]
    threshold: float
    value_range: tuple[float, float]
    n_minima: int
    minima_persistence: list[float]
    global_min: dict[str, Any]
    cap: float
    divergent_fraction: float
    pairs: np.ndarray
    test_accuracy: float | None = None  # the run's final test accuracy (run.json), when known
    loss: str = "loss"


def resolve_surface(run: str | os.PathLike, plane: str) -> Path:
    """``RUN/surface_<plane>.vts`` for a run directory (``RUN/volume_<kind>.vti`` for the plane
    ``volume_<kind>``); a ``.vts`` or ``.vti`` path is taken as it is."""
    p = Path(run)
    if p.suffix.lower() in (".vts", ".vti"):
        if not p.is_file():
            raise FileNotFoundError(f"surface file not found: {str(p)!r}")
        return p
    run = RunDir(p).require()
    f = run.volume(plane) if plane.startswith("volume_") else run.surface(plane)
    if not f.is_file():
        have = [q.name for q in (*run.surfaces().values(), *run.volumes().values())]
        raise LossvistaError(f"{str(p)!r} has no {f.name} (plane {plane!r}); it has: {', '.join(have) or 'none'}")
    return f


def _file_kind(path: Path, surface: Surface) -> str:
    """The plane's kind of a surface or volume file (``volume_<kind>`` for a volume), ``surface``
    its contents."""
    kind = surface.meta.get("direction_kind")
    return volume_kind(kind) if kind and path.suffix.lower() == ".vti" else surface_kind(path, surface.meta)


def summarize_surface(path: Path, name: str, *, plane: str | None = None, persistence: float | None = None,
                      relative: bool = False, cap: float | None = None, cap_factor: float = 5.0,
                      delta: float = 0.1, surface: Surface | None = None) -> RunSummary:
    """Analyse one surface's loss and measure what ``compare`` reports.

    ``persistence=None`` keeps minima above 1 % of the value range. ``cap=None`` uses the
    pictures' default cap, ``cap_factor * max(centre loss, ln(classes) or 1)``
    (:func:`pipeline.display.surface_cap`). ``delta`` (loss units) sets the width level.
    ``surface``: the file's contents when they have been read already.
    """
    from . import vtkio
    from .display import surface_cap

    if surface is None:
        surface = vtkio.read_grid(path)
    kind = surface_kind(path, surface.meta)
    meta_kind = volume_kind(surface.meta["direction_kind"]) if (
        surface.grid.ndim == 3 and surface.meta.get("direction_kind")) else surface.meta.get("direction_kind")
    if plane is not None and plane not in (kind, meta_kind):
        raise LossvistaError(f"{str(path)!r} is a {meta_kind or kind!r} plane, not {plane!r}")
    if persistence is None:
        persistence, relative = 0.01, True
    topo = analyze_surface(surface, persistence=persistence, relative=relative, delta=delta)
    if cap is None:
        cap = surface_cap(surface, "loss", cap_factor=cap_factor)
    elif not (math.isfinite(cap) and cap > 0):
        raise ParameterError(f"{param('cap')} must be a finite number > 0; got {cap!r}")
    divergent = ~surface.usable("loss") | (surface.loss > cap)
    area = cell_areas(*surface.grid.axes)
    g = topo.minima[0]
    sp = topo.surviving_pairs()
    values = surface.values("loss", masked=True)
    vals = np.where(np.isfinite(values), values, topo.value_range[1]).T.ravel()  # by vertex id; invalid at the top
    pairs = np.stack([vals[sp.birth], vals[sp.death], sp.kind], axis=1)
    x = surface.grid
    return RunSummary(
        name=name, surface=path, kind=meta_kind or kind,
        meta={k: surface.meta[k] for k in SUMMARY_KEYS if k in surface.meta},
        shape=x.shape, extent=tuple(float(v) for a in x.axes for v in (a[0], a[-1])), threshold=topo.threshold,
        value_range=topo.value_range, n_minima=len(topo.minima),
        minima_persistence=sorted(topo.minima.persistence.tolist(), reverse=True),
        global_min={"value": g.value, "coords": list(g.coords), "basin_area": g.basin_area,
                    "basin_fraction": g.basin_fraction, "width_delta": g.width.delta,
                    "width_diameter": g.width.diameter, "width_extent": list(g.width.extent),
                    "curvature": list(g.curvature)},
        cap=float(cap), divergent_fraction=float(area[divergent].sum() / area.sum()), pairs=pairs,
        test_accuracy=_test_accuracy(path), loss=surface.loss_label)


def _test_accuracy(surface: Path) -> float | None:
    """The last ``test_accuracy`` of the ``run.json`` beside ``surface``, if there is one."""
    run = RunDir(surface.parent)
    if not run.run_json.is_file():
        return None
    try:
        history = run.read_run().get("history") or []
    except LossvistaError:
        return None
    value = history[-1].get("test_accuracy") if history and isinstance(history[-1], dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def compare_runs(runs: Sequence[str | os.PathLike], *, plane: str | None = None, persistence: float | None = None,
                 relative: bool = False, cap: float | None = None, cap_factor: float = 5.0,
                 delta: float = 0.1) -> list[RunSummary]:
    """Summaries of the same kind of plane of several runs (run directories, ``.vts`` or ``.vti`` files);
    ``plane`` ``volume_<kind>`` compares the runs' volumes. ``plane=None``: the kind of the first
    entry when it is a file, else ``random``."""
    if len(runs) < 2:
        raise ValueError(f"runs must name at least two runs to compare; got {len(runs)}")
    read: dict[Path, Surface] = {}
    if plane is None:  # a file is taken as it is, whatever the plane asked of resolve_surface
        first = Path(runs[0])
        if first.suffix.lower() in (".vts", ".vti"):
            from . import vtkio

            path = resolve_surface(first, "random")
            read[path] = vtkio.read_grid(path)
            plane = _file_kind(path, read[path])
        else:
            plane = "random"
    paths = [resolve_surface(r, plane) for r in runs]
    names = [p.parent.name if p in (RunDir(p.parent).surface(plane), RunDir(p.parent).volume(plane)) else p.stem
             for p in paths]
    for k, n in enumerate(names):  # keep names unique
        if names.count(n) > 1:
            names[k] = f"{n} ({paths[k].parent})"
    return [summarize_surface(p, n, plane=plane, persistence=persistence, relative=relative, cap=cap,
                              cap_factor=cap_factor, delta=delta, surface=read.get(p)) for p, n in zip(paths, names)]


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else "n/a"


def comparison_markdown(summaries: Sequence[RunSummary]) -> str:
    """A Markdown table, one row per run."""
    where = "(α, β, γ)" if summaries and len(summaries[0].shape) == 3 else "(α, β)"
    head = (f"| run | model | loss | test acc. | minima | persistence of minima | min loss at {where} | basin of min "
            "| width at +δ | curvature (λmin, λmax) | divergent (cap) |")
    rows = [head, "|" + "---|" * 11]
    for s in summaries:
        g = s.global_min
        pers = ", ".join(_fmt(p) for p in s.minima_persistence[:6]) + (" …" if len(s.minima_persistence) > 6 else "")
        rows.append(
            f"| {s.name} | {s.meta.get('model', '?')} | {s.loss} "
            f"| {'n/a' if s.test_accuracy is None else f'{s.test_accuracy:.1%}'} | {s.n_minima} | {pers} "
            f"| {_fmt(g['value'])} at ({', '.join(f'{c:.3g}' for c in g['coords'])}) "
            f"| {g['basin_fraction']:.1%} ({_fmt(g['basin_area'])}) "
            f"| {_fmt(g['width_diameter'])} (δ={_fmt(g['width_delta'])}) "
            f"| ({_fmt(g['curvature'][0])}, {_fmt(g['curvature'][-1])}) "
            f"| {s.divergent_fraction:.1%} (>{_fmt(s.cap)}) |")
    thresholds = ", ".join(f"{s.name}: {_fmt(s.threshold)}" for s in summaries)
    notes = [f"Plane: {summaries[0].kind}. Minima counted above the persistence threshold ({thresholds}).",
             "Basin: share of the plane (and area in α·β units) of the global minimum's basin; width: "
             "diameter of the disk with the area of the sublevel set {loss ≤ min + δ} around it; "
             "divergent: share of the plane with loss above the cap, non-finite or invalid."]
    losses = {s.loss for s in summaries}
    if len(losses) > 1:
        notes.append("Note: the runs measure different losses (" + ", ".join(f"{s.name}: {s.loss}" for s in summaries)
                     + "): their values, widths at +δ and curvatures do not compare.")
    extents = {s.extent for s in summaries}
    if len(extents) > 1:
        notes.append("Note: the grids cover different (α, β) ranges: "
                     + "; ".join(f"{s.name}: {s.extent}" for s in summaries))
    return "\n".join(rows) + "\n\n" + "\n".join(notes) + "\n"


def comparison_dict(summaries: Sequence[RunSummary]) -> dict[str, Any]:
    """JSON-ready form of the summaries (diagram pairs included)."""
    def one(s: RunSummary) -> dict[str, Any]:
        return {"name": s.name, "surface": str(s.surface), "kind": s.kind, "meta": s.meta, "shape": list(s.shape),
                "extent": list(s.extent), "threshold": s.threshold, "value_range": list(s.value_range),
                "n_minima": s.n_minima, "minima_persistence": s.minima_persistence,
                "global_min": {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                               for k, v in s.global_min.items()} | {
                    "curvature": [c if math.isfinite(c) else None for c in s.global_min["curvature"]]},
                "cap": s.cap, "divergent_fraction": s.divergent_fraction, "test_accuracy": s.test_accuracy,
                "loss": s.loss,
                "pairs": [{"birth": b, "death": d, "kind": ("min-saddle", "saddle-max", "min-max")[int(k)]}
                          for b, d, k in s.pairs.tolist()]}

    return {"plane": summaries[0].kind if summaries else None, "runs": [one(s) for s in summaries]}


def plot_persistence_diagrams(summaries: Sequence[RunSummary], path: str | os.PathLike) -> Path:
    """Persistence diagrams side by side (birth vs death loss), written as a PNG (Agg, no display).

    Axes are logarithmic when every plotted value is positive and they span over two decades.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(summaries)
    fig = Figure(figsize=(4.2 * n, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False, sharex=True, sharey=True)[0]  # one scale: comparable
    styles = {0: ("min-saddle", "#1f77b4", "o"), 1: ("saddle-max", "#d62728", "^"), 2: ("min-max", "#222222", "*")}
    everything = np.concatenate([s.pairs[:, :2].ravel() for s in summaries])
    lo, hi = float(everything.min()), float(everything.max())
    log = lo > 0 and hi / lo > 100
    pad = (hi - lo) * 0.05 or 1.0
    line = np.geomspace(lo / 1.2, hi * 1.2, 100) if log else np.linspace(lo - pad, hi + pad, 2)
    for ax, s in zip(axes, summaries):
        p = s.pairs
        for k, (label, color, marker) in styles.items():
            q = p[p[:, 2] == k]
            if len(q):
                ax.scatter(q[:, 0], q[:, 1], s=60 if k == 2 else 16, c=color, marker=marker, alpha=0.8,
                           label=f"{label} ({len(q)})", edgecolors="none")
        ax.plot(line, line, color="0.5", lw=0.8)
        ax.fill_between(line, line, line + s.threshold, color="0.85", lw=0,
                        label=f"below threshold {_fmt(s.threshold)}")
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(f"birth ({s.loss})")
        ax.set_ylabel(f"death ({s.loss})")
        ax.set_title(f"{s.name}: {s.n_minima} {'minimum' if s.n_minima == 1 else 'minima'}", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Persistence diagrams, {summaries[0].kind} plane", fontsize=11)
    return write_png(path, lambda tmp: fig.savefig(tmp, dpi=110))


def write_comparison(summaries: Sequence[RunSummary], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``compare_<plane>.md``, ``.json`` and ``.png`` into ``out_dir`` (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"compare_{summaries[0].kind}"
    md = write_text(out / f"{stem}.md", comparison_markdown(summaries))
    js = write_text(out / f"{stem}.json", json.dumps(comparison_dict(summaries), indent=1, allow_nan=False) + "\n")
    png = plot_persistence_diagrams(summaries, out / f"{stem}.png")
    return {"markdown": md, "json": js, "png": png}
