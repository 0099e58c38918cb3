"""What the value of a point is: the loss (by name, or the user's function), accuracy where it
means something, and the user's metrics.

``LossSpec`` says it (serialisable: it goes into run.json, the surface's metadata and the
fingerprint of a computation); ``Objective`` computes it on the engine's forwards. The value of
a point is the mean over every element of the whole split: over samples for a classifier or a
regression, over tokens for a language model (the per-token mean, as users report it; with
``ignore_index``, over the tokens that count).

==================  ===============================================  ==========================
name                outputs vs targets                               accuracy
==================  ===============================================  ==========================
``cross_entropy``   logits, classes in dimension 1 (``(N, C, d..)``,  arg-max == target
                    torch's layout) or last (``(N, d.., C)``);
                    targets class indices; ``label_smoothing``,
                    ``ignore_index``
``nll``             log-probabilities, same layouts; ``ignore_index``  arg-max == target
``mse``, ``l1``     same shape (a trailing 1 of the outputs is        --
                    dropped: ``(N, 1)`` against ``(N,)``)
``huber``           same shape; ``delta`` (default 1.0)               --
``bce_with_logits`` same shape; targets in [0, 1]                      (logit > 0) == (target > 0.5)
``module:function`` ``function(outputs, targets)`` returns the        --
                    per-sample ``(N,)`` or per-element ``(N, ...)``
                    losses
==================  ===============================================  ==========================

The named losses are non-negative, so an early exit above a cap is exact for them; a user's
function may return anything, so a cap is refused with it. User metrics
(``metrics=["module:function", ...]``) return per-sample or per-element values like a user loss
and are averaged the same way; each becomes a surface array named after the function.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import ParameterError, param
from .usercode import is_spec

__all__ = ["LossSpec", "Objective", "LOSSES", "BatchSums", "Prepared"]

# name -> {option: (type, low, high)}, the options each named loss takes
LOSSES: dict[str, dict[str, tuple[type, float, float]]] = {
    "cross_entropy": {"label_smoothing": (float, 0.0, 1.0), "ignore_index": (int, -math.inf, math.inf)},
    "nll": {"ignore_index": (int, -math.inf, math.inf)},
    "mse": {},
    "l1": {},
    "huber": {"delta": (float, 0.0, math.inf)},
    "bce_with_logits": {},
}
CLASS_LOSSES = ("cross_entropy", "nll")
METRIC_RESERVED = frozenset("loss accuracy bounded samples valid info hessian_max hessian_min eig_ratio "
                            "hessian_error".split())  # a surface's own arrays (and every test_ name: the test split's)


def metric_name(spec: str) -> str:  # the array a user metric "module:function" is stored as
    return spec.rsplit(":", 1)[1].rsplit(".", 1)[-1]


@dataclass(frozen=True)
class LossSpec:
    """A loss and its options, and the user's metrics (JSON-friendly).

    ``name``: a key of :data:`LOSSES` or ``"module:function"``; ``options``: the named loss's
    options (e.g. ``{"label_smoothing": 0.1}``); ``metrics``: ``"module:function"`` specs;
    ``search``: folders to import the user's modules from (the run's own folder).
    """

    name: str = "cross_entropy"
    options: Mapping[str, Any] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    search: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not (self.name in LOSSES or is_spec(self.name)):
            raise ParameterError(f"{param('loss')} must be one of {', '.join(map(repr, LOSSES))} or "
                                 f"'module:function'; got {self.name!r}")
        options = dict(self.options or {})
        allowed = LOSSES.get(self.name, {})
        for key, value in options.items():
            if key not in allowed:
                what = f"takes {', '.join(map(repr, allowed))}" if allowed else "takes no options"
                raise ParameterError(f"{param('loss')} {self.name!r} {what}; got the option {key!r}")
            kind, low, high = allowed[key]
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value <= high
            if kind is int:
                ok = ok and float(value).is_integer()
            if not ok:
                raise ParameterError(f"{param('loss')} option {key} must be {'an integer' if kind is int else 'a number'}"
                                     f" in [{low:g}, {high:g}]; got {value!r}")
            options[key] = kind(value)
        object.__setattr__(self, "options", options)
        metrics = tuple(self.metrics or ())
        bad = [m for m in metrics if not is_spec(m)]
        if bad:
            raise ParameterError(f"{param('metrics')} must be 'module:function' specs; got {bad[0]!r}")
        seen: dict[str, str] = {}
        for spec, name in ((m, metric_name(m)) for m in metrics):  # each an array named after its function
            if name in METRIC_RESERVED or name.startswith("test_"):
                raise ParameterError(f"{param('metrics')} {spec!r}: a metric is stored under its function's name, and "
                                     f"{name!r} is taken by lossvista's own arrays; rename the function")
            if name in seen:
                raise ParameterError(f"{param('metrics')} {seen[name]!r} and {spec!r} would both be stored as "
                                     f"{name!r}; rename one of the functions")
            seen[name] = spec
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "search", tuple(str(s) for s in (self.search or ())))

    @property
    def label(self) -> str:
        """The loss's name as pictures and summaries show it (``cross_entropy``, ``mymod:loss``)."""
        return self.name

    @property
    def has_accuracy(self) -> bool:
        return self.name in CLASS_LOSSES or self.name == "bce_with_logits"

    @property
    def nonnegative(self) -> bool:
        """Whether every element of the loss is >= 0 (what an exact early exit needs)."""
        return self.name in LOSSES

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options), "metrics": list(self.metrics),
                "search": list(self.search)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "LossSpec":
        """The spec recorded by :meth:`to_dict` (``None``: cross-entropy, what older runs used)."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ParameterError(f"{param('loss')} must be a table with 'name' (and 'options'); got {d!r}")
        return cls(d.get("name", "cross_entropy"), d.get("options") or {}, tuple(d.get("metrics") or ()),
                   tuple(d.get("search") or ()))


@dataclass
class BatchSums:
    """What one batch adds to each of ``g`` points (lanes): float64 sums and element counts."""

    loss: Any  # (g,) float64 tensor: sum of the loss over the batch's elements
    count: int  # elements the loss is averaged over
    correct: Any = None  # (g,) float64 tensor of correct predictions, or None
    predictions: int = 0  # elements accuracy is averaged over
    metrics: dict[str, tuple[Any, int]] = field(default_factory=dict)  # name -> ((g,) sums, count)


class Objective:
    """A :class:`LossSpec` ready to run: per-batch sums for a group of points (lanes)."""

    def __init__(self, spec: LossSpec | None = None):
        from .usercode import load_callable

        self.spec = spec or LossSpec()
        self.user: Callable | None = None
        if self.spec.name not in LOSSES:
            self.user = load_callable(self.spec.name, search=self.spec.search, name="loss")
        self.metric_fns = {metric_name(m): load_callable(m, search=self.spec.search,
                                                                                 name="metrics")
                           for m in self.spec.metrics}
        self.classes: int | None = None  # the number of classes seen (class losses)

    @property
    def name(self) -> str:
        return self.spec.label

    @property
    def metric_names(self) -> list[str]:
        return (["accuracy"] if self.spec.has_accuracy else []) + list(self.metric_fns)

    # -- the element count and the baseline, from targets alone --------------------------------
    def counts(self, targets: Any) -> int | None:
        """Elements the loss of these targets is averaged over (None for a user's function: it
        decides the shape of what it returns)."""
        if self.user is not None:
            return None
        if self.spec.name in CLASS_LOSSES:  # torch ignores -100 unless told another index
            return int((targets != self.spec.options.get("ignore_index", -100)).sum())
        return int(targets.numel())

    def baseline(self, targets: Any) -> float | None:
        """The loss of the best constant prediction for these targets, a reference for the
        divergence cap (classes: ``ln(C)`` is used instead; a user's function: None)."""
        import torch

        if self.user is not None or self.spec.name in CLASS_LOSSES:
            return None
        t = targets.detach().double().reshape(-1)
        if t.numel() == 0:
            return None
        if self.spec.name == "mse":
            return float(((t - t.mean()) ** 2).mean())
        if self.spec.name == "l1":
            return float((t - t.median()).abs().mean())
        if self.spec.name == "huber":
            return float(torch.nn.functional.huber_loss(t, t.median().expand_as(t),
                                                        delta=self.spec.options.get("delta", 1.0)))
        p = float(t.mean().clamp(1e-12, 1 - 1e-12))  # bce_with_logits
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))

    # -- one batch ---------------------------------------------------------------------------
    def reduce(self, outputs: Any, targets: Any, memo: dict | None = None, *, keep_dtype: bool = False,
               metrics: bool = True) -> BatchSums:
        """Sums of ``outputs`` ``(g, B, ...)`` (the lanes' forwards of one batch) against
        ``targets`` ``(B, ...)``: float64 sums per lane, each lane by its own 1-D reduction.

        ``memo``: a dict kept by the caller for this batch while its targets stay the same (data
        in memory); what depends on the targets alone (their checks, the mask of ignored
        entries, the element count) is computed on the first call and reused.
        ``keep_dtype``: the per-element losses in the outputs' own dtype (a float64 model's
        stay float64; the surface casts to float32, as its values have always been computed);
        the sums are differentiable either way (:mod:`pipeline.curvature` differentiates them
        twice). ``metrics``: compute the user's metrics too.

        The work is split in two, so that a compiled evaluation (:mod:`pipeline.engine.compiled`)
        can run the second part inside its graph: :meth:`prepare` (checks of shapes and
        targets, eager, memoised) and :meth:`sum_tensors` (tensor operations only).
        """
        import torch

        if not isinstance(outputs, torch.Tensor):
            raise ValueError(f"the model must return a tensor (or the forward hook an (outputs, targets) pair); "
                             f"got {type(outputs).__name__}")
        if not isinstance(targets, torch.Tensor) or targets.dim() < 1 or len(targets) != outputs.shape[1]:
            got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"targets must be a tensor with one entry per sample ({outputs.shape[1]}); got {got}")
        prep = self.prepare(tuple(outputs.shape[2:]), targets, memo)
        return self.batch_sums(self.sum_tensors(outputs, targets, prep, keep_dtype=keep_dtype, metrics=metrics), prep)

    def prepare(self, shape: tuple[int, ...], targets: Any, memo: dict | None = None) -> "Prepared":
        """What one batch needs besides the outputs, from the outputs' per-sample ``shape`` and
        the ``targets`` ``(B, ...)``: checked here (one-line errors), memoised in ``memo``.

        Class losses: where the classes are (last or first dimension), the flat targets, the
        mask of counted entries (None when all count) and their count; the targets must be
        class indices. Elementwise losses: whether a trailing 1 of the outputs is dropped.
        """
        import torch

        if not isinstance(targets, torch.Tensor) or targets.dim() < 1:
            got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"targets must be a tensor with one entry per sample; got {got}")
        memo = {} if memo is None else memo
        key = ("prepared", tuple(shape))
        if key in memo:
            prep = memo[key]
            if prep.classes is not None:
                self.classes = prep.classes
            return prep
        t = tuple(targets.shape[1:])
        if self.user is not None:
            prep = Prepared("user")
        elif self.spec.name in CLASS_LOSSES:
            if tuple(shape[:-1]) == t and len(shape) >= 1:
                layout = "last"  # classes last: (N, C) or (N, d.., C), as language models return them
            elif tuple(shape[1:]) == t and len(shape) >= 2:
                layout = "first"  # torch's layout (N, C, d..)
            else:
                raise ValueError(f"outputs of shape {tuple(shape)} per sample do not fit targets of shape {t} for "
                                 f"{self.spec.name}: the classes must be the first or the last dimension")
            c = shape[-1] if layout == "last" else shape[0]
            flat, counted, count = self._class_targets(targets, c)
            prep = Prepared("class", layout=layout, classes=c, flat=flat, counted=counted, count=count)
        else:
            squeeze = tuple(shape) != t and tuple(shape[:-1]) == t and shape[-1:] == (1,)  # (N, 1) against (N,)
            if (tuple(shape[:-1]) if squeeze else tuple(shape)) != t:
                raise ValueError(f"outputs of shape {tuple(shape)} per sample do not fit targets of shape {t} for "
                                 f"{self.spec.name}: they must be the same")
            if self.spec.name == "bce_with_logits" and targets.numel():
                lo, hi = float(targets.min()), float(targets.max())
                if not (0.0 <= lo and hi <= 1.0):  # NaN fails too
                    raise ValueError(f"bce_with_logits needs targets in [0, 1] (probabilities or 0/1 labels); got "
                                     f"values in [{lo:g}, {hi:g}]")
            prep = Prepared("elementwise", squeeze=squeeze)
        if prep.classes is not None:
            self.classes = prep.classes
        memo[key] = prep
        return prep

    def sum_tensors(self, outputs: Any, targets: Any, prep: "Prepared", *, keep_dtype: bool = False,
                    metrics: bool = True) -> tuple:
        """The per-lane sums of one batch as tensors, from checked inputs (:meth:`prepare`):
        ``(loss (g,), count, correct (g,) or None, predictions, ((metric (g,), count), ...))``,
        float64; a count is None where it comes from the targets alone (``prep.count``).

        Tensor operations only (no data-dependent Python), so that it can be traced into a
        compiled graph together with the forward.
        """
        import torch
        import torch.nn.functional as F

        g, b = outputs.shape[:2]
        out = (outputs if keep_dtype and outputs.is_floating_point() else outputs.float()
               ).reshape(g * b, *outputs.shape[2:])
        tgt = targets.unsqueeze(0).expand(g, *targets.shape).reshape(g * b, *targets.shape[1:]) if g > 1 else targets
        correct = predictions = None
        if prep.kind == "user":
            per = self._user_values(self.user, out, tgt, g, "loss")
            loss, count = _row_sums(per), per.shape[1]
        elif prep.kind == "class":
            logits = out if prep.layout == "last" else out.movedim(1, -1)
            c = logits.shape[-1]
            flat_t = prep.flat.repeat(g) if g > 1 else prep.flat
            ignore = self.spec.options.get("ignore_index", -100)
            flat = logits.reshape(-1, c)
            if self.spec.name == "cross_entropy":
                per = F.cross_entropy(flat, flat_t, reduction="none", ignore_index=ignore,
                                      label_smoothing=self.spec.options.get("label_smoothing", 0.0))
            else:
                per = F.nll_loss(flat, flat_t, reduction="none", ignore_index=ignore)
            loss, count = _row_sums(per.view(g, -1)), None
            right = flat.argmax(-1).view(g, -1) == prep.flat
            if prep.counted is not None:
                right = right & prep.counted
            correct = right.sum(-1, dtype=torch.float64)
        else:
            if prep.squeeze:
                out = out.squeeze(-1)
            t = tgt.to(out.dtype)
            if self.spec.name == "mse":
                per = F.mse_loss(out, t, reduction="none")
            elif self.spec.name == "l1":
                per = F.l1_loss(out, t, reduction="none")
            elif self.spec.name == "huber":
                per = F.huber_loss(out, t, reduction="none", delta=self.spec.options.get("delta", 1.0))
            else:
                per = F.binary_cross_entropy_with_logits(out, t, reduction="none")
            per = per.reshape(g, -1)
            loss, count = _row_sums(per), per.shape[1]
            if self.spec.name == "bce_with_logits":
                correct = ((out > 0) == (t > 0.5)).reshape(g, -1).sum(-1, dtype=torch.float64)
                predictions = per.shape[1]
        sums = []
        for name, fn in (self.metric_fns.items() if metrics else ()):
            values = self._user_values(fn, out, tgt, g, f"metric {name}")
            sums.append((_row_sums(values), values.shape[1]))
        return loss, count, correct, predictions, tuple(sums)

    def batch_sums(self, values: tuple, prep: "Prepared") -> BatchSums:
        """The :class:`BatchSums` of :meth:`sum_tensors`' ``values``, counts from ``prep`` where
        they come from the targets."""
        loss, count, correct, predictions, metrics = values
        count = prep.count if count is None else count
        if correct is not None and predictions is None:
            predictions = count
        return BatchSums(loss=loss, count=count, correct=correct, predictions=predictions or 0,
                         metrics={name: m for name, m in zip(self.metric_fns, metrics)})

    def _class_targets(self, targets: Any, c: int) -> tuple[Any, Any, int]:
        """``(flat targets, mask of counted entries or None when all count, count)`` of one
        batch's targets, checked: integer class indices in ``[0, c)`` or the ignored index."""
        flat = targets.reshape(-1)
        if flat.is_floating_point() or flat.is_complex():
            raise ValueError(f"{self.spec.name} needs integer class indices as targets; got {targets.dtype}")
        ignore = self.spec.options.get("ignore_index", -100)
        counted = flat != ignore
        count = int(counted.sum())
        if count:
            kept = flat[counted] if count < len(flat) else flat
            lo, hi = int(kept.min()), int(kept.max())
            if lo < 0 or hi >= c:
                raise ValueError(f"targets must be class indices in [0, {c}) for a model with {c} outputs; "
                                 f"got values in [{lo}, {hi}]")
        return flat, (None if count == len(flat) else counted), count

    @staticmethod
    def _user_values(fn: Callable, out: Any, tgt: Any, g: int, what: str) -> Any:
        import torch

        value = fn(out, tgt)
        n = out.shape[0]
        if not isinstance(value, torch.Tensor) or value.dim() < 1 or value.shape[0] != n:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"the {what} function must return per-sample ({n},) or per-element ({n}, ...) values "
                             f"(not their mean); got {got}")
        return value.to(out.dtype).reshape(g, -1)


@dataclass(frozen=True)
class Prepared:
    """What one batch's targets give a loss (:meth:`Objective.prepare`), checked once."""

    kind: str  # 'class' | 'elementwise' | 'user'
    layout: str = ""  # class losses: 'last' (N, d.., C) or 'first' (N, C, d..)
    classes: int | None = None  # class losses: C
    flat: Any = None  # class losses: (B * d..,) targets
    counted: Any = None  # class losses: bool mask of the entries that count, None when all do
    count: int | None = None  # class losses: entries that count
    squeeze: bool = False  # elementwise losses: drop a trailing 1 of the outputs ((N, 1) against (N,))


def _row_sums(rows: Any) -> Any:
    """(g,) float64 sums of the rows of (g, L), each by its own 1-D reduction (a row's sum never
    depends on how many rows there are)."""
    import torch

    return torch.stack([r.double().sum() for r in rows])
