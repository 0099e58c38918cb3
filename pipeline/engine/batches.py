"""The data a surface is evaluated on, as the user has it: tensors, a Dataset, a DataLoader, or
any re-iterable of batches.

Every form becomes one of two things (:func:`as_eval_data`):

- :class:`TensorData`: ``inputs`` ``(N, ...)`` and ``targets`` ``(N, ...)`` in memory. The engine
  moves it to the device once and cuts its own batches (:mod:`.tuning`). Floating inputs take
  the model's dtype; integer inputs (tokens) stay integer. A Dataset or DataLoader of
  ``(inputs, targets)`` pairs that fits in ``memory`` bytes is gathered into this form, so it
  evaluates exactly as tensors do.
- :class:`BatchData`: batches in the order the source gives them, each through a forward
  (``forward(model, batch) -> (outputs, targets)``; the default takes ``(inputs, targets)``
  pairs). In memory (a list kept on the device) when it fits, else *streamed*: the source is
  iterated again for every pass, in its fixed order, and nothing of it is kept.

A shuffling DataLoader, a one-shot iterator and a batch the forward cannot read are refused in
one line: a surface needs the same samples in the same order at every point.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable

import torch

from ..checkpoints import tensor_digest
from ..errors import ParameterError, param

__all__ = ["TensorData", "BatchData", "as_eval_data", "default_forward", "DEFAULT_MEMORY", "nbytes"]

DEFAULT_MEMORY = 512 << 20  # data up to this many bytes is kept in memory (on the device)
STREAM_BATCH = 256  # samples per batch when a Dataset is streamed


def nbytes(obj: Any) -> int:
    """Bytes of the tensors in a (nested) batch."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, Mapping):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return sum(nbytes(v) for v in obj)
    return 0


def _to(obj: Any, device: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(v, device) for v in obj)
    return obj


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for k in sorted(obj):
            yield from _tensors(obj[k])
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _tensors(v)


def default_forward(model: Any, batch: Any) -> tuple[Any, Any]:
    """``(model(inputs), targets)`` of an ``(inputs, targets)`` batch."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return model(batch[0]), batch[1]
    kind = f"a dict with keys {sorted(batch)}" if isinstance(batch, Mapping) else type(batch).__name__
    raise ParameterError(f"batches must be (inputs, targets) pairs, or need a {param('forward')} hook "
                         f"'module:function(model, batch) -> (outputs, targets)'; got {kind}")


def _checked_hook(forward: Callable) -> Callable:
    """The user's forward hook, its result checked to be an ``(outputs, targets)`` pair."""
    if getattr(forward, "_lossvista_checked", False):
        return forward

    def hook(model: Any, batch: Any) -> tuple[Any, Any]:
        result = forward(model, batch)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            got = f"a {type(result).__name__} of {len(result)}" if isinstance(result, (tuple, list)) else \
                type(result).__name__
            raise ParameterError(f"the {param('forward')} hook must return an (outputs, targets) pair; got {got}")
        return result[0], result[1]

    hook._lossvista_checked = True  # type: ignore[attr-defined]
    return hook


def _pair(sample: Any) -> bool:
    return (isinstance(sample, (tuple, list)) and len(sample) == 2
            and all(isinstance(t, torch.Tensor) for t in sample))


class TensorData:
    """``inputs`` ``(N, ...)`` and ``targets`` ``(N, ...)`` in memory (any dtypes)."""

    in_memory = True

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, name: str = "data"):
        if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
            raise ParameterError(f"{param(name)} must hold tensors; got {type(inputs).__name__} and "
                                 f"{type(targets).__name__}")
        if inputs.dim() < 1 or targets.dim() < 1 or len(inputs) != len(targets):
            raise ParameterError(f"{param(name)} inputs and targets must have the same length; got "
                                 f"{tuple(inputs.shape)} and {tuple(targets.shape)}")
        if len(targets) == 0:
            raise ParameterError(f"{param(name)} holds no samples")
        self.inputs, self.targets, self.name = inputs, targets, name

    @property
    def n(self) -> int:
        return len(self.targets)

    def subset(self, n: int | None, seed: int = 0) -> "TensorData":
        """A fixed, seeded random subset of ``n`` samples (all of them when ``n`` is None or >= N)."""
        if n is None or n >= self.n:
            return self
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(self.n, generator=g)[:n].sort().values
        return TensorData(self.inputs[idx], self.targets[idx], self.name)

    def to(self, device: Any, dtype: torch.dtype | None = None) -> "TensorData":
        """On ``device``; floating inputs in ``dtype`` (integer inputs, e.g. tokens, keep theirs)."""
        inputs = self.inputs.to(device, dtype) if (dtype is not None and self.inputs.is_floating_point()) \
            else self.inputs.to(device)
        return TensorData(inputs, self.targets.to(device), self.name)

    def digest(self) -> str:
        return tensor_digest(self.inputs, self.targets)

    def target_batches(self) -> Iterator[torch.Tensor]:
        yield self.targets


