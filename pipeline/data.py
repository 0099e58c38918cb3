"""Datasets loaded once into in-memory tensors with a fixed train/test split.

Names (``load_dataset(name, ...)``):

- ``digits``: scikit-learn's bundled 8x8 digits (1797 images, no download), the default.
  Split 80/20, stratified, with a fixed seed so every run sees the same split.
- ``fashion-mnist``: the idx files (``*-idx3-ubyte`` / ``*-idx1-ubyte``, plain or ``.gz``) under
  ``root`` (default ``/usr/share/datasets/fashion-mnist``, Debian's ``dataset-fashion-mnist``),
  read with torchvision's idx readers.
- ``cifar10``: torchvision's CIFAR10 from a local ``root`` (default ``~/.cache/lossvista/cifar10``),
  standard per-channel normalization; ``download=True`` only on a connected machine.
- ``synthetic`` or ``synthetic:CxHxW[:N[:K]]``: seeded class prototypes plus noise, shape
  ``(C, H, W)`` (default 3x32x32), ``N`` training samples (default 1024, plus N/4 test), ``K``
  classes (default 10). Learnable, so training on it means something.

Inputs are float32 ``(N, C, H, W)``; targets int64 ``(N,)``.
"""
from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DataNotFoundError, param

log = logging.getLogger(__name__)

__all__ = ["Split", "Dataset", "load_dataset", "DATASETS", "FASHION_MNIST_ROOT", "CIFAR10_ROOT"]

DATASETS = ("digits", "fashion-mnist", "cifar10", "synthetic")
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
CIFAR10_ROOT = os.path.join("~", ".cache", "lossvista", "cifar10")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


@dataclass
class Split:
    """One split: ``inputs`` (N, C, H, W) float32 and ``targets`` (N,) int64."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, n: int | None, seed: int = 0) -> "Split":
        """A fixed, seeded random subset of ``n`` samples (all of them when ``n`` is None or >= N)."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ValueError(f"max_samples must be a positive integer; got {n!r}")
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n].sort().values
        return Split(self.inputs[idx], self.targets[idx])

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.inputs.to(device), self.targets.to(device))


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    num_classes: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.inputs.shape[1:])

    def split(self, which: str) -> Split:
        if which not in ("train", "test"):
            raise ValueError(f"split must be one of 'train', 'test'; got {which!r}")
        return self.train if which == "train" else self.test


def load_dataset(name: str = "digits", *, root: str | os.PathLike | None = None, download: bool = False,
                 seed: int = 0) -> Dataset:
    """Load a dataset by name into memory. See the module docstring for names and defaults.

    Raises ``ValueError`` for an unknown name and ``DataNotFoundError`` (one line, says
    where the files should be) when a dataset's files are missing.
    """
    base = name.split(":", 1)[0]
    if base == "digits":
        return _digits()
    if base == "fashion-mnist":
        return _fashion_mnist(Path(root or FASHION_MNIST_ROOT).expanduser())
    if base == "cifar10":
        return _cifar10(Path(root or CIFAR10_ROOT).expanduser(), download)
    if base == "synthetic":
        return _synthetic(name, seed)
    raise ValueError(f"dataset must be one of {', '.join(map(repr, DATASETS))}; got {name!r}")


def _digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = bunch.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    mean, std = float(xtr.mean()), float(xtr.std())
    norm = lambda a: torch.from_numpy((a - mean) / std)  # noqa: E731
    return Dataset("digits", Split(norm(xtr), torch.from_numpy(ytr)), Split(norm(xte), torch.from_numpy(yte)), 10,
                   {"source": "sklearn.datasets.load_digits", "split": "80/20 stratified, random_state=0",
                    "normalization": [mean, std]})


def _find_idx(root: Path, stem: str) -> Path | None:
    for sub in ("", "raw", "FashionMNIST/raw"):
        for suffix in ("", ".gz"):
            p = root / sub / f"{stem}{suffix}"
            if p.is_file():
                return p
    return None


