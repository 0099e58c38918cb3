"""pipeline.display: each display rule checked against an independent computation written here."""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import display
from pipeline.datamodel import centre_index
from pipeline.datamodel import Grid
from pipeline.datamodel import Surface

from .conftest import HANG_GUARD

ROOT = Path(__file__).resolve().parents[1]


def uneven_axes(rng, nx=7, ny=5):
    """Strictly increasing, unevenly spaced axes (so no formula can lean on equal steps)."""
    xs = np.cumsum(rng.uniform(0.2, 1.0, nx)) - 2.0
    ys = np.cumsum(rng.uniform(0.1, 0.7, ny)) - 1.0
    return xs, ys


# ----------------------------------------------------------------------------- import


@pytest.mark.parametrize("module", ["display", "geometry", "datamodel", "rundir"])
def test_imports_numpy_only(module):
    code = (f"import sys, pipeline.{module}; "
            "bad = [m for m in ('torch', 'vtkmodules', 'matplotlib', 'pyvista', 'scipy') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.paraview
@pytest.mark.skipif(shutil.which("pvpython") is None, reason="needs ParaView's pvpython")
def test_imports_under_paraview_python():
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import pipeline.display as d, pipeline.geometry as g; "
            "print(d.__file__, g.__file__)")
    proc = subprocess.run(["pvpython", "-c", code], capture_output=True, text=True, timeout=HANG_GUARD,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "pipeline/display.py" in proc.stdout and "pipeline/geometry.py" in proc.stdout


# ----------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("meta, expected", [
    ({"num_classes": 10}, 10),
    ({"dataset_info": {"n_classes": 3}}, 3),
    ({"num_classes": np.int64(7)}, 7),
    ({"num_classes": 1}, None),
    ({"num_classes": True}, None),
    ({"num_classes": "10"}, None),
    ({}, None),
])
def test_num_classes_and_chance_loss(meta, expected):
    assert display.num_classes(meta) == expected
    assert display.chance_loss(meta) == (math.log(expected) if expected else 1.0)
    assert display.chance_loss(meta, default=0.0) == (math.log(expected) if expected else 0.0)


def test_find_meta_looks_one_level_down_only():
    meta = {"a": 1, "directions": {"explained_variance": [0.5]}, "deep": {"x": {"kind": "pca"}}}
    assert display.find_meta(meta, "a") == 1
    assert display.find_meta(meta, "explained_variance") == [0.5]
    assert display.find_meta(meta, "kind") is None


# ----------------------------------------------------------------------------- cap


@pytest.mark.parametrize("xs, ys, expected", [
    (np.linspace(-1, 1, 5), np.linspace(-2, 2, 3), (2, 1)),
    (np.linspace(-1, 1, 4), np.linspace(-1, 1, 3), None),  # even nx: 0 is not a grid value
    (np.array([0.0, 1.0]), np.array([-1.0, 1e-13]), (0, 1)),
])
def test_centre_index(xs, ys, expected):
    assert centre_index(xs, ys) == expected


def cap_by_hand(values, usable, centre, factor, floor):
    """The rule written out: factor x max(centre value if usable else smallest usable value, floor)."""
    flat = [(k, v) for k, v in np.ndenumerate(values) if usable[k] and math.isfinite(v)]
    ref = values[centre] if centre is not None and usable[centre] and math.isfinite(values[centre]) else \
        min(v for _, v in flat)
    return factor * max(ref, floor)


@pytest.mark.parametrize("centre_value, centre_ok, floor", [
    (3.0, True, math.log(10)),  # centre worse than chance: the centre decides
    (1e-4, True, math.log(10)),  # a well-trained centre: the floor decides
    (1e-4, True, 0.0),
    (1e-4, False, 0.0),  # invalid centre: the smallest usable value
])
def test_default_cap_cases(centre_value, centre_ok, floor):
    rng = np.random.default_rng(0)
    values = rng.uniform(0.5, 4.0, (5, 3))
    values[0, 0] = 0.2  # the smallest usable value
    values[4, 2] = 0.01  # smaller, but unusable
    values[1, 1] = np.nan
    usable = np.ones_like(values, bool)
    usable[4, 2] = False
    values[2, 1] = centre_value
    usable[2, 1] = centre_ok
    got = display.default_cap(values, usable, centre=(2, 1), cap_factor=5.0, floor=floor)
    assert got == pytest.approx(cap_by_hand(values, usable, (2, 1), 5.0, floor), rel=1e-15)
    # the same rule on the flat vertex-order layout the plugin uses
    flat_centre = 2 + 5 * 1
    assert display.default_cap(values.T.ravel(), usable.T.ravel(), centre=flat_centre, floor=floor) == got


def test_default_cap_errors():
    v = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="cap_factor must be a finite number >= 1; got 0.5"):
        display.default_cap(v, cap_factor=0.5)
    with pytest.raises(ValueError, match="floor must be a finite number >= 0; got -1"):
        display.default_cap(v, floor=-1)
    assert display.default_cap(np.array([np.nan, 1.0]), np.array([True, False]), floor=0.5) == 2.5  # floor alone


