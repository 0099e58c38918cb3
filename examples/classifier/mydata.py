"""scikit-learn's 8x8 digits as flat 64-pixel vectors, served by DataLoaders (as a training script has them)."""
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset


def datasets():
    """(train, test) TensorDatasets: 1437 and 360 images, pixels scaled to [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return TensorDataset(x[order[:1437]], y[order[:1437]]), TensorDataset(x[order[1437:]], y[order[1437:]])


def loaders():
    """What lossvista reads: DataLoaders in a fixed order (no shuffling)."""
    train, test = datasets()
    return DataLoader(train, batch_size=64), DataLoader(test, batch_size=64)
