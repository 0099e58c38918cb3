"""pipeline.render.quicklook: pictures are written, show the path and critical points, handle NaN."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pipeline.datamodel import Grid
from pipeline.datamodel import Surface, Trajectory

mpl_image = pytest.importorskip("matplotlib.image")
pytest.importorskip("pyvista")

from pipeline import display  # noqa: E402
from pipeline.render import field  # noqa: E402
from pipeline.render import quicklook as ql  # noqa: E402


def hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[k:k + 2], 16) for k in (1, 3, 5)], dtype=float)


def load_rgb(path) -> np.ndarray:
    img = mpl_image.imread(path)  # (H, W, 3|4) float in [0, 1]
    return img[..., :3] * 255.0


def count_near(img: np.ndarray, color: str, tol: float = 40.0) -> int:
    return int((np.linalg.norm(img - hex_rgb(color), axis=-1) < tol).sum())


def landscape(nx=41, ny=31, *, nan_edge=False, meta=None) -> Surface:
    """Two basins, a saddle between them and a blow-up towards one corner (loss > 0)."""
    g = Grid(-1.0, 1.0, nx, -0.8, 0.8, ny)
    a, b = np.meshgrid(g.xs, g.ys, indexing="ij")
    loss = (0.1 + 1.5 * (a**2 + 2 * b**2) * (1 - 0.8 * np.exp(-8 * ((a - 0.6) ** 2 + (b - 0.45) ** 2)))
            + np.exp(8 * (a + b - 1.3)))
    if nan_edge:
        loss[0, :] = loss[-1, :] = loss[:, 0] = loss[:, -1] = np.nan
    return Surface(g, loss, np.clip(1 - loss / 3, 0, 1), meta=meta if meta is not None else {"model": "toy"})


def path(n=9) -> Trajectory:
    t = np.linspace(0, 1, n)
    r = 0.7 * (1 - t)
    coords = np.stack([r * np.cos(4 * t + 0.3), 0.8 * r * np.sin(4 * t + 0.3)], axis=1)
    sl = 0.1 + 1.5 * (coords[:, 0] ** 2 + 2 * coords[:, 1] ** 2)
    sl[3] = np.nan  # height taken from the surface there
    return Trajectory(coords, np.arange(n), sl, sl, np.zeros(n))


CRITICAL = (np.array([[0.0, 0.0], [0.6, 0.45], [0.35, 0.25], [-0.9, 0.7]]), np.array([0, 0, 1, 3]))


# ---------------------------------------------------------------------------------- pictures


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    out = tmp_path_factory.mktemp("renders")
    with_path = ql.render_quicklook(landscape(), path(), CRITICAL, out_dir=out, prefix="with")
    without = ql.render_quicklook(landscape(), out_dir=out, prefix="bare")
    return dict(zip(["2d", "3d", "mesh"], with_path)), dict(zip(["2d", "3d", "mesh"], without))


def test_files_written_and_not_blank(pictures):
    with_path, _ = pictures
    names = sorted(p.name for p in with_path.values())
    assert names == ["with_2d_contours.png", "with_3d_mesh.png", "with_3d_surface.png"]
    for p in with_path.values():
        img = load_rgb(p)
        assert img.shape[0] >= 400 and img.shape[1] >= 600
        assert img.std() > 10, f"{p.name} looks blank"
        assert len(np.unique(img.reshape(-1, 3).round(), axis=0)) > 200, f"{p.name} has too few colours"


@pytest.mark.parametrize("view", ["2d", "3d", "mesh"])
def test_path_colour_present(pictures, view):
    with_path, without = pictures
    n_with = count_near(load_rgb(with_path[view]), display.PATH_COLOR)
    n_without = count_near(load_rgb(without[view]), display.PATH_COLOR)
    assert n_with > 300, f"path colour barely present in {view}: {n_with} pixels"
    assert n_without < 0.05 * n_with, f"path colour appears without a path in {view}: {n_without} pixels"


@pytest.mark.parametrize("code", [0, 1, 3])
def test_critical_point_colours_in_2d(pictures, code):
    with_path, without = pictures
    color = display.CRITICAL_STYLE[code][1]
    assert count_near(load_rgb(with_path["2d"]), color, 30) > 40
    assert count_near(load_rgb(without["2d"]), color, 30) < 10


def test_nan_edge_surface_renders_with_grey_border(tmp_path):
    s = landscape(nan_edge=True, meta={"explained_variance": [0.81, 0.095]})
    out = ql.render_quicklook(s, path(), out_dir=tmp_path, prefix="edge", cap=1e3)  # cap: only NaN is grey
    assert [p.name for p in out] == ["edge_2d_contours.png", "edge_3d_surface.png", "edge_3d_mesh.png"]
    # the invalid border is drawn as divergent (grey hatch over white: about (216, 216, 216))
    grey = "#d8d8d8"
    edge = count_near(load_rgb(out[0]), grey, 12)
    clean = ql.render_quicklook(landscape(), out_dir=tmp_path, prefix="clean", views=["2d_contours"], cap=1e3)[0]
    assert edge > 1000 and count_near(load_rgb(clean), grey, 12) < 0.2 * edge
    for p in out[1:]:
        assert load_rgb(p).std() > 10


def test_all_invalid_surface_is_a_clear_error(tmp_path):
    s = landscape()
    s.loss[:] = np.nan
    with pytest.raises(ValueError, match="no valid"):
        ql.render_quicklook(s, out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_line_plot_for_1d_surface(tmp_path):
    g = Grid(-0.5, 1.5, 41, 0.0, 0.0, 1)
    a = g.xs[:, None]
    loss = 0.1 + 2 * (a * (a - 1)) ** 2
    loss[-3:] = np.nan
    loss[30] = 1e6
    s = Surface(g, loss, 1 - loss / 10, test_loss=loss * 1.1, meta={"kind": "interp"})
    out = ql.render_quicklook(s, out_dir=tmp_path, prefix="line")
    assert [p.name for p in out] == ["line_1d.png"]
    img = load_rgb(out[0])
    assert img.std() > 10 and count_near(img, "#1f4e9c") > 200


# ---------------------------------------------------------------------------------- the field


def test_display_field_cap_and_invalid_never_zero():
    s = landscape(nan_edge=True)
    s.loss[5, 5] = 1e9
    f = field.display_field(s)
    # default cap: 5 x max(centre loss, floor 1.0 when num_classes is unknown)
    assert f.cap == pytest.approx(5 * max(s.loss[20, 15], 1.0))
    assert f.divergent[0].all() and f.divergent[5, 5]
    assert np.isnan(f.values[f.divergent]).all()
    assert (f.capped()[f.divergent] == f.vmax).all() and f.vmax > 0  # drawn at the cap, never 0
    assert f.vmax == f.cap  # some valid values exceed the cap: the colour range ends at the cap
    g = field.display_field(s, cap=2e9)
    assert g.vmax == pytest.approx(np.nanmax(s.loss)) and g.vmax < g.cap  # none do: it ends at the largest value
    assert f.log and len(f.levels) == 20 and f.levels[-1] == pytest.approx(f.vmax)
    ratios = f.levels[1:] / f.levels[:-1]
    np.testing.assert_allclose(ratios, ratios[0])  # log-spaced
    assert field.display_field(s, cap=2.0).cap == 2.0


def test_default_cap_uses_centre_and_chance_floor():
    s = landscape(meta={"num_classes": 10})
    s.loss[20, 15] = 3.0  # centre worse than chance
    assert display.surface_cap(s) == pytest.approx(15.0)
    s.loss[20, 15] = 1e-4  # a well-trained centre: the floor ln(10) decides
    assert display.surface_cap(s) == pytest.approx(5 * np.log(10))
    assert display.surface_cap(s, cap_factor=3, floor=0) == pytest.approx(3e-4)
    with pytest.raises(ValueError, match="cap_factor must be a finite number >= 1; got 0.5"):
        display.surface_cap(s, cap_factor=0.5)


def test_linear_levels_for_non_positive_values():
    s = landscape()
    s.loss -= 1.0
    f = field.display_field(s, cap=1.0)
    assert not f.log
    np.testing.assert_allclose(np.diff(f.levels), np.diff(f.levels)[0])


def test_axis_labels():
    assert display.axis_labels({"explained_variance": [0.8123, 0.0951]}) == ("PC1 (81.2%)", "PC2 (9.5%)")
    assert display.axis_labels({"directions": {"explained_variance": [0.5, 0.25]}})[1] == "PC2 (25.0%)"
    assert display.axis_labels({}) == ("α (direction 1)", "β (direction 2)")
    assert display.axis_labels({}, unicode=False)[0].startswith("alpha")
    hessian = {"direction_kind": "hessian", "directions": {"eigenvalues": [0.20942, 0.169]}}
    assert display.axis_labels(hessian) == ("eigenvector 1 (λ = 0.209)", "eigenvector 2 (λ = 0.169)")
    assert display.axis_labels(hessian, unicode=False)[1] == "eigenvector 2 (lambda = 0.169)"


def test_bad_inputs(tmp_path):
    s = landscape()
    with pytest.raises(ValueError, match=r"critical types must be TTK codes .* got \[7\]"):
        ql.plot_contours_2d(s, tmp_path / "x.png", critical=(np.zeros((1, 2)), [7]))
    with pytest.raises(ValueError, match="'CriticalType'"):
        ql.plot_contours_2d(s, tmp_path / "x.png", critical=(np.zeros((1, 2)), {"type": [0]}, {}))
    with pytest.raises(ValueError, match="view must be one of 'surface', 'mesh'; got 'top'"):
        ql.render_surface_3d(s, tmp_path / "x.png", view="top")
    with pytest.raises(ValueError, match=r"views must be among .* got \['4d'\]"):
        ql.render_quicklook(s, out_dir=tmp_path, views=["4d"])
    with pytest.raises(ValueError, match="array must be one of 'loss', 'accuracy'; got 'energy'"):
        field.display_field(s, "energy")
    with pytest.raises(ValueError, match="cap must be above the smallest valid loss"):
        field.display_field(s, cap=0.01)
    assert list(tmp_path.iterdir()) == []


def test_read_points_tuple_accepted(tmp_path):
    from pipeline import vtkio

    p = vtkio.write_points(tmp_path / "critical_points_random.vtp", CRITICAL[0],
                           {"CriticalType": CRITICAL[1].astype(np.int32)})
    out = ql.plot_contours_2d(landscape(), tmp_path / "c.png", critical=vtkio.read_points(p))
    assert count_near(load_rgb(out), display.CRITICAL_STYLE[0][1], 30) > 40


def test_import_is_light():
    code = ("import sys, pipeline.render, pipeline.render.quicklook; "
            "print(sorted(m for m in ('matplotlib', 'pyvista', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
