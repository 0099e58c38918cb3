"""``lossvista curvature``: the curvature of a run's loss at its checkpoints -> ``RUN/curvature.json``.

At each chosen checkpoint: ``lambda_max`` and ``lambda_min`` of the Hessian (one Lanczos run
gives both ends, with their estimated errors and residuals) and its trace (Hutchinson, with its standard error);
at the last chosen checkpoint also the spectral density (stochastic Lanczos quadrature). The
loss, data and parameters are the surface's: the run's loss on its split (a seeded subset by
default, so that a run's every checkpoint takes seconds), the parameters chosen as the
directions choose them (``ignore``).

``curvature.json``::

    {"format": 1, "run", "model", "parameters" (chosen), "ignore", "loss_name", "loss_spec",
     "split", "samples", "max_samples", "sample_seed", "unit", "tol", "max_iter", "seed",
     "trace_samples", "device", "checkpoints": [{"epoch", "loss", "lambda_max", "lambda_min",
     "error_max", "error_min" (estimated errors, what tol bounds), "residual_max", "residual_min"
     (the rigorous bounds; all relative to the spectral radius), "converged",
     "lanczos_steps", "trace", "trace_stderr", "hvps", "seconds"} | {"epoch", "error"}, ...],
     "density": {"epoch", "vectors", "steps", "n", "nodes", "weights"}, "software", "created"}
"""
from __future__ import annotations

import datetime as _dt
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import check_float, check_int, check_str
from ..errors import LossvistaError, ParameterError, param
from ..rundir import RunDir, ranges
from .hessian import IGNORES, CurvatureError, Hessian

log = logging.getLogger(__name__)

__all__ = ["CurvatureOptions", "curvature_run", "CURVATURE_FORMAT"]

CURVATURE_FORMAT = 1


@dataclass(frozen=True)
class CurvatureOptions:
    """What ``lossvista curvature`` computes and on what (defaults sized for a run's every checkpoint)."""

    epochs: tuple[int, ...] | None = None  # checkpoints to measure; None: all of them
    split: str = "train"
    max_samples: int | None = 512  # a fixed seeded subset of the split; None: the whole split
    sample_seed: int = 0
    ignore: str = "biasbn"  # parameters: 'biasbn' (more than one dimension, as the directions) | 'none'
    tol: float = 1e-3  # Lanczos: eigenvalues' estimated error relative to the spectral radius
    max_iter: int = 200  # Lanczos steps at most per checkpoint
    trace_samples: int = 10  # Hutchinson products per checkpoint; 0: no trace
    density_vectors: int = 4  # stochastic Lanczos quadrature at the last checkpoint; 0: no density
    density_steps: int = 40
    seed: int = 0  # Lanczos start vector, Rademacher vectors
    device: str | None = None  # None: cuda when available

    def __post_init__(self) -> None:
        check_str("split", self.split, ("train", "test"))
        check_int("max_samples", self.max_samples, 1, optional=True)
        check_int("sample_seed", self.sample_seed)
        check_str("ignore", self.ignore, IGNORES)
        check_float("tol", self.tol, 0.0, low_open=True)
        check_int("max_iter", self.max_iter, 2)
        check_int("trace_samples", self.trace_samples, 0)
        if self.trace_samples == 1:
            raise ParameterError(f"{param('trace_samples')} must be 0 (no trace) or at least 2 (one sample has no "
                                 f"standard error); got 1")
        check_int("density_vectors", self.density_vectors, 0)
        check_int("density_steps", self.density_steps, 2)
        check_int("seed", self.seed)
        if self.epochs is not None and (not self.epochs or not all(
                isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in self.epochs)):
            raise ParameterError(f"{param('epochs')} must be a non-empty list of checkpoint numbers; got {self.epochs!r}")


