"""The spectral density of a Hessian, as stochastic Lanczos quadrature gives it.

For a unit start vector ``v`` and ``m`` Lanczos steps, the Gauss quadrature of
``v^T f(H) v`` has nodes ``theta_i`` (the Ritz values) and weights ``w_i = s_i[0]^2`` (the squared
first components of the eigenvectors of ``T``); it is exact for polynomials ``f`` of degree up
to ``2m - 1``. With Rademacher ``v / sqrt(n)``, ``E[v^T f(H) v] = tr f(H) / n``: the average over
the start vectors of ``sum_i w_i delta(x - theta_i)`` estimates the density of the
eigenvalues ``(1/n) sum_j delta(x - lambda_j)``; its moments are Hutchinson estimates of
``tr(H^p) / n``. The curve is that sum smoothed by a Gaussian of width ``sigma``.

"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from .lanczos import Lanczos, tridiagonal_eigh

__all__ = ["SpectralDensity", "hutchinson", "slq"]


def rademacher(n: int, gen: torch.Generator, device: Any) -> torch.Tensor:
    """``(n,)`` float64 of random signs."""
    return (torch.randint(0, 2, (n,), generator=gen, dtype=torch.int8).to(torch.float64) * 2 - 1).to(device)


def hutchinson(matvec: Callable[[torch.Tensor], torch.Tensor], n: int, samples: int, seed: int, device: Any,
               progress: Callable[[int], None] | None = None) -> tuple[float, float]:
    """Hutchinson's trace estimate over ``samples`` Rademacher vectors ``v^T A v``: ``(mean,
    standard error)`` (``std / sqrt(samples)``; NaN for one sample)."""
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(samples):
        v = rademacher(n, gen, device)
        values.append(float(torch.dot(v, matvec(v))))
        if progress is not None:
            progress(1)
    x = np.array(values)
    stderr = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan
    return float(x.mean()), stderr


def slq(matvec: Callable[[torch.Tensor], torch.Tensor], n: int, vectors: int, steps: int, seed: int, device: Any,
        progress: Callable[[int], None] | None = None) -> "SpectralDensity":
    """Stochastic Lanczos quadrature: ``vectors`` Rademacher start vectors, ``steps`` Lanczos steps each."""
    gen = torch.Generator().manual_seed(seed)
    nodes, weights = [], []
    for _ in range(vectors):
        lz = Lanczos(matvec, rademacher(n, gen, device), capacity=min(steps, n) + 1)
        while lz.steps < min(steps, n) and not lz.exhausted:
            lz.step()
            if progress is not None:
                progress(1)
        theta, S = tridiagonal_eigh(np.array(lz.alpha), np.array(lz.beta[:-1]))
        nodes.append(theta)
        weights.append(S[0] ** 2)
    return SpectralDensity(nodes, weights, n)


@dataclass
class SpectralDensity:
    """Quadrature nodes and weights of each start vector; ``n`` the dimension.

    ``nodes[l]``, ``weights[l]``: arrays of the ``l``-th start vector (weights sum to 1).
    """

    nodes: Sequence[np.ndarray]
    weights: Sequence[np.ndarray]
    n: int

    def __post_init__(self) -> None:
        self.nodes = [np.asarray(x, dtype=np.float64) for x in self.nodes]
        self.weights = [np.asarray(w, dtype=np.float64) for w in self.weights]

    @property
    def vectors(self) -> int:
        return len(self.nodes)

    def moment(self, p: int) -> float:
        """The estimate of ``tr(H^p) / n`` (``p = 1``: the mean eigenvalue)."""
        return float(np.mean([np.sum(w * x ** p) for x, w in zip(self.nodes, self.weights)]))

    @property
    def trace(self) -> float:
        """``n`` times the first moment: an estimate of ``tr(H)``."""
        return self.n * self.moment(1)

    @property
    def range(self) -> tuple[float, float]:
        """The smallest and the largest node (the Ritz values bracket the spectrum's ends)."""
        return float(min(x.min() for x in self.nodes)), float(max(x.max() for x in self.nodes))

    def curve(self, x: np.ndarray | None = None, sigma: float | None = None, points: int = 1000
              ) -> tuple[np.ndarray, np.ndarray]:
        """``(x, density)``: the smoothed density on ``x`` (default ``points`` values over the
        nodes' range plus a margin); ``sigma`` default 1% of that range. The density integrates
        to 1 over the real line."""
        lo, hi = self.range
        width = max(hi - lo, abs(hi), 1e-12)
        if sigma is None:
            sigma = 0.01 * width
        if not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma must be a positive number; got {sigma!r}")
        if x is None:
            x = np.linspace(lo - 5 * sigma, hi + 5 * sigma, points)
        x = np.asarray(x, dtype=np.float64)
        y = np.zeros_like(x)
        for nodes, weights in zip(self.nodes, self.weights):
            z = (x[:, None] - nodes[None, :]) / sigma
            y += (np.exp(-0.5 * z ** 2) * weights[None, :]).sum(axis=1)
        return x, y / (self.vectors * sigma * math.sqrt(2 * math.pi))

    def to_dict(self) -> dict:
        return {"n": self.n, "nodes": [x.tolist() for x in self.nodes], "weights": [w.tolist() for w in self.weights]}

    @classmethod
    def from_dict(cls, d: dict) -> "SpectralDensity":
        return cls(d["nodes"], d["weights"], int(d["n"]))