@pytest.mark.parametrize("meta", [{}, {"num_classes": 10}])
@pytest.mark.parametrize("odd", [True, False])
def test_render_default_cap_is_the_shared_rule(meta, odd):
    from pipeline.display import surface_cap as default_cap

    g = Grid(-1.0, 1.0, 9 if odd else 8, -0.5, 0.5, 5)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    loss = 0.05 + a ** 2 + b ** 2
    loss[0, 0] = 1e-3  # smallest value, but only an early-exit bound: not valid
    bounded = np.zeros(loss.shape, bool)
    bounded[0, 0] = True
    s = Surface(g, loss, np.zeros_like(loss), bounded=bounded, meta=meta)
    usable = s.valid.astype(bool)
    floor = math.log(10) if meta else 1.0
    expected = cap_by_hand(loss, usable, s.centre_index(), 5.0, floor)
    assert default_cap(s) == pytest.approx(expected, rel=1e-15)
    assert default_cap(s, floor=0.0) == pytest.approx(cap_by_hand(loss, usable, s.centre_index(), 5.0, 0.0))


# ----------------------------------------------------------------------------- threshold


VALUES = np.array([0.5, 2.0, 3.0, np.nan, np.inf, 7.0, 1.0, -1.0, 0.0])
INVALID = np.array([0, 0, 0, 0, 0, 1, 1, 0, 0], bool)  # 7.0: a bound above the cap; 1.0: unknown
HIDDEN = np.array([0, 1, 0, 0, 0, 0, 0, 0, 0], bool)


def test_threshold_blank_clamp_log10_point_by_point():
    cap = 2.5
    for mode in ("blank", "clamp", "log10"):
        shown, hidden = display.threshold(VALUES, mode, None if mode == "log10" else cap,
                                         invalid=INVALID, hidden=HIDDEN)
        for k, v in enumerate(VALUES):
            known = math.isfinite(v) and not INVALID[k]
            if HIDDEN[k]:
                expect = None
            elif mode == "blank":
                expect = v if known and v <= cap else None
            elif mode == "clamp":
                expect = min(v, cap) if known else (cap if v >= cap else None)  # nan >= cap is False
            else:
                expect = math.log10(v) if known and v > 0 else None
            assert hidden[k] == (expect is None), (mode, k)
            if expect is None:
                assert math.isnan(shown[k]), (mode, k)
            else:
                assert shown[k] == pytest.approx(expect, rel=1e-15), (mode, k)


def test_threshold_errors_and_log10_or_nan():
    with pytest.raises(ValueError, match="mode must be one of 'blank', 'clamp', 'log10'; got 'cut'"):
        display.threshold(VALUES, "cut", 1.0)
    with pytest.raises(ValueError, match="needs a cap"):
        display.threshold(VALUES, "clamp")
    with np.errstate(all="raise"):  # no warnings either
        out = display.log10_or_nan(np.array([100.0, 0.0, -3.0, np.nan, np.inf]))
    np.testing.assert_array_equal(out[:1], [2.0])
    assert np.isnan(out[1:4]).all() and out[4] == np.inf


# ----------------------------------------------------------------------------- contour levels


@pytest.mark.parametrize("lower, upper", [(True, True), (False, False), (False, True), (True, False)])
@pytest.mark.parametrize("n", [1, 2, 7, 20])
def test_log_levels_are_strictly_log_spaced(n, lower, upper):
    lo, hi = 3e-4, 12.0
    lv = display.contour_levels(lo, hi, n, log=True, lower=lower, upper=upper)
    assert lv.shape == (n,)
    if n == 1 and lower and upper:  # one level cannot be both ends: it is the lower one
        assert lv[0] == lo
        return
    assert (lv[0] == pytest.approx(lo)) == lower and (lv[-1] == pytest.approx(hi)) == upper
    assert lo <= lv[0] and lv[-1] <= hi and np.all(np.diff(lv) > 0)
    # equal ratios, including the excluded ends: [lo, *levels, hi] without duplicates
    full = np.log([*([] if lower else [lo]), *lv, *([] if upper else [hi])])
    steps = np.diff(full)
    if len(steps):
        np.testing.assert_allclose(steps, (math.log(hi) - math.log(lo)) / len(steps), rtol=1e-10)


def test_linear_levels_and_the_usual_ranges():
    np.testing.assert_allclose(display.contour_levels(0.5, 2.0, 7), [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0])
    np.testing.assert_allclose(display.contour_levels(-1.0, 1.0, 3, lower=False, upper=False), [-0.5, 0.0, 0.5])
    np.testing.assert_allclose(display.contour_levels(0.0, 1.0, 4, lower=False), [0.25, 0.5, 0.75, 1.0])


@pytest.mark.parametrize("args, kwargs, message", [
    ((-1.0, 2.0, 5), {"log": True}, "log spacing needs a positive range; the range starts at -1"),
    ((2.0, 2.0, 5), {}, r"the contour range must have finite min < max; got \[2, 2\]"),
    ((0.0, np.inf, 5), {}, "finite min < max"),
    ((0.0, 1.0, 0), {}, "the number of levels must be an integer >= 1; got 0"),
    ((0.0, 1.0, 2.5), {}, "integer >= 1; got 2.5"),
])
def test_contour_level_errors(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        display.contour_levels(*args, **kwargs)


@pytest.mark.parametrize("meta, array, label", [
    ({}, "loss", "loss"),
    ({"loss_name": "cross_entropy"}, "loss", "cross_entropy"),
    ({"loss_name": "mse"}, "test_loss", "test mse"),
    ({"loss_name": "mse"}, "accuracy", "accuracy"),
    ({"loss_name": " "}, "loss", "loss"),
    ({"loss_name": None}, "hessian_max", "hessian_max"),
])
def test_array_label_names_the_loss_by_its_metadata(meta, array, label):
    assert display.array_label(meta, array) == label
