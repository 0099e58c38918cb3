"""pipeline.directions: normalizations, seeds, BatchNorm states, PCA against scikit-learn, interpolation, CLI."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.checkpoints import load_checkpoint, save_checkpoint
from pipeline.rundir import RunDir
from pipeline.cli import main
from pipeline.directions import Directions, interpolation_direction, pca_directions, random_directions
from pipeline.directions.stream import plan_chunks
from pipeline.errors import CheckpointError


class TinyBN(nn.Module):
    """Conv + BatchNorm + Linear: every kind of state_dict entry (4-D, 2-D, 1-D, buffers, int)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3)
        self.bn = nn.BatchNorm2d(5)
        self.fc = nn.Linear(5 * 4 * 4, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def tiny_model(seed=0, *, warm_bn=True) -> TinyBN:
    torch.manual_seed(seed)
    m = TinyBN()
    if warm_bn:  # non-trivial running statistics
        m.train()
        with torch.no_grad():
            m(torch.randn(16, 3, 6, 6) * 2 + 1)
    return m.eval()


def flat(d, keys=None) -> np.ndarray:
    keys = keys or [k for k, v in d.items() if v.is_floating_point()]
    return np.concatenate([d[k].detach().double().reshape(-1).numpy() for k in keys])


def slice_norms(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().reshape(t.shape[0], -1).norm(dim=1).numpy()


# ---------------------------------------------------------------------------------- random


def test_filter_norms_equal_weight_filter_norms_and_ignored_are_zero():
    m = tiny_model()
    d = random_directions(m, norm="filter", ignore="biasbn", seed=3)
    state = m.state_dict()
    for axis in (d.x, d.y):
        assert set(axis) == set(state)
        for k, w in state.items():
            assert axis[k].shape == w.shape and axis[k].dtype == w.dtype
            if w.dim() <= 1:
                assert not axis[k].any(), k  # biases, BN weight/bias/statistics, num_batches_tracked
            else:
                np.testing.assert_allclose(slice_norms(axis[k]), slice_norms(w), rtol=1e-5)
    assert d.meta["num_perturbed"] == state["conv.weight"].numel() + state["fc.weight"].numel()
    assert d.meta["num_parameters"] == sum(p.numel() for p in m.parameters())


def test_filter_normalization_survives_zero_slices_and_1d_tensors():
    m = tiny_model()
    with torch.no_grad():
        m.conv.weight[2] = 0.0  # a dead filter
        m.bn.bias.zero_()  # BatchNorm bias at initialisation
        m.fc.bias.zero_()
    d = random_directions(m, norm="filter", ignore="none", seed=1)
    for axis in (d.x, d.y):
        assert all(torch.isfinite(v).all() for v in axis.values() if v.is_floating_point())
        assert not axis["conv.weight"][2].any() and axis["conv.weight"][1].any()
        assert not axis["bn.bias"].any() and not axis["fc.bias"].any()
        # 1-D tensors are filter-normalized elementwise: |x_i| = |w_i|
        np.testing.assert_allclose(axis["bn.weight"].abs().numpy(), m.bn.weight.detach().abs().numpy(), rtol=1e-6)
        np.testing.assert_allclose(axis["conv.bias"].abs().numpy(), m.conv.bias.detach().abs().numpy(), rtol=1e-6)
        np.testing.assert_allclose(slice_norms(axis["conv.weight"]), slice_norms(m.conv.weight), rtol=1e-5)


@pytest.mark.parametrize("ignore", ["biasbn", "none"])
def test_layer_weight_and_filter_are_rescalings_of_the_same_gaussian(ignore):
    m = tiny_model()
    raw = random_directions(m, norm="none", ignore=ignore, seed=7)
    layer = random_directions(m, norm="layer", ignore=ignore, seed=7)
    weight = random_directions(m, norm="weight", ignore=ignore, seed=7)
    filt = random_directions(m, norm="filter", ignore=ignore, seed=7)
    for k, w in m.state_dict().items():
        if not w.is_floating_point() or not raw.x[k].any():
            continue
        g, w64 = raw.x[k].double(), w.double()
        # layer: the whole tensor has the weights' norm, same direction as the Gaussian
        assert layer.x[k].double().norm().item() == pytest.approx(w64.norm().item(), rel=1e-5)
        np.testing.assert_allclose(layer.x[k].double().numpy(), (g * w64.norm() / g.norm()).numpy(), rtol=1e-5)
        # weight: elementwise Gaussian times weight
        np.testing.assert_allclose(weight.x[k].double().numpy(), (g * w64).numpy(), rtol=1e-5, atol=1e-12)
        # filter: each slice along dim 0 rescaled to the weights' slice norm
        gs, ws = g.reshape(len(g), -1), w64.reshape(len(w64), -1)
        expect = gs * (ws.norm(dim=1) / gs.norm(dim=1))[:, None]
        np.testing.assert_allclose(filt.x[k].double().reshape(len(g), -1).numpy(), expect.numpy(), rtol=1e-5)


def test_seeds_are_deterministic_and_leave_the_global_rng_alone():
    m = tiny_model()
    before = torch.get_rng_state()
    a = random_directions(m, seed=11)
    b = random_directions(m.state_dict(), seed=11)
    c = random_directions(m, seed=12)
    assert torch.equal(torch.get_rng_state(), before)
    for k in a.x:
        assert torch.equal(a.x[k], b.x[k]) and torch.equal(a.y[k], b.y[k])
    assert not torch.equal(a.x["conv.weight"], c.x["conv.weight"])
    one = random_directions(m, seed=11, ndim=1)
    assert one.y is None and all(torch.equal(one.x[k], a.x[k]) for k in a.x)


def test_second_direction_is_a_real_axis_and_cosine_is_reported():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(40, 50), nn.ReLU(), nn.Linear(50, 10))
    d = random_directions(m, seed=0)
    x, y = flat(d.x), flat(d.y)
    cos = x @ y / (np.linalg.norm(x) * np.linalg.norm(y))
    assert d.meta["cosine"] == pytest.approx(cos, abs=1e-9)
    assert abs(cos) < 0.1  # ~1/sqrt(2500) for independent Gaussians; never ~ -1
    assert d.meta["x_norm"] == pytest.approx(np.linalg.norm(x), rel=1e-9)


def test_states_perturb_running_means_but_keep_variances_valid():
    m = tiny_model()
    state = m.state_dict()
    s = random_directions(m, norm="filter", ignore="none", dir_type="states", seed=2)
    w = random_directions(m, norm="filter", ignore="none", dir_type="weights", seed=2)
    for axis in (s.x, s.y):
        np.testing.assert_allclose(axis["bn.running_mean"].abs().numpy(), state["bn.running_mean"].abs().numpy(),
                                   rtol=1e-6)
        assert not axis["bn.running_var"].any()
        assert axis["bn.num_batches_tracked"].dtype == torch.long and not axis["bn.num_batches_tracked"].any()
    assert not w.x["bn.running_mean"].any() and not w.x["bn.running_var"].any()
    assert torch.equal(s.x["conv.weight"], w.x["conv.weight"])
    # the whole grid keeps the variances positive and the model finite
    net = tiny_model()
    inputs = torch.randn(8, 3, 6, 6)
    for a in (-3.0, -1.0, 1.0, 3.0):
        for b in (-3.0, 3.0):
            p = s.point(state, a, b)
            assert (p["bn.running_var"] > 0).all()
            net.load_state_dict(p)
            assert torch.isfinite(net(inputs)).all()
    # biasbn zeroes every 1-D tensor, running statistics included (as in Li et al.'s code)
    sb = random_directions(m, dir_type="states", ignore="biasbn", seed=2)
    assert not sb.x["bn.running_mean"].any()


def test_model_tells_buffers_from_parameters():
    class WithBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)
            self.register_buffer("scale", torch.ones(3, 4))

        def forward(self, x):
            return self.lin(x) * self.scale[:, 0]

    m = WithBuffer()
    assert not random_directions(m, seed=0).x["scale"].any()  # exact with the module
    assert random_directions(m.state_dict(), seed=0).x["scale"].any()  # a bare state_dict only has names


