"""Curvature of the loss: Hessian eigenvalues, trace and spectral density.

=====================  ===========================================================================
``Hessian``            the operator: exact Hessian-vector products of the surface's loss over a
                       whole split (:mod:`.hessian`); ``eigenvalues``, ``eigenvectors``,
                       ``lanczos`` (both ends at once, residuals), ``trace`` (Hutchinson),
                       ``density`` (stochastic Lanczos quadrature)
``Lanczos``            Lanczos with full reorthogonalisation, resumable (:mod:`.lanczos`)
``SpectralDensity``    quadrature nodes and weights, moments, the smoothed curve (:mod:`.density`)
``curvature_run``      ``lossvista curvature``: a run's checkpoints -> ``curvature.json`` (:mod:`.stage`)
=====================  ===========================================================================
"""
from __future__ import annotations

from .density import SpectralDensity
from .hessian import ConvergenceWarning, CurvatureError, Hessian, selected
from .lanczos import Lanczos, Ritz

__all__ = ["Hessian", "Lanczos", "Ritz", "SpectralDensity", "ConvergenceWarning", "CurvatureError", "selected"]
