"""pipeline.curvature against the dense Hessian (torch.autograd.functional.hessian) of models
small enough for it (about 2,000 parameters), the loss written out here with torch.nn.functional."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader, TensorDataset

from pipeline.curvature import ConvergenceWarning, CurvatureError, Hessian
from pipeline.errors import ParameterError


def _classifier(width=40, seed=0):
    """10 -> 40 -> 30 -> 5, tanh, float64: 1,750 weights (ignore='biasbn'), 1,825 with biases."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, width), nn.Tanh(), nn.Linear(width, 30), nn.Tanh(), nn.Linear(30, 5)).double()


def _classes(n=300, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g, dtype=torch.float64)
    return x, (x[:, 0] + x[:, 1] ** 2 > 0.5).long() + 2 * (x[:, 2] > 0).long()


def _train(model, x, y, steps=60, loss=F.cross_entropy):
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(steps):
        opt.zero_grad()
        loss(model(x), y).backward()
        opt.step()
    return model


def dense(model, names, f):
    """The dense Hessian of ``f(outputs)`` over the parameters ``names`` (flattened in that order)."""
    full = {k: v.detach() for k, v in model.named_parameters()}

    def loss(*ps):
        return f(functional_call(model, {**full, **dict(zip(names, ps))}, ()))

    blocks = torch.autograd.functional.hessian(loss, tuple(full[k] for k in names), vectorize=True)
    sizes = [full[k].numel() for k in names]
    return torch.cat([torch.cat([blocks[i][j].reshape(sizes[i], sizes[j]) for j in range(len(names))], 1)
                      for i in range(len(names))], 0).double().numpy()


class _Bound(nn.Module):
    """``model`` applied to fixed inputs: functional_call(bound, params, ()) gives the outputs."""

    def __init__(self, model, x):
        super().__init__()
        self.model, self.x = model, x

    def forward(self):
        return self.model(self.x)


def dense_of(model, x, f, ignore="biasbn"):
    bound = _Bound(model, x)
    names = [k for k, p in bound.named_parameters() if ignore == "none" or p.dim() > 1]
    return dense(bound, names, f)


@pytest.fixture(scope="module")
def trained():
    x, y = _classes(200)
    model = _train(_classifier(), x, y)
    H = dense_of(model, x, lambda out: F.cross_entropy(out, y))
    return model, x, y, H, np.linalg.eigh(H)


def test_extreme_eigenvalues_and_vectors_equal_the_dense_ones(trained):
    model, x, y, H, (ev, V) = trained
    hess = Hessian(model, (x, y), batch_size=128)  # three batches, summed
    assert hess.n == H.shape[0] == 1750
    top = hess.eigenvalues(3, "largest", tol=1e-9, max_iter=1000)
    bottom = hess.eigenvalues(2, "smallest", tol=1e-9, max_iter=1000)
    np.testing.assert_allclose(top, ev[::-1][:3], rtol=1e-4)
    np.testing.assert_allclose(bottom, ev[:2], rtol=1e-4)
    assert bottom[0] < 0 < top[0]  # a trained net has negative curvature too
    values, vectors = hess.eigenvectors(2, "largest", tol=1e-9, max_iter=1000)
    for k, d in enumerate(vectors):
        assert set(d) == set(model.state_dict())
        assert all(not d[name].any() for name in d if name.endswith("bias"))  # biasbn: zeros there
        v = hess.flatten(d).numpy()
        assert abs(np.linalg.norm(v) - 1) < 1e-9
        assert abs(v @ V[:, -1 - k]) > 0.999


def test_hessian_vector_products_equal_finite_differences_of_gradients(trained):
    model, x, y, _, _ = trained
    hess = Hessian(model, (x, y), ignore="none")
    names = hess.names
    params = dict(model.named_parameters())
    g = torch.Generator().manual_seed(3)
    v = torch.randn(hess.n, generator=g, dtype=torch.float64)

    def grad_at(shift):
        pieces = dict(zip(names, torch.split(shift, hess.sizes)))
        ps = {k: (params[k].detach() + pieces[k].reshape(params[k].shape)).requires_grad_(True) for k in names}
        loss = F.cross_entropy(functional_call(model, ps, (x,)), y)
        return torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, [ps[k] for k in names])])

    eps = 1e-5
    fd = (grad_at(eps * v) - grad_at(-eps * v)) / (2 * eps)
    hv = hess.matvec(v)
    assert float((hv - fd).norm() / fd.norm()) < 1e-6
    as_dict = hess.hvp(hess.unflatten(v))
    assert torch.allclose(hess.flatten(as_dict), hv)


