"""The evaluation engine against an independent plain loop (load_state_dict + forward + cross-entropy)."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.datamodel import Grid
from pipeline.data import Split, load_dataset
from pipeline.directions import Directions, random_directions
from pipeline.errors import CheckpointError
from pipeline.datamodel import Surface
from pipeline.engine import EvalConfig, PointResult, evaluate_points
from pipeline.surface import evaluate
from pipeline.models import build_model


# ------------------------------------------------------------------------------------------
# fixtures and the independent reference


def _seeded(name: str, seed: int = 0, **kw) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(name, **kw).eval()


@pytest.fixture(scope="module")
def digits() -> Split:
    return load_dataset("digits").train.subset(300, seed=1)


@pytest.fixture(scope="module")
def cnn() -> nn.Module:
    """The digits CNN after a few SGD steps (a model whose loss is not ~log 10 everywhere)."""
    model = _seeded("digits-cnn")
    data = load_dataset("digits").train
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(20):
        idx = torch.randint(0, len(data), (64,), generator=g)
        loss = F.cross_entropy(model(data.inputs[idx]), data.targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def resnet() -> tuple[nn.Module, Split]:
    """ResNet-20 (BatchNorm) with non-trivial running statistics, on 20 tiny synthetic images."""
    model = _seeded("resnet20", seed=1)
    data = load_dataset("synthetic:3x16x16:20:10", seed=2).train
    model.train()
    with torch.no_grad():  # a few forward passes in train mode move the running statistics
        for k in range(3):
            model(data.inputs + 0.1 * k)
    return model.eval(), data


def _directions(model: nn.Module, ndim: int = 2, scale: float = 1.0, seed: int = 0) -> Directions:
    """Seeded Gaussian directions on every floating entry (parameters and BN running means)."""
    g = torch.Generator().manual_seed(seed)
    dirs = []
    for _ in range(ndim):
        d = {}
        for k, v in model.state_dict().items():
            if not v.is_floating_point() or k.endswith("running_var"):
                d[k] = torch.zeros_like(v)  # running variances stay valid (positive)
            else:
                d[k] = scale * torch.randn(v.shape, generator=g) * (v.abs().mean() + 1e-3)
        dirs.append(d)
    return Directions(dirs[0], dirs[1] if ndim == 2 else None, {"kind": "random", "seed": seed})


def plain_loss(model: nn.Module, directions: Directions, a: float, b: float, data: Split) -> tuple[float, float]:
    """Reference: weights theta + a x + b y (float64, then the model's dtype) loaded into a fresh copy."""
    theta = model.state_dict()
    state = {}
    for k, v in theta.items():
        if v.is_floating_point():
            w = v.double() + a * directions.x[k].double()
            if directions.y is not None:
                w = w + b * directions.y[k].double()
            state[k] = w.to(v.dtype)
        else:
            state[k] = v.clone()
    fresh = copy.deepcopy(model)
    fresh.load_state_dict(state)
    fresh.eval()
    with torch.no_grad():
        logits = fresh(data.inputs)
    return (F.cross_entropy(logits, data.targets).item(),
            (logits.argmax(1) == data.targets).double().mean().item())


def _cfg(**kw) -> EvalConfig:
    return EvalConfig(device="cpu", **kw)


# ------------------------------------------------------------------------------------------
# values


@pytest.mark.parametrize("lanes", [1, 4])
def test_digits_cnn_matches_plain_loop(cnn, digits, lanes):
    d = _directions(cnn)
    grid = Grid(-1.0, 0.5, 4, -0.5, 1.0, 3)  # non-square, 0 is not an x grid point
    s = evaluate(cnn, d, grid, digits, config=_cfg(points_per_batch=lanes, batch_size=64), progress=False)
    assert s.loss.shape == (4, 3) and s.accuracy.shape == (4, 3)
    assert s.meta["engine"]["plan"]["points_per_batch"] == lanes
    for i, j in [(0, 0), (3, 2), (1, 2), (2, 0)]:
        ref_loss, ref_acc = plain_loss(cnn, d, grid.xs[i], grid.ys[j], digits)
        assert s.loss[i, j] == pytest.approx(ref_loss, rel=1e-5), (i, j)
        assert s.accuracy[i, j] == pytest.approx(ref_acc, abs=1e-12), (i, j)


@pytest.mark.parametrize("lanes", [1, 3])
def test_resnet_with_batchnorm_matches_plain_loop(resnet, lanes):
    model, data = resnet
    d = _directions(model, scale=0.3)
    assert any(k.endswith("running_mean") and v.abs().sum() > 0 for k, v in d.x.items())  # buffers move too
    coords = np.array([[0.0, 0.0], [0.5, -0.25], [-1.0, 1.0], [0.1, 0.9]])
    r = evaluate_points(model, d, coords, data, _cfg(points_per_batch=lanes, batch_size=8), progress=False)
    assert r.plan.points_per_batch == lanes and r.plan.memory_format == "channels_last"
    for p, (a, b) in enumerate(coords):
        ref_loss, ref_acc = plain_loss(model, d, a, b, data)
        assert r.loss[p] == pytest.approx(ref_loss, rel=1e-5), p
        assert r.accuracy[p] == pytest.approx(ref_acc, abs=1e-12), p
    assert (r.samples == len(data)).all() and not r.bounded.any()


def test_centre_equals_unperturbed_model(resnet, cnn, digits):
    for model, data in (resnet, (cnn, digits)):
        with torch.no_grad():
            ref = F.cross_entropy(model(data.inputs), data.targets).item()
        for lanes in (1, 3):
            s = evaluate(model, _directions(model), Grid(-1, 1, 3, -1, 1, 3), data,
                         config=_cfg(points_per_batch=lanes), progress=False)
            assert s.loss[1, 1] == pytest.approx(ref, rel=1e-6)
            assert s.meta["centre_loss"] == s.loss[1, 1]


def test_batched_and_unbatched_agree(cnn, digits):
    d = _directions(cnn)
    coords = Grid(-1, 1, 5, -1, 1, 5).coords()
    one = evaluate_points(cnn, d, coords, digits, _cfg(points_per_batch=1), progress=False)
    many = evaluate_points(cnn, d, coords, digits, _cfg(points_per_batch=8), progress=False)
    assert many.plan.points_per_batch == 8 and not many.notes  # lanes verified independent, used
    np.testing.assert_allclose(many.loss, one.loss, rtol=1e-6)
    np.testing.assert_array_equal(many.accuracy, one.accuracy)


@pytest.mark.parametrize("lanes", [1, 4])
def test_a_point_does_not_depend_on_its_companions(cnn, digits, lanes):
    """Bitwise: the same points in one call, in shuffled calls of other sizes, and alone.

    161 samples in batches of 32 (after a ramp of 4, 8, 16) leave a last batch of 5: on 5-7 rows a
    1-lane vmapped matmul takes another MKL kernel than a batched one on this CPU, so groups
    must never shrink to 1 lane.
    """
    d = _directions(cnn, scale=2.0)
    coords = Grid(-3, 3, 4, -3, 3, 3).coords()  # 12 points: groups of 4 (lanes) or 1
    digits = digits.subset(161, seed=0)
    cfg = _cfg(points_per_batch=lanes, batch_size=32)
    whole = evaluate_points(cnn, d, coords, digits, cfg, progress=False)
    order = np.random.default_rng(0).permutation(len(coords))
    parts = [order[:5], order[5:6], order[6:9], order[9:10], order[10:]]
    loss = np.empty(len(coords))
    acc = np.empty(len(coords))
    for part in parts:
        r = evaluate_points(cnn, d, coords[part], digits, cfg, progress=False)
        loss[part], acc[part] = r.loss, r.accuracy
    np.testing.assert_array_equal(loss, whole.loss)
    np.testing.assert_array_equal(acc, whole.accuracy)
    capped = evaluate_points(cnn, d, coords[order], digits, dataclasses.replace(cfg, cap=float(np.median(whole.loss))),
                             progress=False)
    below = ~capped.bounded
    np.testing.assert_array_equal(capped.loss[below], whole.loss[order][below])


def test_one_dimensional_grid_with_zero_as_endpoint(cnn, digits):
    d = _directions(cnn, ndim=1)
    grid = Grid.from_specs("0:1:4", None)
    s = evaluate(cnn, d, grid, digits, config=_cfg(), progress=False)
    assert isinstance(s, Surface) and s.loss.shape == (4, 1)
    with torch.no_grad():
        ref = F.cross_entropy(cnn(digits.inputs), digits.targets).item()
    assert s.loss[0, 0] == pytest.approx(ref, rel=1e-6)
    assert s.loss[3, 0] == pytest.approx(plain_loss(cnn, d, 1.0, 0.0, digits)[0], rel=1e-5)
    with pytest.raises(ValueError, match="ny == 1"):
        evaluate(cnn, d, Grid(0, 1, 3, -1, 1, 3), digits, config=_cfg(), progress=False)
    with pytest.raises(ValueError, match="beta"):
        evaluate_points(cnn, d, [[0.5, 0.5]], digits, _cfg(), progress=False)


def test_surface_orientation_and_meta(cnn, digits):
    d = _directions(cnn)
    grid = Grid(0.0, 1.0, 3, -1.0, 0.0, 2)  # (nx, ny) = (3, 2), 0 at an endpoint of both axes
    s = evaluate(cnn, d, grid, (digits.inputs, digits.targets), test_data=digits.subset(50, seed=0),
                 config=_cfg(), progress=False, meta={"dataset": "digits"})
    for i, j in [(2, 0), (0, 0), (1, 1)]:
        assert s.loss[i, j] == pytest.approx(plain_loss(cnn, d, grid.xs[i], grid.ys[j], digits)[0], rel=1e-5)
    assert s.test_loss.shape == (3, 2)
    assert s.test_loss[1, 0] == pytest.approx(plain_loss(cnn, d, 0.5, -1.0, digits.subset(50, seed=0))[0], rel=1e-5)
    m = s.meta
    assert m["dataset"] == "digits" and m["split"] == "both" and m["samples"] == 300 and m["test_samples"] == 50
    assert m["grid"] == grid.to_dict() and m["direction_kind"] == "random" and m["seed"] == 0
    assert m["centre_loss"] == s.loss[0, 1] and m["precision"] == "fp32" and "torch" in m["software"]
    import json

    json.dumps(m)  # JSON-serialisable as written into the .vts field data


def test_subset_is_fixed_and_seeded(cnn, digits):
    d = _directions(cnn)
    coords = [[0.0, 0.0], [0.3, -0.2]]
    a = evaluate_points(cnn, d, coords, digits, _cfg(max_samples=100, sample_seed=3), progress=False)
    b = evaluate_points(cnn, d, coords, digits, _cfg(max_samples=100, sample_seed=3), progress=False)
    other = evaluate_points(cnn, d, coords, digits, _cfg(max_samples=100, sample_seed=4), progress=False)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert a.plan.samples == 100 and (a.samples == 100).all()
    assert not np.array_equal(a.loss, other.loss)
    sub = digits.subset(100, seed=3)
    assert a.loss[1] == pytest.approx(plain_loss(cnn, d, 0.3, -0.2, sub)[0], rel=1e-5)


# ------------------------------------------------------------------------------------------
# early exit, non-finite values


@pytest.mark.parametrize("lanes", [1, 4])
def test_early_exit_is_exact_below_the_cap(cnn, digits, lanes):
    d = _directions(cnn, scale=2.0)
    coords = Grid(-3, 3, 5, -3, 3, 5).coords()  # the edge diverges
    digits = digits.subset(161, seed=0)  # a ramp of 4, 8, 16, then 4 batches of 32 and a last one of 5
    base = _cfg(points_per_batch=lanes, batch_size=32)
    full = evaluate_points(cnn, d, coords, digits, base, progress=False)
    cap = float(np.quantile(full.loss, 0.3))  # 70 % of the plane above the cap, much of it far above
    capped = evaluate_points(cnn, d, coords, digits, dataclasses.replace(base, cap=cap), progress=False)
    below = ~capped.bounded
    assert capped.bounded.sum() >= len(coords) // 2
    np.testing.assert_array_equal(capped.loss[below], full.loss[below])  # identical, not close
    np.testing.assert_array_equal(capped.accuracy[below], full.accuracy[below])
    assert (full.loss[capped.bounded] > cap).all()  # bounded points really exceed the cap
    assert (capped.loss[capped.bounded] > cap).all()  # stored: a lower bound above the cap ...
    assert (capped.loss[capped.bounded] <= full.loss[capped.bounded] * (1 + 1e-12)).all()  # ... of the true mean
    assert (capped.samples[capped.bounded] < len(digits)).all() and (capped.samples[below] == len(digits)).all()
    assert capped.samples.sum() < 0.75 * full.samples.sum()


def test_huge_directions_give_non_finite_loss_never_zero(cnn, digits):
    d = _directions(cnn, scale=1e30)
    r = evaluate_points(cnn, d, [[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]], digits, _cfg(points_per_batch=3),
                        progress=False)
    assert np.isfinite(r.loss[0])
    assert not np.isfinite(r.loss[1:]).any()  # NaN/inf stays non-finite, never rewritten to 0
    # the arg-max of non-finite logits is no prediction: accuracy NaN there, a fraction elsewhere
    assert np.isnan(r.accuracy[1:]).all() and 0 <= r.accuracy[0] <= 1
    capped = evaluate_points(cnn, d, [[1.0, 1.0]], digits, _cfg(cap=10.0), progress=False)
    assert not (np.isfinite(capped.loss[0]) and capped.loss[0] <= 10.0)


# ------------------------------------------------------------------------------------------
# precision, model state, fallbacks


def test_bf16_is_close_to_fp32(resnet):
    model, data = resnet
    d = _directions(model, scale=0.2)
    coords = [[0.0, 0.0], [0.5, 0.5]]
    fp32 = evaluate_points(model, d, coords, data, _cfg(), progress=False)
    bf16 = evaluate_points(model, d, coords, data, _cfg(precision="bf16"), progress=False)
    assert bf16.plan.precision == "bf16"
    np.testing.assert_allclose(bf16.loss, fp32.loss, rtol=0.1)
    assert not np.array_equal(bf16.loss, fp32.loss)


def test_model_is_left_unchanged(cnn, digits):
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    cnn.train()
    evaluate_points(cnn, _directions(cnn), [[0.5, 0.5]], digits, _cfg(points_per_batch=2), progress=False)
    assert cnn.training and all(m.training for m in cnn.modules())
    cnn.eval()
    for k, v in cnn.state_dict().items():
        assert torch.equal(v, before[k]), k


class _NotVmappable(nn.Module):
    """A model whose forward reads a value back (``.item()``): vmap cannot batch it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        out = self.fc(x.flatten(1))
        return out * (1.0 + 0.0 * float(out.abs().max().item()))


def test_unvmappable_model_falls_back_to_one_point_per_forward(digits):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _NotVmappable().eval()
    d = _directions(model)
    r = evaluate_points(model, d, [[0.0, 0.0], [0.5, 0.2]], digits, _cfg(points_per_batch=2), progress=False)
    assert r.plan.points_per_batch == 1 and "vmap" in r.notes[0]
    assert r.loss[1] == pytest.approx(plain_loss(model, d, 0.5, 0.2, digits)[0], rel=1e-5)


def test_auto_plan_is_recorded_and_deterministic(cnn, digits):
    d = _directions(cnn)
    a = evaluate_points(cnn, d, [[0.1, 0.1]], digits, _cfg(), progress=False)
    b = evaluate_points(cnn, d, [[0.1, 0.1], [0.2, 0.0]], digits, _cfg(), progress=False)
    assert a.plan == b.plan and a.plan.batch_size >= 16 and a.plan.flops_per_sample > 0
    assert a.loss[0] == b.loss[0]


# ------------------------------------------------------------------------------------------
# bad input: one-line errors that name the tensor / parameter


def test_directions_that_do_not_fit_are_refused(cnn, digits):
    good = _directions(cnn)
    missing = Directions({k: v for k, v in good.x.items() if k != "fc1.weight"}, good.y)
    with pytest.raises(CheckpointError, match="fc1.weight") as e:
        evaluate_points(cnn, missing, [[0.0, 0.0]], digits, _cfg(), progress=False)
    assert "\n" not in str(e.value)
    wrong = Directions({**good.x, "conv2.weight": torch.zeros(16, 8, 5, 5)}, good.y)
    with pytest.raises(CheckpointError, match=r"conv2.weight.*\(16, 8, 5, 5\).*\(16, 8, 3, 3\)"):
        evaluate_points(cnn, wrong, [[0.0, 0.0]], digits, _cfg(), progress=False)
    extra = Directions(good.x, {**good.y, "head.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match="head.weight"):
        evaluate_points(cnn, extra, [[0.0, 0.0]], digits, _cfg(), progress=False)
    nan = Directions({**good.x, "fc2.bias": torch.full((10,), float("nan"))}, good.y)
    with pytest.raises(ValueError, match="fc2.bias"):
        evaluate_points(cnn, nan, [[0.0, 0.0]], digits, _cfg(), progress=False)
    other_model = random_directions(_seeded("lenet"), seed=0)
    with pytest.raises(CheckpointError, match="another model"):
        evaluate(cnn, other_model, Grid(-1, 1, 3, -1, 1, 3), digits, config=_cfg(), progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"precision": "fp64"}, "precision must be one of"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"points_per_batch": 2.5}, "points_per_batch"),
    ({"cap": -1.0}, "cap must be a positive finite number"),
    ({"cap": float("nan")}, "cap must be"),
    ({"max_samples": 0}, "max_samples"),
    ({"memory_format": "nhwc"}, "memory_format must be one of"),
])
def test_bad_config_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EvalConfig(**kwargs)


def test_bad_coords_and_data(cnn, digits):
    d = _directions(cnn)
    with pytest.raises(ValueError, match=r"coords must have shape \(P, 2\)"):
        evaluate_points(cnn, d, np.zeros((2, 3)), digits, _cfg(), progress=False)
    with pytest.raises(ValueError, match="finite"):
        evaluate_points(cnn, d, [[np.nan, 0.0]], digits, _cfg(), progress=False)
    bad_targets = Split(digits.inputs, digits.targets + 10)
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 10\)"):
        evaluate_points(cnn, d, [[0.0, 0.0]], bad_targets, _cfg(), progress=False)
    with pytest.raises(ValueError, match="same length"):
        evaluate_points(cnn, d, [[0.0, 0.0]], (digits.inputs, digits.targets[:5]), _cfg(), progress=False)
    with pytest.raises(ValueError, match=r"\(inputs, targets\) tensors, a Dataset, a DataLoader"):
        evaluate_points(cnn, d, [[0.0, 0.0]], digits.inputs, _cfg(), progress=False)
    assert isinstance(evaluate_points(cnn, d, np.zeros((0, 2)), digits, _cfg(), progress=False), PointResult)


def test_lanes_that_interact_are_detected_and_not_used(cnn, digits, monkeypatch):
    """If vmapped lanes ever depended on their companions, the engine must fall back to one point."""
    from pipeline.engine import lanes as runner_mod
    from pipeline.engine import plane as plane_mod

    build = plane_mod.Plane.build
    monkeypatch.setattr(runner_mod, "_PROBE_CACHE", {})  # verdicts of earlier tests do not apply

    def leaky(self, coef):  # each lane's weights move with the group's mean: companions matter
        return {k: w + w.mean(0, keepdim=True) * 1e-6 for k, w in build(self, coef).items()}

    monkeypatch.setattr(plane_mod.Plane, "build", leaky)
    d = _directions(cnn)
    coords = Grid(-1, 1, 3, -1, 1, 2).coords()
    r = evaluate_points(cnn, d, coords, digits, _cfg(points_per_batch=4, batch_size=64), progress=False)
    assert r.plan.points_per_batch == 1 and "companions" in r.notes[0]
    alone = [evaluate_points(cnn, d, coords[p:p + 1], digits, _cfg(points_per_batch=4, batch_size=64),
                             progress=False).loss[0] for p in (0, 4)]
    assert [r.loss[0], r.loss[4]] == alone


def test_private_copy_and_functional_call_give_the_same_bits(cnn, digits, resnet, monkeypatch):
    """One point per forward: the private model copy must see exactly what functional_call passes."""
    from pipeline.engine import lanes as runner_mod

    cases = [(cnn, digits, _directions(cnn)), (resnet[0], resnet[1], _directions(resnet[0], scale=0.3))]
    coords = [[0.0, 0.0], [0.7, -0.4]]
    fast = [evaluate_points(m, d, coords, data, _cfg(points_per_batch=1), progress=False).loss for m, data, d in cases]
    monkeypatch.setattr(runner_mod._ResidentCopy, "MAX_BYTES", 0)  # force functional_call
    slow = [evaluate_points(m, d, coords, data, _cfg(points_per_batch=1), progress=False).loss for m, data, d in cases]
    for f, s in zip(fast, slow):
        np.testing.assert_array_equal(f, s)
