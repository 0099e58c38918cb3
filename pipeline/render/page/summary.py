"""The page's summary as HTML: the run (model, data, loss, training) and each plane (grid,
directions, explained variance, cap, topology counts and the minima table).

Read from ``run.json``, the surfaces' metadata and ``topology_<kind>.json``; every text is
escaped. Written as plain HTML, so the summary reads without JavaScript.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import display
from .scene import PlaneData

__all__ = ["run_summary", "plane_summary", "MAX_MINIMA"]

MAX_MINIMA = 25  # rows of the minima table; the rest are counted


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}g}"
    return str(value)


def _facts(rows: Sequence[tuple[str, Any]], cls: str = "facts") -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>"
                   for k, v in rows if v not in (None, ""))
    return f'<table class="{cls}">{body}</table>'


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], cls: str) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _loss_text(meta: Mapping[str, Any]) -> str:
    split, samples = meta.get("split"), meta.get("samples")
    where = f" on the {split} split" if split else ""
    count = f" ({_fmt(samples)} samples)" if isinstance(samples, (int, np.integer)) else ""
    return f"{display.array_label(meta, 'loss')}{where}{count}"


def run_summary(info: Mapping[str, Any], planes: Sequence[PlaneData]) -> str:
    """The run's facts: ``info`` is ``run.json`` (``{}`` for a surface outside a run)."""
    meta = planes[0].surface.meta if planes else {}
    config = info.get("config", {}) if isinstance(info.get("config"), Mapping) else {}
    data = info.get("dataset", {}) if isinstance(info.get("dataset"), Mapping) else {}
    history = info.get("history") or []
    last = history[-1] if history and isinstance(history[-1], Mapping) else {}
    params = info.get("num_parameters") or meta.get("parameters")
    model = config.get("model") or meta.get("model")
    dataset = config.get("dataset") or meta.get("dataset")
    if data.get("train_samples") is not None:
        dataset = f"{dataset} ({_fmt(data['train_samples'])} train, {_fmt(data.get('test_samples'))} test samples)"
    training = None
    if config.get("epochs") is not None:
        training = (f"{config['epochs']} epochs, {config.get('optimizer', '?')} lr {_fmt(config.get('lr'))}, "
                    f"batch size {_fmt(config.get('batch_size'))}")
    elif info.get("kind") in ("imported", "recorded") and info.get("checkpoints"):
        numbers = [c.get("epoch") for c in info["checkpoints"]]
        unit = info.get("unit") or "epoch"
        training = (f"the user's own ({info['kind']}): {len(numbers)} checkpoints, {unit}s "
                    f"{numbers[0]}..{numbers[-1]}")
    rows = [("model", f"{model} ({_fmt(params)} parameters)" if params and model else model),
            ("data", dataset), ("loss", _loss_text(meta)), ("training", training),
            ("final train loss", last.get("train_loss")), ("final test accuracy", last.get("test_accuracy")),
            ("planes", ", ".join(p.kind for p in planes))]
    return _facts(rows)


def plane_summary(plane: PlaneData, cap: float | None) -> str:
    """One plane's facts, topology counts and minima table (from its ``topology_<kind>.json``)."""
    s, meta = plane.surface, plane.surface.meta
    g = s.grid
    xlabel, ylabel = display.axis_labels(meta)
    ev = display.find_meta(meta, "explained_variance")
    explained = None
    if isinstance(ev, Sequence) and len(ev) >= 2:
        explained = f"PC1 {100 * float(ev[0]):.1f}%, PC2 {100 * float(ev[1]):.1f}% of the path's variance"
    how = None
    if plane.kind == "random":
        how = ", ".join(f"{k} {display.find_meta(meta, k)}" for k in ("norm", "ignore", "seed")
                        if display.find_meta(meta, k) is not None) or None
    usable = s.usable("loss")
    above = int((usable & (s.loss > cap)).sum()) if cap is not None else 0
    rows = [("grid", f"{g.nx} x {g.ny} points, {xlabel} in [{g.xmin:.4g}, {g.xmax:.4g}], "
                     f"{ylabel} in [{g.ymin:.4g}, {g.ymax:.4g}]"),
            ("directions", how), ("explained variance", explained),
            ("centre", f"{meta.get('unit') or 'epoch'} {meta['epoch']}" if meta.get("epoch") is not None else None),
            (f"{display.array_label(meta, 'loss')} at the centre", s.centre_value("loss")),
            ("lowest, highest", f"{_fmt(float(s.loss[usable].min()))}, {_fmt(float(s.loss[usable].max()))}"
             if usable.any() else None),
            ("cap (grey above)", f"{_fmt(cap)} ({above} point{'s' if above != 1 else ''} above, "
                                 f"{int((~usable).sum())} not usable)" if cap is not None else None)]
    parts = [_facts(rows)]
    topo = plane.topology
    if topo:
        counts = topo.get("counts", {})
        threshold = topo.get("persistence")
        rule = (f"persistence above {_fmt(threshold)}{' of the value range' if topo.get('relative') else ''}"
                if threshold is not None else "")
        parts.append(f"<p class=\"counts\">{html.escape(_count_text(counts))}"
                     f"{html.escape(' (' + rule + ')') if rule else ''}</p>")
        minima = topo.get("minima") or []
        rows = [[m.get("label"), *(m.get("coords") or [None, None]), m.get("value"), m.get("persistence"),
                 m.get("basin_fraction"), (m.get("width") or {}).get("diameter"),
                 ", ".join(_fmt(c, 3) for c in (m.get("curvature") or [])) or None]
                for m in minima[:MAX_MINIMA]]
        if rows:
            head = ["#", xlabel, ylabel, display.array_label(meta, "loss"), "persistence", "basin fraction",
                    "width", "curvature"]
            parts.append(_table(head, rows, "minima"))
            if len(minima) > MAX_MINIMA:
                parts.append(f"<p class=\"note\">and {len(minima) - MAX_MINIMA} more minima in "
                             f"topology_{html.escape(plane.kind)}.json</p>")
    else:
        parts.append('<p class="note">no topology yet (lossvista analyze)</p>')
    return "".join(parts)


def _count_text(counts: Mapping[str, int]) -> str:
    names = (("minimum", "minimum", "minima"), ("saddle", "saddle", "saddles"), ("maximum", "maximum", "maxima"),
             ("degenerate", "degenerate point", "degenerate points"))
    return ", ".join(f"{counts[k]} {one if counts[k] == 1 else many}" for k, one, many in names
                     if counts.get(k) is not None)
