"""The curvature end to end on a trained digits run: `lossvista curvature`, `surface --hessian`
(shards, merge, refused configurations), `directions --kind hessian` and the eig_ratio pictures,
each checked against pipeline.curvature.Hessian called directly."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline.curvature import Hessian
from pipeline.directions import Directions, random_directions
from pipeline.run import Run
from pipeline.rundir import RunDir
from pipeline.surface import parts_dir
from pipeline.vtkio import read_surface

from .conftest import assert_one_line_error, run_cli


QUICK = ["--max-samples", "128", "--trace-samples", "4", "--density-vectors", "2", "--density-steps", "12"]


def test_curvature_writes_the_json_and_pictures(digits_run, tmp_path, main_cli):
    out = tmp_path / "c.json"
    proc = main_cli("curvature", str(digits_run), "--epochs", "0,3", *QUICK, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    record = json.loads(out.read_text())
    assert [r["epoch"] for r in record["checkpoints"]] == [0, 3]
    assert record["samples"] == 128 and record["ignore"] == "biasbn" and record["loss_name"] == "cross_entropy"
    assert record["density"]["epoch"] == 3 and len(record["density"]["nodes"]) == 2
    # the same numbers as the Hessian called directly on the same subset
    run = Run(digits_run)
    model, _ = run.build_model(3)
    hess = Hessian(model, run.data("train").subset(128, seed=0), device="cpu")
    r = hess.lanczos(1, "both", tol=1e-3, max_iter=200)
    row = record["checkpoints"][1]
    assert row["lambda_max"] == pytest.approx(float(r.values[0]), rel=1e-6)  # float32: threads differ
    assert row["lambda_min"] == pytest.approx(float(r.values[1]), rel=1e-4, abs=1e-6)
    assert row["converged"] and row["error_max"] <= 1e-3 and row["error_min"] <= 1e-3
    assert row["error_max"] <= row["residual_max"] and row["error_min"] <= row["residual_min"]
    assert row["hvps"] == r.steps + 4 + 2 * 12  # Lanczos, Hutchinson, density
    assert row["lambda_min"] < 0 < row["lambda_max"]
    assert row["trace_stderr"] > 0
    assert f"epoch    3: lambda_max {row['lambda_max']:.5g}" in proc.stderr
    pictures = RunDir(digits_run).renders
    for name in ("curvature_sharpness.png", "curvature_density.png"):
        assert (pictures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_few_iterations_are_reported_with_the_error_reached(digits_run, tmp_path, main_cli):
    out = tmp_path / "c.json"
    proc = main_cli("curvature", str(digits_run), "--epochs", "3", "--max-samples", "64", "--max-iter", "3",
               "--trace-samples", "0", "--density-vectors", "0", "--no-pictures", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "warning: epoch 3: Lanczos stopped after 3 steps with an estimated error of" in proc.stderr
    assert "(not converged: estimated error" in proc.stderr
    row = json.loads(out.read_text())["checkpoints"][0]
    assert row["converged"] is False and max(row["error_max"], row["error_min"]) > 1e-3
    assert "trace" not in row


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "7"], "--epochs must be among the checkpoints 0..3"),
    (["--epochs", "2..12"], "got 4..12, which it has not"),
    (["--epochs", "a,b"], "--epochs must be checkpoint numbers and ranges like '0,5,10..20'; got 'a,b'"),
    (["--tol", "0"], "--tol must be a positive number"),
    (["--max-iter", "1"], "--max-iter must be an integer >= 2"),
    (["--trace-samples", "1"], "--trace-samples must be 0 (no trace) or at least 2"),
])
def test_bad_input_is_one_line_and_writes_nothing(digits_run, tmp_path, args, fragment):
    out = tmp_path / "c.json"
    proc = run_cli("curvature", str(digits_run), *args, "--out", str(out))
    assert_one_line_error(proc, fragment)
    assert not out.exists()


def test_out_in_a_missing_folder_is_refused(digits_run, tmp_path):
    out = tmp_path / "new" / "c.json"  # as export and the other commands: a missing folder is not made
    assert_one_line_error(run_cli("curvature", str(digits_run), "--out", str(out)), "new", "does not exist")
    assert not (tmp_path / "new").exists()


def test_epochs_take_commas_ranges_and_spaces_alike():
    """``--epochs`` of curvature and evolve: one syntax."""
    from pipeline.cli._common import parse_epochs

    assert parse_epochs(["0,5,10..12"]) == parse_epochs(["0", "5", "10..12"]) == parse_epochs("12-10,0,5,5") \
        == (0, 5, 10, 11, 12)
    assert parse_epochs(None) is None


def test_not_a_run_is_one_line(tmp_path):
    assert_one_line_error(run_cli("curvature", str(tmp_path)), "not a lossvista run directory")


@pytest.fixture(scope="module")
def hessian_dirs(digits_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hessian")
    from pipeline.directions.hessian import HessianOptions
    from pipeline.workflow import make_directions

    d, path = make_directions(RunDir(digits_run), "hessian", hessian=HessianOptions(max_samples=256, tol=1e-4),
                              out=tmp / "hessian.pt")
    return d, path


def test_hessian_directions_are_the_top_eigenvectors(digits_run, hessian_dirs):
    d, path = hessian_dirs
    loaded = Directions.load(path)
    assert loaded.kind == "hessian" and loaded.meta["centre_epoch"] == 3
    run = Run(digits_run)
    model, _ = run.build_model(3)
    hess = Hessian(model, run.data("train").subset(256, seed=0), device="cpu")
    values, _ = hess.eigenvectors(2, tol=1e-4)  # the same Lanczos run as the directions'
    assert loaded.meta["eigenvalues"] == pytest.approx(list(values), rel=1e-6)
    x, y = hess.flatten(loaded.x), hess.flatten(loaded.y)
    assert float(x.norm()) == pytest.approx(1.0, abs=1e-6) and abs(float(x @ y)) < 1e-6
    hx = hess.matvec(x)  # an eigenvector: H x = lambda x up to the residual
    assert float((hx - loaded.meta["eigenvalues"][0] * x).norm()) <= 1e-4 * loaded.meta["eigenvalues"][0] * 1.01
    # the grid reaches where the loss has risen by ln 10 (measured on the same data), not further
    from pipeline.directions.hessian import LADDER
    from pipeline.engine import evaluate_points

    guesses = np.sqrt(2 * np.log(10) / np.array(loaded.meta["eigenvalues"]))
    target = loaded.meta["centre_loss"] + np.log(10)
    data = run.data("train").subset(256, seed=0)
    for axis, (t, guess) in enumerate(zip(loaded.meta["grid_extent"], guesses)):
        assert np.isclose(t / guess, LADDER, rtol=1e-12).any()
        coords = np.zeros((4, 2))
        coords[:, axis] = [t, -t, t / 2 ** 0.5, -t / 2 ** 0.5]
        loss = evaluate_points(model, loaded, coords, data, loss=run.loss(), progress=False).loss
        assert max(loss[:2]) >= target > max(loss[2:]), (axis, loss, target)
    assert all(not v.any() for k, v in loaded.x.items() if k.endswith("bias"))


def test_a_hessian_plane_goes_through_surface_trajectory_and_analysis(digits_run, hessian_dirs, tmp_path, main_cli):
    _, path = hessian_dirs
    out = tmp_path / "surface_hessian.vts"
    proc = main_cli("surface", "--run", str(digits_run), "--directions", str(path), "--max-samples", "64",
               "--x", str(-1.0) + ":1:5", "--device", "cpu", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    s = read_surface(out)
    assert s.grid.shape == (5, 51) and s.meta["direction_kind"] == "hessian"
    assert s.grid.ymax == pytest.approx(Directions.load(path).meta["grid_extent"][1])
    proc = main_cli("trajectory", "--run", str(digits_run), "--directions", str(path), "--out", str(tmp_path / "t.vtp"))
    assert proc.returncode == 0, proc.stderr
    proc = main_cli("analyze", str(out))
    assert proc.returncode == 0, proc.stderr


def test_directions_options_of_other_kinds_are_refused(digits_run, tmp_path):
    proc = run_cli("directions", "--run", str(digits_run), "--kind", "random", "--tol", "1e-3")
    assert_one_line_error(proc, "--tol applies to --kind hessian only")
    proc = run_cli("directions", "--run", str(digits_run), "--kind", "hessian", "--norm", "layer",
                   "--out", str(tmp_path / "h.pt"))
    assert_one_line_error(proc, "norm must be one of 'none', 'filter'; got 'layer'")


MAPS = ["--x", "-1:1:3", "--y", "-1:1:3", "--max-samples", "48", "--chunk-size", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def maps(digits_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("maps")
    run = RunDir(digits_run)
    random_directions(run.checkpoint(3), seed=1, model_name="digits-cnn").save(tmp / "random.pt")
    return tmp, ["--run", str(digits_run), "--directions", str(tmp / "random.pt"), *MAPS]


def test_surface_hessian_maps_equal_the_hessian_at_each_point(digits_run, maps, main_cli):
    tmp, args = maps
    out = tmp / "one.vts"
    proc = main_cli("surface", *args, "--hessian", "--hessian-tol", "1e-6", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "curvature maps: eig_ratio in [" in proc.stderr
    s = read_surface(out)
    for name in ("hessian_max", "hessian_min", "eig_ratio", "hessian_error"):
        assert np.isfinite(s.values(name)).all(), name
    assert s.meta["hessian"] == {"tol": 1e-6, "max_iter": 100, "ignore": "biasbn", "seed": 0,
                                 "unconverged_points": 0, "worst_error": pytest.approx(
                                     float(s.values("hessian_error").max()))}
    run = Run(digits_run)
    model, _ = run.build_model(3)
    d = Directions.load(tmp / "random.pt")
    i, j = 0, 2
    model.load_state_dict(d.point(model.state_dict(), float(s.xs[i]), float(s.ys[j])))
    r = Hessian(model, run.data("train").subset(48, seed=0), device="cpu").lanczos(1, "both", tol=1e-6)
    assert s.values("hessian_max")[i, j] == pytest.approx(float(r.values[0]), rel=1e-5)
    assert s.values("hessian_min")[i, j] == pytest.approx(float(r.values[1]), rel=1e-4, abs=1e-6)
    assert s.values("eig_ratio")[i, j] == pytest.approx(abs(r.values[1] / r.values[0]), rel=1e-4, abs=1e-6)


def test_surface_hessian_shards_merge_and_refuse_other_configurations(maps, main_cli):
    tmp, args = maps
    one = tmp / "one_ref.vts"
    assert main_cli("-q", "surface", *args, "--hessian", "--out", str(one)).returncode == 0
    out = tmp / "sharded.vts"
    assert main_cli("surface", *args, "--shard", "0/2", "--out", str(out)).returncode == 0  # chunks without the maps
    proc = main_cli("surface", *args, "--hessian", "--shard", "1/2", "--out", str(out))
    assert_one_line_error(proc, "holds partial results of another configuration", "hessian")
    proc = main_cli("surface", *args, "--hessian", "--hessian-tol", "1e-3", "--shard", "1/2", "--out", str(out))
    assert_one_line_error(proc, "another configuration", "hessian")
    shutil.rmtree(parts_dir(out))  # start over (--restart is refused beside --shard)
    for i in (1, 0):
        assert main_cli("surface", *args, "--hessian", "--shard", f"{i}/2", "--out", str(out)).returncode == 0
    assert main_cli("surface", *args, "--hessian", "--merge", "--out", str(out)).returncode == 0
    a, b = read_surface(out), read_surface(one)
    for name in ("loss", "hessian_max", "hessian_min", "eig_ratio", "hessian_error"):
        assert np.array_equal(a.values(name), b.values(name)), name


@pytest.mark.slow
def test_surface_hessian_with_compile_on_compiles_the_loss_and_keeps_the_maps_eager(maps, main_cli, tmp_path,
                                                                                   monkeypatch):
    """--hessian --compile on: the loss from the compiled graph (within 1e-5 of eager, recorded as
    compiled), the curvature maps bitwise those of --compile off (Hessian-vector products are
    always eager: a compiled graph cannot be differentiated twice)."""
    _, args = maps
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    out = {}
    for mode in ("on", "off"):
        out[mode] = tmp_path / f"{mode}.vts"
        proc = main_cli("-q", "surface", *args, "--hessian", "--compile", mode, "--out", str(out[mode]))
        assert proc.returncode == 0, proc.stderr
    on, off = read_surface(out["on"]), read_surface(out["off"])
    assert on.meta["engine"]["plan"]["compiled"] and not off.meta["engine"]["plan"]["compiled"]
    assert on.meta["engine"]["config"]["compile"] == "on"
    np.testing.assert_allclose(on.loss, off.loss, rtol=1e-5, atol=0)
    for name in ("hessian_max", "hessian_min", "eig_ratio", "hessian_error"):
        assert np.array_equal(on.values(name), off.values(name)), name


def test_curvature_has_no_compile_option_and_says_it_runs_eagerly(capsys):
    from pipeline.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["curvature", "runs/demo", "--compile", "on"])
    with pytest.raises(SystemExit):
        parser.parse_args(["curvature", "--help"])
    assert "Evaluated eagerly (no --compile)" in " ".join(capsys.readouterr().out.split())


def test_hessian_options_need_hessian(maps, main_cli):
    _, args = maps
    proc = main_cli("surface", *args, "--hessian-tol", "1e-3")
    assert_one_line_error(proc, "--hessian-tol, --hessian-iters and --hessian-ignore apply with "
                                                      "--hessian only")


def test_eig_ratio_quick_look(digits_run, maps, tmp_path, main_cli):
    _, args = maps
    run = tmp_path / "run"
    shutil.copytree(digits_run, run, ignore=shutil.ignore_patterns("renders", "surface_*", "*.parts"))
    args = [str(run) if a == str(digits_run) else a for a in args]
    assert main_cli("-q", "surface", *args, "--hessian").returncode == 0
    from pipeline.workflow import render_pictures

    pictures = render_pictures(RunDir(run), backend="pyvista", views=["2d_contours", "eig_ratio"])
    names = sorted(p.name for p in pictures)
    assert names == ["random_2d_contours.png", "random_eig_ratio.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pictures)
    from pipeline.errors import LossvistaError

    assert main_cli("-q", "surface", *args).returncode == 0  # the same plane without the maps
    with pytest.raises(LossvistaError, match="eig_ratio needs a surface with curvature maps"):
        render_pictures(RunDir(run), backend="pyvista", views=["eig_ratio"])


def test_pictures_that_cannot_be_written_are_refused_before_the_work(digits_run, tmp_path):
    import shutil

    run = shutil.copytree(digits_run, tmp_path / "run")
    shutil.rmtree(run / "renders", ignore_errors=True)
    (run / "renders").write_text("in the way")  # as a read-only run: RUN/renders cannot be written
    out = tmp_path / "c.json"
    assert_one_line_error(run_cli("curvature", str(run), "--out", str(out)), "renders is a file, not a folder")
    assert not out.exists()