class BatchData:
    """Batches through a forward, kept in memory (``batches`` a list) or streamed from ``source``."""

    def __init__(self, source: Any, forward: Callable | None = None, *, batches: list | None = None,
                 length: int | None = None, dataset: Any = None, name: str = "data"):
        self.source, self.batches, self.length, self.dataset = source, batches, length, dataset
        self.forward = _checked_hook(forward) if forward is not None else default_forward
        self.hooked = forward is not None
        self.name = name
        self._digest: str | None = None

    @property
    def in_memory(self) -> bool:
        return self.batches is not None

    @property
    def n(self) -> int | None:
        return self.length

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches) if self.batches is not None else iter(self.source)

    def subset(self, n: int | None, seed: int = 0) -> "BatchData":
        if n is None or (self.length is not None and n >= self.length):
            return self
        if self.dataset is None:
            raise ParameterError(f"{param('max_samples')} needs {param(self.name)} as tensors or a Dataset (a subset "
                                 f"of a DataLoader's or an iterable's batches is not defined)")
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self.dataset), generator=g)[:n].sort().values.tolist()
        return as_eval_data(torch.utils.data.Subset(self.dataset, idx), self.name,
                            forward=self.forward if self.hooked else None)

    def to(self, device: Any, dtype: torch.dtype | None = None) -> "BatchData":
        if self.batches is None:
            return self  # streamed: each batch is moved when it is read
        return BatchData(self.source, self.forward if self.hooked else None, batches=[_to(b, device) for b in
                         self.batches], length=self.length, dataset=self.dataset, name=self.name)

    def digest(self) -> str:
        """Of every batch in memory; of the source's kind, length and first batch when streamed
        (reading a stream through once more only to fingerprint it would cost a full pass)."""
        if self._digest is None:
            if self.batches is not None:
                self._digest = tensor_digest(*(t for b in self.batches for t in _tensors(b)))
            else:
                first = next(iter(self.source), None)
                self._digest = tensor_digest(torch.tensor(self.length if self.length is not None else -1),
                                             *_tensors(first)) + f"/{type(self.source).__name__}"
        return self._digest

    def target_batches(self) -> Iterator[torch.Tensor] | None:
        """The targets of each batch without a forward (None when a forward hook makes them)."""
        if self.hooked:
            return None
        return (default_forward(_Identity(), b)[1] for b in self)


class _Identity:
    def __call__(self, x: Any) -> Any:
        return x


def _check_loader(loader: Any, name: str) -> None:
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, torch.utils.data.RandomSampler):
        raise ParameterError(f"{param(name)}: the DataLoader shuffles (shuffle=True); a surface needs the same samples "
                             f"in the same order at every point: pass shuffle=False")


def as_eval_data(data: Any, name: str = "data", *, forward: Callable | None = None,
                 memory: int = DEFAULT_MEMORY) -> TensorData | BatchData:
    """The evaluation form of ``data`` (module docstring). ``memory``: bytes of data kept in
    memory at most; larger data is streamed."""
    from ..data import Split

    if isinstance(data, (TensorData, BatchData)):
        return data
    if isinstance(data, Split):
        return TensorData(data.inputs, data.targets, name)
    if _pair(data) and forward is None:
        return TensorData(data[0], data[1], name)
    if isinstance(data, torch.utils.data.DataLoader):
        _check_loader(data, name)
        return _gather(data, name, forward, memory, length=_len(data.dataset))
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        length = _len(data)
        if length == 0:
            raise ParameterError(f"{param(name)} holds no samples")
        sample = data[0]
        fits = length is not None and nbytes(sample) * length <= memory
        if fits and _pair(sample) and forward is None:
            inputs, targets = torch.utils.data.default_collate([data[i] for i in range(length)])
            return TensorData(inputs, targets, name)
        loader = torch.utils.data.DataLoader(data, batch_size=STREAM_BATCH, shuffle=False)
        if fits:
            return BatchData(loader, forward, batches=list(loader), length=length, dataset=data, name=name)
        return BatchData(loader, forward, length=length, dataset=data, name=name)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, torch.Tensor)):
        if iter(data) is data:
            raise ParameterError(f"{param(name)} is a one-shot iterator ({type(data).__name__}); a surface reads the "
                                 f"data once per point: pass a list, a Dataset, a DataLoader or a re-iterable object")
        return _gather(data, name, forward, memory, length=None)
    raise ParameterError(f"{param(name)} must be (inputs, targets) tensors, a Dataset, a DataLoader or a re-iterable "
                         f"of batches; got {type(data).__name__}")


def _len(obj: Any) -> int | None:
    try:
        return len(obj)
    except TypeError:
        return None


def _gather(source: Any, name: str, forward: Callable | None, memory: int, length: int | None
            ) -> TensorData | BatchData:
    """Read ``source`` once: tensors (pairs) or a list of batches when it fits in ``memory``,
    else a stream of it."""
    kept: list = []
    size = 0
    it = iter(source)
    for batch in it:
        kept.append(batch)
        size += nbytes(batch)
        if size > memory or (len(kept) == 1 and _too_large(batch, length, memory)):
            return BatchData(source, forward, length=length, name=name)
    if not kept:
        raise ParameterError(f"{param(name)} holds no batches")
    if forward is None and all(_pair(b) for b in kept) and _same_trailing(kept):
        return TensorData(torch.cat([b[0] for b in kept]), torch.cat([b[1] for b in kept]), name)
    count = length if length is not None else _count(kept)
    return BatchData(source, forward, batches=kept, length=count, name=name)


def _too_large(first: Any, length: int | None, memory: int) -> bool:
    """Whether ``length`` samples of the size of the first batch's exceed ``memory`` (known from
    its first batch, so that a large source is streamed without reading ``memory`` bytes first)."""
    t = next(_tensors(first), None)
    if length is None or t is None or t.dim() == 0 or len(t) == 0:
        return False
    return nbytes(first) / len(t) * length > memory


def _same_trailing(batches: list) -> bool:
    shapes = {(tuple(b[0].shape[1:]), tuple(b[1].shape[1:]), b[0].dtype, b[1].dtype) for b in batches}
    return len(shapes) == 1


def _count(batches: list) -> int | None:
    firsts = [next(_tensors(b), None) for b in batches]
    return sum(len(t) for t in firsts) if all(t is not None and t.dim() >= 1 for t in firsts) else None

