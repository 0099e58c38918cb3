"""Checks of the user's data before long work: values that would make every point NaN."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .batches import TensorData, as_eval_data
from .points import probe

__all__ = ["check_finite_data"]


def check_finite_data(model: nn.Module, data: Any, loss: Any = None, name: str = "data") -> None:
    """Refuse data in memory whose NaN or inf values make the loss non-finite at ``model``'s weights.

    Floating inputs and targets are scanned; where a sample holds a non-finite value, the loss of
    that sample alone is computed (a model may handle missing values itself): when it is not
    finite, every point of a landscape would be NaN, and a one-line error says where instead.
    Streamed data (too large for memory) is not scanned.
    """
    import math

    from ..errors import ParameterError

    data = as_eval_data(data, name)
    if not isinstance(data, TensorData):
        return
    bad = torch.zeros(data.n, dtype=torch.bool)
    for t in (data.inputs, data.targets):
        if t.is_floating_point() or t.is_complex():
            bad |= ~torch.isfinite(t.reshape(data.n, -1)).all(1).cpu()
    if not bad.any():
        return
    first = int(bad.nonzero()[0])
    try:
        value = probe(model, TensorData(data.inputs[first:first + 1], data.targets[first:first + 1], name), loss)[0]
    except ValueError:  # e.g. that sample's target is the ignored index: the rest decides
        return
    if not math.isfinite(value):
        raise ParameterError(f"{name} holds NaN or inf in {int(bad.sum())} of {data.n} samples (the first is "
                             f"sample {first}), and the loss is {value} there: every point would be NaN; clean "
                             f"the data")
