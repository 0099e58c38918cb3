"""The run's HTML page without a browser: the embedded data, the display rules, self-containment,
size, the summary, errors, and the notebook display."""
from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pytest

from pipeline import display
from pipeline.datamodel import Grid, Surface
from pipeline.errors import LossvistaError
from pipeline.render.field import display_field
from pipeline.render.page import CSP, PlaneData, export_page, page_html, plane_scene
from pipeline.rundir import RunDir
from pipeline.run import Run, open_run
from pipeline.vtkio import read_points, read_surface, read_trajectory

from .page_run import make_run, make_surface

SCENE = re.compile(r'<script type="application/json" id="lossvista-scene">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("page") / "toy", loss_name="cross_entropy", extra=True)


@pytest.fixture(scope="module")
def toy_html(toy):
    return open_run(toy).write_page().read_text(encoding="utf-8")


def _scene(text: str) -> dict:
    return json.loads(SCENE.search(text).group(1))


def _grid(nested) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in nested], dtype=np.float64)


def test_embedded_values_equal_the_vts_values(toy, toy_html):
    scene = _scene(toy_html)
    assert [p["kind"] for p in scene["planes"]] == ["random", "pca"]
    for plane in scene["planes"]:
        surface = read_surface(RunDir(toy).surface(plane["kind"]))
        assert set(plane["values"]) == set(surface.names()) >= {"loss", "accuracy", "basin", "hessian_max"}
        for name in surface.names():
            np.testing.assert_array_equal(_grid(plane["values"][name]), surface.values(name))  # bit for bit
        np.testing.assert_array_equal(plane["xs"], surface.xs)
        np.testing.assert_array_equal(plane["ys"], surface.ys)
        # the early-exit bound is listed as inexact (shown as ">= value"), the NaN as null
        assert plane["inexact"]["loss"] == [[1, surface.grid.ny - 1]]
        assert plane["values"]["loss"][0][-1] is None


def test_display_rules_are_the_pictures(toy):
    run = Run(toy)
    surface = run.surface("random")
    scene = plane_scene(run.plane("random"))
    loss = display_field(surface, "loss", n_levels=20)
    cap = display.surface_cap(surface)
    c = scene["colour"]["loss"]
    assert loss.log and c["log"] and c["cap"] == pytest.approx(cap)
    assert (c["cmin"], c["cmax"]) == (pytest.approx(math.log10(loss.vmin)), pytest.approx(math.log10(cap)))
    assert c["levels"]["start"] == pytest.approx(math.log10(loss.levels[0]))
    assert c["levels"]["end"] == pytest.approx(math.log10(loss.levels[-1]))
    colours, heights = _grid(c["values"]), _grid(scene["heights"])
    above = surface.usable("loss") & (surface.loss > cap)
    assert above.any()  # the fixture's corner above the cap: grey, at the cap's height
    assert np.all(colours[above] >= c["grey_from"]) and np.all(colours[~above & surface.usable("loss")] <= c["cmax"])
    np.testing.assert_allclose(heights[above], cap, rtol=1e-5)
    ok = surface.usable("loss") & ~above
    np.testing.assert_allclose(heights[ok], surface.loss[ok], atol=1e-5 * cap)  # drawn to 6 digits of the range
    np.testing.assert_allclose(colours[ok], np.log10(surface.loss[ok]), atol=1e-4)
    assert math.isnan(heights[0, -1]) and math.isnan(colours[0, -1])  # the NaN: a hole, never 0
    assert c["ticks"]["text"][-1] == f"above the cap {cap:.3g}"
    # 2D lines: Plotly spreads line colours over the levels, so their scale gives each level its own colour
    from matplotlib import colormaps, colors

    for stop, value in ((c["line_scale"][0], c["levels"]["start"]), (c["line_scale"][-1], c["levels"]["end"])):
        assert stop[1] == colors.to_hex(colormaps["viridis"]((value - c["cmin"]) / (c["cmax"] - c["cmin"])))
    # an array that may be negative: linear colours, no cap
    h = scene["colour"]["hessian_max"]
    assert not h["log"] and h["cap"] is None
    assert h["cmin"] == pytest.approx(float(np.nanmin(surface.values("hessian_max"))))


def test_path_and_critical_points_come_from_their_files(toy):
    run = Run(toy)
    scene = plane_scene(run.plane("pca"))
    t = read_trajectory(RunDir(toy).trajectory("pca"))
    assert scene["path"]["epoch"] == t.epoch.tolist()
    np.testing.assert_array_equal(scene["path"]["x"], t.coords[:, 0])
    coords, arrays, _ = read_points(RunDir(toy).critical_points("pca"))
    crit = scene["critical"]
    assert crit["type"] == [display.CRITICAL_STYLE[int(k)][0] for k in arrays["CriticalType"]]
    np.testing.assert_array_equal(crit["persistence"], arrays["persistence"])
    np.testing.assert_array_equal(crit["x"], coords[:, 0])
    lo, hi = scene["zrange"]
    assert all(lo <= z for z in scene["path"]["z"] + crit["z"])


