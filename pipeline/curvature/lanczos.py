"""Lanczos with full reorthogonalisation: extreme eigenpairs and stochastic Lanczos quadrature.

:class:`Lanczos` builds an orthonormal basis ``Q`` of the Krylov space of a symmetric operator
``A`` (a function ``(n,) -> (n,)``, float64 tensors) from one start vector, and the tridiagonal
``T = Q^T A Q`` (diagonal ``alpha``, off-diagonal ``beta``). Every new vector is
orthogonalised against the whole basis twice (classical Gram-Schmidt repeated: "twice is
enough"), so the basis stays orthonormal to rounding and no ghost copies of converged
eigenvalues appear. The space can be extended later: a request for more eigenpairs continues
where the last one stopped, with the same start vector, as one longer run would have.

Convergence
-----------
After ``j`` steps the Ritz pair ``(theta_i, y_i = Q s_i)`` of ``T`` has the residual
``r_i = ||A y_i - theta_i y_i|| = beta_j |s_i[j-1]|`` (exact arithmetic), and a symmetric ``A`` has an
eigenvalue within ``r_i`` of ``theta_i``. That bound is pessimistic for an isolated eigenvalue: a
Ritz value's error is of the order of the *square* of its residual over the gap ``delta_i`` to the
rest of the spectrum, ``|lambda - theta_i| <= r_i^2 / delta_i`` (the Kato-Temple bound; Parlett, *The
Symmetric Eigenvalue Problem*). The gap is estimated from the other Ritz pairs: the distance to the
nearest other Ritz value less that value's residual, so an unsettled neighbour shrinks it, and
the estimate is never above ``r_i``: ``error_i = min(r_i, r_i^2 / max(delta_i, r_i))``. That
holds for the largest eigenvalues, the few outliers a network's Hessian has at its top. The
smallest end is different: a dense bulk near zero with small negative eigenvalues below it that a
short Krylov space has not seen yet; a Ritz value at the bulk's edge has a small residual and a
wide apparent gap, and the estimate would stop it there, short of ``lambda_min`` (an eigen-ratio
map computed that way is speckled with ratios near 0). The smallest end's error is therefore its
residual. A pair is *converged* when ``error_i`` is at most ``tol * ||A||``, ``||A||`` estimated by the largest
``|theta|`` seen: relative ``tol`` for the dominant eigenvalue and an absolute error of
``tol * ||A||`` for the others (what the ratio ``|lambda_min / lambda_max|`` needs). ``residuals``
stay available as the rigorous bound. A request for eigen*vectors* converges on the residual
itself (``r_i <= tol * ||A||``): a Ritz vector's angle to its eigenvector is at most
``r_i / delta_i``, first order in the residual. A step whose new vector has no length left (``beta ~ 0``)
has found an invariant subspace: its Ritz values are exact eigenvalues.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

__all__ = ["Lanczos", "Ritz", "WHICH", "tridiagonal_eigh"]

WHICH = ("largest", "smallest", "both")  # the ends of the spectrum a request wants
_BREAKDOWN = 1e-12  # beta below this times ||A||: an invariant subspace (exact Ritz values)
_EXACT = 64  # up to this many steps every step is checked for convergence; then every few steps


def tridiagonal_eigh(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (columns) of the symmetric tridiagonal matrix
    with diagonal ``alpha`` ``(j,)`` and off-diagonal ``beta`` ``(j - 1,)``."""
    from scipy.linalg import eigh_tridiagonal

    if len(alpha) == 1:
        return np.asarray(alpha, dtype=np.float64), np.ones((1, 1))
    return eigh_tridiagonal(np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64))


@dataclass
class Ritz:
    """Ritz pairs of one request, in the order asked for (largest first, or smallest first).

    ``values`` ``(k,)``; ``residuals`` ``(k,)``: ``||A y - theta y||`` bounds (an eigenvalue of
    ``A`` lies within each); ``errors`` ``(k,)``: the estimated eigenvalue errors the tolerance is
    compared with (module docstring; at most the residuals); ``scale``: the ``||A||`` estimate the
    tolerance is relative to; ``vectors`` ``(k, n)`` float64 (unit norm) when asked for;
    ``steps``: the Krylov dimension; ``converged``: every wanted pair's error within ``tol * scale``.
    """

    values: np.ndarray
    residuals: np.ndarray
    errors: np.ndarray
    scale: float
    steps: int
    converged: bool
    vectors: torch.Tensor | None = None

    def _relative(self, x: np.ndarray) -> np.ndarray:
        return x / self.scale if self.scale > 0 else np.zeros_like(x)

    @property
    def relative_residuals(self) -> np.ndarray:
        """``residuals / scale``: the rigorous bounds, relative to the spectral radius."""
        return self._relative(self.residuals)

    @property
    def relative_errors(self) -> np.ndarray:
        """``errors / scale``: what the tolerance is compared with."""
        return self._relative(self.errors)

    def note(self, tol: float) -> str:
        """What an unconverged request reached, in one line."""
        error = float(self.relative_errors.max()) if len(self.errors) else 0.0
        bound = float(self.relative_residuals.max()) if len(self.residuals) else 0.0
        return (f"Lanczos stopped after {self.steps} steps with an estimated error of {error:.2g} (> tol {tol:g}) "
                f"relative to the spectral radius {self.scale:.4g}; the eigenvalues are within {bound:.2g} x "
                f"{self.scale:.4g} of true ones (the residual): raise max_iter")


