"""pipeline.trajectory: least-squares projection, residuals, losses, the PCA grid, and the CLI."""
from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.run import Run
from pipeline.checkpoints import load_checkpoint, save_checkpoint
from pipeline.rundir import RunDir
from pipeline.cli import main
from pipeline.datamodel import Grid
from pipeline.data import Split, load_dataset
from pipeline.directions import Directions, pca_directions, random_directions
from pipeline.errors import CheckpointError
from pipeline.datamodel import Trajectory
from pipeline.trajectory import MAX_WIDENING, MIN_PLANE_RATIO, pca_grid, project_trajectory


def flat(d, keys=None) -> np.ndarray:
    keys = keys or [k for k, v in d.items() if v.is_floating_point()]
    return np.concatenate([d[k].detach().double().reshape(-1).numpy() for k in keys])


def plain_loss(model: nn.Module, state: dict, split: Split) -> float:
    """Independent reference: load the weights, one forward pass over the split, mean cross-entropy."""
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(split.inputs), split.targets).item()


@pytest.fixture(scope="module")
def run(digits_run):
    return RunDir(digits_run)


@pytest.fixture(scope="module")
def centre(run):
    return load_checkpoint(run.checkpoints()[-1])


def test_final_checkpoint_projects_to_origin(run):
    paths = run.checkpoints()
    for d in (random_directions(paths[-1], seed=0), pca_directions(paths)):
        t = project_trajectory(paths, d, paths[-1])
        assert list(t.epoch) == [0, 1, 2, 3]
        assert t.coords[-1].tolist() == [0.0, 0.0] and t.residual[-1] == 0.0
        assert np.isnan(t.loss).all() and np.isnan(t.surface_loss).all()
        assert (t.residual[:-1] > 0).all() and (t.residual <= 1).all()


@pytest.mark.parametrize("norm", ["filter", "layer"])
def test_point_in_the_plane_projects_to_its_coefficients(centre, norm, tmp_path):
    d = random_directions(centre, norm=norm, ignore="none", seed=1)
    on_plane = d.point(centre, 0.3, -0.2)
    save_checkpoint(on_plane, tmp_path / "epoch_005.pt")
    t = project_trajectory([tmp_path / "epoch_005.pt", on_plane, centre], d, centre)
    np.testing.assert_allclose(t.coords[0], [0.3, -0.2], atol=1e-6)
    np.testing.assert_allclose(t.coords[1], [0.3, -0.2], atol=1e-6)
    assert t.residual[0] < 1e-5 and t.residual[1] < 1e-5
    assert t.epoch.tolist() == [0, 1, 2]  # not all inputs are named epoch_NNN.pt: numbered by position


def test_epochs_come_from_file_names_and_set_the_order(run, tmp_path):
    paths = run.checkpoints()
    for src, name in ((paths[0], "epoch_007.pt"), (paths[3], "epoch_012.pt"), (paths[1], "epoch_002.pt")):
        (tmp_path / name).write_bytes(src.read_bytes())
    d = random_directions(paths[3], seed=0)
    t = project_trajectory([tmp_path / n for n in ("epoch_007.pt", "epoch_012.pt", "epoch_002.pt")], d, paths[3])
    ref = project_trajectory([load_checkpoint(paths[i]) for i in (1, 0, 3)], d, paths[3])  # by position
    assert t.epoch.tolist() == [2, 7, 12]
    np.testing.assert_allclose(t.coords, ref.coords, rtol=1e-12)
    assert t.coords[-1].tolist() == [0.0, 0.0]
    # the metadata names the centre used, not the one the directions were made around (a moved run)
    moved = project_trajectory([tmp_path / "epoch_012.pt"], d, tmp_path / "epoch_012.pt")
    assert d.meta["centre"] == str(paths[3]) and moved.meta["centre"] == str(tmp_path / "epoch_012.pt")