def _read_idx(path: Path, reader) -> torch.Tensor:
    if path.suffix != ".gz":
        return reader(str(path))
    # torchvision's idx readers take plain files: decompress into a temporary directory first.
    with tempfile.TemporaryDirectory(prefix="lossvista-idx-") as tmp:
        plain = Path(tmp) / path.stem
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return reader(str(plain))


def _fashion_mnist(root: Path) -> Dataset:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    stems = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
             "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}
    paths = {k: _find_idx(root, s) for k, s in stems.items()}
    missing = [stems[k] for k, p in paths.items() if p is None]
    if missing:
        raise DataNotFoundError(
            f"Fashion-MNIST idx files not found under {root} (missing {', '.join(missing)}); "
            f"install Debian's dataset-fashion-mnist or pass {param('data_root')} DIR holding the idx files")
    try:
        tensors = {k: _read_idx(p, read_image_file if k.endswith("x") else read_label_file) for k, p in paths.items()}
    except (OSError, AssertionError, TypeError, ValueError, RuntimeError, EOFError) as exc:
        raise DataNotFoundError(f"Fashion-MNIST files under {root} cannot be read ({exc})") from None

    def norm(x: torch.Tensor) -> torch.Tensor:
        return ((x.float() / 255.0 - FASHION_MEAN) / FASHION_STD)[:, None]  # (N, 1, 28, 28)

    return Dataset("fashion-mnist", Split(norm(tensors["train_x"]), tensors["train_y"]),
                   Split(norm(tensors["test_x"]), tensors["test_y"]), 10,
                   {"source": str(root), "normalization": [FASHION_MEAN, FASHION_STD]})


def _cifar10(root: Path, download: bool) -> Dataset:
    from torchvision.datasets import CIFAR10

    try:
        train = CIFAR10(str(root), train=True, download=download)
        test = CIFAR10(str(root), train=False, download=download)
    except RuntimeError as exc:
        if "not found" in str(exc).lower() or "corrupted" in str(exc).lower():
            raise DataNotFoundError(
                f"CIFAR-10 not found under {root}: extract cifar-10-python.tar.gz there "
                f"(so that {root / 'cifar-10-batches-py'} exists) and pass {param('data_root')} {root}, "
                f"or pass {param('download')} on a machine with internet access") from None
        raise
    except OSError as exc:  # download attempted without network
        raise DataNotFoundError(f"CIFAR-10 download to {root} failed ({exc}); copy the data there instead") from None
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)

    def conv(ds) -> Split:
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, 32, 32)
        return Split(((x - mean) / std).contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64))

    return Dataset("cifar10", conv(train), conv(test), 10,
                   {"source": str(root), "normalization": [CIFAR10_MEAN, CIFAR10_STD]})


def _parse_synthetic(name: str) -> tuple[tuple[int, int, int], int, int]:
    parts = name.split(":")
    try:
        shape = tuple(int(s) for s in parts[1].lower().split("x")) if len(parts) > 1 else (3, 32, 32)
        n = int(parts[2]) if len(parts) > 2 else 1024
        k = int(parts[3]) if len(parts) > 3 else 10
        if len(shape) != 3 or min(shape) < 1 or n < 1 or k < 2 or len(parts) > 4:
            raise ValueError
    except ValueError:
        raise ValueError(f"synthetic dataset must look like 'synthetic[:CxHxW[:N[:K]]]' "
                         f"(e.g. 'synthetic:3x32x32:1024:10'); got {name!r}") from None
    return shape, n, k  # type: ignore[return-value]


def _synthetic(name: str, seed: int) -> Dataset:
    shape, n, k = _parse_synthetic(name)
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randn((k, *shape), generator=g)

    def make(count: int) -> Split:
        y = torch.randint(0, k, (count,), generator=g)
        x = prototypes[y] + 1.5 * torch.randn((count, *shape), generator=g)
        return Split(x.float(), y)

    train, test = make(n), make(max(1, n // 4))
    return Dataset(name if ":" in name else "synthetic", train, test, k,
                   {"source": "synthetic", "shape": list(shape), "seed": seed})