def curvature_run(run: RunDir | str | Path, options: CurvatureOptions = CurvatureOptions(), *,
                  out: str | Path | None = None, pictures: bool = True,
                  notice: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[Path]]:
    """Measure the curvature at the run's checkpoints and write ``out`` (default
    ``RUN/curvature.json``) atomically, and with ``pictures`` the sharpness along training and
    the spectral density (``RUN/renders/curvature_{sharpness,density}.png``).

    Returns ``(record, files written)``. A checkpoint where the curvature is undefined (a
    non-finite loss) is recorded with its ``error`` and reported through ``notice``; a Lanczos
    run stopped by ``max_iter`` before ``tol`` is recorded with ``converged: false`` and its
    residual, and reported too. Raises ``LossvistaError`` (nothing written) when no checkpoint
    could be measured.
    """
    from .. import software_versions
    from ..atomic import check_writable, write_json
    from ..engine import resolve_device
    from ..progress import progress_bar
    from ..run import Run

    say = notice or (lambda msg: log.warning("%s", msg))
    run = run if isinstance(run, RunDir) else RunDir(run)
    opened = Run(run)
    run.read_run()  # one line when RUN is not a run directory
    have = run.epochs()
    if not have:
        raise LossvistaError(f"{run.checkpoints_dir} holds no epoch_*.pt checkpoints; train first")
    epochs = list(options.epochs) if options.epochs is not None else have
    absent = [e for e in epochs if e not in have]
    if absent:
        raise ParameterError(f"{param('epochs')} must be among the checkpoints {run.epochs_text()} in "
                             f"{run.checkpoints_dir}; got {ranges(sorted(set(absent)), sep='..')}, which it has not")
    out = check_writable(Path(out) if out is not None else run.curvature_json, make_parents=out is None)
    if pictures:  # the pictures are the run's (RUN/renders), wherever the JSON goes: checked before the work
        check_writable(RunDir.picture(run.renders, "curvature", "sharpness"), make_parents=True)
    device = str(resolve_device(options.device))
    spec = opened.loss()
    data = opened.data(options.split).subset(options.max_samples, seed=options.sample_seed)
    rows: list[dict[str, Any]] = []
    density = None
    chosen = None
    with progress_bar(total=len(epochs), desc="curvature", unit="ckpt") as bar:
        for e in epochs:
            t0 = time.perf_counter()
            model, _ = opened.build_model(e, device=device)
            hess = Hessian(model, data, loss=spec, ignore=options.ignore, device=device, seed=options.seed)
            chosen = hess.n
            try:
                r = hess.lanczos(1, "both", tol=options.tol, max_iter=options.max_iter, warn=False)
                row: dict[str, Any] = {
                    "epoch": e, "loss": hess.loss_value, "lambda_max": float(r.values[0]),
                    "lambda_min": float(r.values[1]), "error_max": float(r.relative_errors[0]),
                    "error_min": float(r.relative_errors[1]), "residual_max": float(r.relative_residuals[0]),
                    "residual_min": float(r.relative_residuals[1]), "converged": r.converged,
                    "lanczos_steps": r.steps}
                if not r.converged:
                    say(f"{opened.unit} {e}: {r.note(options.tol)} (--max-iter)")
                if options.trace_samples:
                    row["trace"], row["trace_stderr"] = hess.trace(options.trace_samples, seed=options.seed)
                if options.density_vectors and e == epochs[-1]:
                    d = hess.density(options.density_vectors, options.density_steps, seed=options.seed)
                    density = {"epoch": e, "vectors": options.density_vectors, "steps": options.density_steps,
                               **d.to_dict()}
            except CurvatureError as exc:
                row = {"epoch": e, "error": str(exc)}
                say(f"{opened.unit} {e}: {exc}")
            row.update(hvps=hess.hvps, seconds=round(time.perf_counter() - t0, 3))
            rows.append(row)
            bar.update(1)
            if "lambda_max" in row:
                bar.set_postfix(lambda_max=f"{row['lambda_max']:.4g}")
    if not any("lambda_max" in r for r in rows):
        raise CurvatureError(f"no checkpoint could be measured: {rows[0]['error']}")
    record = {
        "format": CURVATURE_FORMAT, "run": str(run.root), "model": opened.model_name, "parameters": chosen,
        "ignore": options.ignore, "loss_name": spec.label, "loss_spec": spec.to_dict(), "split": options.split,
        "samples": data.n, "max_samples": options.max_samples, "sample_seed": options.sample_seed,
        "unit": opened.unit, "tol": options.tol, "max_iter": options.max_iter, "seed": options.seed,
        "trace_samples": options.trace_samples, "device": device.split(":", 1)[0], "checkpoints": rows,
        "density": density, "software": software_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    files = [write_json(out, _finite(record))]
    if pictures:
        from ..render.curvature import plot_density, plot_sharpness

        files.append(plot_sharpness(record, RunDir.picture(run.renders, "curvature", "sharpness")))
        if density is not None:
            files.append(plot_density(record, RunDir.picture(run.renders, "curvature", "density")))
    return record, files


def _finite(obj: Any) -> Any:
    """JSON without NaN (standard JSON has none): NaN and infinities become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
