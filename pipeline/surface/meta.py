"""The one builder of a surface's metadata (the ``losscape_meta`` field data of its file).

:func:`surface_meta` is what is known before any point is evaluated; assembling the surface
(:func:`~.assemble.assemble_surface`) adds what the evaluation found: the grid, the centre's
values, the engine's resolved plan, the forward samples and the counts of bounded and
non-finite points. The in-memory :func:`~.in_memory.evaluate` and a run's surface
(:class:`~.job.SurfaceJob`) both build their metadata here, so their files describe the same
things in the same words.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..datamodel import FORMAT_VERSION

__all__ = ["surface_meta", "DIRECTION_KEYS"]

# direction metadata repeated at the top level (the rest stays under "directions")
DIRECTION_KEYS = ("norm", "ignore", "dir_type", "seed", "explained_variance", "cosine")


def surface_meta(*, model: str, parameters: int, directions: Mapping[str, Any], config: Any, split: str,
                 samples: Sequence[int], dataset: str | None = None, num_classes: int | None = None,
                 loss: Any = None, hessian: Any = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Metadata of a surface about to be evaluated.

    Parameters
    ----------
    model : str
        The model's name (registry name or ``module:factory`` of a run, else its class name).
    parameters : int
        Number of parameters.
    directions : mapping
        The directions' metadata (``Directions.meta``).
    config : EvalConfig
        The engine settings, device resolved.
    split : {'train', 'test', 'both'}
    samples : [n] or [n_train, n_test]
        Samples evaluated per point (after a subset), one per split.
    dataset, num_classes : optional
    loss : LossSpec, optional
        What the value is (default cross-entropy): ``loss_name`` (its name for labels) and
        ``loss_spec`` (the whole spec).
    hessian : HessianMaps, optional
        The curvature maps' settings (``hessian``: tol, max_iter, ignore, seed), when computed;
        the assembly adds how many points did not converge.
    extra : mapping, optional
        Merged last (e.g. ``run``, ``epoch``, ``directions_file``).
    """
    from .. import software_versions
    from ..objective import LossSpec

    d = dict(directions)
    spec = loss if isinstance(loss, LossSpec) else LossSpec()
    meta = {
        "format_version": FORMAT_VERSION,
        "model": model,
        "parameters": int(parameters),
        "dataset": dataset,
        "num_classes": num_classes,
        "split": split,
        "loss_name": spec.label,
        "loss_spec": spec.to_dict(),
        "samples": int(samples[0]),
        **({"test_samples": int(samples[1])} if len(samples) > 1 else {}),
        "direction_kind": d.get("kind", "random"),
        "directions": d,
        **{k: d[k] for k in DIRECTION_KEYS if k in d},
        "precision": config.precision,
        "cap": config.cap,
        "max_samples": config.max_samples,
        "sample_seed": config.sample_seed,
        "device": str(config.device).split(":", 1)[0] if config.device is not None else None,
        "engine": {"config": config.to_dict()},
        **({"hessian": hessian.to_dict()} if hessian is not None else {}),
        "software": software_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.update(extra or {})
    return meta
