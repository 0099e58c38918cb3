"""Model zoo (a registry by name) and user models given as ``"package.module:factory"``.

=====================  ===========  ==============================================================
name                   input        what
=====================  ===========  ==============================================================
digits-cnn             1x8x8        small CNN for scikit-learn's digits (the default)
lenet                  1x28x28      LeNet-5 style CNN for (Fashion-)MNIST
resnet20, resnet56     3x32x32      CIFAR ResNets of He et al. 2016 (option A shortcuts,
                                    0.27M / 0.85M parameters)
resnet20-noshort, ...  3x32x32      the same without skip connections (Li et al. 2018)
vgg9                   3x32x32      VGG-9 with BatchNorm (7 conv + 2 fc), as in Li et al. 2018
                                    (any input of 16x16 or more, e.g. 1x28x28)
resnet50, vgg11        3x32x32      torchvision's models adapted to 32x32 inputs and 10 classes
=====================  ===========  ==============================================================

``build_model(name, num_classes=10, in_channels=None)`` returns an ``nn.Module`` in train mode.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ParameterError, param

__all__ = ["MODELS", "build_model", "model_names", "count_parameters"]


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions and two linear layers for 8x8 digits (about 8k parameters)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, 8, 8)
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 16, 4, 4)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class LeNet(nn.Module):
    """LeNet-5 style network for 28x28 inputs."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, 28, 28)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 6, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 16, 5, 5)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


class BasicBlock(nn.Module):
    """CIFAR ResNet block; option A shortcut (strided identity, zero-padded channels)."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut
        self.pad = planes - in_planes
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.shortcut:
            s = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
            if self.pad:
                s = F.pad(s, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
            out = out + s
        return F.relu(out)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs (He et al. 2016, section 4.2)."""

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3, shortcut: bool = True):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2; got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if b == 0 else 1, shortcut))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, 32, 32)
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))  # (B, 64, 8, 8)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _vgg_features(cfg: list, in_channels: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(in_channels, v, 3, padding=1)]
            layers += [nn.BatchNorm2d(v), nn.ReLU(inplace=True)] if batch_norm else [nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers)


class VGG9(nn.Module):
    """VGG-9: 7 conv layers with BatchNorm, then 2 linear layers.

    The last pooling is a max over what is left (2x2 for 32x32 inputs, the same as the 2x2 max
    pool of the original; 1x1 for 28x28), so any input of 16x16 or more fits."""

    CFG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512]

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.features = _vgg_features(self.CFG, in_channels, batch_norm=True)
        self.features.append(nn.AdaptiveMaxPool2d(1))
        self.classifier = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))  # features: (B, 512, 1, 1)


def _torchvision_resnet50(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    from torchvision.models import resnet50

    model = resnet50(weights=None, num_classes=num_classes)
    # 32x32 inputs: a 3x3 stride-1 stem and no max-pool, so the last stage still sees 4x4 maps.
    model.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model


def _torchvision_vgg11(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    from torchvision.models import vgg11

    model = vgg11(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.features[0] = nn.Conv2d(in_channels, 64, 3, padding=1)
    # 32x32 inputs leave a 1x1x512 map: drop the 7x7 pooling and the 25088-wide classifier.
    model.avgpool = nn.Flatten()
    model.classifier = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(0.5),
                                     nn.Linear(512, num_classes))
    return model


@dataclass(frozen=True)
class ModelSpec:
    factory: Callable[..., nn.Module]
    input_shape: tuple[int, int, int]  # (C, H, W) the model is built for
    description: str


MODELS: dict[str, ModelSpec] = {
    "digits-cnn": ModelSpec(DigitsCNN, (1, 8, 8), "small CNN for 8x8 digits"),
    "lenet": ModelSpec(LeNet, (1, 28, 28), "LeNet-5 style CNN for 28x28 images"),
    "resnet20": ModelSpec(lambda **k: CifarResNet(20, **k), (3, 32, 32), "CIFAR ResNet-20"),
    "resnet56": ModelSpec(lambda **k: CifarResNet(56, **k), (3, 32, 32), "CIFAR ResNet-56"),
    "resnet20-noshort": ModelSpec(lambda **k: CifarResNet(20, shortcut=False, **k), (3, 32, 32),
                                  "CIFAR ResNet-20 without skip connections"),
    "resnet56-noshort": ModelSpec(lambda **k: CifarResNet(56, shortcut=False, **k), (3, 32, 32),
                                  "CIFAR ResNet-56 without skip connections"),
    "vgg9": ModelSpec(VGG9, (3, 32, 32), "VGG-9 with BatchNorm"),
    "resnet50": ModelSpec(_torchvision_resnet50, (3, 32, 32), "torchvision ResNet-50 adapted to 32x32"),
    "vgg11": ModelSpec(_torchvision_vgg11, (3, 32, 32), "torchvision VGG-11 adapted to 32x32"),
}


def model_names() -> list[str]:
    return list(MODELS)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_model(name: str, num_classes: int | None = 10, in_channels: int | None = None, *,
                search: Sequence[str] = ()) -> nn.Module:
    """Build a model by registry name or ``"package.module:factory"``.

    A user factory (a class or a function; its module imported from ``search`` first) is called
    with ``num_classes`` (and ``in_channels``) when its signature accepts them and they are
    known, and must return an ``nn.Module``.
    """
    from .usercode import is_spec, load_callable

    if name in MODELS:
        spec = MODELS[name]
        return spec.factory(num_classes=num_classes or 10, in_channels=in_channels or spec.input_shape[0])
    if not is_spec(name):
        raise ParameterError(f"{param('model')} must be one of {', '.join(map(repr, MODELS))} or "
                             f"'package.module:factory'; got {name!r}")
    factory = load_callable(name, search=search, name="model")
    kwargs = {"num_classes": num_classes, "in_channels": in_channels}
    try:
        params = inspect.signature(factory).parameters
        accepts_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        kwargs = {k: v for k, v in kwargs.items() if v is not None and (accepts_all or k in params)}
    except (TypeError, ValueError):
        kwargs = {}
    try:
        model = factory(**kwargs)
    except Exception as exc:  # the user's code: its failure is reported in one line, with its own words
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ParameterError(f"{param('model')} {name!r}: the factory raised {type(exc).__name__}"
                             + (f": {first}" if first else "")) from None
    if not isinstance(model, nn.Module):
        raise ParameterError(f"{param('model')} {name!r}: the factory returned {type(model).__name__}, not a "
                             f"torch.nn.Module")
    return model
