import gzip
import shutil

import numpy as np
import pytest
import torch

from pipeline.data import FASHION_MNIST_ROOT, load_dataset
from pipeline.errors import DataNotFoundError
from .conftest import as_cli

from pathlib import Path

HAVE_FASHION = Path(FASHION_MNIST_ROOT, "train-images-idx3-ubyte.gz").is_file()


def test_digits_split_and_normalization():
    d = load_dataset("digits")
    assert d.train.inputs.shape == (1437, 1, 8, 8) and d.test.inputs.shape == (360, 1, 8, 8)
    assert d.train.inputs.dtype == torch.float32 and d.train.targets.dtype == torch.int64
    assert abs(d.train.inputs.mean().item()) < 1e-4 and d.train.inputs.std().item() == pytest.approx(1, abs=1e-3)
    assert set(d.test.targets.tolist()) == set(range(10))
    # the split is fixed: loading twice gives the same tensors
    assert torch.equal(load_dataset("digits").test.inputs, d.test.inputs)


def test_subset_is_seeded_and_fixed():
    d = load_dataset("digits").train
    a, b, c = d.subset(100, seed=1), d.subset(100, seed=1), d.subset(100, seed=2)
    assert len(a) == 100 and torch.equal(a.inputs, b.inputs) and not torch.equal(a.inputs, c.inputs)
    assert d.subset(None) is d and d.subset(10_000) is d
    with pytest.raises(ValueError, match="max_samples"):
        d.subset(0)


@pytest.mark.parametrize("spec, shape, n, k", [("synthetic", (3, 32, 32), 1024, 10),
                                                ("synthetic:1x8x8:64:3", (1, 8, 8), 64, 3)])
def test_synthetic(spec, shape, n, k):
    d = load_dataset(spec, seed=5)
    assert d.input_shape == shape and len(d.train) == n and d.num_classes == k
    assert torch.equal(load_dataset(spec, seed=5).train.inputs, d.train.inputs)
    assert not torch.equal(load_dataset(spec, seed=6).train.inputs, d.train.inputs)
    assert int(d.train.targets.max()) < k


@pytest.mark.parametrize("spec", ["synthetic:3x32", "synthetic:axbxc", "synthetic:1x8x8:0", "synthetic:1x8x8:5:1"])
def test_synthetic_bad_spec(spec):
    with pytest.raises(ValueError, match="synthetic dataset must look like"):
        load_dataset(spec)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset must be one of 'digits'.*got 'mnist'"):
        load_dataset("mnist")


def test_missing_roots(tmp_path):
    with pytest.raises(DataNotFoundError, match="Fashion-MNIST idx files not found under"):
        load_dataset("fashion-mnist", root=tmp_path)
    with pytest.raises(DataNotFoundError, match="CIFAR-10 not found under .*pass download") as e:
        load_dataset("cifar10", root=tmp_path)
    assert "pass --data-root" in as_cli(e.value) and "pass --download" in as_cli(e.value)


@pytest.mark.skipif(not HAVE_FASHION, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_real_files():
    d = load_dataset("fashion-mnist")
    assert d.train.inputs.shape == (60000, 1, 28, 28) and d.test.inputs.shape == (10000, 1, 28, 28)
    assert np.bincount(d.test.targets.numpy()).tolist() == [1000] * 10


@pytest.mark.skipif(not HAVE_FASHION, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_plain_idx_in_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in Path(FASHION_MNIST_ROOT).glob("t*-ubyte.gz"):
        with gzip.open(f) as src, open(raw / f.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    d = load_dataset("fashion-mnist", root=tmp_path)
    assert torch.equal(d.test.targets, load_dataset("fashion-mnist").test.targets)


def test_fashion_mnist_corrupt_file(tmp_path):
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataNotFoundError, match="cannot be read"):
        load_dataset("fashion-mnist", root=tmp_path)
