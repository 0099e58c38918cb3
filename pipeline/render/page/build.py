"""The page's HTML: the scene as JSON, the summary, plotly.js and the page's own script and style,
all inline in one file.

Nothing is loaded from anywhere: plotly.js comes from the ``plotly`` package
(:func:`plotly.offline.get_plotlyjs`), the script and style from ``assets/`` beside this module,
and a Content-Security-Policy in the page forbids every request (``default-src 'none'``), so a
browser that opens it offline draws the same page, and one online fetches nothing.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ... import __version__, display
from ...atomic import write_text
from ...errors import LossvistaError, ParameterError, param
from .scene import PlaneData, plane_scene, style
from .summary import plane_summary, run_summary

__all__ = ["VIEWS", "CSP", "page_html", "write_page"]

VIEWS = {"3d": "3D surface", "2d": "2D contours"}  # the page's views: key -> button label
ASSETS = Path(__file__).resolve().parent / "assets"
# no request of any kind; inline script and style only. plotly.js needs eval (its WebGL shaders)
# and blob: workers; its "download plot as png" button makes a data: URL.
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; worker-src blob:")


def _json_for_html(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element early: ``<``, ``>`` and ``&`` as ``\\u`` escapes."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _script(code: str, what: str) -> str:
    if "</script" in code.lower():
        raise LossvistaError(f"{what} contains '</script' and cannot be inlined")
    return f"<script>{code}</script>"


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def page_html(planes: Sequence[PlaneData], *, info: Mapping[str, Any] | None = None, title: str | None = None,
              array: str = "loss", view: str = "3d") -> str:
    """The self-contained page of ``planes``.

    Parameters
    ----------
    planes : sequence of PlaneData
        At least one 2D surface; shown in this order (the first one first).
    info : dict, optional
        The run's ``run.json`` (model, data, training) for the summary.
    title : str, optional
        Default: "<model> on <dataset>".
    array : str, default 'loss'
        The array that colours the surface first (any numeric point array of the first plane).
    view : {'3d', '2d'}, default '3d'

    Returns
    -------
    str
        The whole HTML document (about 5 MB, most of it plotly.js).
    """
    if not planes:
        raise LossvistaError("the page needs at least one surface; got none")
    if view not in VIEWS:
        raise ParameterError(f"{param('view')} must be one of {', '.join(map(repr, VIEWS))}; got {view!r}")
    names = planes[0].surface.names()
    if array not in names:
        raise ParameterError(f"{param('array')} must be one of {', '.join(map(repr, names))}; got {array!r}")
    info = dict(info or {})
    scenes = [plane_scene(p) for p in planes]
    meta = planes[0].surface.meta
    title = title or " on ".join(str(meta[k]) for k in ("model", "dataset") if meta.get(k)) or "loss landscape"
    scene = {"format": 1, "style": style(), "views": VIEWS, "planes": scenes,
             "initial": {"plane": 0, "view": view, "array": array}}
    plane_buttons = "".join(
        f'<button type="button" data-plane="{k}" aria-pressed="{str(k == 0).lower()}">{html.escape(s["title"])}</button>'
        for k, s in enumerate(scenes))
    view_buttons = "".join(
        f'<button type="button" data-view="{v}" aria-pressed="{str(v == view).lower()}">{html.escape(label)}</button>'
        for v, label in VIEWS.items())
    options = "".join(f'<option value="{html.escape(n)}"{" selected" if n == array else ""}>'
                      f'{html.escape(display.array_label(meta, n))}</option>' for n in scenes[0]["colour"])
    planes_html = "".join(
        f'<section class="plane" data-plane="{k}"{"" if k == 0 else " hidden"}>'
        f'<h2>{html.escape(s["title"])}</h2>{plane_summary(p, s["colour"]["loss"]["cap"])}</section>'
        for k, (p, s) in enumerate(zip(planes, scenes)))
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    css = (ASSETS / "page.css").read_text(encoding="utf-8")
    js = (ASSETS / "page.js").read_text(encoding="utf-8")
    run_name = info.get("name") or meta.get("run")
    subtitle = (f"run {html.escape(str(run_name))} · " if run_name else "") + "loss landscape (Li et al. 2018)"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="lossvista {__version__}">
<title>{html.escape(title)} · lossvista</title>
<style>{css}</style>
</head>
<body>
<header><h1>{html.escape(title)}</h1><p class="sub">{subtitle}</p></header>
<nav id="lossvista-controls" aria-label="what to show">
<div class="group" role="group" aria-label="plane">{plane_buttons}</div>
<div class="group" role="group" aria-label="view">{view_buttons}</div>
<label class="group">colour by <select id="lossvista-array">{options}</select></label>
</nav>
<main>
<div id="lossvista-plot" class="plot"><p class="fallback">The interactive view needs JavaScript; the summary
below reads without it.</p></div>
<div id="lossvista-readout" class="readout" aria-live="polite">Point at the surface to read its values.</div>
</main>
<section id="lossvista-summary">
<section class="run"><h2>Run</h2>{run_summary(info, planes)}</section>
{planes_html}
</section>
<footer>lossvista {__version__} · {created} · one file, nothing loaded from the network · 3D: drag to rotate,
scroll to zoom, double-click to reset</footer>
<script type="application/json" id="lossvista-scene">{_json_for_html(scene)}</script>
<script>window.PlotlyConfig = {{MathJaxConfig: "local"}};</script>
{_script(_plotly_js(), "plotly.js")}
{_script(js, "page.js")}
</body>
</html>
"""


def write_page(planes: Sequence[PlaneData], out: str | os.PathLike, **kwargs: Any) -> Path:
    """Write :func:`page_html` to ``out`` atomically (keyword arguments as there). ``out`` must
    not be a directory; its folder must exist."""
    out = Path(out)
    if out.is_dir():
        raise ParameterError(f"{param('out')} must be a file, not a directory; got {str(out)!r}")
    return write_text(out, page_html(planes, **kwargs))
