"""Character windows of a real text: the source of Python's own ``textwrap`` module (about 20k characters)."""
import inspect
import textwrap

import torch
from torch.utils.data import TensorDataset

WINDOW = 64


def text():
    return inspect.getsource(textwrap)


def vocabulary():
    return sorted(set(text()))


def splits():
    """(train, test) TensorDatasets of (inputs, targets): 64 characters and the 64 that follow each one."""
    chars = text()
    index = {c: i for i, c in enumerate(vocabulary())}
    ids = torch.tensor([index[c] for c in chars])
    starts = torch.arange(0, len(ids) - WINDOW - 1, WINDOW // 2)
    x = torch.stack([ids[s:s + WINDOW] for s in starts])  # (N, 64) int64 tokens
    y = torch.stack([ids[s + 1:s + WINDOW + 1] for s in starts])
    cut = int(0.9 * len(x))
    return TensorDataset(x[:cut], y[:cut]), TensorDataset(x[cut:], y[cut:])
