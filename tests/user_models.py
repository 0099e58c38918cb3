"""Factories used as user models ('tests.user_models:tiny_mlp') in the tests."""
from torch import nn


def tiny_mlp(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, num_classes))


def not_a_model():
    return 42
