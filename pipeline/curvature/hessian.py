"""The Hessian of a model's loss over a whole split, as an operator: exact Hessian-vector products.

The loss is the surface's (:mod:`pipeline.objective`): the mean over every element of the
split, ``L = (1/N) sum_b S_b``, ``S_b`` the sum of the per-element losses of batch ``b``. The model
runs in eval mode (BatchNorm on its running statistics, no dropout), so ``L`` is a fixed
function of the weights. ``H v = (1/N) sum_b d/dw (grad S_b . v)``: per batch, the gradient
with its graph (``create_graph=True``), then the gradient of its product with ``v`` (double
backward). Data in memory whose graphs fit in ``graph_memory`` bytes keeps them, so each
further product costs one backward pass per batch and no forward; larger or streamed data
builds them again for every product.

Parameters are chosen as the directions choose them (``ignore``): every learnable parameter,
or (``biasbn``, the default) those with more than one dimension, as in Li et al.'s code; the
others, the buffers and the integer counters stay at their values. Vectors are flat float64
tensors over the chosen parameters in the order of ``model.named_parameters()``, or dicts
keyed like ``model.state_dict()`` (zeros where nothing is chosen), the form of directions.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..config import check_float, check_int
from ..errors import LossvistaError, ParameterError, param
from .density import SpectralDensity, hutchinson, slq
from .lanczos import WHICH, Lanczos, Ritz

__all__ = ["Hessian", "ConvergenceWarning", "CurvatureError", "IGNORES", "DEFAULT_TOL", "DEFAULT_MAX_ITER"]

IGNORES = ("biasbn", "none")
DEFAULT_TOL = 1e-3  # a wanted eigenvalue's estimated error (eigenvectors: residual), relative to the spectral radius
DEFAULT_MAX_ITER = 200  # Lanczos steps (Hessian-vector products) at most per request
DEFAULT_BATCH = 512  # samples per forward of tensors in memory
DEFAULT_GRAPH_MEMORY = 2 << 30  # bytes of kept gradient graphs at most


class CurvatureError(LossvistaError):
    """The curvature cannot be computed at these weights (a non-finite loss or product, a
    parameter the loss does not depend on)."""


class ConvergenceWarning(UserWarning):
    """Lanczos stopped at its iteration cap before the wanted eigenpairs met the tolerance; the
    message gives the estimated error and the residual reached (the values are within the
    residual of eigenvalues)."""


def selected(model: nn.Module, ignore: str) -> list[str]:
    """Names of the parameters a Hessian of ``model`` is taken over (``model.named_parameters()``
    order): all with ``ignore='none'``, those with more than one dimension with ``'biasbn'``."""
    from ..directions.gaussian import perturbed

    if ignore not in IGNORES:
        raise ParameterError(f"{param('ignore')} must be one of {', '.join(map(repr, IGNORES))}; got {ignore!r}")
    return [k for k, p in model.named_parameters()
            if p.requires_grad and perturbed("param", p, ignore, "weights")]


class Hessian:
    """The Hessian of ``model``'s loss on ``data`` at its current weights (module docstring).

    Parameters
    ----------
    model : nn.Module
        Its parameters and buffers are the point; it is not modified (evaluated in eval mode
        through ``torch.func.functional_call`` with copies of its tensors).
    data : tensors, Split, Dataset, DataLoader, re-iterable of batches (not shuffling)
        :func:`pipeline.engine.batches.as_eval_data`; ``max_samples`` takes a fixed seeded
        subset (``sample_seed``).
    loss : a loss name, ``"module:function"``, a :class:`~pipeline.objective.LossSpec` or
        an :class:`~pipeline.objective.Objective`; default cross-entropy.
    ignore : {'biasbn', 'none'}, default 'biasbn'
        Which parameters (the directions' rule): ``biasbn`` leaves out biases and BatchNorm.
    forward : ``function(model, batch) -> (outputs, targets)`` for batches that are not
        ``(inputs, targets)`` pairs.
    device : default CUDA when available, else the CPU (:func:`pipeline.engine.resolve_device`).
    seed : seed of the Lanczos start's random vector (with the gradient for the largest end, alone
        for the others; :meth:`trace` and :meth:`density` take their own).
    batch_size : samples per forward of tensors in memory (default 512).
    graph_memory : bytes of gradient graphs kept between products at most (default 2 GiB; 0:
        never kept).
    state : optional tensors replacing some of the model's (``{key: tensor}`` like its
        ``state_dict``): the Hessian at other weights (:meth:`at`).

    Attributes
    ----------
    names : the chosen parameters; ``n``: their number of elements; ``hvps``: products so far;
    ``samples`` and ``count``: samples and loss elements of the data (after the first product);
    ``loss_value``: the loss at these weights (after the first product).
    """

    def __init__(self, model: nn.Module, data: Any, *, loss: Any = None, ignore: str = "biasbn",
                 forward: Callable | None = None, max_samples: int | None = None, sample_seed: int = 0,
                 device: Any = None, seed: int = 0, batch_size: int = DEFAULT_BATCH,
                 graph_memory: int = DEFAULT_GRAPH_MEMORY, state: Mapping[str, torch.Tensor] | None = None,
                 _prepared: Any = None):
        from ..engine import resolve_device
        from ..engine.batches import as_eval_data
        from ..engine.points import as_objective

        if not isinstance(model, nn.Module):
            raise ParameterError(f"{param('model')} must be a torch.nn.Module; got {type(model).__name__}")
        check_int("batch_size", batch_size, 1)
        check_int("seed", seed)
        check_int("graph_memory", graph_memory, 0)
        self.model = model
        self.ignore = ignore
        self.names = selected(model, ignore)
        if not self.names:
            raise ParameterError(f"the model {type(model).__name__} has no parameter with more than one dimension to "
                                 f"take the Hessian over; pass {param('ignore')} 'none'")
        self.seed, self.batch_size, self.graph_memory = seed, batch_size, graph_memory
        if _prepared is not None:  # another point of the same operator (at): data and objective shared
            self.device, self.objective, self.data = _prepared
        else:
            self.device = resolve_device(device)
            self.objective = as_objective(loss)
            dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
            self.data = as_eval_data(data, forward=forward).subset(max_samples, seed=sample_seed).to(self.device, dtype)
        # the point: every tensor the model is called with, on the device (functional_call)
        tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        override = dict(state or {})
        self.tensors: dict[str, torch.Tensor] = {}
        for k, t in tensors.items():
            t = override.get(k, t)
            self.tensors[k] = t.detach().to(self.device)
        self.shapes = [tuple(self.tensors[k].shape) for k in self.names]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n = sum(self.sizes)
        self.hvps = 0
        self.samples: int | None = None
        self.count: int | None = None
        self.loss_value: float | None = None
        self._graphs: list | None = None  # per batch: (params, gradients with their graphs)
        self._krylov: dict[bool, Lanczos] = {}  # the Krylov spaces, by whether the gradient is in the start

    # -- the same operator at other weights -------------------------------------------------------
    def at(self, state: Mapping[str, torch.Tensor]) -> "Hessian":
        """The Hessian of the same loss and data at the weights ``state`` (``{key: tensor}``,
        entries not given keep this point's values); the data is not moved again."""
        merged = {**self.tensors, **{k: v for k, v in state.items() if k in self.tensors}}
        return Hessian(self.model, None, ignore=self.ignore, seed=self.seed, batch_size=self.batch_size,
                       graph_memory=self.graph_memory, state=merged,
                       _prepared=(self.device, self.objective, self.data))

    # -- vectors ---------------------------------------------------------------------------------
    def flatten(self, d: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(n,)`` float64 of a direction dict (keyed like the state_dict), chosen parameters only."""
        missing = [k for k in self.names if k not in d]
        if missing:
            raise ParameterError(f"the vector lacks the parameter {missing[0]!r}")
        return torch.cat([d[k].detach().to(self.device, torch.float64).reshape(-1) for k in self.names])

    def unflatten(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """A direction dict keyed like ``model.state_dict()`` from ``(n,)``: the chosen parameters
        in their dtypes, zeros everywhere else (on the CPU, like directions)."""
        parts = dict(zip(self.names, torch.split(v.detach().reshape(-1), self.sizes)))
        out = {}
        for k, t in self.model.state_dict().items():
            if k in parts:
                out[k] = parts[k].reshape(t.shape).to("cpu", t.dtype)
            else:
                out[k] = torch.zeros(t.shape, dtype=t.dtype)
        return out

    # -- products --------------------------------------------------------------------------------
    def _call(self, weights: dict[str, torch.Tensor], batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        from ..engine.lanes import _FunctionalModule

        state = {**self.tensors, **weights}
        stand_in = _FunctionalModule(self.model, state)
        if hasattr(self.data, "inputs"):
            start, end = batch
            return stand_in(self.data.inputs[start:end]), self.data.targets[start:end]
        from ..engine.batches import _to

        return self.data.forward(stand_in, batch if self.data.in_memory else _to(batch, self.device))

    def _batches(self) -> Iterator[Any]:
        if hasattr(self.data, "inputs"):
            n = self.data.n
            for s in range(0, n, self.batch_size):
                yield s, min(s + self.batch_size, n)
        else:
            yield from self.data

    def _graph(self, batch: Any, memo: dict, create_graph: bool = True
               ) -> tuple[list[torch.Tensor], list[torch.Tensor | None], float, int, int]:
        """``(params, gradients of S_b (with their graphs unless ``create_graph`` is false), S_b, loss
        elements, samples)`` of one batch."""
        params = [self.tensors[k].clone().requires_grad_(True) for k in self.names]
        with torch.enable_grad():
            out, targets = self._call(dict(zip(self.names, params)), batch)
            if not isinstance(out, torch.Tensor):
                raise ValueError(f"the model must return a tensor (or the forward hook an (outputs, targets) pair); "
                                 f"got {type(out).__name__}")
            sums = self.objective.reduce(out.unsqueeze(0), targets, memo, keep_dtype=True, metrics=False)
            s = sums.loss[0]
            grads = torch.autograd.grad(s, params, create_graph=create_graph, allow_unused=True)
        unused = [k for k, g in zip(self.names, grads) if g is None]
        if unused:
            raise CurvatureError(f"the loss does not depend on the parameter {unused[0]!r}"
                                 + (f" (and {len(unused) - 1} more)" if len(unused) > 1 else "")
                                 + f"; its Hessian rows would be undefined: leave it out (requires_grad=False) "
                                 f"or choose {param('ignore')} 'biasbn'")
        samples = len(targets) if isinstance(targets, torch.Tensor) and targets.dim() else 0
        return params, list(grads), float(s.detach()), sums.count, samples

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        from ..engine.points import _eval_mode

        with _eval_mode(self.model), torch.inference_mode(False), torch.enable_grad():
            yield

    def _note_totals(self, total: float, count: int, samples: int) -> None:
        if count <= 0:
            raise CurvatureError("the data holds no loss element to average (every target ignored?)")
        self.count, self.samples, self.loss_value = count, samples, total / count
        if not math.isfinite(self.loss_value):
            raise CurvatureError(f"the loss is not finite at these weights ({self.loss_value}); the curvature of a "
                                 f"divergent point is undefined")

    def _build_graphs(self) -> list | None:
        """Every batch's gradient graph, kept when the data is in memory and they fit in
        ``graph_memory`` bytes (measured on the first batch); None when they are not kept."""
        if not self.data.in_memory or self.graph_memory <= 0:
            return None
        kept, memo_of, total, count, samples = [], {}, 0.0, 0, 0
        n_batches = sum(1 for _ in self._batches())
        for i, batch in enumerate(self._batches()):
            if i == 0:
                saved = [0]

                def pack(t: torch.Tensor) -> torch.Tensor:
                    saved[0] += t.numel() * t.element_size()
                    return t

                with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                    g = self._graph(batch, memo_of.setdefault(i, {}))
                if saved[0] * n_batches > self.graph_memory:
                    return None
            else:
                g = self._graph(batch, memo_of.setdefault(i, {}))
            kept.append(g[:2])
            total, count, samples = total + g[2], count + g[3], samples + g[4]
        self._note_totals(total, count, samples)
        return kept

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` for a flat ``(n,)`` vector (float64 result, on the device)."""
        v = v.to(self.device, torch.float64).reshape(-1)
        if v.numel() != self.n:
            raise ParameterError(f"the vector must have the {self.n} elements of the chosen parameters; got {v.numel()}")
        with self._scope():
            if self._graphs is None and self.count is None:
                self._graphs = self._build_graphs()
            pieces = [p.to(self.tensors[k].dtype).reshape(self.tensors[k].shape)
                      for k, p in zip(self.names, torch.split(v, self.sizes))]
            acc = torch.zeros(self.n, dtype=torch.float64, device=self.device)
            if self._graphs is not None:
                for params, grads in self._graphs:
                    acc += self._product(params, grads, pieces, retain=True)
            else:
                total, count, samples = 0.0, 0, 0
                for batch in self._batches():
                    params, grads, s, c, m = self._graph(batch, {})
                    acc += self._product(params, grads, pieces, retain=False)
                    total, count, samples = total + s, count + c, samples + m
                self._note_totals(total, count, samples)
        self.hvps += 1
        out = acc / self.count
        if not bool(torch.isfinite(out).all()):
            raise CurvatureError(f"the Hessian-vector product is not finite at these weights (loss "
                                 f"{self.loss_value:.6g}); the curvature of a divergent point is undefined")
        return out

    def _product(self, params: list, grads: list, pieces: list, retain: bool) -> torch.Tensor:
        used = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        hv = [None] * len(params)
        if used:
            got = torch.autograd.grad([grads[i] for i in used], params, grad_outputs=[pieces[i] for i in used],
                                      retain_graph=retain, allow_unused=True)
            hv = list(got)
        return torch.cat([(h if h is not None else torch.zeros_like(p)).reshape(-1).to(torch.float64)
                          for h, p in zip(hv, params)])

    def hvp(self, v: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``H v`` of a direction dict keyed like ``model.state_dict()`` (same form back)."""
        return self.unflatten(self.matvec(self.flatten(v)))

    def gradient(self) -> torch.Tensor:
        """``(n,)`` float64: the gradient of the loss over the chosen parameters, summed from the
        kept gradient graphs when there are any (no further pass), else by one pass over the data."""
        acc = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        with self._scope():
            if self._graphs is None and self.count is None:
                self._graphs = self._build_graphs()
            if self._graphs is not None:
                for _, grads in self._graphs:
                    acc += torch.cat([g.detach().reshape(-1).to(torch.float64) for g in grads])
            else:
                total, count, samples = 0.0, 0, 0
                for batch in self._batches():
                    _, grads, s, c, m = self._graph(batch, {}, create_graph=False)
                    acc += torch.cat([g.reshape(-1).to(torch.float64) for g in grads])
                    total, count, samples = total + s, count + c, samples + m
                self._note_totals(total, count, samples)
        return acc / self.count

    # -- eigenvalues -----------------------------------------------------------------------------
    def _start(self, seed: int, gradient: bool) -> torch.Tensor:
        """A seeded random unit vector, plus with ``gradient`` the loss's unit gradient, which
        lies mostly in the span of the top eigenvectors (Gur-Ari et al. 2018), so the largest
        eigenvalues converge in fewer products. For the largest end only: a start weighted to the
        top holds little of the bottom, whose Ritz value can settle on an eigenvalue above
        ``lambda_min`` (docs/curvature.md, "Start vector")."""
        gen = torch.Generator().manual_seed(seed)
        v = torch.randn(self.n, generator=gen, dtype=torch.float64).to(self.device)
        v = v / v.norm()
        if gradient:
            g = self.gradient()
            norm = float(g.norm())
            if norm > 0 and math.isfinite(norm):
                v = v + g / norm
        return v

    def lanczos(self, k: int = 1, which: str = "largest", *, tol: float = DEFAULT_TOL,
                max_iter: int = DEFAULT_MAX_ITER, vectors: bool = False, warn: bool = True,
                progress: Callable[[int], None] | None = None) -> Ritz:
        """The ``k`` eigenpairs at the ``which`` end (``largest``, ``smallest``, ``both``) by Lanczos
        with full reorthogonalisation (:mod:`.lanczos`), with their estimated errors and residuals.

        The Krylov space is kept: a later request continues it. The largest end starts from the
        gradient and a random vector of ``seed``, the smallest end and both ends from that random
        vector alone (:meth:`_start`), each in its own space. ``tol``: a pair is converged when its
        estimated eigenvalue error (with ``vectors``: its residual) is at most ``tol`` times the
        spectral radius; ``max_iter``: the Krylov dimension at most. When the cap stops it first,
        the result says ``converged=False`` and a :class:`ConvergenceWarning` gives the error
        reached (``warn=False``: no warning).
        """
        if which not in WHICH:
            raise ParameterError(f"{param('which')} must be one of {', '.join(map(repr, WHICH))}; got {which!r}")
        check_int("k", k, 1)
        check_int("max_iter", max_iter, 1)
        check_float("tol", tol, 0.0, low_open=True)
        if k > self.n:
            raise ParameterError(f"{param('k')} must be at most the {self.n} chosen parameters; got {k}")
        gradient = which == "largest"
        if gradient not in self._krylov:
            self._krylov[gradient] = Lanczos(self.matvec, self._start(self.seed, gradient))
        r = self._krylov[gradient].run(k, which, tol, max(max_iter, 2 * k if which == "both" else k), vectors, progress)
        if not r.converged and warn:
            warnings.warn(ConvergenceWarning(r.note(tol)), stacklevel=2)
        return r

    def eigenvalues(self, k: int = 1, which: str = "largest", *, tol: float = DEFAULT_TOL,
                    max_iter: int = DEFAULT_MAX_ITER) -> np.ndarray:
        """The ``k`` largest (descending) or smallest (ascending) algebraic eigenvalues, ``(k,)``."""
        if which == "both":
            raise ParameterError(f"{param('which')} must be 'largest' or 'smallest'; got 'both' (use lanczos())")
        return np.array(self.lanczos(k, which, tol=tol, max_iter=max_iter, warn=True).values)

    def eigenvectors(self, k: int = 1, which: str = "largest", *, tol: float = DEFAULT_TOL,
                     max_iter: int = DEFAULT_MAX_ITER) -> tuple[np.ndarray, list[dict[str, torch.Tensor]]]:
        """``(eigenvalues (k,), [direction dict, ...])``: unit eigenvectors (over the chosen
        parameters) keyed like ``model.state_dict()``, the sign chosen so that the entry of
        largest magnitude is positive."""
        if which == "both":
            raise ParameterError(f"{param('which')} must be 'largest' or 'smallest'; got 'both' (use lanczos())")
        r = self.lanczos(k, which, tol=tol, max_iter=max_iter, vectors=True, warn=True)
        dirs = []
        for y in r.vectors:
            if y[int(y.abs().argmax())] < 0:
                y = -y
            dirs.append(self.unflatten(y))
        return np.array(r.values), dirs

    # -- trace and density -----------------------------------------------------------------------
    def trace(self, samples: int = 100, seed: int = 0, progress: Callable[[int], None] | None = None
              ) -> tuple[float, float]:
        """Hutchinson's estimate of ``tr(H)`` with Rademacher vectors: ``(mean, standard error)``
        over ``samples`` products ``v^T H v`` (:func:`~pipeline.curvature.density.hutchinson`)."""
        check_int("samples", samples, 1)
        return hutchinson(self.matvec, self.n, samples, seed, self.device, progress)

    def density(self, vectors: int = 8, steps: int = 64, seed: int = 0,
                progress: Callable[[int], None] | None = None) -> SpectralDensity:
        """The spectral density by stochastic Lanczos quadrature: ``vectors`` Rademacher start
        vectors, ``steps`` Lanczos steps each (:func:`~pipeline.curvature.density.slq`)."""
        check_int("vectors", vectors, 1)
        check_int("steps", steps, 1)
        return slq(self.matvec, self.n, vectors, steps, seed, self.device, progress)