def test_residual_is_the_relative_distance_from_the_plane(centre):
    d = random_directions(centre, norm="filter", ignore="none", seed=2)
    keys = [k for k, v in centre.items() if v.is_floating_point()]
    X = np.stack([flat(d.x, keys), flat(d.y, keys)], 1)  # (P, 2)
    rng = np.random.default_rng(0)
    z = rng.standard_normal(len(X))
    z -= X @ np.linalg.lstsq(X, z, rcond=None)[0]  # orthogonal to the plane
    z *= 0.5 / np.linalg.norm(z)
    delta = 0.3 * X[:, 0] - 0.2 * X[:, 1] + z
    state, pos = {}, 0
    for k, v in centre.items():
        if v.is_floating_point():
            state[k] = v + torch.from_numpy(delta[pos:pos + v.numel()].reshape(v.shape)).float()
            pos += v.numel()
        else:
            state[k] = v
    t = project_trajectory([state, centre], d, centre)
    d_true = flat(state, keys) - flat(centre, keys)  # the float32 rounding of delta
    ref = np.linalg.lstsq(X, d_true, rcond=None)[0]
    np.testing.assert_allclose(t.coords[0], ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(t.coords[0], [0.3, -0.2], atol=1e-5)
    expect = np.linalg.norm(d_true - X @ ref) / np.linalg.norm(d_true)
    assert t.residual[0] == pytest.approx(expect, rel=1e-7)


def test_projection_matches_dense_least_squares_and_streaming(run):
    paths = run.checkpoints()
    d = random_directions(paths[-1], seed=3)  # not orthogonal, not unit norm
    big = project_trajectory(paths, d, paths[-1])
    small = project_trajectory(paths, d, paths[-1], memory_budget=6 * 5 * 700)  # many chunks
    np.testing.assert_allclose(small.coords, big.coords, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(small.residual, big.residual, rtol=1e-8)
    states = [load_checkpoint(p) for p in paths]
    keys = [k for k, v in states[-1].items() if v.is_floating_point()]  # all parameters (digits-cnn has no buffers)
    X = np.stack([flat(d.x, keys), flat(d.y, keys)], 1)
    for e, s in enumerate(states):
        diff = flat(s, keys) - flat(states[-1], keys)
        ref = np.linalg.lstsq(X, diff, rcond=None)[0]
        np.testing.assert_allclose(big.coords[e], ref, rtol=1e-6, atol=1e-9)
        if e < len(states) - 1:
            assert big.residual[e] == pytest.approx(np.linalg.norm(diff - X @ ref) / np.linalg.norm(diff), rel=1e-6)


def test_pca_coordinates_match_sklearn_transform(run):
    from sklearn.decomposition import PCA

    paths = run.checkpoints()
    d = pca_directions(paths)
    t = project_trajectory(paths, d, paths[-1])
    states = [load_checkpoint(p) for p in paths]
    keys = [k for k, v in states[-1].items() if v.dim() >= 2]
    X = np.stack([flat(s, keys) - flat(states[-1], keys) for s in states])
    ref = PCA(2, svd_solver="full").fit(X)
    # sklearn's transform is centred on the mean row; ours is relative to the final weights
    expect = ref.transform(X) + ref.mean_ @ ref.components_.T
    signs = np.sign(np.sum(expect * t.coords, axis=0))
    np.testing.assert_allclose(t.coords, expect * signs, rtol=1e-5, atol=1e-6)
    assert (t.coords[0] < 0).all()  # sign convention


def test_losses_match_an_independent_loop(run, centre):
    split = load_dataset("digits").test
    model, _ = Run(run).build_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    d = random_directions(centre, seed=4)
    on_plane = d.point(centre, 0.1, 0.05)
    paths = run.checkpoints()
    t = project_trajectory([*paths[:2], on_plane], d, paths[-1], model=model, data=(split.inputs, split.targets))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is not modified
    ref = Run(run).build_model()[0]
    for e, s in enumerate([load_checkpoint(paths[0]), load_checkpoint(paths[1]), on_plane]):
        assert t.loss[e] == pytest.approx(plain_loss(ref, s, split), rel=1e-5)
        a, b = t.coords[e]
        assert t.surface_loss[e] == pytest.approx(plain_loss(ref, d.point(centre, a, b), split), rel=1e-5)
    # the in-plane checkpoint is its own projection
    assert t.surface_loss[2] == pytest.approx(t.loss[2], rel=1e-5)
    assert t.meta["loss_evaluated"] and t.meta["kind"] == "random"


def test_surface_loss_lies_on_the_engines_surface(run, centre):
    """The warped path lies on the warped surface: surface_loss equals the evaluation engine's loss there."""
    from pipeline.engine import evaluate_points

    split = load_dataset("digits").train
    model, _ = Run(run).build_model()
    paths = run.checkpoints()
    d = pca_directions(paths)
    t = project_trajectory(paths, d, paths[-1], model=model, data=split)
    engine = evaluate_points(model, d, t.coords, split, progress=False)
    np.testing.assert_allclose(t.surface_loss, engine.loss, rtol=1e-5)


def test_one_dimensional_directions(run):
    from pipeline.directions import interpolation_direction

    paths = run.checkpoints()
    d = interpolation_direction(paths[0], paths[-1])
    t = project_trajectory(paths, d, paths[0])
    np.testing.assert_allclose(t.coords[[0, -1]], [[0.0, 0.0], [1.0, 0.0]], atol=1e-6)
    assert (t.coords[:, 1] == 0).all() and t.residual[-1] < 1e-5
    g = pca_grid(t, n=21)
    assert g.ny == 1 and 0.0 in g.xs and g.xmax >= 1.0


def test_bad_inputs(run, centre):
    paths = run.checkpoints()
    other = random_directions(nn.Linear(3, 2), seed=0)
    with pytest.raises(CheckpointError, match="do not fit the centre weights") as exc:
        project_trajectory(paths, other, paths[-1])
    assert "\n" not in str(exc.value)
    d = random_directions(centre, seed=0)
    with pytest.raises(ValueError, match="parallel"):
        project_trajectory(paths, Directions(d.x, {k: -2 * v for k, v in d.x.items()}, d.meta), paths[-1])
    with pytest.raises(ValueError, match="together"):
        project_trajectory(paths, d, paths[-1], model=Run(run).build_model()[0])
    with pytest.raises(ValueError, match=r"batches must be \(inputs, targets\) pairs"):
        project_trajectory(paths, d, paths[-1], model=Run(run).build_model()[0], data=[1, 2, 3])
    with pytest.raises(ValueError, match=r"\(inputs, targets\) tensors, a Dataset, a DataLoader"):
        project_trajectory(paths, d, paths[-1], model=Run(run).build_model()[0], data=3.0)


# ---------------------------------------------------------------------------------- grid


def traj(coords, ndim=2) -> Trajectory:
    coords = np.asarray(coords, float)
    n = len(coords)
    return Trajectory(coords, np.arange(n), np.zeros(n), np.zeros(n), np.zeros(n), {"ndim": ndim})


@pytest.mark.parametrize("symmetric", [False, True])
def test_pca_grid_contains_origin_exactly_and_covers_the_path(symmetric):
    rng = np.random.default_rng(1)
    for _ in range(300):
        scale = 10.0 ** rng.uniform(-4, 3, size=2)
        pts = rng.standard_normal((rng.integers(2, 12), 2)) * scale + rng.standard_normal(2) * scale
        pts[-1] = 0.0
        n = int(rng.choice([3, 5, 21, 51, 101]))
        margin = float(rng.uniform(0, 0.5))
        g = pca_grid(traj(pts), n=n, margin=margin, symmetric=symmetric)
        longest = max(np.ptp(np.append(pts[:, k], 0.0)) for k in (0, 1))
        assert g.shape == (n, n)
        assert np.count_nonzero(g.xs == 0.0) == 1 and np.count_nonzero(g.ys == 0.0) == 1
        for axis, (lo, hi) in ((0, (g.xmin, g.xmax)), (1, (g.ymin, g.ymax))):
            vals = np.append(pts[:, axis], 0.0)
            span = vals.max() - vals.min()
            assert lo <= vals.min() - margin * span * (1 - 1e-12)
            assert hi >= vals.max() + margin * span * (1 - 1e-12)
            if not symmetric:  # snapped: not much wider than needed (step rounded up by <= 12.5 %, + 1 step)
                need = max(span, min(longest * MIN_PLANE_RATIO, span * MAX_WIDENING)) * (1 + 2 * margin)
                assert hi - lo <= need * 1.125 * (n - 1) / (n - 3) + 1e-12 if n > 3 else True
        if symmetric:
            assert g.xmin == -g.xmax and g.xs[n // 2] == 0.0


def test_pca_grid_widens_a_plane_whose_path_runs_along_one_axis():
    """A path along PC1 (97% of the variance) gets a plane a third as wide as long, centred on the
    path's middle in PC2, not a strip; a path that is nearly a line is widened three times its
    own extent at most; min_ratio=0 and volumes keep the path's own extent."""
    path = [[-5.0, -0.2], [-3.0, 0.4], [-1.0, 0.3], [0.0, 0.0]]
    g = pca_grid(traj(path))
    assert (g.ymax - g.ymin) >= 5.0 * 1.5 / 3 and g.ymin < -0.2 and g.ymax > 0.4  # PC1's extent 5, margins 25%
    assert (g.ymax + g.ymin) / 2 == pytest.approx(0.1, abs=0.1) and 0.0 in g.ys
    assert (g.xmin, g.xmax) == (pca_grid(traj(path), min_ratio=0).xmin, pca_grid(traj(path), min_ratio=0).xmax)
    strip = pca_grid(traj(path), min_ratio=0)
    assert strip.ymax - strip.ymin < (strip.xmax - strip.xmin) / 4
    line = pca_grid(traj([[-500.0, -10.0], [-200.0, 4.0], [0.0, 0.0]]))  # 99.97% along PC1
    assert 14 * 1.5 * MAX_WIDENING <= line.ymax - line.ymin <= 14 * 1.5 * MAX_WIDENING * 1.2
    volume = pca_grid(traj([[-5.0, -0.2, 0.01], [0.0, 0.0, 0.0]], ndim=3), n=5)
    assert volume.zmax - volume.zmin < 0.1
    with pytest.raises(ValueError, match="min_ratio must be"):
        pca_grid(traj(path), min_ratio=2)


def test_pca_grid_on_a_real_trajectory_and_degenerate_cases(run):
    paths = run.checkpoints()
    t = project_trajectory(paths, pca_directions(paths), paths[-1])
    g = pca_grid(t)
    assert isinstance(g, Grid) and g.shape == (51, 51)
    assert g.xmin < t.coords[:, 0].min() and g.ymin < t.coords[:, 1].min()
    assert 0.0 in g.xs and 0.0 in g.ys
    flat_y = pca_grid(traj([[-2.0, 0.0], [0.0, 0.0]]), n=11)  # no extent in beta: the alpha step, centred
    assert flat_y.ys[5] == 0.0 and flat_y.ymax - flat_y.ymin == pytest.approx(flat_y.xmax - flat_y.xmin)
    with pytest.raises(ValueError, match="no extent"):
        pca_grid(traj([[0.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="nx must be an integer >= 3; got 2"):
        pca_grid(traj([[1.0, 1.0], [0.0, 0.0]]), n=2)
    with pytest.raises(ValueError, match="must be odd"):
        pca_grid(traj([[1.0, 1.0], [0.0, 0.0]]), n=(50, 51), symmetric=True)
    with pytest.raises(ValueError, match="margin must be"):
        pca_grid(traj([[1.0, 1.0], [0.0, 0.0]]), margin=-1)


# ---------------------------------------------------------------------------------- CLI


def test_cli_trajectory_writes_a_vtp(digits_run, tmp_path, capsys):
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

    dfile = tmp_path / "pca.pt"
    assert main(["-q", "directions", "--run", str(digits_run), "--kind", "pca", "--out", str(dfile)]) == 0
    out = tmp_path / "t.vtp"
    assert main(["-q", "trajectory", "--run", str(digits_run), "--directions", str(dfile), "--split", "test",
                 "--max-samples", "100", "--out", str(out)]) == 0
    r = vtkXMLPolyDataReader()
    r.SetFileName(str(out))
    r.Update()
    pd = r.GetOutput()
    assert pd.GetNumberOfPoints() == 4 and pd.GetNumberOfLines() == 1
    arrays = {name: numpy_support.vtk_to_numpy(pd.GetPointData().GetArray(name))
              for name in ("epoch", "loss", "surface_loss", "residual")}
    assert arrays["epoch"].tolist() == [0, 1, 2, 3]
    assert np.isfinite(arrays["loss"]).all() and arrays["surface_loss"][-1] == pytest.approx(arrays["loss"][-1])
    xyz = numpy_support.vtk_to_numpy(pd.GetPoints().GetData())
    assert xyz[-1].tolist() == [0.0, 0.0, 0.0]
    from pipeline.vtkio import read_trajectory

    meta = read_trajectory(out).meta
    assert meta["kind"] == "pca" and meta["split"] == "test" and meta["num_samples"] == 100
    assert len(meta["explained_variance"]) == 2
    assert str(out) in capsys.readouterr().out


def test_cli_trajectory_default_output_and_no_loss(digits_run, tmp_path):
    import shutil

    from pipeline.vtkio import read_trajectory

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    assert main(["-q", "directions", "--run", str(run), "--kind", "random"]) == 0
    assert main(["-q", "trajectory", "--run", str(run), "--directions", str(run / "directions" / "random.pt"),
                 "--no-loss"]) == 0
    t = read_trajectory(run / "trajectory_random.vtp")
    assert np.isnan(t.loss).all() and t.coords[-1].tolist() == [0.0, 0.0]


def test_cli_trajectory_errors_are_one_line(digits_run, tmp_path, capsys):
    wrong = tmp_path / "wrong.pt"
    random_directions(nn.Linear(3, 2), seed=0).save(wrong)
    truncated = tmp_path / "trunc.pt"
    random_directions(load_checkpoint(RunDir(digits_run).checkpoints()[-1])).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:500])
    cases = [
        (["--directions", str(wrong)], "do not fit"),
        (["--directions", str(truncated)], "truncated or corrupted"),
        (["--directions", str(tmp_path / "none.pt")], f"directions file {tmp_path / 'none.pt'} does not exist"),
        (["--directions", str(wrong), "--split", "val"], "split must be one of 'train', 'test'; got 'val'"),
    ]
    for args, fragment in cases:
        code = main(["trajectory", "--run", str(digits_run), *args, "--out", str(tmp_path / "t.vtp")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and err[0].startswith("lossvista trajectory: error:"), err
        assert fragment in err[0], (fragment, err[0])
    assert not (tmp_path / "t.vtp").exists()
