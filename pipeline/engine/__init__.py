"""The point engine: points of the plane ``theta + a*x + b*y`` -> loss and accuracy.

==========================  ====================================================================
``evaluate_points``         ``(P, 2)`` coordinates -> :class:`PointResult`; the unit that the
                            surface stage (:mod:`pipeline.surface`) calls for each chunk (:mod:`.points`)
``EvalConfig``              batch size, points per forward, precision, device, cap, subset,
                            determinism (:mod:`.config`)
``resolve_device``          the device rule, shared by every stage that evaluates (:mod:`.device`)
``resolve_compile``         ``compile='auto'`` decided once for a whole job (:mod:`.points`,
                            the rule and the compiled graph in :mod:`.compiled`)
==========================  ====================================================================

Semantics: mean cross-entropy and accuracy over the whole split (or a fixed seeded subset),
model in eval mode, data moved to the device once, each point built from the stored weights.
Several points per forward (``torch.func.vmap`` over ``functional_call``, run by the lane
runner of :mod:`.lanes`) where the per-point work is small, one point at a time in
channels_last otherwise (:mod:`.tuning`); forward and loss compiled into one graph by
``torch.compile`` when it pays (:mod:`.compiled`). What holds about a point's independence of the other
points in a call, and about early exit above a cap, is stated in :mod:`.points`.
"""
from .config import EvalConfig, EvalPlan, PointResult
from .device import resolve_device
from .points import as_split, evaluate_points, resolve_compile

__all__ = ["EvalConfig", "EvalPlan", "PointResult", "evaluate_points", "resolve_device", "resolve_compile", "as_split"]