@pytest.mark.parametrize("kwargs, fragment", [
    ({"norm": "filters"}, "norm must be one of 'filter', 'layer', 'weight', 'none'; got 'filters'"),
    ({"ignore": "bias"}, "ignore must be one of 'biasbn', 'none'; got 'bias'"),
    ({"dir_type": "state"}, "dir_type must be one of 'weights', 'states'; got 'state'"),
    ({"ndim": 4}, "ndim must be 1, 2 or 3; got 4"),
    ({"seed": -1}, "seed must be an integer"),
    ({"seed": 1.5}, "got 1.5"),
])
def test_bad_options_name_parameter_allowed_and_received(kwargs, fragment):
    with pytest.raises(ValueError) as exc:
        random_directions(tiny_model(), **kwargs)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


def test_nothing_to_perturb_is_an_error():
    m = nn.Sequential(nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="zero everywhere"):
        random_directions(m, ignore="biasbn")


def test_save_load_round_trip_and_bad_files(tmp_path):
    d = random_directions(tiny_model(), seed=5)
    path = d.save(tmp_path / "sub" / "d.pt")
    e = Directions.load(path)
    assert e.meta == d.meta and e.kind == "random" and e.ndim == 2
    assert all(torch.equal(e.x[k], d.x[k]) and torch.equal(e.y[k], d.y[k]) for k in d.x)
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="directions file .*trunc.pt is truncated or corrupted"):
        Directions.load(tmp_path / "trunc.pt")  # named as what it was given as, not as a checkpoint
    (tmp_path / "notes.pt").write_text("some notes\n")
    with pytest.raises(CheckpointError, match="directions file .*notes.pt is not a PyTorch"):
        Directions.load(tmp_path / "notes.pt")
    save_checkpoint(tiny_model().state_dict(), tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match="not a lossvista directions file"):
        Directions.load(tmp_path / "state.pt")
    other = nn.Linear(3, 2).state_dict()
    with pytest.raises(CheckpointError, match=r"do not fit .*2 keys missing.*unexpected") as exc:
        d.check_fits(other, "nn.Linear")
    assert "\n" not in str(exc.value)