def test_hutchinson_trace_within_three_standard_errors(trained):
    model, x, y, H, _ = trained
    hess = Hessian(model, (x, y))
    mean, stderr = hess.trace(samples=100, seed=4)
    assert stderr > 0
    assert abs(mean - np.trace(H)) < 3 * stderr


def test_slq_density_moments_within_five_percent():
    # 200 inputs -> 10 -> 5: 2,050 weights. A quadrature moment's standard error is about
    # sqrt(2 sum_{i != j} (H^p)_ij^2) / tr(H^p) / sqrt(vectors): here 4.5% (p = 1) and 6.2% (p = 2) per
    # vector, so 20 vectors put 5% beyond 3.5 standard errors
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 200, generator=g, dtype=torch.float64)
    y = (x @ torch.randn(200, 10, generator=g, dtype=torch.float64)).argmax(1) % 5
    torch.manual_seed(0)
    model = _train(nn.Sequential(nn.Linear(200, 10), nn.Tanh(), nn.Linear(10, 5)).double(), x, y, steps=30)
    ev = np.linalg.eigvalsh(dense_of(model, x, lambda o: F.cross_entropy(o, y)))
    assert len(ev) == 2050
    d = Hessian(model, (x, y)).density(vectors=20, steps=30, seed=5)
    assert all(abs(w.sum() - 1) < 1e-9 for w in d.weights)
    for p in (1, 2):
        exact = float(np.mean(ev ** p))
        assert d.moment(p) == pytest.approx(exact, rel=0.05)
    xs, ys = d.curve(points=4000)
    assert np.trapezoid(ys, xs) == pytest.approx(1.0, rel=1e-3)
    lo, hi = d.range
    assert ev[0] - 1e-6 <= lo and hi <= ev[-1] + 1e-6  # Ritz values lie inside the spectrum


def test_eig_ratio_grid_point_equals_the_dense_computation():
    from pipeline import Grid, evaluate, random_directions
    from pipeline.curvature.maps import HessianMaps

    x, y = _classes(120)
    model = _train(_classifier(width=20), x, y, steps=20)
    d = random_directions(model, seed=1)
    s = evaluate(model, d, Grid(-0.5, 0.5, 3, -0.5, 0.5, 3), (x, y), progress=False,
                 hessian=HessianMaps(tol=1e-10, max_iter=900))
    assert {"hessian_max", "hessian_min", "eig_ratio", "hessian_error"} <= set(s.names())
    assert s.meta["hessian"]["unconverged_points"] == 0 and s.meta["hessian"]["ignore"] == "biasbn"
    i, j = 2, 0
    at = _classifier(width=20)
    at.load_state_dict(d.point(model.state_dict(), float(s.xs[i]), float(s.ys[j])))
    ev = np.linalg.eigvalsh(dense_of(at, x, lambda out: F.cross_entropy(out, y)))
    assert s.extra["hessian_max"][i, j] == pytest.approx(ev[-1], rel=1e-6)
    assert s.extra["hessian_min"][i, j] == pytest.approx(ev[0], rel=1e-6)
    assert s.extra["eig_ratio"][i, j] == pytest.approx(abs(ev[0] / ev[-1]), rel=1e-6)


def _regression(n=200, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g, dtype=torch.float64)
    return x, (x[:, :1] - 0.5 * x[:, 1:2] ** 2)


