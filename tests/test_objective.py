"""pipeline.objective and the engine on the user's losses and data forms: each value checked
against the user's own loop written here with torch.nn.functional."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from pipeline.directions import random_directions
from pipeline.engine import EvalConfig, evaluate_points
from pipeline.engine.batches import as_eval_data
from pipeline.errors import ParameterError
from pipeline.objective import LossSpec
from pipeline.surface import evaluate

from .user_models import Tokens

CPU = EvalConfig(device="cpu")


def _mlp(out=1):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, out))


def _regression(n=300):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 5, generator=g)
    return x, (x[:, 0] - 0.5 * x[:, 1]).unsqueeze(-1) + 0.1 * torch.randn(n, 1, generator=g)


def _centre(model, data, loss, **kw):
    d = random_directions(model, seed=0)
    return evaluate_points(model, d, [[0.0, 0.0]], data, CPU, loss=loss, progress=False, **kw)


@pytest.mark.parametrize("name, own", [
    ("mse", lambda o, t: F.mse_loss(o, t)),
    ("l1", lambda o, t: F.l1_loss(o, t)),
    ("huber", lambda o, t: F.huber_loss(o, t)),
])
def test_regression_losses_equal_the_users_loop(name, own):
    model, (x, y) = _mlp(), _regression()
    r = _centre(model, (x, y), name)
    with torch.no_grad():
        want = own(model(x), y).item()
    assert r.loss[0] == pytest.approx(want, rel=1e-6) and r.accuracy is None


def test_label_smoothing_and_ignore_index():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4))
    x = torch.randn(200, 5)
    y = torch.randint(0, 4, (200,))
    y[::7] = -1
    spec = LossSpec("cross_entropy", {"label_smoothing": 0.1, "ignore_index": -1})
    r = _centre(model, (x, y), spec)
    with torch.no_grad():
        want = F.cross_entropy(model(x), y, label_smoothing=0.1, ignore_index=-1).item()
        right = ((model(x).argmax(1) == y) & (y != -1)).sum().item() / (y != -1).sum().item()
    assert r.loss[0] == pytest.approx(want, rel=1e-6) and r.accuracy[0] == pytest.approx(right)


def test_token_cross_entropy_is_the_per_token_mean():
    torch.manual_seed(0)
    model = Tokens(vocab=11)
    x = torch.randint(0, 11, (40, 9))  # integer inputs stay integer (an Embedding needs them)
    y = torch.randint(0, 11, (40, 9))
    r = _centre(model, (x, y), "cross_entropy")
    with torch.no_grad():
        logits = model(x)
        want = F.cross_entropy(logits.reshape(-1, 11), y.reshape(-1)).item()
    assert r.loss[0] == pytest.approx(want, rel=1e-6)
    assert r.accuracy[0] == pytest.approx((logits.argmax(-1) == y).float().mean().item())


def test_bce_with_logits_and_a_users_loss_and_metric():
    model, (x, y) = _mlp(), _regression()
    target = (y > 0).float()
    r = _centre(model, (x, target), "bce_with_logits")
    with torch.no_grad():
        out = model(x)
    assert r.loss[0] == pytest.approx(F.binary_cross_entropy_with_logits(out, target).item(), rel=1e-6)
    assert r.accuracy[0] == pytest.approx(((out > 0) == (target > 0.5)).float().mean().item())
    spec = LossSpec("tests.user_losses:squared_error", metrics=("tests.user_losses:absolute_error",))
    r = _centre(model, (x, y), spec)
    assert r.loss[0] == pytest.approx(F.mse_loss(out, y).item(), rel=1e-6)
    assert r.metrics["absolute_error"][0] == pytest.approx(F.l1_loss(out, y).item(), rel=1e-6)


class OnTheFly(Dataset):
    """A Dataset that makes each sample when asked (as a data pipeline too large for memory)."""

    def __init__(self, n=257):
        self.x, self.y = _regression(n)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_tensors_dataset_dataloader_and_stream_give_the_same_surface():
    from pipeline.datamodel import Grid

    model = _mlp()
    x, y = _regression(257)
    d = random_directions(model, seed=0)
    grid = Grid(-1, 1, 5, -1, 1, 3)
    forms = {"tensors": (x, y), "dataset": TensorDataset(x, y), "loader": DataLoader(TensorDataset(x, y), batch_size=30),
             "on the fly": OnTheFly(), "list": [(x[i:i + 50], y[i:i + 50]) for i in range(0, 257, 50)],
             "streamed": as_eval_data(DataLoader(OnTheFly(), batch_size=40), memory=0)}
    surfaces = {k: evaluate(model, d, grid, v, loss="mse", config=CPU, progress=False) for k, v in forms.items()}
    ref = surfaces["tensors"].loss
    for name, s in surfaces.items():
        np.testing.assert_allclose(s.loss, ref, rtol=1e-6, err_msg=name)
    assert not as_eval_data(DataLoader(OnTheFly(), batch_size=40), memory=0).in_memory


def test_a_streamed_split_with_a_cap_counts_its_elements_first():
    model, (x, y) = _mlp(), _regression()
    d = random_directions(model, seed=0)
    stream = as_eval_data(DataLoader(TensorDataset(x, y), batch_size=32), memory=0)
    capped = evaluate_points(model, d, [[0.0, 0.0], [30.0, 30.0]], stream, EvalConfig(device="cpu", cap=5.0),
                             loss="mse", progress=False)
    full = evaluate_points(model, d, [[0.0, 0.0]], (x, y), CPU, loss="mse", progress=False)
    assert not capped.bounded[0] and capped.loss[0] == pytest.approx(full.loss[0], rel=1e-6)
    assert capped.bounded[1] and capped.samples[1] < len(x) and capped.loss[1] > 5.0


def test_forward_hook_for_dict_batches():
    from pipeline.engine.batches import BatchData

    model = _mlp()
    x, y = _regression(100)
    batches = [{"features": x[i:i + 25], "label": y[i:i + 25]} for i in range(0, 100, 25)]
    hooked = BatchData(batches, lambda m, b: (m(b["features"]), b["label"]), batches=batches, length=100)
    r = _centre(model, hooked, "mse")
    with torch.no_grad():
        assert r.loss[0] == pytest.approx(F.mse_loss(model(x), y).item(), rel=1e-6)
    with pytest.raises(ParameterError, match=r"batches must be \(inputs, targets\) pairs, or need a forward hook"):
        _centre(model, batches, "mse")


@pytest.mark.parametrize("data, fragment", [
    (DataLoader(TensorDataset(torch.randn(8, 5), torch.randn(8, 1)), shuffle=True), "the DataLoader shuffles"),
    (iter([(torch.randn(8, 5), torch.randn(8, 1))]), "one-shot iterator"),
    (3.0, r"\(inputs, targets\) tensors, a Dataset, a DataLoader"),
    ((torch.randn(8, 5), torch.randn(7, 1)), "same length"),
])
def test_data_that_cannot_be_evaluated(data, fragment):
    with pytest.raises(ParameterError, match=fragment):
        as_eval_data(data)


@pytest.mark.parametrize("loss, data, fragment", [
    ("mse", (torch.randn(8, 5), torch.randn(8, 3)), "do not fit targets of shape (3,) for mse"),
    ("cross_entropy", (torch.randn(8, 5), torch.randn(8)), "needs integer class indices"),
    ("tests.user_losses:mean_only", _regression(8), "must return per-sample"),
])
def test_outputs_or_losses_of_the_wrong_shape(loss, data, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        _centre(_mlp(), data, loss)


def test_bad_loss_specs_and_a_cap_on_a_users_loss():
    with pytest.raises(ParameterError, match="loss must be one of 'cross_entropy'"):
        LossSpec("hinge")
    with pytest.raises(ParameterError, match="'mse' takes no options; got the option 'label_smoothing'"):
        LossSpec("mse", {"label_smoothing": 0.1})
    with pytest.raises(ParameterError, match=r"label_smoothing must be a number in \[0, 1\]"):
        LossSpec("cross_entropy", {"label_smoothing": 2})
    with pytest.raises(ParameterError, match="cannot import module 'no_such_losses'"):
        _centre(_mlp(), _regression(8), "no_such_losses:f")
    model, data = _mlp(), _regression(8)
    with pytest.raises(ValueError, match="cap needs a loss that is never negative"):
        evaluate_points(model, random_directions(model, seed=0), [[0, 0]], data, EvalConfig(device="cpu", cap=1.0),
                        loss="tests.user_losses:squared_error", progress=False)
