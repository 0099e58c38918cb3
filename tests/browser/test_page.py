"""The run's page in headless Chromium, offline: it draws, without a console error or a request,
switches planes and views, and the numbers under the cursor are the .vts values."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from pipeline.run import open_run

from ..page_run import make_run
from .conftest import changed_share, viridis_share

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLOT = "document.getElementById('lossvista-plot')"


def _open(browser, run):
    page = browser.open((run / "index.html").resolve().as_uri())
    page.evaluate("window.lossvista.ready")
    page.frames()
    return page


def _switch(page, selector, drawn):
    """A real click on a control, then wait until the page has drawn ``drawn`` (plane/view/array)."""
    page.click_selector(selector)
    page.wait_for(lambda: page.evaluate("document.documentElement.dataset.drawn") == drawn, f"the page to draw {drawn}")
    page.frames()


def _clean(page, run) -> None:
    """No error, and no request but the file itself and data the page made (data:, blob: URLs)."""
    assert page.errors() == []
    requests = page.requests()
    assert requests[0] == (run / "index.html").resolve().as_uri()
    assert [u for u in requests[1:] if not u.startswith(("data:", "blob:"))] == []


def _plot_shot(page) -> bytes:
    """A screenshot of the plot alone."""
    import base64

    box = page.evaluate(f"(() => {{ const r = {PLOT}.getBoundingClientRect(); "
                        f"return {{x: r.x, y: r.y, width: r.width, height: r.height, scale: 1}}; }})()")
    return base64.b64decode(page.send("Page.captureScreenshot", {"format": "png", "clip": box})["data"])


def test_page_draws_offline_and_switches_planes_and_views(browser, demo_run):
    page = _open(browser, demo_run)
    assert page.evaluate("document.documentElement.dataset.drawn") == "random/3d/loss"
    assert page.evaluate(f"{PLOT}.querySelectorAll('canvas').length") >= 1  # the WebGL scene
    shots = {"random/3d": _plot_shot(page)}
    assert viridis_share(shots["random/3d"]) > 0.01, "the surface's colours are not in the picture"
    _switch(page, 'button[data-plane="1"]', "pca/3d/loss")
    shots["pca/3d"] = _plot_shot(page)
    assert viridis_share(shots["pca/3d"]) > 0.01
    assert changed_share(shots["random/3d"], shots["pca/3d"]) > 0.05, "switching the plane left the picture as it was"
    assert page.evaluate("document.querySelector('section.plane[data-plane=\"1\"]').hidden") is False
    assert page.evaluate("document.querySelector('section.plane[data-plane=\"0\"]').hidden") is True
    _switch(page, 'button[data-view="2d"]', "pca/2d/loss")
    shots["pca/2d"] = _plot_shot(page)
    assert viridis_share(shots["pca/2d"]) > 0.002  # coloured contour lines on white
    assert changed_share(shots["pca/3d"], shots["pca/2d"]) > 0.05
    _switch(page, 'button[data-plane="0"]', "random/2d/loss")
    assert changed_share(shots["pca/2d"], _plot_shot(page)) > 0.02
    page.evaluate("(() => { const s = document.getElementById('lossvista-array'); s.value = 'accuracy'; "
                  "s.dispatchEvent(new Event('change')); })()")
    page.wait_for(lambda: page.evaluate("document.documentElement.dataset.drawn") == "random/2d/accuracy", "accuracy")
    _clean(page, demo_run)


def _readout(page) -> dict | None:
    return page.evaluate("(() => { const r = document.getElementById('lossvista-readout'); if (!('i' in r.dataset)) "
                         "return null; const v = {}; r.querySelectorAll('[data-array]').forEach(s => "
                         "{ v[s.dataset.array] = s.dataset.value; }); return {i: +r.dataset.i, j: +r.dataset.j, "
                         "values: v}; })()")


def _equal_to_file(readout: dict, surface) -> None:
    i, j = readout["i"], readout["j"]
    assert set(readout["values"]) == set(surface.names())
    for name, text in readout["values"].items():
        expected = surface.values(name)[i, j]
        if text == "null":
            assert not math.isfinite(expected), (name, i, j)
        else:
            assert float(text) == expected, (name, i, j, text, expected)  # exactly the file's number


def _free_points(page, k: int, plane: dict, n: int = 4) -> list:
    """``n`` grid points ``((i, j), (x, y) in pixels)`` of the 2D view, each more than 25 pixels
    away from the path and the critical points (whose markers would take the hover there)."""
    pixels = page.evaluate(
        f"(pts => {{ const gd = {PLOT}, fl = gd._fullLayout, r = gd.getBoundingClientRect(); return pts.map(q => "
        f"[r.left + fl.xaxis._offset + fl.xaxis.l2p(q[0]), r.top + fl.yaxis._offset + fl.yaxis.l2p(q[1])]); }})"
        f"({json.dumps([[x, y] for x in plane['xs'] for y in plane['ys']])})")
    grid = np.array(pixels).reshape(len(plane["xs"]), len(plane["ys"]), 2)
    markers = []
    for layer in (plane["path"], plane["critical"]):
        if layer:
            markers += page.evaluate(
                f"(pts => {{ const gd = {PLOT}, fl = gd._fullLayout, r = gd.getBoundingClientRect(); return pts.map(q "
                f"=> [r.left + fl.xaxis._offset + fl.xaxis.l2p(q[0]), r.top + fl.yaxis._offset + "
                f"fl.yaxis.l2p(q[1])]); }})({json.dumps(list(zip(layer['x'], layer['y'])))})")
    far = np.zeros(grid.shape[:2], bool)
    far[1:-1, 1:-1] = True  # not on the plane's edge, the border of the plot area
    for m in markers:
        far &= np.hypot(*(grid - np.asarray(m)).transpose(2, 0, 1)) > 25
    candidates = np.argwhere(far)
    picked = candidates[np.linspace(0, len(candidates) - 1, n).round().astype(int)]
    return [((int(i), int(j)), tuple(grid[i, j])) for i, j in picked]


def test_numbers_under_the_cursor_equal_the_vts_values(browser, demo_run):
    run = open_run(demo_run)
    page = _open(browser, demo_run)
    # the embedded data read back: every array of every plane, exactly
    scene = json.loads(page.evaluate("JSON.stringify(window.lossvista.scene)"))
    for plane in scene["planes"]:
        surface = run.surface(plane["kind"])
        for name in surface.names():
            back = np.array([[np.nan if v is None else v for v in row] for row in plane["values"][name]])
            np.testing.assert_array_equal(back, surface.values(name))
    # 2D: the mouse on given grid points of each plane
    for k, kind in enumerate(run.planes):
        page.evaluate(f"window.lossvista.show({{plane: {k}, view: '2d', array: 'loss'}})")
        page.frames()
        surface = run.surface(kind)
        for (i, j), (x, y) in _free_points(page, k, scene["planes"][k]):
            page.mouse("mouseMoved", x, y)
            got = page.wait_for(lambda: (r := _readout(page)) and (r["i"], r["j"]) == (i, j) and r,
                                f"the readout of ({i}, {j}) on the {kind} plane")
            _equal_to_file(got, surface)
    # 3D: the mouse over the warped surface, wherever it lands
    page.evaluate("window.lossvista.show({plane: 0, view: '3d', array: 'loss'})")
    page.frames()
    page.evaluate("document.getElementById('lossvista-readout').removeAttribute('data-i')")
    box = page.evaluate(f"(() => {{ const r = {PLOT}.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }})()")
    got = None
    for fx, fy in [(0.5, 0.55), (0.45, 0.6), (0.55, 0.5), (0.4, 0.5), (0.6, 0.62)]:
        page.mouse("mouseMoved", box[0] + fx * box[2], box[1] + fy * box[3])
        try:
            # a position may miss the warped surface: a short wait, then the next position
            got = page.wait_for(lambda: _readout(page), "a readout in 3D", timeout=20)
            break
        except Exception:
            continue
    assert got is not None, "no point of the 3D surface under the cursor"
    _equal_to_file(got, run.surface(run.planes[0]))
    _clean(page, demo_run)


def test_every_view_is_valid_plotly_and_draws_grey_and_holes(browser, tmp_path):
    """A run with a NaN, an early-exit bound and a corner above the cap, a loss name and an extra
    array: every plane x view x array passes Plotly.validate and draws without an error."""
    run = make_run(tmp_path / "toy", loss_name="cross_entropy", extra=True)
    open_run(run).write_page()
    page = _open(browser, run)
    problems = page.evaluate("""(() => { const L = window.lossvista, out = [];
        L.scene.planes.forEach((p, k) => L.views.forEach(v => Object.keys(p.colour).forEach(a => {
          const f = L.figure({plane: k, view: v, array: a});
          const e = Plotly.validate(f.data, f.layout);
          if (e) out.push([k, v, a, e.map(x => x.msg)]); }))); return out; })()""")
    assert problems == []
    options = page.evaluate("[...document.querySelectorAll('#lossvista-array option')].map(o => o.textContent)")
    assert options[0] == "cross_entropy" and "hessian_max" in options
    for k in range(2):
        for view in ("3d", "2d"):
            for array in ("loss", "hessian_max"):
                page.evaluate(f"window.lossvista.show({{plane: {k}, view: '{view}', array: '{array}'}})")
                page.frames()
    time.sleep(0.2)
    _clean(page, run)