# name, targets, the loss written out on (outputs, targets)
LOSSES = {
    "mse": ("reg", lambda o, t: F.mse_loss(o, t)),
    "huber": ("reg", lambda o, t: F.huber_loss(o, t)),
    "l1": ("reg", lambda o, t: F.l1_loss(o, t)),
    "bce_with_logits": ("bin", lambda o, t: F.binary_cross_entropy_with_logits(o, t)),
    "cross_entropy": ("cls", lambda o, t: F.cross_entropy(o, t, label_smoothing=0.1)),
    "nll": ("cls", lambda o, t: F.nll_loss(o, t)),  # the model ends in LogSoftmax
    "tests.user_losses:squared_error": ("reg", lambda o, t: ((o - t) ** 2).mean()),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_equals_its_dense_hessian(name):
    from pipeline.objective import LossSpec

    kind, own = LOSSES[name]
    torch.manual_seed(0)
    out = 5 if kind == "cls" else 1
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, out)).double()
    x, t = _regression() if kind == "reg" else _classes(200)
    if kind == "bin":
        t = (t > 0).double().unsqueeze(-1)
    if name == "nll":
        model.append(nn.LogSoftmax(-1))
    spec = LossSpec(name, {"label_smoothing": 0.1} if name == "cross_entropy" else {})
    hess = Hessian(model, (x, t), loss=spec, ignore="none", batch_size=64)
    H = dense_of(model, x, lambda o: own(o, t), ignore="none")
    v = torch.randn(hess.n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    np.testing.assert_allclose(hess.matvec(v).numpy(), H @ v.numpy(), rtol=1e-7, atol=1e-9 * np.abs(H).max())
    ev = np.linalg.eigvalsh(H)
    r = hess.lanczos(1, "both", tol=1e-10, max_iter=hess.n)
    assert r.values[0] == pytest.approx(ev[-1], rel=1e-6, abs=1e-9 * abs(ev).max())
    assert r.values[1] == pytest.approx(ev[0], rel=1e-6, abs=1e-9 * abs(ev).max())


@pytest.mark.parametrize("form", ["tensors", "dataset", "dataloader", "batches with a forward hook"])
def test_every_data_form_gives_the_same_products(form):
    x, y = _classes(150)
    model = _train(_classifier(width=16), x, y, steps=10)
    if form == "tensors":
        data, forward = (x, y), None
    elif form == "dataset":
        data, forward = TensorDataset(x, y), None
    elif form == "dataloader":
        data, forward = DataLoader(TensorDataset(x, y), batch_size=40), None
    else:
        data = [{"features": x[i:i + 50], "label": y[i:i + 50]} for i in range(0, 150, 50)]
        forward = lambda m, b: (m(b["features"]), b["label"])  # noqa: E731
    hess = Hessian(model, data, forward=forward)
    H = dense_of(model, x, lambda o: F.cross_entropy(o, y))
    v = torch.randn(hess.n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    np.testing.assert_allclose(hess.matvec(v).numpy(), H @ v.numpy(), rtol=1e-7, atol=1e-10)
    assert hess.samples == 150 and hess.count == 150


def test_graphs_kept_or_rebuilt_give_the_same_products():
    x, y = _classes(200)
    model = _train(_classifier(width=16), x, y, steps=10)
    kept = Hessian(model, (x, y), batch_size=64)
    rebuilt = Hessian(model, (x, y), batch_size=64, graph_memory=0)
    v = torch.randn(kept.n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.allclose(kept.matvec(v), rebuilt.matvec(v), rtol=1e-12, atol=0)
    assert kept._graphs is not None and rebuilt._graphs is None
    a, b = kept.eigenvalues(1, tol=1e-8), rebuilt.eigenvalues(1, tol=1e-8)
    assert a[0] == pytest.approx(b[0], rel=1e-10)


def test_the_gradient_equals_autograd_with_graphs_kept_or_not(trained):
    model, x, y, _, _ = trained
    names = [k for k, p in model.named_parameters() if p.dim() > 1]
    params = dict(model.named_parameters())
    loss = F.cross_entropy(model(x), y)
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, [params[k] for k in names])]).double()
    model.zero_grad(set_to_none=True)
    for memory in (2 << 30, 0):
        hess = Hessian(model, (x, y), batch_size=64, graph_memory=memory)
        assert torch.allclose(hess.gradient(), expected, rtol=1e-5, atol=1e-7)
        assert (hess._graphs is not None) == (memory > 0)


def _diagonal(values):
    d = torch.as_tensor(values, dtype=torch.float64)
    return lambda v: d * v


def test_the_error_estimate_holds_and_stops_before_the_residual_would():
    from pipeline.curvature.lanczos import Lanczos

    rng = np.random.default_rng(0)
    spectrum = np.concatenate([[10.0, 7.0, -3.0], rng.uniform(-1, 4, 2000)])
    start = torch.as_tensor(rng.standard_normal(spectrum.size))
    for tol in (1e-3, 1e-6):
        r = Lanczos(_diagonal(spectrum), start).run(1, "largest", tol, 500)
        assert r.converged and abs(r.values[0] - 10.0) <= tol * r.scale
        assert r.errors[0] < r.residuals[0]
        by_residual = Lanczos(_diagonal(spectrum), start).run(1, "largest", tol, 500, vectors=True)
        assert by_residual.relative_residuals[0] <= tol  # vectors: the residual itself
        assert r.steps < by_residual.steps


def test_the_smallest_end_converges_on_its_residual_past_the_bulk():
    """A bulk near zero with a small negative eigenvalue under it, as at the bottom of a network's
    Hessian: the smallest end is not stopped at the bulk's edge."""
    from pipeline.curvature.lanczos import Lanczos

    rng = np.random.default_rng(1)
    spectrum = np.concatenate([[10.0, 6.0, -0.08], rng.uniform(0, 0.5, 5000)])
    start = torch.as_tensor(rng.standard_normal(spectrum.size))
    tol = 1e-3
    r = Lanczos(_diagonal(spectrum), start).run(1, "both", tol, 500)
    assert r.converged and r.errors[1] == r.residuals[1] and r.errors[0] < r.residuals[0]
    assert abs(r.values[0] - 10.0) <= tol * r.scale and abs(r.values[1] + 0.08) <= tol * r.scale