def test_point_is_exact_at_the_origin():
    m = tiny_model()
    d = random_directions(m, seed=0)
    state = m.state_dict()
    p = d.point(state, 0.0, 0.0)
    assert all(torch.equal(p[k], state[k]) for k in state)
    q = d.point(state, 0.5, -0.25)
    np.testing.assert_allclose(q["conv.weight"].numpy(),
                               (state["conv.weight"] + 0.5 * d.x["conv.weight"] - 0.25 * d.y["conv.weight"]).numpy(),
                               rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------- PCA


def pca_rows(paths_or_states, centre_index=-1, min_dim=2):
    """Dense reference: rows theta_e - theta_c over tensors with dim >= min_dim (the biasbn rule)."""
    states = [load_checkpoint(p) if not isinstance(p, dict) else p for p in paths_or_states]
    keys = [k for k, v in states[0].items() if v.is_floating_point() and v.dim() >= min_dim]
    c = flat(states[centre_index], keys)
    return np.stack([flat(s, keys) - c for s in states]), keys


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A digits-cnn run with 8 epochs: a trajectory with several significant components."""
    from pipeline.config import TrainConfig
    from pipeline.train import train

    out = tmp_path_factory.mktemp("runs") / "long"
    train(TrainConfig(epochs=8, max_train_samples=400), out)
    return out


def test_pca_agrees_with_sklearn_on_a_real_trajectory(long_run):
    from sklearn.decomposition import PCA

    paths = RunDir(long_run).checkpoints()
    d = pca_directions(paths)
    X, keys = pca_rows(paths)
    ref = PCA(n_components=2, svd_solver="full").fit(X)
    for k, comp in enumerate((d.x, d.y)):
        v = flat(comp, keys)
        cos = v @ ref.components_[k] / (np.linalg.norm(v) * np.linalg.norm(ref.components_[k]))
        assert abs(cos) > 0.999, (k, cos)
        assert np.linalg.norm(v) == pytest.approx(1.0, rel=1e-5)
        # ignored (1-D) tensors are zero
        assert all(not comp[kk].any() for kk, t in comp.items() if t.dim() <= 1)
    np.testing.assert_allclose(d.meta["explained_variance"], ref.explained_variance_ratio_, rtol=1e-6)
    np.testing.assert_allclose(d.meta["singular_values"], ref.singular_values_, rtol=1e-6)
    assert abs(d.meta["cosine"]) < 1e-5
    assert d.meta["epochs"] == list(range(9)) and d.meta["centre_epoch"] == 8
    # sign convention: epoch 0 has negative coordinates on both axes
    assert flat(d.x, keys) @ X[0] < 0 and flat(d.y, keys) @ X[0] < 0


def test_pca_streaming_from_mmap_equals_dense_computation(long_run, tmp_path):
    paths = RunDir(long_run).checkpoints()
    states = [load_checkpoint(p) for p in paths]
    numel = sum(v.numel() for v in states[0].values() if v.dim() >= 2)
    budget = 6 * len(paths) * 1500  # chunks of ~1500 elements: many chunks, tensors cut into pieces
    assert len(plan_chunks({"w": numel}, len(paths), budget)) > 4
    streamed = pca_directions(paths, memory_budget=budget)
    dense = pca_directions(states)  # in memory, one chunk
    for a, b in ((streamed.x, dense.x), (streamed.y, dense.y)):
        for k in a:
            np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-5, atol=1e-7)
    # against a dense SVD of the centred matrix (numpy, not sklearn)
    X, keys = pca_rows(states)
    Xc = X - X.mean(0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    for k, comp in enumerate((streamed.x, streamed.y)):
        v = flat(comp, keys)
        assert abs(v @ vt[k]) > 0.99999
    np.testing.assert_allclose(streamed.meta["explained_variance"], (s[:2] ** 2) / (s ** 2).sum(), rtol=1e-8)


def test_pca_uses_memory_mapped_loads(long_run, monkeypatch):
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("mmap"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    pca_directions(RunDir(long_run).checkpoints())
    assert seen and all(seen)


def test_pca_states_with_batchnorm_includes_running_means_only():
    from sklearn.decomposition import PCA

    states = []
    for e in range(5):
        m = tiny_model(seed=e)
        states.append(m.state_dict())
    d = pca_directions(states, ignore="none", dir_type="states", model=TinyBN())
    assert d.x["bn.running_mean"].any() and not d.x["bn.running_var"].any()
    keys = [k for k, v in states[0].items() if v.is_floating_point() and not k.endswith("running_var")]
    X = np.stack([flat(s, keys) - flat(states[-1], keys) for s in states])
    ref = PCA(2, svd_solver="full").fit(X)
    assert abs(flat(d.x, keys) @ ref.components_[0]) > 0.999
    np.testing.assert_allclose(d.meta["explained_variance"], ref.explained_variance_ratio_, rtol=1e-6)


def test_pca_bad_inputs(long_run, tmp_path):
    paths = RunDir(long_run).checkpoints()
    with pytest.raises(ValueError, match="at least 3 checkpoints.*got 2"):
        pca_directions(paths[:2])
    same = [load_checkpoint(paths[0])] * 3
    with pytest.raises(ValueError, match="do not differ"):
        pca_directions(same)
    data = paths[1].read_bytes()
    (tmp_path / "epoch_001.pt").write_bytes(data[:1000])
    with pytest.raises(CheckpointError, match="epoch_001.pt is truncated or corrupted"):
        pca_directions([paths[0], tmp_path / "epoch_001.pt", paths[2]])
    save_checkpoint(nn.Linear(3, 2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other.pt does not fit the centre weights"):
        pca_directions([paths[0], tmp_path / "other.pt", paths[2]])
    with pytest.raises(CheckpointError, match="does not exist"):
        pca_directions([paths[0], tmp_path / "missing.pt", paths[2]])
    diverged = load_checkpoint(paths[1])
    diverged["fc1.weight"][0, 0] = float("nan")
    save_checkpoint(diverged, tmp_path / "epoch_004.pt")
    with pytest.raises(ValueError, match=r"not finite .*epoch_004.pt"):
        pca_directions([paths[0], tmp_path / "epoch_004.pt", paths[2], paths[3]])


# ---------------------------------------------------------------------------------- interpolation


def test_interpolation_goes_from_a_to_b():
    a, b = tiny_model(seed=1).state_dict(), tiny_model(seed=2).state_dict()
    d = interpolation_direction(a, b)
    assert d.y is None and d.ndim == 1 and d.kind == "interp"
    for k in a:
        if a[k].is_floating_point():
            np.testing.assert_allclose(d.x[k].numpy(), (b[k] - a[k]).numpy(), rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(d.point(a, 1.0)[k].numpy(), b[k].numpy(), rtol=1e-6, atol=1e-6)
        else:
            assert not d.x[k].any()
    assert d.meta["distance"] == pytest.approx(np.linalg.norm(flat(b) - flat(a)), rel=1e-6)
    lo, hi = d.meta["variance_valid_range"]
    assert (lo is None or lo < 0) and (hi is None or hi > 1)
    for alpha in (lo, hi):  # the range is tight: at its ends some variance reaches 0
        if alpha is not None:
            v = a["bn.running_var"].double() + alpha * d.x["bn.running_var"].double()
            assert v.min().item() == pytest.approx(0.0, abs=1e-6)
    w = interpolation_direction(a, b, dir_type="weights", model=TinyBN())
    assert not w.x["bn.running_mean"].any() and w.x["conv.bias"].any()


def test_interpolation_refuses_other_models_and_identical_weights():
    a = tiny_model().state_dict()
    with pytest.raises(CheckpointError, match="not checkpoints of the same model"):
        interpolation_direction(a, nn.Linear(2, 2).state_dict())
    with pytest.raises(ValueError, match="same weights"):
        interpolation_direction(a, a)


# ---------------------------------------------------------------------------------- CLI


def test_cli_directions_all_kinds(digits_run, tmp_path, capsys):
    out = tmp_path / "r.pt"
    assert main(["directions", "--run", str(digits_run), "--kind", "random", "--seed", "4", "--out", str(out)]) == 0
    d = Directions.load(out)
    assert d.meta["seed"] == 4 and d.meta["centre_epoch"] == 3 and d.meta["model"] == "digits-cnn"
    assert main(["directions", "--run", str(digits_run), "--kind", "pca", "--out", str(tmp_path / "p.pt")]) == 0
    p = Directions.load(tmp_path / "p.pt")
    assert len(p.meta["explained_variance"]) == 2 and p.meta["epochs"] == [0, 1, 2, 3]
    assert main(["directions", "--run", str(digits_run), "--kind", "interp", "--from", "1", "--to", "3",
                 "--out", str(tmp_path / "i.pt")]) == 0
    i = Directions.load(tmp_path / "i.pt")
    assert i.y is None and i.meta["from_epoch"] == 1 and i.meta["to_epoch"] == 3 and i.centre_epoch == 1
    captured = capsys.readouterr()
    assert str(out) in captured.out and "cosine(x, y)" in captured.err


def test_cli_directions_default_output(digits_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    assert main(["-q", "directions", "--run", str(run), "--kind", "pca", "--epoch", "2"]) == 0
    d = Directions.load(run / "directions" / "pca.pt")
    assert d.meta["epochs"] == [0, 1, 2] and d.centre_epoch == 2


@pytest.mark.parametrize("args, fragment", [
    (["--kind", "eigen"], "--kind must be one of 'random', 'pca', 'interp', 'hessian'; got 'eigen'"),
    (["--kind", "random", "--norm", "bogus"], "norm must be one of 'filter', 'layer', 'weight', 'none'; got 'bogus'"),
    (["--kind", "pca", "--norm", "layer"], "--norm applies to --kind random or hessian only"),
    (["--kind", "interp", "--ndim", "2"], "--ndim applies to --kind random or pca only"),  # interp is one line
    (["--kind", "random", "--epoch", "99"], "--epoch must be one of the epochs 0..3"),
    (["--kind", "interp", "--from", "2", "--to", "2"], "must be different epochs"),
    (["--kind", "random", "--dir-type", "all"], "dir_type must be one of 'weights', 'states'; got 'all'"),
])
def test_cli_directions_errors_are_one_line(digits_run, tmp_path, capsys, args, fragment):
    code = main(["directions", "--run", str(digits_run), *args, "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("lossvista directions: error:") and fragment in err[0]
    assert not (tmp_path / "x.pt").exists()


def test_cli_directions_missing_run(tmp_path, capsys):
    assert main(["directions", "--run", str(tmp_path / "nope"), "--kind", "random"]) == 1
    assert "does not exist" in capsys.readouterr().err