def test_page_is_self_contained(toy_html):
    from plotly.offline import get_plotlyjs

    assert toy_html.count(get_plotlyjs()) == 1  # plotly.js inline
    rest = toy_html.replace(get_plotlyjs(), "")
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in rest
    assert "default-src 'none'" in CSP
    assert not re.search(r"https?://", rest), re.findall(r".{40}https?://.{40}", rest)[:3]
    assert not re.search(r"<(script|img|iframe|link)[^>]*\b(src|href)=", rest)
    assert "@import" not in rest and "url(" not in rest


def test_page_size(tmp_path):
    """Two 51 x 51 planes (the demo's size) stay well under 10 MB."""
    planes = []
    for kind in ("random", "pca"):
        s = make_surface(kind)
        g = Grid(s.grid.xmin, s.grid.xmax, 51, s.grid.ymin, s.grid.ymax, 51)
        a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
        planes.append(PlaneData(kind, Surface(g, 0.1 + a ** 2 + b ** 2, np.full(g.shape, 0.9),
                                              meta=s.meta, extra={"basin": np.zeros(g.shape, np.int32)})))
    size = len(page_html(planes).encode("utf-8"))
    assert size < 10_000_000, size


def test_summary_and_labels(toy, toy_html):
    topo = json.loads(RunDir(toy).topology("random").read_text())
    assert "toy-mlp (1,234 parameters)" in toy_html and "analytic (100 train, 20 test samples)" in toy_html
    assert "cross_entropy on the train split (100 samples)" in toy_html
    assert "PC1 80.0%, PC2 15.0% of the path&#x27;s variance" in toy_html
    tables = re.findall(r'<table class="minima">(.*?)</table>', toy_html, re.S)
    assert len(tables) == 2
    assert tables[0].count("<tr>") == 1 + len(topo["minima"])  # the header and one row per minimum
    counts = topo["counts"]
    assert f"{counts['minimum']} minim" in toy_html and f"{counts['saddle']} saddle" in toy_html
    scene = _scene(toy_html)
    assert scene["planes"][0]["colour"]["loss"]["label"] == "cross_entropy"
    assert scene["planes"][0]["height_label"] == "cross_entropy"
    assert '<option value="loss" selected>cross_entropy</option>' in toy_html


def test_text_cannot_break_out_of_the_page():
    s = make_surface("random")
    s.meta["model"] = "</script><script>alert(1)</script>"
    text = page_html([PlaneData("random", s)])
    assert "<script>alert(1)" not in text
    assert _scene(text)["planes"][0]["kind"] == "random"


@pytest.mark.parametrize("kwargs, message", [
    ({"array": "nope"}, "array must be one of 'loss', 'accuracy'"),
    ({"view": "4d"}, "view must be one of '3d', '2d'; got '4d'"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        page_html([PlaneData("random", make_surface("random"))], **kwargs)


def test_bad_inputs(tmp_path, toy):
    with pytest.raises(LossvistaError, match="at least one surface"):
        page_html([])
    one_d = Surface(Grid(-1, 1, 11, 0, 0, 1), np.linspace(1, 2, 11)[:, None], np.ones((11, 1)))
    with pytest.raises(ValueError, match="the page draws 2D surfaces"):
        page_html([PlaneData("interp", one_d)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LossvistaError, match="has no surface_<plane>.vts"):
        export_page(tmp_path / "empty")
    with pytest.raises(ValueError, match="out must be a file, not a directory"):
        export_page(toy, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_run_and_surface_in_a_notebook(toy):
    run = open_run(toy)
    assert repr(run) == f"Run({str(toy)!r}, planes=['random', 'pca'])"
    for obj in (run, run.surface("pca")):
        bundle = obj._repr_mimebundle_()
        assert base64.b64decode(bundle["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
        html = bundle["text/html"]
        assert html.startswith('<div class="lossvista-output"><iframe srcdoc="&lt;!DOCTYPE html&gt;')
        assert f'<img src="data:image/png;base64,{bundle["image/png"]}"' in html  # shown where no script runs
    one_d = Surface(Grid(-1, 1, 11, 0, 0, 1), np.linspace(1, 2, 11)[:, None], np.ones((11, 1)))
    assert set(one_d._repr_mimebundle_()) == {"image/png"}


def test_open_run_is_in_the_top_level_api(toy):
    import pipeline

    assert isinstance(pipeline.open_run(toy), pipeline.Run)
    assert RunDir(toy).index_html == toy / "index.html"