class Lanczos:
    """The Krylov space of ``matvec`` from one start vector, extended on demand.

    Parameters
    ----------
    matvec : ``(n,) float64 tensor -> (n,) float64 tensor``, symmetric
    start : ``(n,)`` start vector (normalised here); its device is the basis's
    capacity : steps the basis is first allocated for (it grows as needed)

    The basis takes ``8 * n`` bytes per step on the start vector's device.
    """

    def __init__(self, matvec: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, capacity: int = 32):
        v = start.detach().to(torch.float64).reshape(-1)
        norm = float(v.norm())
        if not (norm > 0 and math.isfinite(norm)):
            raise ValueError("the Lanczos start vector must be finite and non-zero")
        self.matvec = matvec
        self.n = v.numel()
        self._Q = torch.empty(min(max(capacity, 2), self.n + 1), self.n, dtype=torch.float64, device=v.device)
        self._Q[0] = v / norm
        self.alpha: list[float] = []
        self.beta: list[float] = []  # beta[j] links q_j and q_{j+1}
        self.exhausted = False  # an invariant subspace was found: no further step exists
        self.scale = 0.0  # max |theta| seen: the ||A|| estimate

    @property
    def steps(self) -> int:
        return len(self.alpha)

    def basis(self) -> torch.Tensor:
        """``(steps, n)`` orthonormal rows."""
        return self._Q[:self.steps]

    def _grow(self) -> None:
        rows = min(2 * self._Q.shape[0], self.n + 1)
        bigger = torch.empty(rows, self.n, dtype=torch.float64, device=self._Q.device)
        bigger[:self._Q.shape[0]] = self._Q
        self._Q = bigger

    def step(self) -> None:
        """One Lanczos step with full reorthogonalisation (raises ``FloatingPointError`` when the
        operator returns a non-finite vector)."""
        j = self.steps
        q = self._Q[j]
        w = self.matvec(q).to(torch.float64).reshape(-1)
        if not bool(torch.isfinite(w).all()):
            raise FloatingPointError("the operator returned a non-finite vector")
        a = float(torch.dot(q, w))
        self.alpha.append(a)
        Q = self._Q[:j + 1]
        for _ in range(2):  # classical Gram-Schmidt twice against the whole basis
            w = w - Q.T @ (Q @ w)
        b = float(w.norm())
        self.scale = max(self.scale, abs(a), b)
        if j + 1 >= self.n or b <= _BREAKDOWN * max(self.scale, 1e-300):
            self.exhausted = True
            self.beta.append(0.0)
            return
        if j + 1 >= self._Q.shape[0]:
            self._grow()
        self._Q[j + 1] = w / b
        self.beta.append(b)

    def ritz(self, k: int, which: str, vectors: bool = False) -> Ritz:
        """The ``k`` Ritz pairs at the ``which`` end(s) of the current space (``both``: the largest
        then the smallest, ``k`` each)."""
        theta, S = tridiagonal_eigh(np.array(self.alpha), np.array(self.beta[:-1]))
        j = len(theta)
        self.scale = max(self.scale, float(np.abs(theta).max()))
        k = min(k, j)
        top, bottom = list(range(j - 1, j - 1 - k, -1)), list(range(k))
        idx = {"largest": top, "smallest": bottom, "both": top + bottom}[which]
        last = 0.0 if self.exhausted else self.beta[-1]
        every = np.abs(last * S[j - 1, :])  # the residual of every Ritz pair
        errors = every.copy()
        if j > 1:
            for i in top if which != "smallest" else []:  # the largest end only (module docstring)
                others = np.arange(j) != i
                gap = float(np.min(np.abs(theta[others] - theta[i]) - every[others]))
                errors[i] = min(every[i], every[i] ** 2 / max(gap, every[i], 1e-300))
        vecs = None
        if vectors:
            s = torch.as_tensor(S[:, idx], dtype=torch.float64, device=self._Q.device)  # (j, m)
            vecs = (s.T @ self.basis())  # (m, n)
            vecs = vecs / vecs.norm(dim=1, keepdim=True)
        return Ritz(theta[idx], every[idx], errors[idx], self.scale, j, False, vecs)

    def run(self, k: int, which: str, tol: float, max_steps: int, vectors: bool = False,
            progress: Callable[[int], None] | None = None) -> Ritz:
        """Extend the space until the wanted pairs converge (module docstring), the space is
        exhausted, or it has ``max_steps`` steps; return them (``converged`` says which ended it)."""
        if which not in WHICH:
            raise ValueError(f"which must be one of {', '.join(map(repr, WHICH))}; got {which!r}")
        least = 2 * k if which == "both" else k  # steps before the wanted pairs can be told apart
        while True:
            at_end = self.exhausted or self.steps >= max_steps
            if self.steps >= least and (at_end or self._check_now()):
                r = self.ritz(k, which)
                done = self.exhausted or bool(np.all((r.residuals if vectors else r.errors) <= tol * r.scale))
                if done or at_end:
                    out = self.ritz(k, which, vectors) if vectors else r
                    out.converged = done
                    return out
            elif at_end:
                out = self.ritz(k, which, vectors)
                out.converged = self.exhausted
                return out
            before = self.steps
            self.step()
            if progress is not None:
                progress(self.steps - before)

    def _check_now(self) -> bool:
        j = self.steps
        return j <= _EXACT or self.exhausted or j % max(1, j // 32) == 0
