import pytest
import torch
from torch import nn

from pipeline.models import MODELS, build_model, count_parameters


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_shape(name):
    spec = MODELS[name]
    model = build_model(name, num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *spec.input_shape))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name, expected", [("resnet20", 0.27e6), ("resnet56", 0.85e6),
                                            ("resnet20-noshort", 0.27e6), ("resnet56-noshort", 0.85e6)])
def test_cifar_resnet_parameter_counts(name, expected):
    # He et al. 2016, table 6: 0.27M and 0.85M parameters.
    assert count_parameters(build_model(name)) == pytest.approx(expected, rel=0.01)


def test_noshort_really_has_no_skip():
    a, b = build_model("resnet20"), build_model("resnet20-noshort")
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(a.eval()(x), b.eval()(x))


def test_num_classes_and_channels():
    assert build_model("lenet", num_classes=3)(torch.randn(1, 1, 28, 28)).shape == (1, 3)
    assert build_model("resnet20", in_channels=1)(torch.randn(1, 1, 32, 32)).shape == (1, 10)


def test_user_factory():
    m = build_model("torch.nn:Identity")
    assert isinstance(m, nn.Identity)
    m = build_model("tests.user_models:tiny_mlp", num_classes=4)
    assert m(torch.randn(3, 1, 8, 8)).shape == (3, 4)


@pytest.mark.parametrize("name, fragment", [
    ("nosuchnet", "model must be one of"),
    ("no_such_module_xyz:f", "cannot import module"),
    ("torch.nn:NoSuchFactory", "has no callable"),
])
def test_bad_model_names(name, fragment):
    with pytest.raises(ValueError, match=fragment):
        build_model(name)


def test_factory_returning_non_module():
    with pytest.raises(ValueError, match="not a torch.nn.Module"):
        build_model("tests.user_models:not_a_model")