def test_only_the_largest_end_starts_from_the_gradient(trained):
    """A start weighted to the top eigenvectors (the gradient's) holds little of the bottom: the
    smallest end and both ends start from the seeded random vector alone, in a space of their own."""
    model, x, y, _, (ev, _) = trained
    hess = Hessian(model, (x, y), batch_size=128, seed=3)
    both = hess.lanczos(1, "both")
    top = hess.lanczos(1, "largest")
    random = torch.randn(hess.n, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    random = random / random.norm()
    g = hess.gradient()
    assert torch.allclose(hess._krylov[False].basis()[0], random, atol=1e-12)
    assert torch.allclose(hess._krylov[True].basis()[0], (random + g / g.norm()) / (random + g / g.norm()).norm(),
                          atol=1e-12)
    assert abs(both.values[1] - ev[0]) <= 1e-3 * both.scale and abs(top.values[0] - ev[-1]) <= 1e-3 * top.scale


def test_a_float32_conv_net_with_batchnorm_in_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3))
    x = torch.randn(64, 1, 6, 6)
    y = torch.randint(0, 3, (64,))
    with torch.no_grad():  # running statistics that are not the batch's: eval mode must use them
        model[1].running_mean.fill_(0.3)
        model[1].running_var.fill_(2.0)
    model.train()
    hess = Hessian(model, (x, y))
    assert hess.names == ["0.weight", "4.weight"]
    top = hess.eigenvalues(1, tol=1e-6)
    assert model.training  # evaluated in eval mode, its own flags restored
    H = dense_of(model.eval(), x, lambda o: F.cross_entropy(o, y))
    ev = np.linalg.eigvalsh(H)
    assert top[0] == pytest.approx(ev[-1], rel=1e-4)


def test_the_models_training_flags_and_weights_are_left_alone():
    x, y = _classes(60)
    model = _classifier(width=8).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Hessian(model, (x, y)).eigenvalues(1, tol=1e-3)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_too_few_iterations_warn_with_the_error_reached(trained):
    model, x, y, _, _ = trained
    hess = Hessian(model, (x, y))
    with pytest.warns(ConvergenceWarning, match=r"stopped after 3 steps with an estimated error of [0-9.e-]+ "
                                                r"\(> tol 1e-08\).*within [0-9.e-]+ x .*raise max_iter"):
        values = hess.eigenvalues(1, "smallest", tol=1e-8, max_iter=3)
    assert len(values) == 1
    r = hess.lanczos(1, "smallest", tol=1e-8, max_iter=3, warn=False)
    assert not r.converged and r.relative_errors[0] > 1e-8
    assert r.errors[0] <= r.residuals[0]  # the estimate never exceeds the rigorous bound


def test_a_parameter_the_loss_does_not_use_is_refused():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(4, 3)
            self.spare = nn.Linear(4, 3)

        def forward(self, x):
            return self.used(x)

    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    with pytest.raises(CurvatureError, match=r"^the loss does not depend on the parameter 'spare.weight'.*"
                                             r"requires_grad=False"):
        Hessian(Unused(), (x, y)).eigenvalues()


@pytest.mark.parametrize("value", [math.nan, 1e308])
def test_non_finite_loss_or_products_are_refused(value):
    model = _classifier(width=8)
    x, y = _classes(30)
    with torch.no_grad():
        model[4].weight.fill_(value)  # NaN, or logits that overflow
    with pytest.raises(CurvatureError, match="not finite at these weights"):
        Hessian(model, (x, y)).trace(samples=2)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"ignore": "bias"}, "ignore must be one of 'biasbn', 'none'; got 'bias'"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1; got 0"),
    ({"graph_memory": -1}, "graph_memory must be an integer >= 0"),
])
def test_bad_options_are_one_line_errors(kwargs, fragment):
    x, y = _classes(10)
    with pytest.raises(ParameterError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Hessian(_classifier(width=4), (x, y), **kwargs)


def test_bad_requests_are_one_line_errors():
    x, y = _classes(10)
    hess = Hessian(_classifier(width=4), (x, y))
    with pytest.raises(ParameterError, match="which must be one of 'largest', 'smallest', 'both'"):
        hess.eigenvalues(1, "middle")
    with pytest.raises(ParameterError, match="tol must be a positive number"):
        hess.eigenvalues(1, tol=0)
    with pytest.raises(ParameterError, match="k must be at most"):
        hess.eigenvalues(10 ** 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hess.eigenvalues(1, tol=1e-2)  # converges: no warning
