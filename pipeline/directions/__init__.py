"""Directions in weight space: the axes of the plane ``theta + a*x + b*y``.

=============================  ===============================================================
``Directions``                 the container (``.x``, ``.y``, ``.meta``, ``save``/``load``)
``random_directions``          Gaussian directions, filter/layer/weight normalized (:mod:`.gaussian`)
``pca_directions``             top two principal components of a trajectory, streamed (:mod:`.pca`)
``interpolation_direction``    1D direction from one checkpoint to another (:mod:`.interp`)
``hessian_directions``         top two eigenvectors of the loss's Hessian at the centre (:mod:`.hessian`)
=============================  ===============================================================

Every direction is a dict of tensors keyed like ``model.state_dict()`` (all keys; zeros where
nothing moves), on the CPU, in the weights' dtypes. Files are ``.pt`` written atomically and
read with ``weights_only=True``.
"""
from __future__ import annotations

from .base import DIR_TYPES, IGNORES, NORMS, Directions, tensor_roles
from .gaussian import cosine, normalize_direction, random_directions
from .hessian import hessian_directions
from .interp import interpolation_direction
from .pca import pca_directions

__all__ = ["Directions", "random_directions", "pca_directions", "interpolation_direction", "hessian_directions",
           "normalize_direction",
           "cosine", "tensor_roles", "NORMS", "IGNORES", "DIR_TYPES"]
